package test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cosigner/cosigner/test/harness"
)

// minBlocks is how many blocks each chain must commit with our signatures.
const minBlocks = 20

// TestSoftsignChains runs a single-validator chain of every supported
// CometBFT version whose only signer is `cosigner start` in softsign mode,
// and checks our precommit in every commit and the absence of evidence.
// On 0.38 and 1.0 vote extensions are enabled from height 2, so the chain
// only advances if our extension signatures verify.
func TestSoftsignChains(t *testing.T) {
	bin := requireCosigner(t)
	type chainCase struct {
		version string
		unix    bool
	}
	var cases []chainCase
	for _, v := range harness.Versions {
		cases = append(cases, chainCase{version: v})
	}
	cases = append(cases, chainCase{version: "v0.38.17", unix: true})
	for _, tc := range cases {
		name := tc.version + "/tcp"
		if tc.unix {
			name = tc.version + "/unix"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			node := harness.NewNode(t, harness.NodeConfig{Version: tc.version, ChainID: "softsign-1", Unix: tc.unix})
			cs := harness.SetupSoftsign(t, bin, node)
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
			ve := "no vote extensions"
			if node.VoteExtensionsHeight > 0 {
				ve = fmt.Sprintf("vote extensions from height %d", node.VoteExtensionsHeight)
			}
			t.Logf("e2e: %s: %d commits verified with our signature (heights 1..%d), %d signatures logged, %s",
				name, n, top-1, len(recs), ve)
		})
	}
}

// checkSignedEveryHeight checks that the cosigner's log shows a proposal, a
// prevote and a precommit for every height in [from, to].
func checkSignedEveryHeight(t *testing.T, recs []harness.SignRecord, from, to int64) {
	t.Helper()
	have := map[int64][]string{}
	for _, r := range recs {
		have[r.Height] = append(have[r.Height], r.Step)
	}
	for h := from; h <= to; h++ {
		for _, step := range []string{"proposal", "prevote", "precommit"} {
			if !slices.Contains(have[h], step) {
				t.Errorf("height %d: no %q signature in the cosigner's log", h, step)
			}
		}
	}
}

// TestSoftsignRestart SIGKILLs the signer mid-chain and starts it again:
// the chain goes on, no (height, round, step) is signed for two different
// blocks across both processes, and the state file is at least as high as
// the last signature.
func TestSoftsignRestart(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	ctx := context.Background()
	node := harness.NewNode(t, harness.NodeConfig{Version: "v0.38.17", ChainID: "restart-1"})
	cs := harness.SetupSoftsign(t, bin, node)
	cs.Start()
	node.Start(ctx)
	node.WaitHeight(ctx, 8, 2*time.Minute)

	// Kill right after a prevote, while the height's precommit is due, so
	// the restarted process meets requests around its last mark.
	first := cs.Current()
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, line, err := first.WaitLine(waitCtx, len(first.Lines()), func(l string) bool {
		r, ok := harness.ParseSignRecord(l)
		return ok && r.Step == "prevote"
	})
	if err != nil {
		t.Fatal(err)
	}
	cs.Kill()
	t.Logf("killed after: %s", line)
	killedAt, err := node.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cs.Start()
	top := node.WaitHeight(ctx, killedAt+10, 2*time.Minute)
	cs.Stop()

	recs := cs.Records()
	if err := harness.CheckNoDoubleSign(recs); err != nil {
		t.Error(err)
	}
	var last harness.SignRecord
	runs := map[int]int{}
	for _, r := range recs {
		runs[r.Run]++
		if r.Height > last.Height {
			last = r
		}
	}
	if runs[1] == 0 || runs[2] == 0 {
		t.Errorf("signatures per run: %v, want both runs to sign", runs)
	}
	st := cs.StateShow()
	if st.Height < last.Height {
		t.Errorf("state file height %d is below the last signed height %d (%s)", st.Height, last.Height, st.Raw)
	}
	if _, err := node.VerifyChain(ctx, node.PubKey, 1, top-1); err != nil {
		t.Fatal(err)
	}
	t.Logf("e2e: restart: killed with the chain at height %d, chain reached %d; %d signatures before the kill, %d after; state file at %d/%d/%d, last signed %d/%d/%s",
		killedAt, top, runs[1], runs[2], st.Height, st.Round, st.Step, last.Height, last.Round, last.Step)
}

// TestSoftsignTestnet runs cosigner as validator 0's signer in a
// 4-validator chain, stops it while the other three carry the chain on, and
// starts it again: its precommits return to the commits, every one of them
// verifies, nothing is double-signed and there is no evidence.
func TestSoftsignTestnet(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	ctx := context.Background()
	tn := harness.NewTestnet(t, harness.TestnetConfig{Version: "v0.38.17", ChainID: "testnet-1"})
	signer := tn.Signer()
	cs := harness.SetupSoftsign(t, bin, signer)
	cs.Start()
	tn.Start(ctx)
	observer := tn.Nodes[1]
	observer.WaitHeight(ctx, 6, 2*time.Minute)

	cs.Kill()
	down, err := observer.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	observer.WaitHeight(ctx, down+4, time.Minute) // three of four validators suffice
	cs.Start()
	back, err := observer.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	top := observer.WaitHeight(ctx, back+6, 2*time.Minute)

	present, absent, err := observer.ScanChain(ctx, signer.PubKey, 1, top-1)
	if err != nil {
		t.Fatal(err)
	}
	if err := harness.CheckNoDoubleSign(cs.Records()); err != nil {
		t.Error(err)
	}
	// After the restart our precommit must be back in the commits.
	after := 0
	for h := back + 2; h < top; h++ {
		if !slices.Contains(absent, h) {
			after++
		}
	}
	if after == 0 {
		t.Errorf("no commit after the restart (heights %d..%d) holds our precommit; missing at %v", back+2, top-1, absent)
	}
	t.Logf("e2e: testnet: signer down at %d, back at %d, chain at %d: our precommit in %d commits, missing at %v", down, back, top, present, absent)
}

// TestMigrateFromFilePV replaces a running chain's CometBFT FilePV remote
// signer with cosigner: the FilePV's priv_validator_state.json is imported
// with `cosigner state import`, cosigner never signs below the imported
// mark, and the chain goes on without evidence.
func TestMigrateFromFilePV(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	ctx := context.Background()
	node := harness.NewNode(t, harness.NodeConfig{Version: "v0.38.17", ChainID: "migrate-1"})
	ref := harness.StartReferenceSigner(t, node.SignerAddr, node.ChainID, node.ValidatorKeyFile)
	node.Start(ctx)
	node.WaitHeight(ctx, 6, 2*time.Minute)
	ref.Stop()

	c := harness.NewCosigner(t, bin, node.ChainID, node.SignerAddr)
	c.MustRun("keys", "import", "--home", c.Home, "--chain-id", node.ChainID, node.ValidatorKeyFile)
	c.MustRun("state", "import", "--home", c.Home, "--chain-id", node.ChainID, ref.StatePath)
	mark := c.StateShow()
	if mark.Height < 6 {
		t.Fatalf("imported state %s, want the FilePV's mark at height >= 6", mark.Raw)
	}
	c.Start()
	top := node.WaitHeight(ctx, mark.Height+8, 2*time.Minute)

	recs := c.Records()
	if err := harness.CheckNoDoubleSign(recs); err != nil {
		t.Error(err)
	}
	stepNum := map[string]int8{"proposal": 1, "prevote": 2, "precommit": 3}
	for _, r := range recs {
		below := r.Height < mark.Height ||
			r.Height == mark.Height && (r.Round < mark.Round || r.Round == mark.Round && stepNum[r.Step] < mark.Step)
		if below {
			t.Errorf("signed below the imported mark %d/%d/%d: %s", mark.Height, mark.Round, mark.Step, r.Line)
		}
	}
	if _, err := node.VerifyChain(ctx, node.PubKey, 1, top-1); err != nil {
		t.Fatal(err)
	}
	t.Logf("e2e: migrate: FilePV mark %d/%d/%d imported, cosigner signed %d times, chain at %d",
		mark.Height, mark.Round, mark.Step, len(recs), top)
}
