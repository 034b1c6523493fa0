package main

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/share"
)

// TestWritersRefuseWhileRunning: every command that creates or replaces a
// key or state file in a home takes the lock a running 'cosigner start'
// holds. While cosigner runs (a real softsign start in-process, or the lock
// held as start holds it for the threshold home) the command refuses, says
// to stop cosigner first and leaves every file of the home byte for byte as
// it was; once cosigner is stopped the same command works. (A state file
// replaced under a running start is not the file it keeps writing its marks
// to: they would be lost at its next start.)
func TestWritersRefuseWhileRunning(t *testing.T) {
	home := testHome(t)
	freeMetricsPort(t, home)
	keyFile, _ := cometKey(t)
	otherKey, _ := cometKey(t)
	mustCLI(t, "keys", "import", "--home", home, keyFile)
	mustCLI(t, "state", "init", "--home", home, "--height", "100")
	tmkms := filepath.Join(t.TempDir(), "c-1-consensus.json")
	if err := os.WriteFile(tmkms, []byte(`{"height":"2000","round":"0","step":1,"block_id":null}`), 0o600); err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(home, "state", "c-1.json")
	keyPath := filepath.Join(home, "keys", "c-1.json")

	shards := filepath.Join(t.TempDir(), "shards")
	mustCLI(t, "shard", "--key", keyFile, "--threshold", "2", "--shares", "3", "--out", shards,
		"--chain-id", "c-1", "--node", "tcp://127.0.0.1:1")
	thresholdHome := share.Dir(shards, 1)

	tests := []struct {
		name  string
		home  string
		setup func(t *testing.T) // once cosigner runs
		args  []string
	}{
		{"state init --force", home, nil, []string{"state", "init", "--force", "--height", "5"}},
		{"state import --force", home, nil, []string{"state", "import", "--force", tmkms}},
		{"keys import --force", home, nil, []string{"keys", "import", "--force", otherKey}},
		// An operator who removes the file instead of passing --force
		// loses the running cosigner's marks just the same.
		{"state init after the state file was removed", home, remove(statePath), []string{"state", "init", "--height", "5"}},
		{"state import after the state file was removed", home, remove(statePath), []string{"state", "import", tmkms}},
		{"keys import after the key file was removed", home, remove(keyPath), []string{"keys", "import", keyFile}},
		{"state init on a threshold home", thresholdHome, nil, []string{"state", "init", "--height", "5"}},
		// It fails at the device once cosigner is stopped (no [hsm]
		// section): what matters is that the lock comes first.
		{"hsm share import", thresholdHome, nil, []string{"hsm", "share", "import"}},
		// It times out once cosigner is stopped (no other host runs dkg).
		{"dkg --force", thresholdHome, nil, []string{"dkg", "--force", "--timeout", "300ms", "--listen", "127.0.0.1:0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stop func()
			if tt.home == home {
				stop = runStart(t, home)
			} else {
				unlock, err := lockHome(tt.home, "")
				if err != nil {
					t.Fatal(err)
				}
				stop = unlock
			}
			if tt.setup != nil {
				tt.setup(t)
			}
			before := homeFiles(t, tt.home)
			args := append(append([]string{}, tt.args...), "--home", tt.home)
			code, _, errOut := cli(t, args...)
			if code != 1 || !strings.Contains(errOut, "another cosigner is running with home "+tt.home) ||
				!strings.Contains(errOut, "hint: stop it first") {
				t.Errorf("while cosigner runs: exit %d, want 1 and a hint to stop cosigner\n%s", code, errOut)
			}
			if after := homeFiles(t, tt.home); !sameFiles(before, after) {
				t.Errorf("while cosigner runs the home changed:\nbefore %v\nafter  %v", names(before), names(after))
			}
			if tt.home == home && tt.setup == nil {
				// Commands that only read go on working.
				mustCLI(t, "state", "show", "--home", home)
				mustCLI(t, "keys", "show", "--home", home)
			}
			stop()
			if tt.args[0] == "hsm" {
				if code, _, errOut := cli(t, args...); code == 0 || !strings.Contains(errOut, "[hsm]") {
					t.Errorf("cosigner stopped: exit %d, want the missing [hsm] section\n%s", code, errOut)
				}
				return
			}
			if tt.args[0] == "dkg" {
				if code, _, errOut := cli(t, args...); code == 0 || !strings.Contains(errOut, "timed out") {
					t.Errorf("cosigner stopped: exit %d, want a timeout waiting for the other hosts\n%s", code, errOut)
				}
				return
			}
			mustCLI(t, args...)
		})
	}
}

// runStart runs 'cosigner start' on home in-process until the returned
// function is called.
func runStart(t *testing.T, home string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- start(ctx, home, io.Discard) }()
	waitAdmin(t, home, done)
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("start: %v", err)
		}
	}
}

// freeMetricsPort points the home's metrics endpoint at a free port.
func freeMetricsPort(t *testing.T, home string) {
	t.Helper()
	path := filepath.Join(home, config.FileName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), defaultMetricsListen, "127.0.0.1:0", 1))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func remove(path string) func(t *testing.T) {
	return func(t *testing.T) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

// homeFiles reads every regular file under home except the lock file (the
// admin socket is no regular file).
func homeFiles(t *testing.T, home string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || d.Name() == lockFileName {
			return err
		}
		data, err := os.ReadFile(p)
		files[p] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func sameFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for p, data := range a {
		if other, ok := b[p]; !ok || !bytes.Equal(data, other) {
			return false
		}
	}
	return true
}

func names(files map[string][]byte) []string {
	return slices.Sorted(maps.Keys(files))
}
