package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseConfig: configs never panic the decoder or the validator, and an
// accepted config survives Marshal.
func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.toml")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			return
		}
		if _, err := Parse(cfg.Marshal()); err != nil {
			t.Fatalf("accepted config does not survive Marshal: %v\n%s", err, cfg.Marshal())
		}
	})
}
