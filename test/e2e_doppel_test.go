package test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/doppel"
	"github.com/cosigner/cosigner/cosigner/signstate"
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
	if _, err := f.WriteString("rpc = [\"" + observer.RPCURL() + "\", \"" + tn.Nodes[2].RPCURL() + "\"]\ndoppelganger_watch = 10\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// The FilePV signs: cosigner must refuse and exit. The watch sees only
	// the precommits that made it into commits, and a commit of four
	// validators needs only three: on a loaded machine the FilePV's node
	// can miss three commits in a row (seen once), so this phase watches
	// ten heights, the next three.
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
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte("doppelganger_watch = 10\n"), []byte("doppelganger_watch = 3\n"), 1)
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
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
	if !strings.Contains(p.Output(), harness.Msg(doppel.LogOpen)) {
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
	if p.Exited() || strings.Contains(p.Output(), harness.Msg(doppel.LogDetected)) || present < 3 {
		t.Errorf("cosigner tripped on its own signatures (exited %v, %d of ours in commits):\n%s", p.Exited(), present, p.Tail(20))
	}
	t.Logf("e2e: doppelganger: chain at %d when cosigner started, first signature at height %d after %s (%d heights missed); chain at %d, our precommit in %d commits, missing at %v",
		startHeight, first.Height, waited.Round(10*time.Millisecond), first.Height-startHeight-1, top, present, absent)
}

// TestDoppelgangerWhileRunning: cosigner signs validator 0 of a
// four-validator testnet; then node 3 is restarted with validator 0's key
// as its own FilePV, a second live signer. Cosigner sees a commit carrying
// a precommit of validator 0 it did not make (in practice one for the
// same block with another timestamp), stops signing at once (no signature
// after the trip, the node's next requests refused), says why, keeps
// running with the trip latched and never signed anything twice itself.
func TestDoppelgangerWhileRunning(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	ctx := context.Background()
	tn := harness.NewTestnet(t, harness.TestnetConfig{Version: "v0.38.17", ChainID: "doppel-2"})
	signer := tn.Signer()
	cs := harness.SetupSoftsign(t, bin, signer)
	observer, second := tn.Nodes[1], tn.Nodes[3]
	appendChainKeys(t, cs, `rpc = ["`+observer.RPCURL()+`", "`+tn.Nodes[2].RPCURL()+`"]`+"\ndoppelganger_watch = 2\n")
	p := cs.Start()
	tn.Start(ctx)
	lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, _, err := p.WaitLine(lctx, 0, func(l string) bool { return strings.Contains(l, harness.Msg(doppel.LogOpen)) }); err != nil {
		t.Fatalf("the start watch did not pass: %v\n%s", err, p.Tail(30))
	}
	observer.WaitHeight(ctx, 8, 2*time.Minute)

	// Node 3 becomes a second signer of validator 0.
	second.Stop()
	key, err := os.ReadFile(signer.ValidatorKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(second.Home, "config", "priv_validator_key.json"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	restarted, err := observer.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second.Start(ctx)
	i, line, err := p.WaitLine(lctx, 0, func(l string) bool { return strings.Contains(l, harness.Msg(doppel.LogDetected)) })
	if err != nil {
		skipIfStalled(t, p)
		t.Fatalf("cosigner did not see the second signer: %v\n%s", err, p.Tail(30))
	}
	det, err := strconv.ParseInt(harness.ParseSlogText(line)["height"], 10, 64)
	if err != nil {
		t.Fatalf("detection line without a height: %s", line)
	}
	// The node goes on asking; every request after the trip is refused.
	// (The chain itself may stall for a while: validator 3 is gone and
	// node 3 is still catching up as validator 0.)
	// A fresh deadline: on a loaded machine the watch's phases can use
	// most of the first one.
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer rcancel()
	_, _, refusedErr := p.WaitLine(rctx, i, func(l string) bool { return strings.Contains(l, harness.Msg(signstate.LogRefusedDoppelganger)) })
	top, _ := observer.Height(ctx)
	var after []string
	for _, l := range p.Lines()[i:] {
		if r, ok := harness.ParseSignRecord(l); ok {
			after = append(after, r.Line)
		}
	}
	if len(after) != 0 {
		t.Errorf("cosigner signed after the trip at height %d:\n%s", det, strings.Join(after, "\n"))
	}
	if refusedErr != nil {
		// Validator 0 signing in two places and validator 3 gone can stall
		// the four-validator chain: then the node has nothing to ask.
		if top <= det+1 {
			t.Skipf("the chain stalled at %d after the trip at %d: no sign request to refuse (nothing was signed after the trip)", top, det)
		}
		t.Fatalf("no sign request refused after the trip: %v\n%s", refusedErr, p.Tail(30))
	}
	if p.Exited() {
		t.Errorf("cosigner exited after a trip while running; it must keep running with signing stopped:\n%s", p.Tail(20))
	}
	if err := harness.CheckNoDoubleSign(cs.Records()); err != nil {
		t.Error(err)
	}
	t.Logf("e2e: doppelganger while running: second signer started with the chain at %d, detected at height %d, chain at %d, no signature from cosigner after the trip",
		restarted, det, top)
}

// appendChainKeys appends keys to cosigner.toml, whose last table is its
// [[chain]].
func appendChainKeys(t *testing.T, c *harness.Cosigner, keys string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(c.Home, "cosigner.toml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n" + keys); err != nil {
		t.Fatal(err)
	}
}

// skipIfStalled skips a test whose chain stopped before any commit could
// show the second signer: two signers for one validator can split its
// votes in a round and, with validator 3 gone, stall a four-validator
// chain. No sign request reached p in the last 30 s of its log is the
// sign of it; the watch cannot see what no commit carries.
func skipIfStalled(t *testing.T, p *harness.Process) {
	t.Helper()
	lines := p.Lines()
	var last time.Time
	for _, l := range lines {
		if _, ok := harness.ParseSignRecord(l); ok {
			if ts, err := time.Parse(time.RFC3339Nano, harness.ParseSlogText(l)["time"]); err == nil {
				last = ts
			}
		}
	}
	if !last.IsZero() && time.Since(last) > 30*time.Second {
		t.Skipf("the chain stalled (no sign request since %s) before a commit showed the second signer; the watch had nothing to see", last.Format(time.RFC3339))
	}
}
