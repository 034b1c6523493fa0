package share

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cosigner/cosigner/internal/fsutil"
)

// TestLoadStrict: share and group files are decoded strictly (unknown keys
// and trailing data are refused), and a share file that group or others
// may access is refused with a *fsutil.ModeError naming the chmod.
func TestLoadStrict(t *testing.T) {
	out := filepath.Join(t.TempDir(), "s")
	_, key, _ := ed25519.GenerateKey(nil)
	if _, err := Shard(key, out, Options{Threshold: 2, Shares: 3}); err != nil {
		t.Fatal(err)
	}
	dir := Dir(out, 1)
	sharePath, groupPath := filepath.Join(dir, "share.json"), filepath.Join(dir, "group.json")
	shareJSON, _ := os.ReadFile(sharePath)
	groupJSON, _ := os.ReadFile(groupPath)
	if _, err := Load(sharePath, groupPath); err != nil {
		t.Fatal(err)
	}
	extraKey := func(data []byte) []byte {
		return []byte(strings.Replace(string(data), "{", `{"extra": 1,`, 1))
	}
	tests := []struct {
		name         string
		share, group []byte
		want         string
	}{
		{"unknown key in the share", extraKey(shareJSON), groupJSON, `unknown field "extra"`},
		{"unknown key in the group", shareJSON, extraKey(groupJSON), `unknown field "extra"`},
		{"trailing data after the share", append(append([]byte{}, shareJSON...), "{}"...), groupJSON, "invalid character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			sp, gp := filepath.Join(d, "share.json"), filepath.Join(d, "group.json")
			os.WriteFile(sp, tt.share, 0o600)
			os.WriteFile(gp, tt.group, 0o600)
			if _, err := Load(sp, gp); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("group-readable share", func(t *testing.T) {
		if err := os.Chmod(sharePath, 0o640); err != nil {
			t.Fatal(err)
		}
		_, err := Load(sharePath, groupPath)
		var me *fsutil.ModeError
		if !errors.As(err, &me) || me.Path != sharePath || !strings.Contains(err.Error(), "chmod 600 "+sharePath) {
			t.Fatalf("err = %v, want a *fsutil.ModeError for %s", err, sharePath)
		}
	})
}
