package cluster

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/cosigner/cosigner/cosigner/clustertls"
	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/internal/testkit/teststate"
	"github.com/cosigner/cosigner/privval"
	cosignerv1 "github.com/cosigner/cosigner/proto/cosigner/v1"
	"github.com/cosigner/cosigner/threshold"
)

// keyringOf is the keyring of one share signer, for tests.
func keyringOf(s *ShareSigner) *Keyring {
	k, err := NewKeyring(s)
	if err != nil {
		panic(err)
	}
	return k
}

const (
	chainA = "chain-a"
	chainB = "chain-b"
)

// twoKeyCluster is a 2-of-3 cluster signing chainA with key A and chainB
// with key B, over mutual TLS, cosigner 1 leading.
type twoKeyCluster struct {
	keyA, keyB ed25519.PublicKey
	keys       []*Keyring
	peers      []*GRPCPeer // cosigner 1's clients of cosigners 2 and 3 (index id-1; [0] nil)
	coord      *Coordinator
}

// newTwoKeyCluster starts the cosigners and, with coordinate, cosigner 1's
// coordinator (which tops up commitment pools in the background). The
// cosigners in onlyA hold key A alone (not restarted yet after key B was
// added).
func newTwoKeyCluster(t *testing.T, coordinate bool, onlyA ...int) *twoKeyCluster {
	t.Helper()
	deal := func() *threshold.Dealing {
		_, key, _ := ed25519.GenerateKey(nil)
		d, err := threshold.Deal(key.Seed(), 2, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := deal(), deal()
	ca, err := clustertls.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Discard()
	tc := &twoKeyCluster{keyA: a.Group.PublicKey(), keyB: b.Group.PublicKey(), peers: make([]*GRPCPeer, 4)}
	var addrs []string
	var tlss []*clustertls.Identity
	for i := range 3 {
		id := i + 1
		boot, _ := NewBootID()
		signer := func(share *threshold.KeyShare, chain string) *ShareSigner {
			s, err := NewShareSigner(share, NewNoncePool(share, boot, 0), SignerOptions{
				Chains: []*signstate.SignState{teststate.NewOf(t, chain, signstate.Mark{Height: 1})}, MaxHeightAhead: 100, Log: discard})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		signers := []*ShareSigner{signer(a.Shares[i], chainA), signer(b.Shares[i], chainB)}
		if slices.Contains(onlyA, id) {
			signers = signers[:1]
		}
		k, err := NewKeyring(signers...)
		if err != nil {
			t.Fatal(err)
		}
		tc.keys = append(tc.keys, k)
		cert, _ := ca.Issue(id)
		ct, err := clustertls.New(ca.CertPEM(), cert.CertPEM, cert.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(ct.ServerTLSConfig())))
		cosignerv1.RegisterCosignerServer(srv, NewService(k, &staticRaft{self: id, leader: 1}, "test", NewEpochGuard(share.EpochOf(a.Group, share.FirstEpoch), id, discard, nil)))
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { srv.Serve(lis); close(done) }()
		t.Cleanup(func() { srv.Stop(); <-done })
		addrs = append(addrs, lis.Addr().String())
		tlss = append(tlss, ct)
	}
	clients := map[int]PeerClient{1: LocalPeer{tc.keys[0]}}
	for id := 2; id <= 3; id++ {
		tc.peers[id-1] = NewGRPCPeer(id, dialWith(t, addrs[id-1], tlss[0].ClientTLSConfig(id)), NewEpochGuard(share.EpochOf(a.Group, share.FirstEpoch), 1, discard, nil))
		clients[id] = tc.peers[id-1]
	}
	cfg := DefaultCoordinatorConfig()
	cfg.ChainKeys = map[string]*threshold.GroupKey{chainA: a.Group, chainB: b.Group}
	tc.coord, err = NewCoordinator(cfg, a.Group, 1, clients, &memState{}, discard)
	if err != nil {
		t.Fatal(err)
	}
	if !coordinate {
		return tc
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tc.coord.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return tc
}

// TestTwoKeysOneCluster: one coordinator signs two chains, each with its
// own key, and every signature verifies for its chain's key only.
func TestTwoKeysOneCluster(t *testing.T) {
	tc := newTwoKeyCluster(t, true)
	ctx := context.Background()
	for chain, pub := range map[string]ed25519.PublicKey{chainA: tc.keyA, chainB: tc.keyB} {
		got, _ := tc.coord.PubKey(ctx, chain)
		if !got.Equal(pub) {
			t.Errorf("PubKey(%s) = %X, want %X", chain, got, pub)
		}
	}
	for h := int64(2); h < 6; h++ {
		for _, chain := range []string{chainA, chainB} {
			req := testkit.VoteOf(chain, h, 0, privval.StepPrevote, "X", testkit.T0)
			resp, err := tc.coord.Sign(ctx, req)
			if err != nil {
				t.Fatalf("%s %d: %v", chain, h, err)
			}
			pub, other := tc.keyA, tc.keyB
			if chain == chainB {
				pub, other = other, pub
			}
			if !ed25519.Verify(pub, req.SignBytes, resp.Signature) || ed25519.Verify(other, req.SignBytes, resp.Signature) {
				t.Fatalf("%s %d: the signature is not of the chain's key alone", chain, h)
			}
		}
	}
	for i, k := range tc.keys {
		for _, chain := range []string{chainA, chainB} {
			if m, _ := k.Mark(chain); m.Height > 5 {
				t.Errorf("cosigner %d %s mark %d", i+1, chain, m.Height)
			}
		}
	}
}

// TestShareBoundToKey: a share request is bound to its key. Commitments of
// key A in a request for key B's chain name no nonce of key B; a request
// naming key A for a chain signed with key B here is refused; a key the
// cosigner holds no share of, or none named where it holds several, is
// refused; chain B's mark does not move, and key A's commitments still
// sign for chain A afterwards.
func TestShareBoundToKey(t *testing.T) {
	tc := newTwoKeyCluster(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p2 := tc.peers[1]
	req := testkit.VoteOf(chainB, 3, 0, privval.StepPrevote, "X", testkit.T0)
	shareReq := func(key ed25519.PublicKey, commitsOf ed25519.PublicKey) *ShareRequest {
		c1, err := LocalPeer{tc.keys[0]}.Commitments(ctx, commitsOf, 1)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := p2.Commitments(ctx, commitsOf, 1)
		if err != nil {
			t.Fatal(err)
		}
		return &ShareRequest{ChainID: chainB, GroupKey: key, Messages: []ShareMessage{{Kind: KindPrevote, Height: 3, SignBytes: req.SignBytes,
			Commitments: []PublishedCommitment{c1[0], c2[0]}}}}
	}
	poolA := func() int { s, _ := tc.keys[1].ForKey(tc.keyA); return s.Pool().Len() }
	poolB := func() int { s, _ := tc.keys[1].ForKey(tc.keyB); return s.Pool().Len() }

	refused := func(name string, sr *ShareRequest, reason signstate.RefusalReason, want string) {
		t.Helper()
		_, err := p2.Sign(ctx, sr)
		var r *signstate.Refusal
		if !errors.As(err, &r) || r.Reason != reason || !strings.Contains(r.Error(), want) {
			t.Errorf("%s: %v, want refusal %v with %q", name, err, reason, want)
		}
	}
	// Key A's commitments under key B's name: B's pool knows none of them.
	sr := shareReq(tc.keyB, tc.keyA)
	a0, b0 := poolA(), poolB()
	refused("A's commitments for B", sr, signstate.RefusedUnknownCommitment, "unknown or already used")
	if poolA() != a0 || poolB() != b0 {
		t.Errorf("pools changed: A %d -> %d, B %d -> %d", a0, poolA(), b0, poolB())
	}
	// The same commitments still sign for key A's chain: nothing of key A
	// was consumed.
	reqA := testkit.VoteOf(chainA, 3, 0, privval.StepPrevote, "X", testkit.T0)
	sr.ChainID, sr.GroupKey, sr.Messages[0].SignBytes = chainA, tc.keyA, reqA.SignBytes
	if _, err := p2.Sign(ctx, sr); err != nil {
		t.Errorf("key A's commitments, after the refusal, for key A's chain: %v", err)
	}
	// Key A named for chain B: refused by the share signer of key A, which
	// does not sign chain B.
	refused("key A for chain B", shareReq(tc.keyA, tc.keyA), signstate.RefusedUnknownChain, "is not signed with validator key")
	// A key not held here.
	_, stranger, _ := ed25519.GenerateKey(nil)
	refused("unknown key", shareReq(tc.keyB, tc.keyB).withKey(stranger.Public().(ed25519.PublicKey)), signstate.RefusedUnknownChain, "no share of validator key")
	// No key named, with two held.
	refused("no key", shareReq(tc.keyB, tc.keyB).withKey(nil), signstate.RefusedUnknownChain, "names no validator key")
	if _, err := p2.Commitments(ctx, stranger.Public().(ed25519.PublicKey), 1); err == nil || !strings.Contains(err.Error(), "no share of validator key") {
		t.Errorf("commitments of an unknown key: %v", err)
	}
	if m, _ := tc.keys[1].Mark(chainB); m.Height != 1 {
		t.Errorf("%s mark moved to %d", chainB, m.Height)
	}
	// The right key and commitments sign.
	if _, err := p2.Sign(ctx, shareReq(tc.keyB, tc.keyB)); err != nil {
		t.Errorf("a well-bound request: %v", err)
	}
}

// TestKeyNotEverywhereYet: while one cosigner holds key A alone (it has
// not restarted since key B was added), chain B signs with the two others
// and chain A with any two; the lagging cosigner's refusal of B does not
// make it unhealthy.
func TestKeyNotEverywhereYet(t *testing.T) {
	tc := newTwoKeyCluster(t, true, 2)
	ctx := context.Background()
	for h := int64(2); h < 6; h++ {
		for _, chain := range []string{chainB, chainA} {
			req := testkit.VoteOf(chain, h, 0, privval.StepPrevote, "X", testkit.T0)
			resp, err := tc.coord.Sign(ctx, req)
			if err != nil {
				t.Fatalf("%s %d: %v", chain, h, err)
			}
			pub := tc.keyA
			if chain == chainB {
				pub = tc.keyB
			}
			if !ed25519.Verify(pub, req.SignBytes, resp.Signature) {
				t.Fatalf("%s %d: the signature is not of the chain's key", chain, h)
			}
		}
	}
	if m, ok := tc.keys[1].Mark(chainB); ok {
		t.Errorf("cosigner 2 has a mark of chain B: %+v", m)
	}
	for _, p := range tc.coord.Peers() {
		if !p.Reachable {
			t.Errorf("cosigner %d unreachable after refusing a key it lacks: %s", p.ID, p.LastError)
		}
	}
}

func (r *ShareRequest) withKey(k ed25519.PublicKey) *ShareRequest { r.GroupKey = k; return r }

// TestNewKeyringRefuses: one key twice, a chain under two keys and keys of
// different cosigner ids are refused.
func TestNewKeyringRefuses(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	d1, _ := threshold.Deal(key.Seed(), 2, 3, nil)
	d2, _ := threshold.Deal(key.Seed(), 2, 3, nil)
	_, other, _ := ed25519.GenerateKey(nil)
	d3, _ := threshold.Deal(other.Seed(), 2, 3, nil)
	boot, _ := NewBootID()
	mk := func(share *threshold.KeyShare, chain string) *ShareSigner {
		s, err := NewShareSigner(share, NewNoncePool(share, boot, 0), SignerOptions{
			Chains: []*signstate.SignState{teststate.NewOf(t, chain, signstate.Mark{Height: 1})}, Log: discard})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		name    string
		signers []*ShareSigner
		want    string
	}{
		{"same key twice", []*ShareSigner{mk(d1.Shares[0], chainA), mk(d2.Shares[0], chainB)}, "configured twice"},
		{"chain under two keys", []*ShareSigner{mk(d1.Shares[0], chainA), mk(d3.Shares[0], chainA)}, "signed by key"},
		{"other ids", []*ShareSigner{mk(d1.Shares[0], chainA), mk(d3.Shares[1], chainB)}, "same shape and ids"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewKeyring(tc.signers...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewKeyring: %v, want %q", err, tc.want)
			}
		})
	}
}
