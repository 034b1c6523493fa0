package fsutil

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadSecret(t *testing.T) {
	secret := []byte("not really a key\n")
	tests := []struct {
		mode    os.FileMode
		refused bool
	}{
		{0o600, false},
		{0o400, false},
		{0o700, false},
		{0o640, true},
		{0o604, true},
		{0o644, true},
		{0o620, true},
		{0o602, true},
		{0o666, true},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key.json")
			if err := os.WriteFile(path, secret, 0o600); err != nil {
				t.Fatal(err)
			}
			// Chmod: WriteFile's mode is subject to the umask.
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			data, err := ReadSecret(path)
			if !tt.refused {
				if err != nil || !bytes.Equal(data, secret) {
					t.Fatalf("ReadSecret = %q, %v", data, err)
				}
				return
			}
			var me *ModeError
			if !errors.As(err, &me) || me.Path != path || me.Mode != tt.mode || data != nil {
				t.Fatalf("ReadSecret = %q, %v; want a *ModeError for %s %v", data, err, path, tt.mode)
			}
			if want := "run 'chmod 600 " + path + "'"; !strings.Contains(err.Error(), want) {
				t.Errorf("message %q lacks %q", err, want)
			}
		})
	}
	if _, err := ReadSecret(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
