package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReshareCLIRefusals: bad flags of 'reshare' and 'reshare prepare'
// are usage errors (exit 2) that say what is wrong, and write nothing;
// prepare writes the homes and refuses an existing --out; a running
// cosigner's home (locked) is refused.
func TestReshareCLIRefusals(t *testing.T) {
	dir := t.TempDir()
	keyFile, _ := cometKey(t)
	old := filepath.Join(dir, "old")
	mustCLI(t, "shard", "--key", keyFile, "--threshold", "2", "--shares", "3", "--out", old, "--chain-id", "kira-1", "--node", "tcp://127.0.0.1:26659")
	group := filepath.Join(old, "cosigner-1", "group.json")
	out := filepath.Join(dir, "new")
	base := []string{"reshare", "prepare", "--old-group", group, "--threshold", "2", "--shares", "3", "--out", out}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing flags", []string{"reshare", "prepare", "--out", out}, "--old-group, --threshold, --shares"},
		{"threshold not above half", append(append([]string{}, base[:4]...), "--threshold", "2", "--shares", "4", "--out", out), "more than half"},
		{"bad keep", append(append([]string{}, base...), "--keep", "1:1"), `want OLD=NEW`},
		{"bad retire", append(append([]string{}, base...), "--keep", "1=1", "--retire", "2"), `want OLD@host:port`},
		{"kept twice", append(append([]string{}, base...), "--keep", "1=1", "--keep", "1=2"), "kept twice"},
		{"too few dealers", append(append([]string{}, base...), "--keep", "1=1"), "at least 2"},
		{"reshare without --home", []string{"reshare", "--old-home", filepath.Join(old, "cosigner-1")}, "give --home"},
		{"the same home twice", []string{"reshare", "--home", filepath.Join(old, "cosigner-1"), "--old-home", filepath.Join(old, "cosigner-1")}, "both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := cli(t, tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 2 and %q", code, errOut, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatal("a refused prepare wrote its output")
			}
		})
	}
	stdout := mustCLI(t, append(append([]string{}, base...), "--keep", "1=1", "--keep", "2=2")...)
	if !strings.Contains(stdout, "newcomer, cosigner 3") || !strings.Contains(stdout, "continues as cosigner 2") {
		t.Fatalf("prepare's report:\n%s", stdout)
	}
	for _, f := range []string{"reshare.toml", "old-group.json", "cosigner.toml", "tls/cluster.key"} {
		if _, err := os.Stat(filepath.Join(out, "cosigner-3", f)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "cosigner-3", "share.json")); err == nil {
		t.Fatal("prepare wrote a share")
	}
	if code, _, errOut := cli(t, append(append([]string{}, base...), "--keep", "1=1", "--keep", "2=2")...); code == 0 || !strings.Contains(errOut, "never overwrites") {
		t.Fatalf("prepare over an existing --out: exit %d\n%s", code, errOut)
	}
	unlock, err := lockHome(filepath.Join(old, "cosigner-1"), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	code, _, errOut := cli(t, "reshare", "--home", filepath.Join(out, "cosigner-1"), "--old-home", filepath.Join(old, "cosigner-1"), "--timeout", "1s")
	if code == 0 || !strings.Contains(errOut, "stop the old cosigner first") {
		t.Fatalf("reshare from a locked old home: exit %d\n%s", code, errOut)
	}
}
