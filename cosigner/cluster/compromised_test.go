package cluster

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/threshold"
)

// marklessPeer is a cosigner's share in an attacker's hands: it signs
// whatever it is asked, with nonces of its own pool, and keeps no mark.
type marklessPeer struct {
	share *threshold.KeyShare
	pool  *NoncePool
}

var _ PeerClient = marklessPeer{}

func (p marklessPeer) Commitments(_ context.Context, _ ed25519.PublicKey, n int) ([]PublishedCommitment, error) {
	return p.pool.Generate(n)
}

func (p marklessPeer) Sign(_ context.Context, req *ShareRequest) ([]threshold.SignatureShare, error) {
	nonces := make([]*threshold.Nonce, len(req.Messages))
	pkgs := req.Packages // set for the leader's own share only
	if len(pkgs) != len(req.Messages) {
		pkgs = make([]*threshold.SigningPackage, len(req.Messages))
	}
	for k, m := range req.Messages {
		var list []threshold.Commitment
		for _, c := range m.Commitments {
			list = append(list, c.Commitment)
			if c.Commitment.ID() == p.share.ID() {
				n, err := p.pool.Take(c)
				if err != nil {
					return nil, err
				}
				nonces[k] = n
			}
		}
		if pkgs[k] == nil {
			var err error
			if pkgs[k], err = threshold.NewSigningPackage(p.share.Group(), m.SignBytes, list); err != nil {
				return nil, err
			}
		}
	}
	return threshold.SignShares(p.share, nonces, pkgs)
}

// attacker is a compromised leader: cosigner 1, elected by Raft and so the
// leader in every honest cosigner's view, holding the shares of cosigners
// 1..f (its own and those of its accomplices) without their marks, and
// cosigner 1's cluster certificate. It is built from the coordinator's own
// pieces (buildShareRequest, fanOut, aggregate) but picks its quorums
// itself, skips the cluster's duplicate check, and never runs.
type attacker struct {
	c *Coordinator
	f int
}

// newAttacker takes over cosigners 1..f of gc; the others stay honest and
// are reached over gRPC with cosigner 1's certificate.
func newAttacker(t *testing.T, gc *grpcCluster, f int) *attacker {
	t.Helper()
	clients := map[int]PeerClient{}
	for id := 1; id <= len(gc.shares); id++ {
		if id <= f {
			share := gc.dealing.Shares[id-1]
			boot, _ := NewBootID()
			clients[id] = marklessPeer{share: share, pool: NewNoncePool(share, boot, 0)}
			continue
		}
		clients[id] = NewGRPCPeer(id, gc.dial(t, 1, id), gc.guard(1))
	}
	cfg := DefaultCoordinatorConfig()
	cfg.AttemptTimeout = time.Second
	c, err := NewCoordinator(cfg, gc.dealing.Group, 1, clients, &memState{}, discard)
	if err != nil {
		t.Fatal(err)
	}
	return &attacker{c: c, f: f}
}

// sign asks every cosigner of ids for a share of req, with one fresh
// commitment drawn from each for this request, as one coordinator round
// does, and aggregates the signature if every one released its share. It
// returns each cosigner's error (nil: it released a share).
func (a *attacker) sign(ctx context.Context, req *privval.SignRequest, ids []int) ([]byte, map[int]error, error) {
	quorum := make([]*peer, len(ids))
	commits := make([][]PublishedCommitment, len(ids))
	fetchErrs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		quorum[i] = a.c.peers[id-1]
		wg.Go(func() {
			commits[i], fetchErrs[i] = quorum[i].client.Commitments(ctx, a.c.group.PublicKey(), 1)
			if fetchErrs[i] == nil {
				fetchErrs[i] = a.c.checkCommitments(id, commits[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(fetchErrs...); err != nil {
		return nil, nil, fmt.Errorf("commitments of %v: %w", ids, err)
	}
	msgs := [][]byte{req.SignBytes}
	replies, pkgs, err := a.c.fanOut(ctx, buildShareRequest(req, a.c.group.PublicKey(), msgs, quorum, commits), quorum)
	if err != nil {
		return nil, nil, err
	}
	errs := map[int]error{}
	refused := false
	for i, r := range replies {
		if quorum[i].id <= a.f && r.err != nil {
			return nil, nil, fmt.Errorf("the attacker's own share %d: %w", quorum[i].id, r.err)
		}
		errs[quorum[i].id] = r.err
		refused = refused || r.err != nil
	}
	if refused {
		return nil, errs, nil
	}
	sigs, _, err := a.c.aggregate(req, msgs, pkgs, replies)
	if err != nil {
		return nil, errs, err
	}
	return sigs[0], errs, nil
}

// quorumsWith returns every set of m of the ids 1..n that holds 1..f, in
// increasing order.
func quorumsWith(m, n, f int) [][]int {
	var out [][]int
	var walk func(q []int, next int)
	walk = func(q []int, next int) {
		if len(q) == m {
			out = append(out, slices.Clone(q))
			return
		}
		for id := next; id <= n; id++ {
			walk(append(q, id), id+1)
		}
	}
	base := make([]int, f)
	for i := range base {
		base[i] = i + 1
	}
	walk(base, f+1)
	return out
}

// honestIn returns the ids of q above f (the honest cosigners).
func honestIn(q []int, f int) []int {
	var out []int
	for _, id := range q {
		if id > f {
			out = append(out, id)
		}
	}
	return out
}

// TestCompromisedLeader plays a compromised leader (cosigner 1, holding its
// own share, and with f > 1 those of cosigners 2..f too, none bound by a
// mark) against honest cosigners that are real ShareSigners with durable
// sign states and nonce pools behind the real gRPC service over mutual
// TLS. It asks for precommits of block A and of block B at one
// height/round, each from a quorum of its choice with fresh commitments
// from that quorum.
//
// Two quorums of M of N overlap in 2M − N cosigners. When both hold the f
// attackers, they share at least 2M − N − f honest ones, so:
//
//   - 2M − N − f ≥ 1 (3-of-4, 4-of-5 and 5-of-7 against a compromised
//     leader; 4-of-5 and 5-of-7 against two compromised cosigners): once
//     A is signed, every quorum the attacker asks for B holds an honest
//     cosigner that released its share of A and whose durable mark refuses
//     B with signstate.RefusedConflict. Only N − M + f cosigners ever
//     release a share of B, fewer than M, so no signature of B can be
//     aggregated, whatever quorum the attacker tries.
//   - 2M − N − f ≤ 0 (2-of-3 and 3-of-5 against a compromised leader;
//     3-of-4 against two compromised cosigners): the attacker picks two
//     quorums whose honest members are disjoint, each honest cosigner sees
//     only one of the two blocks, and the attacker aggregates two valid
//     ed25519 signatures of conflicting precommits at one height and round:
//     a double sign. This is the known 2M − N bound of every M-of-N
//     threshold signer, not a bug; no leader protocol changes it.
//
// The expected outcome is computed from the arithmetic, checked against
// the attacker's search over every pair of quorums, and then against what
// the cosigners do.
func TestCompromisedLeader(t *testing.T) {
	shapes := []struct{ m, n int }{{2, 3}, {3, 4}, {3, 5}, {4, 5}, {5, 7}}
	for _, sh := range shapes {
		m, n := sh.m, sh.n
		// f ≥ M attackers sign alone; three accomplices are enough to
		// cross every shape's bound.
		for f := 1; f < m && f <= 3; f++ {
			t.Run(fmt.Sprintf("%d-of-%d/f=%d", m, n, f), func(t *testing.T) {
				t.Parallel()
				compromisedLeader(t, m, n, f)
			})
		}
	}
}

func compromisedLeader(t *testing.T, m, n, f int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gc := serveGRPCCosigners(t, m, n)
	atk := newAttacker(t, gc, f)
	pub := gc.key.Public().(ed25519.PublicKey)
	reqA := vote(2, 0, privval.StepPrecommit, "A", testkit.T0)
	reqB := vote(2, 0, privval.StepPrecommit, "B", testkit.T0)
	// A and B are a double sign by the rules every cosigner applies.
	if _, err := signstate.Decide(signstate.Mark{Height: 2, Step: privval.StepPrecommit, SignBytes: reqA.SignBytes}, reqB); !errors.Is(err, signstate.ErrConflict) {
		t.Fatalf("precommits of A and B at 2/0: Decide = %v, want a conflict", err)
	}

	holds := 2*m-n-f >= 1
	quorums := quorumsWith(m, n, f)
	// The attacker's search: two quorums that share no honest cosigner.
	var disjoint [2][]int
	found := false
search:
	for _, q1 := range quorums {
		for _, q2 := range quorums {
			h1, h2 := honestIn(q1, f), honestIn(q2, f)
			if !slices.ContainsFunc(h1, func(id int) bool { return slices.Contains(h2, id) }) {
				disjoint, found = [2][]int{q1, q2}, true
				break search
			}
		}
	}
	if found == holds {
		t.Fatalf("2M − N − f = %d, but the search for two quorums holding cosigners 1..%d with no honest cosigner in common found %v (%v)",
			2*m-n-f, f, found, disjoint)
	}

	if !holds {
		sigA, errsA, err := atk.sign(ctx, reqA, disjoint[0])
		if err != nil || sigA == nil {
			t.Fatalf("precommit of A from %v: %v %v", disjoint[0], err, errsA)
		}
		sigB, errsB, err := atk.sign(ctx, reqB, disjoint[1])
		if err != nil || sigB == nil {
			t.Fatalf("precommit of B from %v: %v %v", disjoint[1], err, errsB)
		}
		if !ed25519.Verify(pub, reqA.SignBytes, sigA) || !ed25519.Verify(pub, reqB.SignBytes, sigB) {
			t.Fatal("an aggregate signature does not verify")
		}
		t.Logf("%d-of-%d, %d compromised: quorums %v and %v share no honest cosigner; the attacker holds valid signatures of precommits for A and B at 2/0 (the 2M − N bound, not a bug)",
			m, n, f, disjoint[0], disjoint[1])
		return
	}

	// Safe: A from the first quorum, then B from every quorum there is.
	qA := quorums[0]
	sigA, errsA, err := atk.sign(ctx, reqA, qA)
	if err != nil || sigA == nil || !ed25519.Verify(pub, reqA.SignBytes, sigA) {
		t.Fatalf("precommit of A from %v: %v %v", qA, err, errsA)
	}
	for _, id := range honestIn(qA, f) {
		if mk, _ := gc.shares[id-1].Mark(testChain); mk.Height != 2 || mk.Step != privval.StepPrecommit || !bytes.Equal(mk.SignBytes, reqA.SignBytes) {
			t.Fatalf("cosigner %d released its share of A; its mark is %d/%d/%s", id, mk.Height, mk.Round, mk.Step)
		}
	}
	releasedB := map[int]bool{}
	for id := 1; id <= f; id++ {
		releasedB[id] = true
	}
	for _, qB := range quorums {
		sig, errs, err := atk.sign(ctx, reqB, qB)
		if sig != nil || err != nil {
			t.Fatalf("precommit of B from %v after A from %v: signature %x, err %v", qB, qA, sig, err)
		}
		conflicts := 0
		for _, id := range honestIn(qB, f) {
			var refusal *signstate.Refusal
			switch {
			case !slices.Contains(qA, id):
				// It never saw A: nothing tells it B conflicts.
				if errs[id] != nil {
					t.Errorf("B from %v: cosigner %d, which never signed A, refused: %v", qB, id, errs[id])
				}
				releasedB[id] = true
			case !errors.As(errs[id], &refusal) || refusal.Reason != signstate.RefusedConflict || refusal.Signer != id:
				t.Errorf("B from %v: cosigner %d signed A, yet answered %v, want a %s refusal", qB, id, errs[id], signstate.RefusedConflict)
			default:
				conflicts++
			}
		}
		if conflicts == 0 {
			t.Errorf("B from %v after A from %v: no honest cosigner refused", qB, qA)
		}
	}
	if len(releasedB) != n-m+f || len(releasedB) >= m {
		t.Errorf("%d cosigners released a share of B (%v), want N − M + f = %d, fewer than M = %d", len(releasedB), releasedB, n-m+f, m)
	}
	t.Logf("%d-of-%d, %d compromised: after A from %v, B from each of the %d quorums holding cosigners 1..%d was refused by an honest cosigner's mark; %d cosigners ever released a share of B, %d needed",
		m, n, f, qA, len(quorums), f, len(releasedB), m)
}
