package share

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEpochs: shard writes epoch 1 into both files; files written before
// epochs existed (no epoch key) read as epoch 1; a share of the same
// validator key from another dealing (another epoch) is refused with a
// message naming both epochs; a share and group that disagree on the
// number are refused; epoch 0 is never written.
func TestEpochs(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	for _, out := range []string{a, b} {
		if _, err := Shard(key, out, Options{Threshold: 2, Shares: 3}); err != nil {
			t.Fatal(err)
		}
	}
	files := func(out string) (string, string) {
		return filepath.Join(Dir(out, 1), "share.json"), filepath.Join(Dir(out, 1), "group.json")
	}
	sa, ga := files(a)
	_, gb := files(b)
	g, e, err := LoadGroupEpoch(ga)
	if err != nil {
		t.Fatal(err)
	}
	if e.Number != FirstEpoch || e.Group != sha256.Sum256(g.Bytes()) {
		t.Fatalf("epoch = %v, want number 1 and the hash of the commitments", e)
	}
	for _, p := range []string{sa, ga} {
		if data, _ := os.ReadFile(p); !strings.Contains(string(data), `"epoch": 1`) {
			t.Fatalf("%s has no epoch 1:\n%s", p, data)
		}
	}
	_, eb, _ := LoadGroupEpoch(gb)
	if eb.Group == e.Group {
		t.Fatal("two dealings of one key have the same group hash")
	}

	write := func(t *testing.T, share, group string) (string, string) {
		d := t.TempDir()
		sp, gp := filepath.Join(d, "share.json"), filepath.Join(d, "group.json")
		if err := os.WriteFile(sp, []byte(share), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(gp, []byte(group), 0o600); err != nil {
			t.Fatal(err)
		}
		return sp, gp
	}
	read := func(p string) string { d, _ := os.ReadFile(p); return string(d) }
	drop := func(s string) string { return strings.Replace(s, `"epoch": 1,`, "", 1) }
	setEpoch := func(s string, n string) string { return strings.Replace(s, `"epoch": 1,`, `"epoch": `+n+`,`, 1) }

	t.Run("files without an epoch are epoch 1", func(t *testing.T) {
		sp, gp := write(t, drop(read(sa)), drop(read(ga)))
		if _, err := Load(sp, gp); err != nil {
			t.Fatal(err)
		}
		if _, e, err := LoadGroupEpoch(gp); err != nil || e.Number != 1 {
			t.Fatalf("epoch %v, %v; want 1", e, err)
		}
	})
	t.Run("share of another epoch", func(t *testing.T) {
		_, err := Load(sa, gb)
		if err == nil || !strings.Contains(err.Error(), "shares of another epoch") ||
			!strings.Contains(err.Error(), e.Short()) || !strings.Contains(err.Error(), eb.Short()) {
			t.Fatalf("err = %v, want a refusal naming both groups", err)
		}
	})
	t.Run("share and group disagree on the number", func(t *testing.T) {
		sp, gp := write(t, setEpoch(read(sa), "2"), read(ga))
		if _, err := Load(sp, gp); err == nil || !strings.Contains(err.Error(), "says epoch 2, the group file") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a later epoch loads", func(t *testing.T) {
		sp, gp := write(t, setEpoch(read(sa), "7"), setEpoch(read(ga), "7"))
		if _, err := Load(sp, gp); err != nil {
			t.Fatal(err)
		}
		if _, e, _ := LoadGroupEpoch(gp); e.Number != 7 {
			t.Fatalf("epoch %d, want 7", e.Number)
		}
	})
	t.Run("epoch 0 is not written", func(t *testing.T) {
		if _, err := MarshalGroup(g, 0); err == nil {
			t.Fatal("MarshalGroup wrote epoch 0")
		}
	})
}

// TestRetire: a retired home is refused with a message naming both epochs
// and where the new share is; a retirement file is never overwritten; an
// unreadable or foreign one still retires the home.
func TestRetire(t *testing.T) {
	home := t.TempDir()
	if err := CheckRetired(home); err != nil {
		t.Fatalf("a fresh home: %v", err)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	out := filepath.Join(t.TempDir(), "s")
	g, err := Shard(key, out, Options{Threshold: 2, Shares: 3})
	if err != nil {
		t.Fatal(err)
	}
	old, next := EpochOf(g, 1), EpochOf(g, 2)
	next.Group[0] ^= 1
	at := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	if err := Retire(home, old, next, "/var/lib/cosigner-new", at); err != nil {
		t.Fatal(err)
	}
	err = CheckRetired(home)
	if !errors.Is(err, ErrRetired) || !strings.Contains(err.Error(), "(epoch 1, group "+old.Short()) ||
		!strings.Contains(err.Error(), "epoch 2 (group "+next.Short()) || !strings.Contains(err.Error(), "/var/lib/cosigner-new") {
		t.Fatalf("err = %v", err)
	}
	if err := Retire(home, old, next, "", at); err == nil {
		t.Fatal("a retirement file was overwritten")
	}
	foreign := t.TempDir()
	os.WriteFile(filepath.Join(foreign, RetiredFile), []byte("{}"), 0o600)
	if err := CheckRetired(foreign); !errors.Is(err, ErrRetired) {
		t.Fatalf("a foreign retirement file: %v", err)
	}
}
