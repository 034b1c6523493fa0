package test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cosigner/cosigner/test/harness"
)

// TestClusterDoppelgangerFailover: a 2-of-3 cluster signing validator 0 of
// a four-validator testnet with the doppelganger watch on. Its first
// leader waits the start watch, then signs; a SIGKILL of the leader hands
// over to another cosigner, which skips the start watch (the cluster signed
// just now) and signs without tripping on the cluster's own signatures.
// No evidence in any block, no conflicting signature in the cluster's
// records.
func TestClusterDoppelgangerFailover(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	ctx := context.Background()
	tn := harness.NewTestnet(t, harness.TestnetConfig{Version: "v0.38.17", ChainID: "cluster-doppel"})
	signer := tn.Signer()
	cl := harness.NewCluster(t, harness.ClusterConfig{Bin: bin, Threshold: 2, Shares: 3, ChainID: tn.ChainID,
		KeyFile: signer.ValidatorKeyFile, Nodes: []string{signer.SignerAddr}})
	obs := tn.Nodes[1]
	for _, m := range cl.Members {
		f, err := os.OpenFile(filepath.Join(m.Home, "cosigner.toml"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		// [[chain]] is the last table of shard's output.
		if _, err := f.WriteString("\nrpc = [\"" + obs.RPCURL() + "\", \"" + tn.Nodes[2].RPCURL() + "\"]\ndoppelganger_watch = 2\n"); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	cl.Start()
	wctx, cancel := context.WithTimeout(ctx, clusterWait)
	defer cancel()
	first, err := cl.WaitLeader(wctx)
	if err != nil {
		t.Fatal(err)
	}
	tn.Start(ctx)
	if _, _, err := first.Current().WaitLine(wctx, 0, func(l string) bool { return strings.Contains(l, "doppelganger watch passed") }); err != nil {
		t.Fatalf("the first leader's start watch did not pass: %v\n%s", err, first.Current().Tail(30))
	}
	if _, _, _, err := cl.WaitSigned(wctx, cl.Mark()); err != nil {
		t.Fatal(err)
	}
	h, err := obs.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	obs.WaitHeight(ctx, h+3, clusterWait)

	mk := cl.Mark()
	first.Kill()
	by, rec, _, err := cl.WaitSigned(wctx, mk, first)
	if err != nil {
		t.Fatalf("no signature after the leader was killed: %v", err)
	}
	if !strings.Contains(by.Current().Output(), "doppelganger start watch skipped") {
		t.Errorf("the new leader %d did not skip the start watch after a failover:\n%s", by.ID, by.Current().Tail(30))
	}
	top := obs.WaitHeight(ctx, rec.Height+4, clusterWait)
	for _, m := range cl.Members {
		for _, p := range m.Runs() {
			if strings.Contains(p.Output(), "doppelganger detected") {
				t.Errorf("cosigner %d tripped on the cluster's own signatures:\n%s", m.ID, p.Tail(30))
			}
		}
	}
	present, absent, err := obs.ScanChain(ctx, signer.PubKey, 1, top-1)
	if err != nil {
		t.Fatal(err) // also fails on evidence in any block
	}
	checkCluster(t, cl)
	t.Logf("e2e: cluster doppelganger failover: leader %d killed, %d signed %s %d/%d without a start watch; chain at %d, our precommit in %d commits, missing at %v",
		first.ID, by.ID, rec.Step, rec.Height, rec.Round, top, present, absent)
}
