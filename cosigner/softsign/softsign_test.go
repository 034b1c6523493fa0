package softsign

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
	"github.com/cosigner/cosigner/internal/testkit/teststate"
	"github.com/cosigner/cosigner/privval"
)

func TestSoftsign(t *testing.T) {
	s := teststate.New(t, signstate.Mark{Height: 1})
	ss := New(testkit.Log, nil, Options{})
	if err := ss.AddChain(testkit.Chain, testkit.Key, s); err != nil {
		t.Fatal(err)
	}
	if err := ss.AddChain(testkit.Chain, testkit.Key, s); err == nil {
		t.Fatal("added a chain twice")
	}
	ctx := context.Background()
	pub, err := ss.PubKey(ctx, testkit.Chain)
	if err != nil || !pub.Equal(testkit.Key.Public()) {
		t.Fatalf("PubKey = %x, %v", pub, err)
	}
	if _, err := ss.PubKey(ctx, "other"); err == nil {
		t.Fatal("PubKey of an unknown chain")
	}

	t0 := time.Unix(1700000000, 0).UTC()
	req := testkit.Vote(5, 0, privval.StepPrecommit, "A", t0)
	req.ExtSignBytes = []byte("extension sign bytes")
	resp, err := ss.Sign(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pub, req.SignBytes, resp.Signature) || !ed25519.Verify(pub, req.ExtSignBytes, resp.ExtSignature) {
		t.Fatal("signature or extension signature does not verify")
	}

	// No extension signature unless asked.
	resp, err = ss.Sign(ctx, testkit.Vote(6, 0, privval.StepPrevote, "A", t0))
	if err != nil || resp.ExtSignature != nil {
		t.Fatalf("prevote: ext sig %x, err %v", resp.ExtSignature, err)
	}

	// Conflicts and unknown chains are errors, not signatures.
	if _, err := ss.Sign(ctx, testkit.Vote(6, 0, privval.StepPrevote, "B", t0)); !errors.Is(err, signstate.ErrConflict) {
		t.Fatalf("conflict: %v", err)
	}
	other := testkit.Vote(7, 0, privval.StepPrevote, "A", t0)
	other.ChainID = "other"
	if _, err := ss.Sign(ctx, other); err == nil {
		t.Fatal("signed for an unknown chain")
	}
}

// TestSoftsignHeightBound: with softsign.max_height_ahead set, repeated
// jumps of (max_height_ahead − 1) are refused after the first, a chain
// with 1-second blocks signs on, and a week's catch-up is signed once.
// Without it (the default) softsign signs any height above its mark, as
// before.
func TestSoftsignHeightBound(t *testing.T) {
	ctx := context.Background()
	newSigner := func(t *testing.T, opts Options) (*Signer, *testkit.Clock, *prometheus.Registry) {
		t.Helper()
		st := teststate.New(t, signstate.Mark{Height: 1})
		clock := testkit.NewClock(st.Bound(0, 0).Since)
		opts.Now = clock.Now
		reg := prometheus.NewRegistry()
		m, err := metrics.New(reg, "test")
		if err != nil {
			t.Fatal(err)
		}
		ss := New(testkit.Log, m, opts)
		if err := ss.AddChain(testkit.Chain, testkit.Key, st); err != nil {
			t.Fatal(err)
		}
		return ss, clock, reg
	}
	sign := func(ss *Signer, h int64) error {
		_, err := ss.Sign(ctx, testkit.Vote(h, 0, privval.StepPrevote, "A", testkit.T0))
		return err
	}
	mark := func(ss *Signer) int64 { m, _ := ss.Mark(testkit.Chain); return m.Height }

	t.Run("jumps do not ratchet", func(t *testing.T) {
		ss, clock, reg := newSigner(t, Options{MaxHeightAhead: 100, MaxHeightRate: 10})
		for i := range 50 {
			err := sign(ss, mark(ss)+99)
			if i == 0 && err != nil {
				t.Fatalf("first jump: %v", err)
			}
			if i > 0 && !errors.Is(err, signstate.ErrTooFarAhead) {
				t.Fatalf("jump %d to %d: %v, want ErrTooFarAhead", i+1, mark(ss)+99, err)
			}
		}
		if got := mark(ss); got != 100 {
			t.Fatalf("mark after 50 jumps = %d, want 100", got)
		}
		if got := testkit.Value(t, reg, "cosigner_sign_refusals_total", testkit.Labels("chain", testkit.Chain, "reason", "too_far_ahead")); got != 49 {
			t.Errorf("too_far_ahead refusals = %v, want 49", got)
		}
		// A chain with 1-second blocks signs on.
		for h := int64(101); h <= 160; h++ {
			clock.Advance(time.Second)
			if err := sign(ss, h); err != nil {
				t.Fatalf("height %d: %v", h, err)
			}
		}
	})
	t.Run("a week's catch-up once", func(t *testing.T) {
		ss, clock, _ := newSigner(t, Options{MaxHeightAhead: 10000, MaxHeightRate: 10})
		clock.Advance(7 * 24 * time.Hour)
		h := 1 + int64(7*24*time.Hour/time.Second)
		if err := sign(ss, h); err != nil {
			t.Fatalf("the chain's height after a week down: %v", err)
		}
		clock.Advance(time.Second)
		if err := sign(ss, h+1); err != nil {
			t.Fatalf("the next height: %v", err)
		}
		if err := sign(ss, 2*h); !errors.Is(err, signstate.ErrTooFarAhead) {
			t.Fatalf("a second week-sized jump: %v, want ErrTooFarAhead", err)
		}
		if got := mark(ss); got != h+1 {
			t.Fatalf("mark = %d, want %d", got, h+1)
		}
	})
	t.Run("off by default", func(t *testing.T) {
		ss, _, _ := newSigner(t, Options{})
		for range 5 {
			h := mark(ss) + 1_000_000
			if err := sign(ss, h); err != nil {
				t.Fatalf("height %d without a bound: %v", h, err)
			}
		}
	})
}

// guardStub is a Guard that refuses while closed and records precommits.
type guardStub struct {
	refuse error
	signed []int64
}

func (g *guardStub) Allow(string) error { return g.refuse }
func (g *guardStub) Signed(_ string, h int64, _ int32, _, _ []byte) {
	g.signed = append(g.signed, h)
}

// TestSoftsignGuard: a Guard's refusal reaches the node before anything
// is signed or recorded; precommits signed are reported to it.
func TestSoftsignGuard(t *testing.T) {
	s := teststate.New(t, signstate.Mark{Height: 1})
	g := &guardStub{refuse: errors.New("doppelganger watch running")}
	ss := New(testkit.Log, nil, Options{Guard: g})
	if err := ss.AddChain(testkit.Chain, testkit.Key, s); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Unix(1700000000, 0).UTC()
	if _, err := ss.Sign(ctx, testkit.Vote(5, 0, privval.StepPrecommit, "A", t0)); err == nil || err.Error() != g.refuse.Error() {
		t.Fatalf("Sign while the guard refuses = %v, want its error", err)
	}
	if mk := s.Mark(); mk.Height != 1 {
		t.Fatalf("a refused request moved the mark to %+v", mk)
	}
	g.refuse = nil
	if _, err := ss.Sign(ctx, testkit.Vote(5, 0, privval.StepPrevote, "A", t0)); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Sign(ctx, testkit.Vote(5, 0, privval.StepPrecommit, "A", t0)); err != nil {
		t.Fatal(err)
	}
	if len(g.signed) != 1 || g.signed[0] != 5 {
		t.Fatalf("guard told of %v, want the precommit at 5 only", g.signed)
	}
}
