package test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/test/harness"
)

// TestDoppelgangerTestnet: on a four-validator testnet whose validator 0
// is signed by CometBFT's own FilePV (the reference signer), a softsign
// cosigner started for the same key with the doppelganger watch on refuses
// to sign and exits non-zero saying why. With the FilePV stopped and its
// state imported, cosigner watches a few heights, then signs; no block
// holds evidence and cosigner signed nothing twice.
func TestDoppelgangerTestnet(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	ctx := context.Background()
	tn := harness.NewTestnet(t, harness.TestnetConfig{Version: "v0.38.17", ChainID: "doppel-1"})
	signer := tn.Signer()
	ref := harness.StartReferenceSigner(t, signer.SignerAddr, signer.ChainID, signer.ValidatorKeyFile)
	tn.Start(ctx)
	observer := tn.Nodes[1]
	observer.WaitHeight(ctx, 4, 2*time.Minute)

	cs := harness.SetupSoftsign(t, bin, signer)
	cfgPath := filepath.Join(cs.Home, "cosigner.toml")
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// [[chain]] is the file's last table: these keys land in it.
	if _, err := f.WriteString("rpc = [\"" + observer.RPCURL() + "\", \"" + tn.Nodes[2].RPCURL() + "\"]\ndoppelganger_watch = 3\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// The FilePV signs: cosigner must refuse and exit.
	p := cs.Start()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.Wait(wctx); err != nil && !p.Exited() {
		t.Fatalf("cosigner did not exit while the FilePV signs: %v\n%s", err, p.Tail(20))
	}
	out := p.Output()
	if p.ExitCode() == 0 || !strings.Contains(out, "doppelganger: another signer is live") || !strings.Contains(out, "cosigner: hint: look on every host") {
		t.Fatalf("cosigner start beside a live FilePV: exit %d, want non-zero with the doppelganger error and hint:\n%s", p.ExitCode(), p.Tail(20))
	}
	if recs := cs.Records(); len(recs) != 0 {
		t.Fatalf("cosigner signed beside a live FilePV: %v", recs)
	}

	// The FilePV stopped, its state imported: cosigner watches, then signs.
	ref.Stop()
	cs.MustRun("state", "import", "--home", cs.Home, "--chain-id", signer.ChainID, "--force", ref.StatePath)
	startHeight, err := observer.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	p = cs.Start()
	lctx, lcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer lcancel()
	_, line, err := p.WaitLine(lctx, 0, func(l string) bool { _, ok := harness.ParseSignRecord(l); return ok })
	if err != nil {
		t.Fatalf("cosigner did not sign after the FilePV stopped: %v\n%s", err, p.Tail(30))
	}
	first, _ := harness.ParseSignRecord(line)
	waited := time.Since(started)
	if !strings.Contains(p.Output(), "doppelganger watch passed") {
		t.Errorf("cosigner signed without logging that the watch passed:\n%s", p.Tail(30))
	}
	top := observer.WaitHeight(ctx, first.Height+5, 2*time.Minute)
	present, absent, err := observer.ScanChain(ctx, signer.PubKey, 1, top-1)
	if err != nil {
		t.Fatal(err) // also fails on evidence in any block
	}
	if err := harness.CheckNoDoubleSign(cs.Records()); err != nil {
		t.Error(err)
	}
	// Its own precommits in the commits did not trip the running watch.
	if p.Exited() || strings.Contains(p.Output(), "doppelganger detected") || present < 3 {
		t.Errorf("cosigner tripped on its own signatures (exited %v, %d of ours in commits):\n%s", p.Exited(), present, p.Tail(20))
	}
	t.Logf("e2e: doppelganger: chain at %d when cosigner started, first signature at height %d after %s (%d heights missed); chain at %d, our precommit in %d commits, missing at %v",
		startHeight, first.Height, waited.Round(10*time.Millisecond), first.Height-startHeight-1, top, present, absent)
}
