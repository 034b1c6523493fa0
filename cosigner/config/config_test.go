package config

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseConfigGood(t *testing.T) {
	data, err := os.ReadFile("testdata/good.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data)
	if err != nil {
		t.Fatalf("good.toml: %v", err)
	}
	if len(cfg.Chains) != 2 || cfg.Chains[0].ID != "kira-1" || len(cfg.Chains[0].Nodes) != 2 {
		t.Fatalf("chains decoded wrong: %+v", cfg.Chains)
	}
	if got := cfg.Chains[1].Prefix(); got != DefaultBech32Prefix {
		t.Errorf("default prefix = %q, want %q", got, DefaultBech32Prefix)
	}
	if cfg.Metrics.Listen != "127.0.0.1:26680" {
		t.Errorf("metrics.listen = %q", cfg.Metrics.Listen)
	}
}

// TestParseConfigBad runs every testdata/*.bad.toml; its first line says
// "# want: <text the error must contain>".
func TestParseConfigBad(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _ := bufio.NewReader(bytes.NewReader(data)).ReadString('\n')
			want, ok := strings.CutPrefix(strings.TrimSpace(first), "# want: ")
			if !ok {
				t.Fatalf("%s: first line must be '# want: ...'", f)
			}
			_, err = Parse(data)
			if err == nil {
				t.Fatalf("accepted; want error containing %q", want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not contain %q", err, want)
			}
		})
	}
}

func TestConfigMarshalRoundTrip(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Metrics.Listen = "127.0.0.1:9100"
	cfg.Chains = []ChainConfig{{ID: "kira-1", Key: "keys/kira-1.json", Bech32Prefix: "kira",
		Nodes: []string{"tcp://127.0.0.1:26659", "unix:///tmp/pv.sock"}}}
	got, err := Parse(cfg.Marshal())
	if err != nil {
		t.Fatalf("init's own output does not parse: %v\n%s", err, cfg.Marshal())
	}
	if got.Chains[0].Nodes[1] != "unix:///tmp/pv.sock" || got.Metrics.Listen != cfg.Metrics.Listen || got.Chains[0].Bech32Prefix != "kira" {
		t.Fatalf("round trip changed the config: %+v", got)
	}
}

func TestLoadConfigMissing(t *testing.T) {
	_, err := Load(t.TempDir())
	if err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("want a not-exist error, got %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		next := u.Unwrap()
		if next == nil {
			return err
		}
		err = next
	}
}
