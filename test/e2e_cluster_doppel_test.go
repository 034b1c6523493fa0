package test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cosigner/cosigner/cosigner/doppel"
	"github.com/cosigner/cosigner/cosigner/signstate"
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
	watchCluster(t, cl, obs.RPCURL(), tn.Nodes[2].RPCURL())
	cl.Start()
	wctx, cancel := context.WithTimeout(ctx, clusterWait)
	defer cancel()
	first, err := cl.WaitLeader(wctx)
	if err != nil {
		t.Fatal(err)
	}
	tn.Start(ctx)
	if _, _, err := first.Current().WaitLine(wctx, 0, func(l string) bool { return strings.Contains(l, harness.Msg(doppel.LogOpen)) }); err != nil {
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
	if !strings.Contains(by.Current().Output(), harness.Msg(doppel.LogRecent)) {
		t.Errorf("the new leader %d did not skip the start watch after a failover:\n%s", by.ID, by.Current().Tail(30))
	}
	top := obs.WaitHeight(ctx, rec.Height+4, clusterWait)
	for _, m := range cl.Members {
		for _, p := range m.Runs() {
			if strings.Contains(p.Output(), harness.Msg(doppel.LogDetected)) {
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

// watchCluster turns the doppelganger watch on in every member's
// cosigner.toml, with the given rpc addresses.
func watchCluster(t *testing.T, cl *harness.Cluster, rpc ...string) {
	t.Helper()
	for _, m := range cl.Members {
		f, err := os.OpenFile(filepath.Join(m.Home, "cosigner.toml"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		// [[chain]] is the last table of shard's output.
		if _, err := f.WriteString("\nrpc = [\"" + strings.Join(rpc, "\", \"") + "\"]\ndoppelganger_watch = 2\n"); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}

// TestClusterDoppelgangerBesideFilePV: validator 0 of a four-validator
// testnet is signed by CometBFT's FilePV; a 2-of-3 cluster started for
// the same key with the watch on signs nothing: its leader sees the
// validator's signatures in the commits and exits non-zero saying why.
func TestClusterDoppelgangerBesideFilePV(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	ctx := context.Background()
	tn := harness.NewTestnet(t, harness.TestnetConfig{Version: "v0.38.17", ChainID: "cluster-doppel-pv"})
	signer := tn.Signer()
	harness.StartReferenceSigner(t, signer.SignerAddr, signer.ChainID, signer.ValidatorKeyFile)
	tn.Start(ctx)
	obs := tn.Nodes[1]
	obs.WaitHeight(ctx, 4, clusterWait)

	cl := harness.NewCluster(t, harness.ClusterConfig{Bin: bin, Threshold: 2, Shares: 3, ChainID: tn.ChainID,
		KeyFile: signer.ValidatorKeyFile, Nodes: []string{signer.SignerAddr}})
	watchCluster(t, cl, obs.RPCURL())
	cl.Start()
	wctx, cancel := context.WithTimeout(ctx, clusterWait)
	defer cancel()
	leader, err := cl.WaitLeader(wctx)
	if err != nil {
		t.Fatal(err)
	}
	p := leader.Current()
	if err := p.Wait(wctx); err != nil && !p.Exited() {
		t.Fatalf("the leader did not exit beside a live FilePV: %v\n%s", err, p.Tail(20))
	}
	if out := p.Output(); p.ExitCode() == 0 || !strings.Contains(out, "doppelganger: another signer is live") {
		t.Fatalf("leader %d beside a live FilePV: exit %d, want non-zero with the doppelganger error:\n%s", leader.ID, p.ExitCode(), p.Tail(20))
	}
	// Not even a share: the leader's guard refuses before it asks anyone.
	for _, r := range cl.Records() {
		t.Errorf("the cluster signed (or released a share) beside a live FilePV: %s", r.Line)
	}
	t.Logf("e2e: cluster beside a live FilePV: leader %d refused and exited %d", leader.ID, p.ExitCode())
}

// TestClusterDoppelgangerWhileRunning: a 2-of-3 cluster signs validator 0
// of a four-validator testnet; then node 3 is restarted with validator 0's
// key as its own FilePV. The leader sees a commit carrying a precommit of
// validator 0 the cluster did not make, stops signing at once (no
// signature after the trip, the node's next requests refused) and keeps
// leading with the trip latched.
func TestClusterDoppelgangerWhileRunning(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	ctx := context.Background()
	tn := harness.NewTestnet(t, harness.TestnetConfig{Version: "v0.38.17", ChainID: "cluster-doppel-run"})
	signer := tn.Signer()
	cl := harness.NewCluster(t, harness.ClusterConfig{Bin: bin, Threshold: 2, Shares: 3, ChainID: tn.ChainID,
		KeyFile: signer.ValidatorKeyFile, Nodes: []string{signer.SignerAddr}})
	obs, second := tn.Nodes[1], tn.Nodes[3]
	watchCluster(t, cl, obs.RPCURL(), tn.Nodes[2].RPCURL())
	cl.Start()
	wctx, cancel := context.WithTimeout(ctx, clusterWait)
	defer cancel()
	leader, err := cl.WaitLeader(wctx)
	if err != nil {
		t.Fatal(err)
	}
	tn.Start(ctx)
	p := leader.Current()
	if _, _, err := p.WaitLine(wctx, 0, func(l string) bool { return strings.Contains(l, harness.Msg(doppel.LogOpen)) }); err != nil {
		t.Fatalf("the start watch did not pass: %v\n%s", err, p.Tail(30))
	}
	obs.WaitHeight(ctx, 8, clusterWait)

	second.Stop()
	key, err := os.ReadFile(signer.ValidatorKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(second.Home, "config", "priv_validator_key.json"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	restarted, err := obs.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second.Start(ctx)
	i, line, err := p.WaitLine(wctx, 0, func(l string) bool { return strings.Contains(l, harness.Msg(doppel.LogDetected)) })
	if err != nil {
		skipIfStalled(t, p)
		t.Fatalf("the leader did not see the second signer: %v\n%s", err, p.Tail(30))
	}
	if _, _, err := p.WaitLine(wctx, i, func(l string) bool { return strings.Contains(l, harness.Msg(signstate.LogRefusedDoppelganger)) }); err != nil {
		t.Fatalf("no sign request refused after the trip: %v\n%s", err, p.Tail(30))
	}
	for _, l := range p.Lines()[i:] {
		if r, ok := harness.ParseSignRecord(l); ok {
			t.Errorf("the leader signed after the trip: %s", r.Line)
		}
	}
	if p.Exited() {
		t.Errorf("the leader exited after a trip while running; it must keep leading with signing stopped:\n%s", p.Tail(20))
	}
	checkCluster(t, cl)
	t.Logf("e2e: cluster doppelganger while running: second signer started with the chain at %d; leader %d: %s",
		restarted, leader.ID, harness.ParseSlogText(line)["why"])
}
