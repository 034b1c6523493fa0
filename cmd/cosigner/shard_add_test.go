package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cosigner/cosigner/cosigner/config"
)

// snapshot hashes every file under dir, to show a refused command changed
// nothing.
func snapshot(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		out[p] = sha256.Sum256(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameSnapshot(t *testing.T, what string, a, b map[string][32]byte) {
	t.Helper()
	if len(a) != len(b) {
		t.Errorf("%s: %d files before, %d after", what, len(a), len(b))
	}
	for p, h := range a {
		if b[p] != h {
			t.Errorf("%s changed %s", what, p)
		}
	}
}

// TestShardAddTo: 'shard --add-to' adds a second chain's key to a 2-of-3
// cluster's homes, keeping every file they had; keys show names each
// chain's key; and every bad input is refused before anything is written.
func TestShardAddTo(t *testing.T) {
	keyA, pvA := cometKey(t)
	keyB, pvB := cometKey(t)
	keyC, _ := cometKey(t)
	out := filepath.Join(t.TempDir(), "shards")
	mustCLI(t, "shard", "--key", keyA, "--threshold", "2", "--shares", "3", "--out", out,
		"--chain-id", "chain-a", "--node", "tcp://127.0.0.1:26659")
	before := snapshot(t, out)

	stdout := mustCLI(t, "shard", "--key", keyB, "--add-to", out, "--chain-id", "chain-b", "--node", "tcp://127.0.0.1:26669", "--bech32-prefix", "kira")
	if !strings.Contains(stdout, pvB.Key.Address.String()) || !strings.Contains(stdout, "state init") {
		t.Errorf("shard --add-to output:\n%s", stdout)
	}
	after := snapshot(t, out)
	for p, h := range before {
		if filepath.Base(p) == config.FileName {
			continue
		}
		if after[p] != h {
			t.Errorf("shard --add-to changed %s", p)
		}
	}
	for i := 1; i <= 3; i++ {
		home := filepath.Join(out, "cosigner-"+string(rune('0'+i)))
		for _, name := range []string{"share-chain-b.json", "group-chain-b.json", config.FileName} {
			st, err := os.Stat(filepath.Join(home, name))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("%s/%s: %v %v", home, name, err, st)
			}
		}
		var shown []struct {
			ChainID string `json:"chain_id"`
			Address string `json:"address"`
			Source  string `json:"source"`
		}
		if err := json.Unmarshal([]byte(mustCLI(t, "keys", "show", "--home", home, "--json")), &shown); err != nil {
			t.Fatal(err)
		}
		if len(shown) != 2 || shown[0].ChainID != "chain-a" || shown[0].Address != pvA.Key.Address.String() ||
			shown[1].ChainID != "chain-b" || shown[1].Address != pvB.Key.Address.String() || !strings.Contains(shown[1].Source, "share-chain-b.json") {
			t.Errorf("cosigner %d keys show: %+v", i, shown)
		}
		var one struct{ Address string }
		json.Unmarshal([]byte(mustCLI(t, "keys", "show", "--home", home, "--chain-id", "chain-b", "--json")), &one)
		if one.Address != pvB.Key.Address.String() {
			t.Errorf("cosigner %d keys show --chain-id chain-b: %s", i, one.Address)
		}
	}

	// A second cluster, for homes of another cluster.
	other := filepath.Join(t.TempDir(), "other")
	mustCLI(t, "shard", "--key", keyC, "--threshold", "2", "--shares", "3", "--out", other)
	mixed := filepath.Join(t.TempDir(), "mixed")
	copyTree(t, out, mixed)
	os.RemoveAll(filepath.Join(mixed, "cosigner-3"))
	copyTree(t, filepath.Join(other, "cosigner-3"), filepath.Join(mixed, "cosigner-3"))
	missing := filepath.Join(t.TempDir(), "missing")
	copyTree(t, out, missing)
	os.RemoveAll(filepath.Join(missing, "cosigner-2"))

	good := snapshot(t, out)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"chain exists", []string{"--key", keyC, "--add-to", out, "--chain-id", "chain-b", "--node", "tcp://127.0.0.1:26679"}, 1, "signs chain chain-b already"},
		{"first chain exists", []string{"--key", keyC, "--add-to", out, "--chain-id", "chain-a", "--node", "tcp://127.0.0.1:26679"}, 1, "signs chain chain-a already"},
		{"key exists", []string{"--key", keyB, "--add-to", out, "--chain-id", "chain-c", "--node", "tcp://127.0.0.1:26679"}, 1, "already hold a share of this validator key"},
		{"other shape", []string{"--key", keyC, "--add-to", out, "--chain-id", "chain-c", "--node", "tcp://127.0.0.1:26679", "--threshold", "3", "--shares", "5"}, 1, "2-of-3 cluster, asked for 3-of-5"},
		{"other cluster", []string{"--key", keyC, "--add-to", mixed, "--chain-id", "chain-c", "--node", "tcp://127.0.0.1:26679"}, 1, "another cluster CA"},
		{"missing home", []string{"--key", keyC, "--add-to", missing, "--chain-id", "chain-c", "--node", "tcp://127.0.0.1:26679"}, 1, "every home of the 3 cosigners"},
		{"no homes", []string{"--key", keyC, "--add-to", t.TempDir(), "--chain-id", "chain-c", "--node", "tcp://127.0.0.1:26679"}, 1, "cosigner-1 ... cosigner-N"},
		{"with out", []string{"--key", keyC, "--add-to", out, "--out", other, "--chain-id", "chain-c", "--node", "tcp://127.0.0.1:26679"}, 2, "--out and --peer"},
		{"no node", []string{"--key", keyC, "--add-to", out, "--chain-id", "chain-c"}, 2, "--node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m0, x0 := snapshot(t, mixed), snapshot(t, missing)
			code, _, errOut := cli(t, append([]string{"shard"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, tc.code, tc.want, errOut)
			}
			sameSnapshot(t, tc.name, good, snapshot(t, out))
			sameSnapshot(t, tc.name, m0, snapshot(t, mixed))
			sameSnapshot(t, tc.name, x0, snapshot(t, missing))
		})
	}
}

// copyTree copies the directory src to dst, keeping file modes.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm())
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStartRefusesBadChainKeys: start refuses a chain whose share does not
// match its group file, and two chains naming one validator key in two
// different pairs of files (a key listed twice by mistake), before it
// listens or signs.
func TestStartRefusesBadChainKeys(t *testing.T) {
	keyA, _ := cometKey(t)
	keyB, _ := cometKey(t)
	out := filepath.Join(t.TempDir(), "shards")
	mustCLI(t, "shard", "--key", keyA, "--threshold", "2", "--shares", "3", "--out", out,
		"--chain-id", "chain-a", "--node", "tcp://127.0.0.1:26659")
	mustCLI(t, "shard", "--key", keyB, "--add-to", out, "--chain-id", "chain-b", "--node", "tcp://127.0.0.1:26669")
	for _, tc := range []struct {
		name string
		edit func(home string)
		want string
	}{
		{"share of another group", func(home string) {
			copyFile(t, filepath.Join(home, "group.json"), filepath.Join(home, "group-chain-b.json"))
		}, "belongs to another group"},
		{"one key twice", func(home string) {
			copyFile(t, filepath.Join(home, "group.json"), filepath.Join(home, "group-chain-b.json"))
			copyFile(t, filepath.Join(home, "share.json"), filepath.Join(home, "share-chain-b.json"))
		}, "name one validator key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "home")
			copyTree(t, filepath.Join(out, "cosigner-1"), home)
			for _, chain := range []string{"chain-a", "chain-b"} {
				mustCLI(t, "state", "init", "--home", home, "--chain-id", chain, "--height", "0")
			}
			tc.edit(home)
			code, _, errOut := cli(t, "start", "--home", home)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("start: exit %d, want an error with %q:\n%s", code, tc.want, errOut)
			}
		})
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReassembleChainKey: 'keys reassemble --chain-id' rebuilds the key of
// a chain's own share files, and without it [threshold]'s key.
func TestReassembleChainKey(t *testing.T) {
	keyA, pvA := cometKey(t)
	keyB, pvB := cometKey(t)
	out := filepath.Join(t.TempDir(), "shards")
	mustCLI(t, "shard", "--key", keyA, "--threshold", "2", "--shares", "3", "--out", out,
		"--chain-id", "chain-a", "--node", "tcp://127.0.0.1:26659")
	mustCLI(t, "shard", "--key", keyB, "--add-to", out, "--chain-id", "chain-b", "--node", "tcp://127.0.0.1:26669")
	dir := t.TempDir()
	for i, tc := range []struct {
		args []string
		want string
	}{
		{nil, pvA.Key.Address.String()},
		{[]string{"--chain-id", "chain-a"}, pvA.Key.Address.String()},
		{[]string{"--chain-id", "chain-b"}, pvB.Key.Address.String()},
	} {
		file := filepath.Join(dir, fmt.Sprintf("key-%d.json", i))
		args := append([]string{"keys", "reassemble", "--out", file}, tc.args...)
		stdout := mustCLI(t, append(args, filepath.Join(out, "cosigner-1"), filepath.Join(out, "cosigner-3"))...)
		if !strings.Contains(stdout, "address: "+tc.want) {
			t.Errorf("reassemble %v: %s", tc.args, stdout)
		}
	}
	code, _, errOut := cli(t, "keys", "reassemble", "--out", filepath.Join(dir, "x.json"), "--chain-id", "chain-c", filepath.Join(out, "cosigner-1"), filepath.Join(out, "cosigner-2"))
	if code != 2 || !strings.Contains(errOut, "chain \"chain-c\" is not in") {
		t.Errorf("unknown chain: exit %d %s", code, errOut)
	}
}

// TestShardAddToGathered: --add-to needs no secret of the homes: copies of
// each host's cosigner.toml, group files and cluster CA certificate are
// enough, as an operator gathers them when the shard output is gone.
func TestShardAddToGathered(t *testing.T) {
	keyA, _ := cometKey(t)
	keyB, pvB := cometKey(t)
	out := filepath.Join(t.TempDir(), "shards")
	mustCLI(t, "shard", "--key", keyA, "--threshold", "2", "--shares", "3", "--out", out,
		"--chain-id", "chain-a", "--node", "tcp://127.0.0.1:26659")
	gathered := filepath.Join(t.TempDir(), "gathered")
	for i := 1; i <= 3; i++ {
		home := filepath.Join(out, fmt.Sprintf("cosigner-%d", i))
		dst := filepath.Join(gathered, fmt.Sprintf("cosigner-%d", i))
		if err := os.MkdirAll(filepath.Join(dst, "tls"), 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{config.FileName, "group.json", filepath.Join("tls", "cluster-ca.crt")} {
			copyFile(t, filepath.Join(home, f), filepath.Join(dst, f))
		}
	}
	stdout := mustCLI(t, "shard", "--key", keyB, "--add-to", gathered, "--chain-id", "chain-b", "--node", "tcp://127.0.0.1:26669")
	if !strings.Contains(stdout, pvB.Key.Address.String()) {
		t.Fatalf("output:\n%s", stdout)
	}
	// Back in the real homes, the new files and configuration load.
	for i := 1; i <= 3; i++ {
		src := filepath.Join(gathered, fmt.Sprintf("cosigner-%d", i))
		home := filepath.Join(out, fmt.Sprintf("cosigner-%d", i))
		for _, f := range []string{"share-chain-b.json", "group-chain-b.json", config.FileName} {
			copyFile(t, filepath.Join(src, f), filepath.Join(home, f))
		}
		if show := mustCLI(t, "keys", "show", "--home", home, "--chain-id", "chain-b"); !strings.Contains(show, pvB.Key.Address.String()) {
			t.Errorf("cosigner %d: %s", i, show)
		}
	}
}
