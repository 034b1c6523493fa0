package test

import (
	"context"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/test/harness"
)

// TestReassembledKeySigns shards a chain's validator key 2-of-3 with
// `cosigner shard`, rebuilds it from two of the three homes with `cosigner
// keys reassemble` (a scalar key file, no seed), and runs the chain with a
// softsign cosigner signing with that file: every commit carries our
// verified signature, and there is no evidence.
func TestReassembledKeySigns(t *testing.T) {
	bin := requireCosigner(t)
	ctx := context.Background()
	node := harness.NewNode(t, harness.NodeConfig{Version: harness.Versions[len(harness.Versions)-1], ChainID: "reassemble-1"})
	cs := harness.NewCosigner(t, bin, node.ChainID, node.SignerAddr)

	shards := filepath.Join(t.TempDir(), "shards")
	cs.MustRun("shard", "--key", node.ValidatorKeyFile, "--threshold", "2", "--shares", "3", "--out", shards)
	keyFile := filepath.Join(cs.Home, "keys", node.ChainID+".json")
	r := cs.Run("keys", "reassemble", "--out", keyFile,
		filepath.Join(shards, "cosigner-1"), filepath.Join(shards, "cosigner-3"))
	if r.Code != 0 {
		t.Fatal(r.String())
	}
	if !strings.Contains(r.Stderr, "WARNING") {
		t.Errorf("reassemble gave no warning:\n%s", r.Stderr)
	}
	show := cs.MustRun("keys", "show", "--home", cs.Home, "--chain-id", node.ChainID, "--json")
	if !strings.Contains(show, base64.StdEncoding.EncodeToString(node.PubKey)) {
		t.Fatalf("keys show does not report the validator key %x:\n%s", []byte(node.PubKey), show)
	}
	cs.MustRun("state", "init", "--home", cs.Home, "--chain-id", node.ChainID)

	cs.Start()
	node.Start(ctx)
	top := node.WaitHeight(ctx, minBlocks+2, 3*time.Minute)
	n, err := node.VerifyChain(ctx, node.PubKey, 1, top-1)
	if err != nil {
		t.Fatal(err)
	}
	recs := cs.Records()
	if err := harness.CheckNoDoubleSign(recs); err != nil {
		t.Error(err)
	}
	checkSignedEveryHeight(t, recs, 1, top-1)
	t.Logf("e2e: reassembled scalar key: %d commits verified with our signature (heights 1..%d)", n, top-1)
}
