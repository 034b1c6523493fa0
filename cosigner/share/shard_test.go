package share

import (
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

func TestShardWritesVerifiableHomes(t *testing.T) {
	out := filepath.Join(t.TempDir(), "shards")
	_, key, _ := ed25519.GenerateKey(nil)
	group, err := Shard(key, out, Options{Threshold: 2, Shares: 3, ChainID: "kira-1", Nodes: []string{"tcp://127.0.0.1:26659"}, Bech32Prefix: "kira"})
	if err != nil {
		t.Fatal(err)
	}
	if !group.PublicKey().Equal(key.Public()) {
		t.Fatal("group key is not the validator key")
	}
	var shares []*threshold.KeyShare
	for id := 1; id <= 3; id++ {
		dir := Dir(out, id)
		for name, mode := range map[string]os.FileMode{
			"share.json": 0o600, "group.json": 0o600, "identity_key.json": 0o600, "cosigner.toml": 0o600,
			"tls/cluster.key": 0o600, "state": 0o700,
		} {
			st, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != mode {
				t.Errorf("%s/%s mode %v, want %v", dir, name, st.Mode().Perm(), mode)
			}
		}
		cfg, err := config.Load(dir)
		if err != nil {
			t.Fatalf("cosigner %d config: %v", id, err)
		}
		if cfg.Mode != config.ModeThreshold || cfg.Threshold.ID != id || cfg.Threshold.Threshold != 2 || len(cfg.Threshold.Peers) != 3 {
			t.Fatalf("cosigner %d config: %+v", id, cfg.Threshold)
		}
		share, err := Load(cfg.Path(cfg.Threshold.ShareFile), cfg.Path(cfg.Threshold.GroupFile))
		if err != nil {
			t.Fatalf("cosigner %d share: %v", id, err)
		}
		if int(share.ID()) != id {
			t.Fatalf("share id %d in cosigner-%d", share.ID(), id)
		}
		tlsID, err := clustertls.Load(filepath.Join(dir, "tls"))
		if err != nil || tlsID.ID() != id {
			t.Fatalf("cosigner %d TLS: id %v err %v", id, tlsID, err)
		}
		shares = append(shares, share)
	}

	// Any two shares sign for the validator key.
	msg := []byte("a precommit")
	var nonces []*threshold.Nonce
	var commits []threshold.Commitment
	for _, s := range shares[1:] {
		n, err := threshold.NewNonce(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		nonces = append(nonces, n)
		commits = append(commits, n.Commitment())
	}
	pkg, err := threshold.NewSigningPackage(group, msg, commits)
	if err != nil {
		t.Fatal(err)
	}
	var zs []threshold.SignatureShare
	for i, s := range shares[1:] {
		z, err := threshold.SignShare(s, nonces[i], pkg)
		if err != nil {
			t.Fatal(err)
		}
		zs = append(zs, z)
	}
	sig, err := threshold.Aggregate(pkg, zs)
	if err != nil || !ed25519.Verify(key.Public().(ed25519.PublicKey), msg, sig) {
		t.Fatalf("aggregate does not verify: %v", err)
	}

	// The output is never overwritten.
	if _, err := Shard(key, out, Options{Threshold: 2, Shares: 3}); !errors.Is(err, ErrOutExists) {
		t.Fatalf("second shard into the same dir: %v", err)
	}
}

func TestShardRefusals(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"half", Options{Threshold: 2, Shares: 4}, "more than half"},
		{"one", Options{Threshold: 1, Shares: 1}, ""},
		{"too many", Options{Threshold: 200, Shares: 256}, "255"},
		{"peer count", Options{Threshold: 2, Shares: 3, Peers: []string{"a:1"}}, "--peer"},
		{"bad peer", Options{Threshold: 2, Shares: 3, Peers: []string{"a:1", "b", "c:3"}}, "host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "o")
			_, err := Shard(key, out, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Fatal("a refused shard left an output directory")
			}
		})
	}
}

func TestLoadShareRejectsTampering(t *testing.T) {
	out := filepath.Join(t.TempDir(), "s")
	_, key, _ := ed25519.GenerateKey(nil)
	if _, err := Shard(key, out, Options{Threshold: 2, Shares: 3}); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "o")
	_, key2, _ := ed25519.GenerateKey(nil)
	if _, err := Shard(key2, other, Options{Threshold: 2, Shares: 3}); err != nil {
		t.Fatal(err)
	}
	d1, d2 := Dir(out, 1), Dir(other, 1)
	// A share from another dealing does not load against this group.
	if _, err := Load(filepath.Join(d2, "share.json"), filepath.Join(d1, "group.json")); err == nil || !strings.Contains(err.Error(), "another group") {
		t.Fatalf("foreign share: %v", err)
	}
	// A world-readable share is refused.
	os.Chmod(filepath.Join(d1, "share.json"), 0o644)
	if _, err := Load(filepath.Join(d1, "share.json"), filepath.Join(d1, "group.json")); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("readable share: %v", err)
	}
}
