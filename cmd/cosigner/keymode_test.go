package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/share"
)

// TestStartRefusesOpenKeyFiles: start refuses every key file it signs or
// authenticates with (softsign chain key, SecretConnection identity, key
// share, cluster TLS key) when group or others may access it, as a
// configuration error whose message names the chmod and whose hint says
// what else to check. keys show refuses the same files.
func TestStartRefusesOpenKeyFiles(t *testing.T) {
	softHome := testHome(t)
	freeMetricsPort(t, softHome)
	keyFile, _ := cometKey(t)
	mustCLI(t, "keys", "import", "--home", softHome, keyFile)
	mustCLI(t, "state", "init", "--home", softHome, "--height", "1")

	shards := filepath.Join(t.TempDir(), "shards")
	mustCLI(t, "shard", "--key", keyFile, "--threshold", "2", "--shares", "3", "--out", shards,
		"--chain-id", "c-1", "--node", "tcp://127.0.0.1:1")
	thresholdHome := share.Dir(shards, 1)
	mustCLI(t, "state", "init", "--home", thresholdHome, "--height", "1")

	tests := []struct {
		name     string
		home     string
		file     string
		mode     os.FileMode
		keysShow bool // keys show reads the file too
	}{
		{"chain key", softHome, "keys/c-1.json", 0o644, true},
		{"chain key, group-readable", softHome, "keys/c-1.json", 0o640, true},
		{"identity key", softHome, "identity_key.json", 0o644, false},
		{"key share", thresholdHome, "share.json", 0o604, true},
		{"cluster TLS key", thresholdHome, "tls/cluster.key", 0o640, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(tt.home, tt.file)
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			defer os.Chmod(path, 0o600)
			cmds := [][]string{{"start", "--home", tt.home}}
			if tt.keysShow {
				cmds = append(cmds, []string{"keys", "show", "--home", tt.home})
			}
			for _, args := range cmds {
				// A deadline, so that a start that wrongly accepts the
				// file stops instead of running on.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				var out, errOut bytes.Buffer
				code := runContext(ctx, args, &out, &errOut)
				cancel()
				if code != 2 || !strings.Contains(errOut.String(), "run 'chmod 600 "+path+"'") ||
					!strings.Contains(errOut.String(), "hint: cosigner uses secret files only when no other user can read them") {
					t.Errorf("%s with %s at %v: exit %d, want 2 naming the chmod\n%s", args[0], tt.file, tt.mode, code, errOut.String())
				}
			}
		})
	}
	// With the modes restored, the same homes start.
	stop := runStart(t, softHome)
	stop()
}

// TestImportWarnsOpenKeyFile: the key file brought to keys import or shard
// may be open to other users (a copy off a node): the import goes on with a
// warning, and what cosigner writes is 0600.
func TestImportWarnsOpenKeyFile(t *testing.T) {
	keyFile, pv := cometKey(t)
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	warning := "cosigner: warning: key file " + keyFile + " has mode 0644"
	home := testHome(t)
	code, out, errOut := cli(t, "keys", "import", "--home", home, keyFile)
	if code != 0 || !strings.Contains(out, pv.Key.Address.String()) || !strings.Contains(errOut, warning) ||
		!strings.Contains(errOut, "chmod 600 "+keyFile) {
		t.Errorf("keys import of a 0644 key: exit %d\n%s%s", code, out, errOut)
	}
	if st, err := os.Stat(filepath.Join(home, "keys", "c-1.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("imported key: %v %v", st.Mode(), err)
	}
	shards := filepath.Join(t.TempDir(), "shards")
	code, _, errOut = cli(t, "shard", "--key", keyFile, "--threshold", "2", "--shares", "3", "--out", shards)
	if code != 0 || !strings.Contains(errOut, warning) {
		t.Errorf("shard of a 0644 key: exit %d\n%s", code, errOut)
	}
	// A 0600 source gives no warning.
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = cli(t, "keys", "import", "--home", testHome(t), keyFile)
	if code != 0 || strings.Contains(errOut, "warning") {
		t.Errorf("keys import of a 0600 key: exit %d\n%s", code, errOut)
	}
}
