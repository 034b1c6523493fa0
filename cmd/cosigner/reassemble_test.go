package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeysReassemble(t *testing.T) {
	keyFile, pv := cometKey(t)
	dir := t.TempDir()
	shards, other := filepath.Join(dir, "shards"), filepath.Join(dir, "other")
	mustCLI(t, "shard", "--key", keyFile, "--threshold", "2", "--shares", "3", "--out", shards)
	mustCLI(t, "shard", "--key", keyFile, "--threshold", "2", "--shares", "3", "--out", other)
	home := func(base string, i string) string { return filepath.Join(base, "cosigner-"+i) }

	out := filepath.Join(dir, "validator-key.json")
	code, stdout, errOut := cli(t, "keys", "reassemble", "--out", out, home(shards, "1"), home(shards, "3"))
	if code != 0 {
		t.Fatalf("reassemble: exit %d\n%s%s", code, stdout, errOut)
	}
	if !strings.Contains(errOut, "WARNING") || !strings.Contains(errOut, "re-shard") || !strings.Contains(errOut, "destroy") {
		t.Errorf("no loud warning on stderr:\n%s", errOut)
	}
	if !strings.Contains(stdout, pv.Key.Address.String()) {
		t.Errorf("output lacks the validator address:\n%s", stdout)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	var f struct {
		Type   string `json:"type"`
		Scalar string `json:"scalar"`
	}
	data, _ := os.ReadFile(out)
	if err := json.Unmarshal(data, &f); err != nil || f.Type != "cosigner/ed25519-scalar-key" {
		t.Fatalf("key file %s: %v", data, err)
	}
	if strings.Contains(stdout+errOut, f.Scalar) {
		t.Error("reassemble printed the secret scalar")
	}

	// A softsign home signing with the file shows the validator's key.
	sh := testHome(t)
	kf := filepath.Join(sh, "keys", "c-1.json")
	if err := os.WriteFile(kf, data, 0o600); err != nil {
		t.Fatal(err)
	}
	show := mustCLI(t, "keys", "show", "--home", sh, "--json")
	if !strings.Contains(show, pv.Key.Address.String()) {
		t.Errorf("keys show of the scalar key:\n%s", show)
	}

	// Re-sharding the file (3-of-5) keeps the validator key, and the new
	// shards give the same file again.
	reshard := filepath.Join(dir, "reshard")
	mustCLI(t, "shard", "--key", out, "--threshold", "3", "--shares", "5", "--out", reshard)
	if show := mustCLI(t, "keys", "show", "--home", home(reshard, "4"), "--json"); !strings.Contains(show, pv.Key.Address.String()) {
		t.Errorf("keys show of a re-sharded home:\n%s", show)
	}
	again := filepath.Join(dir, "again.json")
	mustCLI(t, "keys", "reassemble", "--out", again, home(reshard, "1"), home(reshard, "2"), home(reshard, "5"))
	if d, _ := os.ReadFile(again); string(d) != string(data) {
		t.Error("reassembling the re-sharded key gave another key file")
	}

	// A share of another sharding (same key, another polynomial) put in
	// cosigner-2's home: the tampered home is named.
	tampered := filepath.Join(dir, "tampered")
	if err := os.CopyFS(tampered, os.DirFS(home(shards, "2"))); err != nil {
		t.Fatal(err)
	}
	foreign, _ := os.ReadFile(filepath.Join(home(other, "2"), "share.json"))
	os.Chmod(filepath.Join(tampered, "share.json"), 0o600)
	if err := os.WriteFile(filepath.Join(tampered, "share.json"), foreign, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(tampered, "share.json"), 0o600)

	out2 := filepath.Join(dir, "second.json")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"existing out", []string{"--out", out, home(shards, "1"), home(shards, "2")}, "already exists"},
		{"no out", []string{home(shards, "1"), home(shards, "2")}, "--out is required"},
		{"fewer than M", []string{"--out", out2, home(shards, "1")}, "1 key shares, the group needs 2"},
		{"duplicate", []string{"--out", out2, home(shards, "1"), home(shards, "1")}, "key share 1 given twice"},
		{"different groups", []string{"--out", out2, home(shards, "1"), home(other, "2")}, "belongs to another group"},
		{"tampered", []string{"--out", out2, home(shards, "1"), tampered}, "share dir " + tampered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := cli(t, append([]string{"keys", "reassemble"}, tt.args...)...)
			if code == 0 || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stderr %s; want %q", code, errOut, tt.want)
			}
			if _, err := os.Stat(out2); !os.IsNotExist(err) {
				t.Fatal("a refused reassemble wrote a key file")
			}
		})
	}
}
