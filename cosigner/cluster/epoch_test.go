package cluster

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cosigner/cosigner/cosigner/metrics"
	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/privval"
	cosignerv1 "github.com/cosigner/cosigner/proto/cosigner/v1"
	"github.com/cosigner/cosigner/threshold"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// otherEpoch returns epoch 2 of a fresh dealing of gc's key: what a
// cosigner holds after a reshare (same validator key, new commitments).
func otherEpoch(t *testing.T, gc *grpcCluster) share.Epoch {
	t.Helper()
	d, err := threshold.Deal(gc.key.Seed(), 2, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	return share.EpochOf(d.Group, 2)
}

// TestEpochGuard: the same epoch passes; another group or number, a
// malformed group, and (past epoch 1) a message without an epoch are
// mismatches, each counted, logged once per peer, side and epoch.
func TestEpochGuard(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	d1, _ := threshold.Deal(key.Seed(), 2, 3, nil)
	d2, _ := threshold.Deal(key.Seed(), 2, 3, nil)
	e1, e2 := share.EpochOf(d1.Group, 1), share.EpochOf(d2.Group, 2)
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, "test")
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	g2 := NewEpochGuard(e2, 1, slog.New(slog.NewTextHandler(&logs, nil)), m)
	g1 := NewEpochGuard(e1, 1, discard, nil)
	wire := func(e share.Epoch) *cosignerv1.Epoch { return NewEpochGuard(e, 9, discard, nil).Proto() }

	if err := g2.Check(2, wire(e2), metrics.SideServed); err != nil {
		t.Fatalf("same epoch: %v", err)
	}
	if err := g1.Check(2, nil, metrics.SideServed); err != nil {
		t.Fatalf("no epoch at epoch 1 (a build before epochs): %v", err)
	}
	sameNumber := e2
	sameNumber.Group = e1.Group
	short := wire(e2)
	short.Group = short.Group[:31]
	for _, tt := range []struct {
		name   string
		theirs *cosignerv1.Epoch
		want   string
	}{
		{"old epoch", wire(e1), "cosigner 2 holds " + e1.String() + ", cosigner 1 holds " + e2.String()},
		{"same number, other group", wire(sameNumber), "group " + e1.Short()},
		{"no epoch past epoch 1", nil, "no epoch (a build before epochs"},
		{"malformed group", short, "shares of different epochs"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := g2.Check(2, tt.theirs, metrics.SideServed)
			var me *EpochMismatchError
			if !errors.As(err, &me) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a mismatch saying %q", err, tt.want)
			}
		})
	}
	for range 3 {
		g2.Check(3, wire(e1), metrics.SideCalled)
	}
	want := `
# HELP cosigner_peer_epoch_mismatches_total Cluster requests refused because the peer holds a share of another epoch (a missed reshare, an old home), by peer and side (served: this cosigner refused; called: this cosigner was refused or got an answer of another epoch).
# TYPE cosigner_peer_epoch_mismatches_total counter
cosigner_peer_epoch_mismatches_total{peer="2",side="served"} 4
cosigner_peer_epoch_mismatches_total{peer="3",side="called"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "cosigner_peer_epoch_mismatches_total"); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "peer=3"); n != 1 {
		t.Fatalf("peer 3's repeated mismatch logged %d times at info, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), LogEpochMismatch) || !strings.Contains(logs.String(), "cosigner reshare") {
		t.Fatalf("log lacks the message or the hint:\n%s", logs.String())
	}
}

// TestEpochMismatchRefused: cosigners of epoch 1 refuse a leader of epoch
// 2 (same validator key, new commitments) on every RPC over real mutual
// TLS: no share, no nonce drawn, no mark moved; the leader's own client
// refuses their answers, and its coordinator signs nothing.
func TestEpochMismatchRefused(t *testing.T) {
	gc := serveGRPCCosigners(t, 2, 3)
	e2 := otherEpoch(t, gc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wire := NewEpochGuard(e2, 1, discard, nil).Proto()
	raw := cosignerv1.NewCosignerClient(gc.dial(t, 1, 3))

	before := gc.shares[2].Pool().Len()
	gr, err := raw.GetNonceCommitments(ctx, &cosignerv1.GetNonceCommitmentsRequest{Count: 4, Epoch: wire})
	if err != nil || gr.GetRefusal().GetReason() != cosignerv1.RefusalReason_REFUSAL_REASON_EPOCH_MISMATCH || len(gr.GetCommitments()) != 0 {
		t.Fatalf("commitments to another epoch: %v %v", gr, err)
	}
	if !strings.Contains(gr.GetRefusal().GetMessage(), "epoch 2") || gr.GetRefusal().GetEpoch().GetNumber() != 1 || gr.GetEpoch().GetNumber() != 1 {
		t.Fatalf("refusal does not name both epochs: %v", gr.GetRefusal())
	}
	if after := gc.shares[2].Pool().Len(); after != before {
		t.Fatalf("pool went from %d to %d on a refused request", before, after)
	}

	c1, _ := gc.shares[0].Pool().Generate(1)
	c3, _ := gc.shares[2].Pool().Generate(1)
	t0 := time.Unix(1700000000, 0).UTC()
	req := &ShareRequest{ChainID: testChain, Messages: []ShareMessage{{Kind: KindPrevote, Height: 9,
		SignBytes: vote(9, 0, privval.StepPrevote, "X", t0).SignBytes, Commitments: []PublishedCommitment{c1[0], c3[0]}}}}
	sr, err := raw.Sign(ctx, shareRequestToProto(req, wire))
	if err != nil || sr.GetResults()[0].GetRefusal().GetReason() != cosignerv1.RefusalReason_REFUSAL_REASON_EPOCH_MISMATCH {
		t.Fatalf("sign from another epoch: %v %v", sr, err)
	}
	if m, _ := gc.shares[2].Mark(testChain); m.Height != 1 {
		t.Fatalf("a refused request moved the mark to %d", m.Height)
	}
	if _, err := raw.Ping(ctx, &cosignerv1.PingRequest{Epoch: wire}); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "epoch 2") {
		t.Fatalf("ping from another epoch: %v", err)
	}

	// The leader of epoch 2 through its own client and coordinator.
	peer := NewGRPCPeer(3, gc.dial(t, 1, 3), NewEpochGuard(e2, 1, discard, nil))
	_, err = peer.Commitments(ctx, gc.dealing.Group.PublicKey(), 2)
	var refusal *signstate.Refusal
	if !errors.As(err, &refusal) || refusal.Reason != signstate.RefusedEpochMismatch {
		t.Fatalf("commitments through GRPCPeer: %v", err)
	}
	if _, _, err := peer.Probe(ctx); err == nil {
		t.Fatal("a cosigner of another epoch answered the probe")
	}
	clients := map[int]PeerClient{1: LocalPeer{keyringOf(gc.shares[0])}}
	for id := 2; id <= 3; id++ {
		clients[id] = NewGRPCPeer(id, gc.dial(t, 1, id), NewEpochGuard(e2, 1, discard, nil))
	}
	cfg := DefaultCoordinatorConfig()
	cfg.AttemptTimeout = time.Second
	coord, err := NewCoordinator(cfg, gc.dealing.Group, 1, clients, &memState{}, discard)
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
	defer scancel()
	if _, err := coord.Sign(sctx, vote(10, 0, privval.StepPrevote, "X", t0)); err == nil {
		t.Fatal("a leader of another epoch got a signature")
	}
	for i := 1; i < 3; i++ {
		if m, _ := gc.shares[i].Mark(testChain); m.Height != 1 {
			t.Fatalf("cosigner %d's mark moved to %d", i+1, m.Height)
		}
	}
}
