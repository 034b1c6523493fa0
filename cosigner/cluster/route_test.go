package cluster

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cosigner/cosigner/cosigner/metrics"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/raft"
)

// smallPools keeps a cold start fast under the race detector (64
// commitments per cosigner take longer than the test deadline there).
func smallPools(cfg *CoordinatorConfig) { cfg.PoolTarget, cfg.PoolLow = 8, 2 }

func newTestMetrics(t *testing.T) (*metrics.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, "test")
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// TestCoordinatorRoutesAroundCosignerAhead: one cosigner whose state file
// is far above the chain (a wrong 'state init --height') refuses every
// request as a regression. The leader signs with the two others, counts
// the refusal under the cosigner's id and chooses it last from then on;
// with the third cosigner down too, no quorum is left without it and the
// request is refused with its refusal. Before, its refusal ended every
// request it was chosen for: 20 of 20 heights failed.
func TestCoordinatorRoutesAroundCosignerAhead(t *testing.T) {
	mt, reg := newTestMetrics(t)
	ahead := signstate.Mark{Height: 1000} // as 'state init --height 1000' writes it
	tc := newTestClusterOpts(t, 2, 3, testClusterOptions{Metrics: mt, Marks: map[int]signstate.Mark{2: ahead}, Configure: smallPools})
	ctx := context.Background()
	pub := tc.key.Public().(ed25519.PublicKey)
	t0 := testkit.T0

	signed := 0
	for h := int64(2); h < 22; h++ {
		for _, req := range []*privval.SignRequest{vote(h, 0, privval.StepPrevote, "A", t0), vote(h, 0, privval.StepPrecommit, "A", t0)} {
			resp, err := tc.coord.Sign(ctx, req)
			if err != nil {
				t.Errorf("%d/%s: %v", h, req.Step, err)
				continue
			}
			if !ed25519.Verify(pub, req.SignBytes, resp.Signature) {
				t.Fatalf("%d/%s: signature does not verify", h, req.Step)
			}
			signed++
		}
	}
	if signed != 40 {
		t.Fatalf("signed %d of 40 requests with cosigner 2 ahead", signed)
	}
	if m, _ := tc.signers[1].Mark(testChain); m.Height != ahead.Height || m.Step != 0 {
		t.Errorf("cosigner 2's mark moved to %d/%d/%s", m.Height, m.Round, m.Step)
	}
	if m, _ := tc.signers[2].Mark(testChain); m.Height != 21 || m.Step != privval.StepPrecommit {
		t.Errorf("cosigner 3's mark is %d/%d/%s, want 21/0/precommit: it signed in cosigner 2's place", m.Height, m.Round, m.Step)
	}
	// Refused once, then chosen last while requests are below its mark.
	if got := testkit.Value(t, reg, "cosigner_peer_refusals_total", testkit.Labels("peer", "2", "reason", "regression")); got != 1 {
		t.Errorf("cosigner_peer_refusals_total{peer=2,reason=regression} = %v, want 1", got)
	}
	if n := testkit.Series(t, reg, "cosigner_peer_refusals_total", nil); n != 1 {
		t.Errorf("%d refusal series, want only cosigner 2's", n)
	}
	if signs := tc.peers[1].signs.Load(); signs != 1 {
		t.Errorf("cosigner 2 was asked %d times, want once", signs)
	}

	// Cosigner 3 down: cosigner 2 is the only other one, and it refuses.
	// First let the leader hold cosigner 2 healthy with commitments: on a
	// loaded machine (the race detector, other packages' tests) a health
	// probe or top-up that timed out drops them, and the request would end
	// with "no quorum" before cosigner 2 could refuse it.
	p2, key := tc.coord.peers[1], tc.coord.keyOf(testChain)
	for deadline := time.Now().Add(20 * time.Second); !(p2.usable(time.Now()) && p2.held(key) > 0); {
		if time.Now().After(deadline) {
			p2.mu.Lock()
			last := p2.lastErr
			p2.mu.Unlock()
			t.Fatalf("the leader holds no commitments of a healthy cosigner 2 after 20 s (last error %v)", last)
		}
		tc.coord.fetch(ctx, p2, key, 8)
		time.Sleep(50 * time.Millisecond)
	}
	tc.peers[2].set(true, false)
	_, err := tc.coord.Sign(ctx, vote(22, 0, privval.StepPrevote, "A", t0))
	var refusal *signstate.Refusal
	if !errors.As(err, &refusal) || refusal.Reason != signstate.RefusedRegression || refusal.Signer != 2 {
		t.Fatalf("with cosigner 3 down: err = %v, want cosigner 2's regression", err)
	}
	if refusal.Last == nil || refusal.Last.Height != ahead.Height {
		t.Errorf("the refusal carries mark %+v, want height %d", refusal.Last, ahead.Height)
	}
	if m, _ := tc.signers[1].Mark(testChain); m.Height != ahead.Height {
		t.Errorf("cosigner 2's mark moved to %d", m.Height)
	}
}

// TestCoordinatorConflictStillRefused: a leader whose cluster state lacks
// the block its cosigners signed (a new leader before replication caught
// up) is asked for another block at the same height, round and step.
// Routing around cannot sign it: every cosigner that signed the first
// block, at least M, refuses, and fewer than M are left.
func TestCoordinatorConflictStillRefused(t *testing.T) {
	mt, reg := newTestMetrics(t)
	tc := newTestClusterOpts(t, 2, 3, testClusterOptions{Metrics: mt, Configure: smallPools})
	ctx := context.Background()
	t0 := testkit.T0
	if _, err := tc.coord.Sign(ctx, vote(10, 0, privval.StepPrevote, "A", t0)); err != nil {
		t.Fatal(err)
	}
	// Cosigners 1 and 2 signed A (the leader itself first, then 2).
	for id, want := range map[int]int64{1: 10, 2: 10, 3: 1} {
		if m, _ := tc.signers[id-1].Mark(testChain); m.Height != want {
			t.Fatalf("cosigner %d at height %d, want %d", id, m.Height, want)
		}
	}
	for _, self := range []int{1, 3} {
		t.Run("leader "+string(rune('0'+self)), func(t *testing.T) {
			// A new leader with no record of A.
			coord := tc.startCoordinator(t, self, &memState{}, discard)
			_, err := coord.Sign(ctx, vote(10, 0, privval.StepPrevote, "B", t0))
			if !errors.Is(err, signstate.ErrConflict) {
				t.Fatalf("block B where A was signed: err = %v, want a conflict", err)
			}
			var refusal *signstate.Refusal
			if !errors.As(err, &refusal) || refusal.Reason != signstate.RefusedConflict {
				t.Fatalf("err = %v, want a cosigner's conflict refusal", err)
			}
		})
	}
	for _, id := range []string{"1", "2"} {
		if got := testkit.Value(t, reg, "cosigner_peer_refusals_total", testkit.Labels("peer", id, "reason", "conflict")); got < 1 {
			t.Errorf("conflict refusals of cosigner %s = %v, want at least 1", id, got)
		}
	}
	if got := testkit.Value(t, reg, "cosigner_peer_refusals_total", testkit.Labels("peer", "3")); got != 0 {
		t.Errorf("cosigner 3 never signed A but counted %v refusals", got)
	}
	// The cosigners that signed A still hold A; nothing else was signed.
	a := vote(10, 0, privval.StepPrevote, "A", t0)
	for _, s := range tc.signers[:2] {
		if m, _ := s.Mark(testChain); string(m.SignBytes) != string(a.SignBytes) {
			t.Errorf("cosigner %d no longer holds A at 10/0/prevote", s.ID())
		}
	}
}

// TestCoordinatorChecksClusterStateFirst: the cluster's last signature is
// A, which no cosigner's own mark knows (the leader's state is the only
// record). A request for B at the same height, round and step is refused
// by the leader's own check before any cosigner is asked: routing around
// refusals must never assemble a quorum of cosigners that never saw A.
func TestCoordinatorChecksClusterStateFirst(t *testing.T) {
	tc := newTestCluster(t, 2, 3)
	ctx := context.Background()
	a := vote(10, 0, privval.StepPrevote, "A", testkit.T0)
	if err := tc.state.Propose(ctx, raft.Record{ChainID: testChain, Height: 10, Step: int8(privval.StepPrevote), SignBytes: a.SignBytes, Signature: []byte("sig")}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		req  *privval.SignRequest
		want error
	}{
		{"conflict", vote(10, 0, privval.StepPrevote, "B", testkit.T0), signstate.ErrConflict},
		{"regression", vote(9, 0, privval.StepPrecommit, "B", testkit.T0), signstate.ErrRegression},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tc.coord.Sign(ctx, tt.req); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	for i, p := range tc.peers {
		if n := p.signs.Load(); n != 0 {
			t.Errorf("cosigner %d was asked %d times for a request the cluster state refuses", i+1, n)
		}
		if m, _ := tc.signers[i].Mark(testChain); m.Height != 1 {
			t.Errorf("cosigner %d's mark moved to %d", i+1, m.Height)
		}
	}
}

// TestCoordinatorForgetsMarkOnRestart: a cosigner chosen last because it
// reported a mark above the requests is chosen again once its process
// restarts (a new boot id: its state may have been corrected).
func TestCoordinatorForgetsMarkOnRestart(t *testing.T) {
	p := &peer{id: 2, healthy: true, commits: make([][]PublishedCommitment, 1)}
	old, _ := NewBootID()
	p.add(0, []PublishedCommitment{{BootID: old}}, time.Now())
	p.refused(testChain, signstate.Mark{Height: 1000})
	req := vote(5, 0, privval.StepPrevote, "A", testkit.T0)
	if !p.refuses(req) {
		t.Fatal("a request below the reported mark is not expected to be refused")
	}
	if p.refuses(vote(1000, 0, privval.StepPrevote, "A", testkit.T0)) {
		t.Error("a request above the reported mark is expected to be refused")
	}
	restarted, _ := NewBootID()
	p.add(0, []PublishedCommitment{{BootID: restarted}}, time.Now())
	if p.refuses(req) {
		t.Error("the mark reported by the previous process still counts after a restart")
	}
}
