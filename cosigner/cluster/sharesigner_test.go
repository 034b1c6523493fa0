package cluster

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/raft"
	"github.com/cosigner/cosigner/threshold"
)

// boundPair is cosigners 1 and 2 of a 2-of-3 dealing, each with its own
// durable state at height 1, and a way to ask cosigner 2 for a share the
// way a leader does.
type boundPair struct {
	s1, s2 *ShareSigner
	clock  *testkit.Clock
}

func newBoundPair(t *testing.T, ahead int64, rate float64) *boundPair {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	dealing, err := threshold.Deal(key.Seed(), 2, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	states := []*signstate.SignState{newTestState(t, signstate.Mark{Height: 1}), newTestState(t, signstate.Mark{Height: 1})}
	// The clock starts when cosigner 2's mark was recorded, so the seconds
	// a test advances are exactly the seconds its bound has grown for.
	p := &boundPair{clock: testkit.NewClock(states[1].Bound(0, 0).Since)}
	var signers []*ShareSigner
	for i, share := range dealing.Shares[:2] {
		boot, _ := NewBootID()
		s, err := NewShareSigner(share, NewNoncePool(share, boot, 0), SignerOptions{
			Chains:         []*signstate.SignState{states[i]},
			MaxHeightAhead: ahead,
			MaxHeightRate:  rate,
			Now:            p.clock.Now,
			Log:            discard,
		})
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, s)
	}
	p.s1, p.s2 = signers[0], signers[1]
	return p
}

// ask asks cosigner 2 for its share of a prevote at h.
func (p *boundPair) ask(t *testing.T, h int64) error {
	t.Helper()
	v := vote(h, 0, privval.StepPrevote, "A", testkit.T0)
	c1, _ := p.s1.Pool().Generate(1)
	c2, _ := p.s2.Pool().Generate(1)
	_, err := p.s2.Sign(&ShareRequest{ChainID: testChain, Messages: []ShareMessage{{Kind: KindPrevote, Height: h,
		SignBytes: v.SignBytes, Commitments: []PublishedCommitment{c1[0], c2[0]}}}})
	return err
}

func tooFarAhead(err error) bool {
	var r *signstate.Refusal
	return errors.As(err, &r) && r.Reason == signstate.RefusedTooFarAhead && errors.Is(err, signstate.ErrTooFarAhead)
}

// TestShareSignerBoundDoesNotRatchet: a caller that may ask (a leader in
// this cosigner's view, or a stolen cluster certificate) asks for
// max_height_ahead − 1 above the mark again and again. The first is
// admitted; the others are refused, because the bound counts from the mark
// loaded at start, not from the mark the last request moved. Before, 50
// such requests moved the mark from 1 to 4951.
func TestShareSignerBoundDoesNotRatchet(t *testing.T) {
	p := newBoundPair(t, 100, 10)
	for i := range 50 {
		m, _ := p.s2.Mark(testChain)
		err := p.ask(t, m.Height+99)
		if i == 0 && err != nil {
			t.Fatalf("first jump to %d refused: %v", m.Height+99, err)
		}
		if i > 0 && !tooFarAhead(err) {
			t.Fatalf("jump %d to %d: err = %v, want a too-far-ahead refusal", i+1, m.Height+99, err)
		}
	}
	if m, _ := p.s2.Mark(testChain); m.Height != 100 {
		t.Fatalf("mark after 50 jumps = %d, want 100", m.Height)
	}
	// Within the bound it still signs: 1 + 100 is the limit now, and
	// HeightLimit (what status shows) says so.
	if l, ok := p.s2.HeightLimit(testChain); !ok || l != 101 {
		t.Fatalf("HeightLimit = %d, %t, want 101", l, ok)
	}
	if _, ok := p.s2.HeightLimit("other-chain"); ok {
		t.Fatal("HeightLimit of a chain this cosigner does not sign")
	}
	if err := p.ask(t, 101); err != nil {
		t.Fatalf("height 101 (the limit): %v", err)
	}
	if err := p.ask(t, 102); !tooFarAhead(err) {
		t.Fatalf("height 102: err = %v, want a too-far-ahead refusal", err)
	}
	// The limit grows with time only: 10 heights a second.
	p.clock.Advance(3 * time.Second)
	if l, _ := p.s2.HeightLimit(testChain); l != 131 {
		t.Fatalf("HeightLimit three seconds later = %d, want 131", l)
	}
	if err := p.ask(t, 131); err != nil {
		t.Fatalf("height 131 three seconds later: %v", err)
	}
	if err := p.ask(t, 132); !tooFarAhead(err) {
		t.Fatalf("height 132 three seconds later: err = %v, want a too-far-ahead refusal", err)
	}
	if m, _ := p.s2.Mark(testChain); m.Height != 131 {
		t.Fatalf("mark = %d, want 131", m.Height)
	}
}

// TestShareSignerBoundCatchUp: with the default configuration, a cosigner
// whose mark was recorded a week ago (it, or the whole cluster, was down)
// signs the chain's current height at once, then the chain's next heights;
// a second jump as large is refused.
func TestShareSignerBoundCatchUp(t *testing.T) {
	p := newBoundPair(t, config.DefaultMaxHeightAhead, config.DefaultMaxHeightRate)
	week := 7 * 24 * time.Hour
	p.clock.Advance(week)
	now := 1 + int64(week/time.Second) // the chain made a block a second
	if err := p.ask(t, now); err != nil {
		t.Fatalf("the chain's current height %d after a week down: %v", now, err)
	}
	for range 20 {
		p.clock.Advance(time.Second)
		now++
		if err := p.ask(t, now); err != nil {
			t.Fatalf("height %d: %v", now, err)
		}
	}
	if err := p.ask(t, 2*now); !tooFarAhead(err) {
		t.Fatalf("a second week-sized jump: err = %v, want a too-far-ahead refusal", err)
	}
}

// TestClusterSignsWithinBound: through the coordinator, a chain with
// 1-second blocks signs every step of a long run of heights, including
// one catch-up jump after a downtime, under a bound of 100 ahead and one
// height a second.
func TestClusterSignsWithinBound(t *testing.T) {
	tc := newTestCluster(t, 2, 3)
	pub := tc.key.Public().(ed25519.PublicKey)
	ctx := context.Background()
	sign := func(h int64) {
		t.Helper()
		for _, req := range []*privval.SignRequest{
			vote(h, 0, privval.StepProposal, "B", testkit.T0),
			vote(h, 0, privval.StepPrevote, "B", testkit.T0),
			precommitWithExt(h, 0, "B", testkit.T0),
		} {
			resp, err := tc.coord.Sign(ctx, req)
			if err != nil {
				t.Fatalf("%d/%s: %v", h, req.Step, err)
			}
			if !ed25519.Verify(pub, req.SignBytes, resp.Signature) {
				t.Fatalf("%d/%s: signature does not verify", h, req.Step)
			}
		}
	}
	h := int64(1)
	for range 60 {
		tc.clock.Advance(time.Second)
		h++
		sign(h)
	}
	// The cluster is down for a day while the chain goes on; the node
	// catches up and asks for its current height.
	tc.clock.Advance(24 * time.Hour)
	h += int64(24 * time.Hour / time.Second)
	sign(h)
	for range 20 {
		tc.clock.Advance(time.Second)
		h++
		sign(h)
	}
}

// TestShareSignerRecordDoesNotRaiseBound: a record of the cluster's state
// far above the chain (a buggy or hostile Raft leader's) raises no
// cosigner's bound. Before, the replicated last height was taken as known
// signed, and the bound counted from it.
func TestShareSignerRecordDoesNotRaiseBound(t *testing.T) {
	tc := newTestCluster(t, 2, 3)
	if err := tc.state.Propose(context.Background(), raft.Record{ChainID: testChain, Height: 5000, Step: int8(privval.StepPrecommit)}); err != nil {
		t.Fatal(err)
	}
	s1, s2 := tc.signers[0], tc.signers[1]
	v := vote(5050, 0, privval.StepPrevote, "A", testkit.T0)
	c1, _ := s1.Pool().Generate(1)
	c2, _ := s2.Pool().Generate(1)
	_, err := s2.Sign(&ShareRequest{ChainID: testChain, Messages: []ShareMessage{{Kind: KindPrevote, Height: 5050,
		SignBytes: v.SignBytes, Commitments: []PublishedCommitment{c1[0], c2[0]}}}})
	if !tooFarAhead(err) {
		t.Fatalf("height 5050 after a record at 5000: err = %v, want a too-far-ahead refusal", err)
	}
	if m, _ := s2.Mark(testChain); m.Height != 1 {
		t.Fatalf("mark moved to %d", m.Height)
	}
}

// TestShareSignerCheckRecord: the record check handed to Raft holds
// replicated records to the cosigner's own bound.
func TestShareSignerCheckRecord(t *testing.T) {
	p := newBoundPair(t, 100, 10)
	tests := []struct {
		name  string
		rec   raft.Record
		clock time.Duration // advance before the check
		ok    bool
	}{
		{"at the mark", raft.Record{ChainID: testChain, Height: 1}, 0, true},
		{"at the limit", raft.Record{ChainID: testChain, Height: 101}, 0, true},
		{"above the limit", raft.Record{ChainID: testChain, Height: 102}, 0, false},
		{"far above", raft.Record{ChainID: testChain, Height: 1 << 40}, 0, false},
		{"within after time passed", raft.Record{ChainID: testChain, Height: 111}, time.Second, true},
		{"a chain not signed here", raft.Record{ChainID: "other-chain", Height: 1 << 40}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.clock.Advance(tt.clock)
			err := p.s2.CheckRecord(tt.rec)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, signstate.ErrTooFarAhead)) {
				t.Fatalf("CheckRecord(%s %d) = %v, want ok %v", tt.rec.ChainID, tt.rec.Height, err, tt.ok)
			}
		})
	}
}

// debugSink is a slog.Handler that takes every record at every level and
// keeps nothing.
type debugSink struct{}

func (debugSink) Enabled(context.Context, slog.Level) bool  { return true }
func (debugSink) Handle(context.Context, slog.Record) error { return nil }
func (h debugSink) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h debugSink) WithGroup(string) slog.Handler           { return h }

// TestShareSignerDebugOffAllocs: with Debug off, the released-share log
// line costs a share no allocation (its attributes, boxed, and the block's
// hex were built for every share before). Measured as the difference
// between the same shares with Debug on and off.
func TestShareSignerDebugOffAllocs(t *testing.T) {
	allocs := func(log *slog.Logger) float64 {
		p := newBoundPair(t, 0, 0)
		p.s2.opts.Log = log
		const runs = 20
		reqs := make([]*ShareRequest, runs+1)
		for i := range reqs {
			h := int64(i + 2)
			v := vote(h, 0, privval.StepPrevote, "A", testkit.T0)
			c1, _ := p.s1.Pool().Generate(1)
			c2, _ := p.s2.Pool().Generate(1)
			reqs[i] = &ShareRequest{ChainID: testChain, Messages: []ShareMessage{{Kind: KindPrevote, Height: h,
				SignBytes: v.SignBytes, Commitments: []PublishedCommitment{c1[0], c2[0]}}}}
		}
		next := 0
		return testing.AllocsPerRun(runs, func() {
			if _, err := p.s2.Sign(reqs[next]); err != nil {
				t.Fatal(err)
			}
			next++
		})
	}
	off, on := allocs(discard), allocs(slog.New(debugSink{}))
	t.Logf("allocations per share: %.0f with Debug off, %.0f with Debug on", off, on)
	if on-off < 4 {
		t.Errorf("a share allocates %.0f times with Debug off and %.0f with it on: the Debug line's attributes are built when Debug is off", off, on)
	}
}
