package harness

import (
	"context"
	"testing"
	"time"
)

// TestReferenceSignerChain checks the harness itself, independently of
// cosigner: a chain whose only signer is CometBFT's own remote signer with
// the moved validator key produces commits that verify against that key.
func TestReferenceSignerChain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	for _, tc := range []struct {
		version string
		unix    bool
	}{
		{"v0.38.17", false},
		{"v0.34.33", true},
	} {
		name := tc.version + "/tcp"
		if tc.unix {
			name = tc.version + "/unix"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			node := NewNode(t, NodeConfig{Version: tc.version, ChainID: "harness-1", Unix: tc.unix})
			pub := StartReferenceSigner(t, node.SignerAddr, node.ChainID, node.ValidatorKeyFile).PubKey
			if !pub.Equal(node.PubKey) {
				t.Fatalf("reference signer key %x, want genesis key %x", pub, node.PubKey)
			}
			node.Start(ctx)
			h := node.WaitHeight(ctx, 8, 60*time.Second)
			n, err := node.VerifyChain(ctx, node.PubKey, 1, h-1)
			if err != nil {
				t.Fatal(err)
			}
			if n < 7 {
				t.Fatalf("verified %d commits, want >= 7", n)
			}
		})
	}
}

// TestReferenceSignerTestnet checks the testnet helper: four validators on
// 127.0.0.2-5, validator 0 signing through CometBFT's own remote signer.
func TestReferenceSignerTestnet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs CometBFT nodes")
	}
	t.Parallel()
	ctx := context.Background()
	tn := NewTestnet(t, TestnetConfig{Version: "v0.38.17", ChainID: "testnet-1"})
	signer := tn.Signer()
	StartReferenceSigner(t, signer.SignerAddr, tn.ChainID, signer.ValidatorKeyFile)
	tn.Start(ctx)
	var top int64
	for _, n := range tn.Nodes {
		top = n.WaitHeight(ctx, 8, 90*time.Second)
	}
	present, absent, err := tn.Nodes[1].ScanChain(ctx, signer.PubKey, 1, top-1)
	if err != nil {
		t.Fatal(err)
	}
	if present < int(top-1)/2 {
		t.Fatalf("our precommit is in %d of %d commits (missing at %v)", present, top-1, absent)
	}
}
