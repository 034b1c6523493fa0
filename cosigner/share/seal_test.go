package share

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/hsm"
	"github.com/cosigner/cosigner/internal/fsutil"
	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/test/yubihsmsim"
)

// TestSealShare seals a 2-of-3 share in the simulator, points the
// configuration at it, and reads it back as cluster.New does.
func TestSeal(t *testing.T) {
	sim := testkit.Sim(t)
	out := filepath.Join(t.TempDir(), "shards")
	_, key, _ := ed25519.GenerateKey(nil)
	if _, err := Shard(key, out, Options{Threshold: 2, Shares: 3, ChainID: "kira-1", Nodes: []string{"tcp://127.0.0.1:26659"}}); err != nil {
		t.Fatal(err)
	}
	home := Dir(out, 2)
	cfgText, err := os.ReadFile(filepath.Join(home, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	cfgText = append(cfgText, []byte("\n[hsm]\nconnector = \""+sim.Addr()+"\"\npassword_file = \"hsm_password\"\n")...)
	if err := os.WriteFile(filepath.Join(home, config.FileName), cfgText, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "hsm_password"), []byte(yubihsmsim.DefaultPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := Load(cfg.Path(cfg.Threshold.ShareFile), cfg.Path(cfg.Threshold.GroupFile))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cfg.HSMOptions()
	if err != nil {
		t.Fatal(err)
	}
	h, err := hsm.Dial(context.Background(), opts, testkit.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, id, err := Seal(context.Background(), h, cfg, 100); err != nil || id != 100 {
		t.Fatal(err)
	}
	objs, err := h.List(context.Background(), hsm.TypeOpaque)
	if err != nil || len(objs) != 1 || objs[0].Label != Label(2) {
		t.Fatalf("opaque objects %+v, %v", objs, err)
	}
	if err := config.SetShareHSMObject(home, 100); err != nil {
		t.Fatal(err)
	}
	if err := config.SetShareHSMObject(home, 100); err == nil {
		t.Fatal("sealed twice")
	}
	if err := fsutil.Remove(cfg.Path(cfg.Threshold.ShareFile)); err != nil {
		t.Fatal(err)
	}
	cfg, err = config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Threshold.ShareHSMObject != 100 {
		t.Fatalf("share_hsm_object = %d", cfg.Threshold.ShareHSMObject)
	}
	got, err := LoadFromConfig(context.Background(), cfg, testkit.Log)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), orig.Bytes()) {
		t.Fatal("the share read from the device differs from the original")
	}

	// The wrong object, and no device.
	cfg.Threshold.ShareHSMObject = 101
	if _, err := LoadFromConfig(context.Background(), cfg, testkit.Log); !errors.Is(err, hsm.ErrNotFound) {
		t.Fatalf("missing object: %v, want ErrNotFound", err)
	}
	sim.Stop()
	cfg.Threshold.ShareHSMObject = 100
	if _, err := LoadFromConfig(context.Background(), cfg, testkit.Log); !errors.Is(err, hsm.ErrUnreachable) {
		t.Fatalf("no device: %v, want ErrUnreachable", err)
	}
}
