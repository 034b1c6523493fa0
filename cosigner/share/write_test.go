package share

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cosigner/cosigner/cosigner/clustertls"
	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/threshold"
)

func TestPrepareWritesHomesWithoutKey(t *testing.T) {
	out := filepath.Join(t.TempDir(), "homes")
	opts := Options{Threshold: 2, Shares: 3, ChainID: "kira-1", Nodes: []string{"tcp://127.0.0.1:26659"}}
	if err := Prepare(out, opts); err != nil {
		t.Fatal(err)
	}
	for id := 1; id <= 3; id++ {
		dir := Dir(out, id)
		cfg, err := config.LoadForKeys(dir)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Threshold.ID != id || cfg.Threshold.Threshold != 2 || cfg.Threshold.Shares != 3 || len(cfg.Threshold.Peers) != 3 {
			t.Fatalf("cosigner %d: threshold config %+v", id, cfg.Threshold)
		}
		ident, err := clustertls.Load(cfg.Path(cfg.Threshold.TLSDir))
		if err != nil || ident.ID() != id {
			t.Fatalf("cosigner %d: TLS identity %v, %v", id, ident, err)
		}
		if err := CheckNoKey(cfg.Path(cfg.Threshold.ShareFile), cfg.Path(cfg.Threshold.GroupFile)); err != nil {
			t.Fatalf("cosigner %d: %v", id, err)
		}
		if _, err := os.Stat(cfg.Path(cfg.IdentityKey)); err != nil {
			t.Fatalf("cosigner %d: no SecretConnection identity: %v", id, err)
		}
	}
	if err := Prepare(out, opts); !errors.Is(err, ErrOutExists) {
		t.Fatalf("Prepare over an existing directory: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := Prepare(bad, Options{Threshold: 2, Shares: 4}); err == nil || !strings.Contains(err.Error(), "more than half") {
		t.Fatalf("2-of-4: %v", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatal("a refused Prepare left a directory")
	}
}

func dealt(t *testing.T) []*threshold.KeyShare {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	d, err := threshold.Deal(key.Seed(), 2, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d.Shares
}

func TestWriteKey(t *testing.T) {
	dir := t.TempDir()
	sharePath, groupPath := filepath.Join(dir, "share.json"), filepath.Join(dir, "group.json")
	a, b := dealt(t), dealt(t)
	if err := WriteKey(sharePath, groupPath, a[0], FirstEpoch, false); err != nil {
		t.Fatal(err)
	}
	ks, err := Load(sharePath, groupPath)
	if err != nil || ks.ID() != 1 || !ks.Group().Equal(a[0].Group()) {
		t.Fatalf("load what WriteKey wrote: %v", err)
	}
	for _, p := range []string{sharePath, groupPath} {
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", p, fi.Mode().Perm())
		}
	}
	before, _ := os.ReadFile(sharePath)
	if err := WriteKey(sharePath, groupPath, b[0], FirstEpoch, false); !errors.Is(err, ErrShareInPlace) {
		t.Fatalf("second WriteKey without replace: %v", err)
	}
	if after, _ := os.ReadFile(sharePath); !bytes.Equal(before, after) {
		t.Fatal("a refused WriteKey changed the share")
	}
	// A group file alone (a crash between the two files) also refuses.
	os.Remove(sharePath)
	if err := WriteKey(sharePath, groupPath, b[0], FirstEpoch, false); !errors.Is(err, ErrShareInPlace) {
		t.Fatalf("WriteKey over a lone group file: %v", err)
	}
	if err := WriteKey(sharePath, groupPath, b[1], FirstEpoch, true); err != nil {
		t.Fatal(err)
	}
	ks, err = Load(sharePath, groupPath)
	if err != nil || ks.ID() != 2 || !ks.Group().Equal(b[1].Group()) {
		t.Fatalf("load after replace: %v", err)
	}
	// No temporary file is left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("directory holds %d entries, want the two files", len(ents))
	}
	// A share that cannot be written leaves no group file either.
	if err := WriteKey(filepath.Join(dir, "missing", "share.json"), filepath.Join(dir, "g2.json"), a[1], FirstEpoch, false); err == nil {
		t.Fatal("WriteKey into a missing directory succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "g2.json")); !os.IsNotExist(err) {
		t.Fatal("a failed WriteKey left its group file")
	}
}
