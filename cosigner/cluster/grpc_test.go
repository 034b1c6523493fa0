package cluster

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/cosigner/cosigner/cosigner/clustertls"
	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/privval"
	cosignerv1 "github.com/cosigner/cosigner/proto/cosigner/v1"
	"github.com/cosigner/cosigner/raft"
	"github.com/cosigner/cosigner/threshold"
)

// staticRaft is a RaftControl whose leader the test sets. A leadership
// transfer it executes makes the target lead and is recorded.
type staticRaft struct {
	mu        sync.Mutex
	self      int
	leader    int
	transfers []int // targets of the transfers executed
}

func (s *staticRaft) setLeader(id int) { s.mu.Lock(); s.leader = id; s.mu.Unlock() }

func (s *staticRaft) Leadership() raft.Leadership {
	s.mu.Lock()
	defer s.mu.Unlock()
	return raft.Leadership{IsLeader: s.leader == s.self, LeaderID: s.leader, Term: 1}
}

func (s *staticRaft) View() raft.View {
	l := s.Leadership()
	role := raft.RoleFollower
	if l.IsLeader {
		role = raft.RoleLeader
	}
	return raft.View{Role: role, Term: 1, LeaderID: l.LeaderID}
}

func (s *staticRaft) TransferLeadership(_ context.Context, id int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leader != s.self {
		return errors.New("not the leader")
	}
	s.transfers = append(s.transfers, id)
	s.leader = id
	return nil
}

func (s *staticRaft) transferred() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.transfers...)
}

type grpcCluster struct {
	key     ed25519.PrivateKey
	dealing *threshold.Dealing
	tls     []*clustertls.Identity
	addrs   []string
	rafts   []*staticRaft
	coord   *Coordinator
	shares  []*ShareSigner
	// epoch is every cosigner's epoch: epoch 1 of dealing.
	epoch share.Epoch
}

// guard returns an epoch guard of cosigner id at gc.epoch.
func (gc *grpcCluster) guard(id int) *EpochGuard { return NewEpochGuard(gc.epoch, id, discard, nil) }

// newGRPCCluster runs n cosigners, each serving the Cosigner service over
// mutual TLS on loopback, with cosigner 1 leading.
func newGRPCCluster(t testing.TB, m, n int) *grpcCluster {
	t.Helper()
	gc := serveGRPCCosigners(t, m, n)
	clients := map[int]PeerClient{1: LocalPeer{keyringOf(gc.shares[0])}}
	for id := 2; id <= n; id++ {
		clients[id] = NewGRPCPeer(id, gc.dial(t, 1, id), gc.guard(1))
	}
	var err error
	gc.coord, err = NewCoordinator(DefaultCoordinatorConfig(), gc.dealing.Group, 1, clients, &memState{}, discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { gc.coord.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return gc
}

// serveGRPCCosigners deals a fresh key m-of-n and runs n cosigners, each
// with its own durable sign state at height 1 and its own nonce pool,
// serving the Cosigner service over mutual TLS on loopback, with cosigner 1
// leading in every cosigner's Raft view. No coordinator runs.
func serveGRPCCosigners(t testing.TB, m, n int) *grpcCluster {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	dealing, err := threshold.Deal(key.Seed(), m, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := clustertls.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	gc := &grpcCluster{key: key, dealing: dealing, epoch: share.EpochOf(dealing.Group, share.FirstEpoch)}
	for i, ks := range dealing.Shares {
		id := i + 1
		cert, err := ca.Issue(id)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := clustertls.New(ca.CertPEM(), cert.CertPEM, cert.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		boot, _ := NewBootID()
		s, err := NewShareSigner(ks, NewNoncePool(ks, boot, 0), SignerOptions{
			Chains: []*signstate.SignState{newTestState(t, signstate.Mark{Height: 1})}, MaxHeightAhead: 100, Log: discard})
		if err != nil {
			t.Fatal(err)
		}
		rc := &staticRaft{self: id, leader: 1}
		srv := grpc.NewServer(serverOptions(ct.ServerTLSConfig())...)
		cosignerv1.RegisterCosignerServer(srv, NewService(keyringOf(s), rc, "test", gc.guard(id)))
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { srv.Serve(lis); close(done) }()
		t.Cleanup(func() { srv.Stop(); <-done })
		gc.tls = append(gc.tls, ct)
		gc.addrs = append(gc.addrs, lis.Addr().String())
		gc.rafts = append(gc.rafts, rc)
		gc.shares = append(gc.shares, s)
	}
	ca.Discard()
	return gc
}

// dial connects cosigner from to cosigner to, with from's certificate.
func (gc *grpcCluster) dial(t testing.TB, from, to int) *grpc.ClientConn {
	t.Helper()
	return dialWith(t, gc.addrs[to-1], gc.tls[from-1].ClientTLSConfig(to))
}

func dialWith(t testing.TB, addr string, cfg *tls.Config) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, clientOptions(cfg)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestClusterOverGRPC(t *testing.T) {
	gc := newGRPCCluster(t, 2, 3)
	pub := gc.key.Public().(ed25519.PublicKey)
	ctx := context.Background()
	t0 := time.Unix(1700000000, 0).UTC()
	for h := int64(2); h < 5; h++ {
		for _, req := range []*privval.SignRequest{vote(h, 0, privval.StepPrevote, "X", t0), precommitWithExt(h, 0, "X", t0)} {
			resp, err := gc.coord.Sign(ctx, req)
			if err != nil {
				t.Fatalf("%d/%s: %v", h, req.Step, err)
			}
			if !ed25519.Verify(pub, req.SignBytes, resp.Signature) {
				t.Fatal("signature does not verify")
			}
		}
	}
}

func TestClusterServiceRefusals(t *testing.T) {
	gc := newGRPCCluster(t, 2, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Unix(1700000000, 0).UTC()

	// No client certificate: the TLS handshake fails, no handler runs.
	anon := cosignerv1.NewCosignerClient(dialWith(t, gc.addrs[2], &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}))
	if _, err := anon.Ping(ctx, &cosignerv1.PingRequest{}); err == nil {
		t.Fatal("a client without a cluster certificate was served")
	}
	// A certificate from another cluster's CA: refused the same way.
	otherCA, _ := clustertls.NewCA()
	otherCert, _ := otherCA.Issue(1)
	otherTLS, err := clustertls.New(otherCA.CertPEM(), otherCert.CertPEM, otherCert.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	stranger := cosignerv1.NewCosignerClient(dialWith(t, gc.addrs[2], otherTLS.ClientTLSConfig(3)))
	if _, err := stranger.Ping(ctx, &cosignerv1.PingRequest{}); err == nil {
		t.Fatal("a client of another cluster was served")
	}

	// Cosigner 2 is a cluster member but not the leader: cosigner 3 refuses
	// it commitments and shares.
	from2 := cosignerv1.NewCosignerClient(gc.dial(t, 2, 3))
	gr, err := from2.GetNonceCommitments(ctx, &cosignerv1.GetNonceCommitmentsRequest{Count: 4})
	if err != nil || gr.GetRefusal().GetReason() != cosignerv1.RefusalReason_REFUSAL_REASON_NOT_LEADER || len(gr.GetCommitments()) != 0 {
		t.Fatalf("commitments to a non-leader: %v %v", gr, err)
	}
	c1, _ := gc.shares[0].Pool().Generate(1)
	c3, _ := gc.shares[2].Pool().Generate(1)
	req := &ShareRequest{ChainID: testChain, Messages: []ShareMessage{{Kind: KindPrevote, Height: 9,
		SignBytes: vote(9, 0, privval.StepPrevote, "X", t0).SignBytes, Commitments: []PublishedCommitment{c1[0], c3[0]}}}}
	sr, err := from2.Sign(ctx, shareRequestToProto(req, nil))
	if err != nil || sr.GetResults()[0].GetRefusal().GetReason() != cosignerv1.RefusalReason_REFUSAL_REASON_NOT_LEADER {
		t.Fatalf("sign from a non-leader: %v %v", sr, err)
	}
	if m, _ := gc.shares[2].Mark(testChain); m.Height != 1 {
		t.Fatalf("a refused request moved the mark to %d", m.Height)
	}

	// From the leader: a share, then the same commitment again is refused.
	leader := NewGRPCPeer(3, gc.dial(t, 1, 3), gc.guard(1))
	if _, err := leader.Sign(ctx, req); err != nil {
		t.Fatal(err)
	}
	var refusal *signstate.Refusal
	if _, err := leader.Sign(ctx, req); !errors.As(err, &refusal) || refusal.Reason != signstate.RefusedUnknownCommitment {
		t.Fatalf("reused commitment: %v", err)
	}
	// A height far ahead of the mark (bound 100) is refused.
	c1, _ = gc.shares[0].Pool().Generate(1)
	c3, _ = gc.shares[2].Pool().Generate(1)
	far := &ShareRequest{ChainID: testChain, Messages: []ShareMessage{{Kind: KindPrevote, Height: 100000,
		SignBytes: vote(100000, 0, privval.StepPrevote, "X", t0).SignBytes, Commitments: []PublishedCommitment{c1[0], c3[0]}}}}
	if _, err := leader.Sign(ctx, far); !errors.As(err, &refusal) || refusal.Reason != signstate.RefusedTooFarAhead {
		t.Fatalf("far ahead: %v", err)
	}
	// When leadership moves to 2 in cosigner 3's view, 1 is refused.
	gc.rafts[2].setLeader(2)
	c1, _ = gc.shares[0].Pool().Generate(1)
	c3, _ = gc.shares[2].Pool().Generate(1)
	req.Messages[0].Commitments = []PublishedCommitment{c1[0], c3[0]}
	if _, err := leader.Sign(ctx, req); !errors.As(err, &refusal) || refusal.Reason != signstate.RefusedNotLeader {
		t.Fatalf("old leader: %v", err)
	}
}

// TestTransferLeadershipOnlyFromLeader: the leader's cluster service refuses
// a leadership transfer asked by any other member, cluster certificate or
// not, and executes one asked by the leader itself.
func TestTransferLeadershipOnlyFromLeader(t *testing.T) {
	gc := newGRPCCluster(t, 2, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	leader := gc.rafts[0]

	for _, from := range []int{2, 3} {
		for _, target := range []int{from, 5 - from} {
			client := cosignerv1.NewCosignerClient(gc.dial(t, from, 1))
			resp, err := client.TransferLeadership(ctx, &cosignerv1.TransferLeadershipRequest{TargetId: uint32(target)})
			if err != nil {
				t.Fatal(err)
			}
			r := resp.GetRefusal()
			if r.GetReason() != cosignerv1.RefusalReason_REFUSAL_REASON_NOT_LEADER || resp.GetLeaderId() != 1 ||
				!strings.Contains(r.GetMessage(), "only the leader itself") {
				t.Errorf("transfer to %d asked by follower %d: %v, want a NOT_LEADER refusal naming leader 1", target, from, resp)
			}
		}
	}
	if got := leader.transferred(); len(got) != 0 {
		t.Fatalf("the leader executed transfers asked by followers: %v", got)
	}

	// A follower's service refuses too: it does not lead.
	resp, err := cosignerv1.NewCosignerClient(gc.dial(t, 1, 2)).TransferLeadership(ctx, &cosignerv1.TransferLeadershipRequest{TargetId: 3})
	if err != nil || resp.GetRefusal().GetReason() != cosignerv1.RefusalReason_REFUSAL_REASON_NOT_LEADER {
		t.Errorf("transfer asked of follower 2: %v %v, want NOT_LEADER", resp, err)
	}

	// The leader itself, with its own certificate: executed.
	resp, err = cosignerv1.NewCosignerClient(gc.dial(t, 1, 1)).TransferLeadership(ctx, &cosignerv1.TransferLeadershipRequest{TargetId: 2})
	if err != nil || resp.GetRefusal() != nil || resp.GetLeaderId() != 2 {
		t.Fatalf("transfer asked by the leader itself: %v %v, want leader 2", resp, err)
	}
	if got := leader.transferred(); len(got) != 1 || got[0] != 2 {
		t.Errorf("transfers executed: %v, want [2]", got)
	}
}
