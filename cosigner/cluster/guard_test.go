package cluster

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/threshold"
)

// recordingGuard refuses while refuse is set and records precommits.
type recordingGuard struct {
	mu     sync.Mutex
	refuse error
	sigs   [][]byte
}

func (g *recordingGuard) Allow(string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refuse
}

func (g *recordingGuard) Signed(_ string, _ int64, _ int32, _, sig []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sigs = append(g.sigs, sig)
}

// TestCoordinatorGuard: a Guard's refusal reaches the node before any
// cosigner is asked for a share; a precommit signed, and its resend, are
// reported to the Guard with the signature released.
func TestCoordinatorGuard(t *testing.T) {
	g := &recordingGuard{refuse: errors.New("doppelganger watch running")}
	tc := newTestClusterOpts(t, 2, 3, testClusterOptions{Configure: func(c *CoordinatorConfig) { c.Guard = g }})
	ctx := context.Background()
	t0 := time.Unix(1700000000, 0).UTC()
	if _, err := tc.coord.Sign(ctx, vote(2, 0, privval.StepPrecommit, "B", t0)); err == nil || err.Error() != g.refuse.Error() {
		t.Fatalf("Sign while the guard refuses = %v, want its error", err)
	}
	for i, s := range tc.signers {
		if m, _ := s.Mark(testChain); m.Height != 1 {
			t.Fatalf("cosigner %d signed a share while the guard refused: mark %+v", i+1, m)
		}
	}
	g.mu.Lock()
	g.refuse = nil
	g.mu.Unlock()
	req := vote(2, 0, privval.StepPrecommit, "B", t0)
	resp, err := tc.coord.Sign(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(tc.key.Public().(ed25519.PublicKey), req.SignBytes, resp.Signature) {
		t.Fatal("signature does not verify")
	}
	again, err := tc.coord.Sign(ctx, vote(2, 0, privval.StepPrecommit, "B", t0))
	if err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.sigs) != 2 || !bytes.Equal(g.sigs[0], resp.Signature) || !bytes.Equal(g.sigs[1], again.Signature) {
		t.Fatalf("guard told of %d signatures, want the precommit's and its resend's", len(g.sigs))
	}
}

// trippingPeer trips the guard while the leader waits for its share: the
// watch read a commit of another signer in the middle of the round.
type trippingPeer struct {
	PeerClient
	g *recordingGuard
}

func (p trippingPeer) Sign(ctx context.Context, req *ShareRequest) ([]threshold.SignatureShare, error) {
	shares, err := p.PeerClient.Sign(ctx, req)
	p.g.mu.Lock()
	p.g.refuse = errors.New("doppelganger: another signer is live")
	p.g.mu.Unlock()
	return shares, err
}

// TestCoordinatorGuardTripsDuringRound: a watch that trips while the shares
// are gathered withholds the signature made meanwhile.
func TestCoordinatorGuardTripsDuringRound(t *testing.T) {
	g := &recordingGuard{}
	tc := newTestClusterOpts(t, 2, 3, testClusterOptions{
		Configure: func(c *CoordinatorConfig) { c.Guard = g },
		Client: func(_ *testCluster, id int, _ *threshold.KeyShare, f *faultyPeer) PeerClient {
			if id == 1 {
				return f // the leader's own share
			}
			return trippingPeer{PeerClient: f, g: g}
		},
	})
	t0 := time.Unix(1700000000, 0).UTC()
	resp, err := tc.coord.Sign(context.Background(), vote(2, 0, privval.StepPrecommit, "B", t0))
	if err == nil || resp != nil {
		t.Fatalf("Sign after the watch tripped mid-round = %v, %v; want the watch's refusal and no signature", resp, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.sigs) != 0 {
		t.Fatalf("guard told of %d released signatures, want none", len(g.sigs))
	}
}
