package cluster

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cosigner/cosigner/cosigner/metrics"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/internal/testkit/teststate"
	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/raft"
	"github.com/cosigner/cosigner/threshold"
)

var (
	discard = testkit.Log
	vote    = testkit.Vote
)

const testChain = testkit.Chain

func newTestState(t testing.TB, m signstate.Mark) *signstate.SignState {
	t.Helper()
	return teststate.New(t, m)
}

// memState is an in-memory Replicated.
type memState struct {
	mu   sync.Mutex
	last map[string]raft.Record
}

func (m *memState) Last(chainID string) (raft.Record, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.last[chainID]
	return r, ok
}

func (m *memState) Propose(_ context.Context, r raft.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil {
		m.last = map[string]raft.Record{}
	}
	if old, ok := m.last[r.ChainID]; !ok || r.Compare(old) > 0 {
		m.last[r.ChainID] = r
	}
	return nil
}

// faultyPeer wraps a PeerClient and fails or corrupts on demand.
type faultyPeer struct {
	PeerClient
	// probes, if not nil, receives a value (without blocking) at every
	// probe.
	probes chan struct{}
	// signs counts the Sign calls that reached the cosigner.
	signs   atomic.Int64
	mu      sync.Mutex
	down    bool
	corrupt bool
}

func (f *faultyPeer) set(down, corrupt bool) {
	f.mu.Lock()
	f.down, f.corrupt = down, corrupt
	f.mu.Unlock()
}

func (f *faultyPeer) state() (bool, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down, f.corrupt
}

var errPeerDown = errors.New("connection refused")

func (f *faultyPeer) Commitments(ctx context.Context, key ed25519.PublicKey, n int) ([]PublishedCommitment, error) {
	if down, _ := f.state(); down {
		return nil, errPeerDown
	}
	return f.PeerClient.Commitments(ctx, key, n)
}

var _ Prober = (*faultyPeer)(nil)

// Probe answers the leader's health probe, with the boot id of the share
// signer behind a LocalPeer.
func (f *faultyPeer) Probe(context.Context) (time.Duration, BootID, error) {
	if f.probes != nil {
		select {
		case f.probes <- struct{}{}:
		default:
		}
	}
	if down, _ := f.state(); down {
		return 0, BootID{}, errPeerDown
	}
	var boot BootID
	if l, ok := f.PeerClient.(LocalPeer); ok {
		boot = l.Keys.BootID()
	}
	return time.Millisecond, boot, nil
}

func (f *faultyPeer) Sign(ctx context.Context, req *ShareRequest) ([]threshold.SignatureShare, error) {
	down, corrupt := f.state()
	if down {
		return nil, errPeerDown
	}
	f.signs.Add(1)
	shares, err := f.PeerClient.Sign(ctx, req)
	if err == nil && corrupt {
		one := [32]byte{1}
		var s threshold.SignatureShare
		s.ID = shares[0].ID
		if _, err := s.Z.SetCanonicalBytes(one[:]); err != nil {
			panic(err)
		}
		s.Z.Add(&s.Z, &shares[0].Z)
		shares[0] = s
	}
	return shares, err
}

type testCluster struct {
	key     ed25519.PrivateKey
	dealing *threshold.Dealing
	signers []*ShareSigner
	peers   []*faultyPeer
	clients map[int]PeerClient
	state   *memState
	coord   *Coordinator
	cfg     CoordinatorConfig
	// clock is every share signer's clock for its height bound.
	clock *testkit.Clock
}

// testClusterOptions vary newTestClusterOpts's cluster; the zero value is
// newTestCluster's.
type testClusterOptions struct {
	// Metrics records the cluster's metrics; nil: none.
	Metrics *metrics.Metrics
	// Marks are the cosigners' initial marks by id; absent: height 1.
	Marks map[int]signstate.Mark
	// Client, if set, returns the client the coordinator of tc reaches
	// cosigner id through, given its share and the default client f.
	Client func(tc *testCluster, id int, share *threshold.KeyShare, f *faultyPeer) PeerClient
	// Configure, if set, adjusts the coordinator's configuration.
	Configure func(*CoordinatorConfig)
	// Log is the coordinator's logger; nil: discard.
	Log *slog.Logger
}

// newTestCluster deals key m-of-n, gives every cosigner its own durable
// state at height 1 and builds a coordinator on cosigner 1.
func newTestCluster(t testing.TB, m, n int) *testCluster {
	t.Helper()
	return newTestClusterWith(t, m, n, nil)
}

// newTestClusterWith is newTestCluster recording in mt (nil: no metrics).
func newTestClusterWith(t testing.TB, m, n int, mt *metrics.Metrics) *testCluster {
	t.Helper()
	return newTestClusterOpts(t, m, n, testClusterOptions{Metrics: mt})
}

// newShareSigner returns a share signer of share with its own durable
// state at mark and a fresh boot id, in tc's cluster.
func (tc *testCluster) newShareSigner(t testing.TB, share *threshold.KeyShare, mark signstate.Mark, mt *metrics.Metrics) *ShareSigner {
	t.Helper()
	boot, _ := NewBootID()
	s, err := NewShareSigner(share, NewNoncePool(share, boot, 0), SignerOptions{
		Chains:         []*signstate.SignState{newTestState(t, mark)},
		MaxHeightAhead: 100,
		MaxHeightRate:  1,
		Now:            tc.clock.Now,
		Metrics:        mt,
		Log:            discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newTestClusterOpts is newTestCluster varied by o.
func newTestClusterOpts(t testing.TB, m, n int, o testClusterOptions) *testCluster {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	dealing, err := threshold.Deal(key.Seed(), m, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCluster{key: key, dealing: dealing, state: &memState{}, clients: map[int]PeerClient{}, clock: testkit.NewClock(time.Now())}
	for i, share := range dealing.Shares {
		mark, ok := o.Marks[i+1]
		if !ok {
			mark = signstate.Mark{Height: 1}
		}
		s := tc.newShareSigner(t, share, mark, o.Metrics)
		f := &faultyPeer{PeerClient: LocalPeer{keyringOf(s)}}
		tc.signers = append(tc.signers, s)
		tc.peers = append(tc.peers, f)
		tc.clients[i+1] = f
		if o.Client != nil {
			tc.clients[i+1] = o.Client(tc, i+1, share, f)
		}
	}
	cfg := DefaultCoordinatorConfig()
	cfg.Metrics = o.Metrics
	// A request that cannot be signed fails at the deadline: shorter than
	// the default, but with the default attempt timeout, which a cold
	// commitment fetch under -race on a loaded 2-core machine needs.
	cfg.Deadline = 1500 * time.Millisecond
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	tc.cfg = cfg
	log := o.Log
	if log == nil {
		log = discard
	}
	tc.coord = tc.startCoordinator(t, 1, tc.state, log)
	return tc
}

// startCoordinator runs a coordinator on cosigner self of tc over state,
// until the test ends.
func (tc *testCluster) startCoordinator(t testing.TB, self int, state Replicated, log *slog.Logger) *Coordinator {
	t.Helper()
	coord, err := NewCoordinator(tc.cfg, tc.dealing.Group, self, tc.clients, state, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { coord.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return coord
}

var precommitWithExt = testkit.PrecommitWithExt

func TestCoordinatorSigns(t *testing.T) {
	for _, mn := range [][2]int{{2, 3}, {3, 5}} {
		t.Run(string(rune('0'+mn[0]))+"-of-"+string(rune('0'+mn[1])), func(t *testing.T) {
			tc := newTestCluster(t, mn[0], mn[1])
			pub := tc.key.Public().(ed25519.PublicKey)
			ctx := context.Background()
			t0 := time.Unix(1700000000, 0).UTC()
			for h := int64(2); h < 6; h++ {
				for _, req := range []*privval.SignRequest{
					vote(h, 0, privval.StepProposal, "B", t0),
					vote(h, 0, privval.StepPrevote, "B", t0),
					precommitWithExt(h, 0, "B", t0),
				} {
					resp, err := tc.coord.Sign(ctx, req)
					if err != nil {
						t.Fatalf("%d/%s: %v", h, req.Step, err)
					}
					if !ed25519.Verify(pub, req.SignBytes, resp.Signature) {
						t.Fatalf("%d/%s: signature does not verify", h, req.Step)
					}
					if (req.ExtSignBytes != nil) != (resp.ExtSignature != nil) {
						t.Fatalf("%d/%s: extension signature presence wrong", h, req.Step)
					}
					if req.ExtSignBytes != nil && !ed25519.Verify(pub, req.ExtSignBytes, resp.ExtSignature) {
						t.Fatal("extension signature does not verify")
					}
				}
			}
			// Every cosigner that signed recorded the mark durably: at least
			// M of them are at the last HRS.
			at := 0
			for _, s := range tc.signers {
				if m, _ := s.Mark(testChain); m.Height == 5 && m.Step == privval.StepPrecommit {
					at++
				}
			}
			if at < mn[0] {
				t.Fatalf("only %d cosigners recorded 5/0/precommit", at)
			}
		})
	}
}

func TestCoordinatorDuplicates(t *testing.T) {
	tc := newTestCluster(t, 2, 3)
	ctx := context.Background()
	t0 := time.Unix(1700000000, 0).UTC()
	first, err := tc.coord.Sign(ctx, vote(7, 0, privval.StepPrevote, "A", t0))
	if err != nil {
		t.Fatal(err)
	}
	again, err := tc.coord.Sign(ctx, vote(7, 0, privval.StepPrevote, "A", t0.Add(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if string(again.Signature) != string(first.Signature) || !again.Timestamp.Equal(t0) {
		t.Fatal("timestamp-only duplicate did not get the first signature and timestamp")
	}
	if _, err := tc.coord.Sign(ctx, vote(7, 0, privval.StepPrevote, "B", t0)); !errors.Is(err, signstate.ErrConflict) {
		t.Fatalf("conflicting prevote: %v", err)
	}
	if _, err := tc.coord.Sign(ctx, vote(6, 0, privval.StepPrecommit, "A", t0)); !errors.Is(err, signstate.ErrRegression) {
		t.Fatalf("regression: %v", err)
	}
	// A proposal repeated with another timestamp is signed afresh, over the
	// new timestamp (the node keeps its own timestamp for proposals).
	p1 := vote(8, 0, privval.StepProposal, "A", t0)
	if _, err := tc.coord.Sign(ctx, p1); err != nil {
		t.Fatal(err)
	}
	p2 := vote(8, 0, privval.StepProposal, "A", t0.Add(time.Second))
	resp, err := tc.coord.Sign(ctx, p2)
	if err != nil || !resp.Timestamp.Equal(p2.Timestamp) || !ed25519.Verify(tc.key.Public().(ed25519.PublicKey), p2.SignBytes, resp.Signature) {
		t.Fatalf("repeated proposal: %v", err)
	}
	// A duplicate precommit with an extension keeps its signature and gets
	// a fresh extension signature.
	pc := precommitWithExt(8, 0, "A", t0)
	firstPC, err := tc.coord.Sign(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	againPC, err := tc.coord.Sign(ctx, precommitWithExt(8, 0, "A", t0.Add(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if string(againPC.Signature) != string(firstPC.Signature) || !againPC.Timestamp.Equal(t0) ||
		!ed25519.Verify(tc.key.Public().(ed25519.PublicKey), pc.ExtSignBytes, againPC.ExtSignature) {
		t.Fatal("duplicate precommit with extension answered wrong")
	}
}

func TestCoordinatorSurvivesFailures(t *testing.T) {
	tc := newTestCluster(t, 2, 3)
	ctx := context.Background()
	pub := tc.key.Public().(ed25519.PublicKey)
	t0 := time.Unix(1700000000, 0).UTC()
	h := int64(10)
	sign := func() error {
		h++
		req := vote(h, 0, privval.StepPrevote, "A", t0)
		resp, err := tc.coord.Sign(ctx, req)
		if err == nil && !ed25519.Verify(pub, req.SignBytes, resp.Signature) {
			t.Fatal("signature does not verify")
		}
		return err
	}
	if err := sign(); err != nil {
		t.Fatal(err)
	}
	tc.peers[1].set(true, false) // cosigner 2 down
	if err := sign(); err != nil {
		t.Fatalf("one of three down: %v", err)
	}
	tc.peers[2].set(true, false) // cosigner 3 down too
	if err := sign(); err == nil {
		t.Fatal("signed with one of three cosigners")
	}
	// 2 back but sending bad shares, 3 still down: no signature, and the
	// error names cosigner 2.
	tc.peers[1].set(false, true)
	err := sign()
	if err == nil || !errors.Is(err, threshold.ErrInvalidShare) {
		t.Fatalf("bad share from cosigner 2: err = %v", err)
	}
	if got := threshold.Culprits(err); len(got) != 1 || got[0] != 2 {
		t.Fatalf("culprits = %v, want [2]", got)
	}
	for _, p := range tc.coord.Peers() {
		if p.ID == 2 && p.Healthy {
			t.Fatalf("cosigner 2 sent a bad share but is considered healthy: %+v", p)
		}
	}
	// 3 back: the leader routes around the suspect cosigner 2.
	tc.peers[2].set(false, false)
	for i := 0; i < 3; i++ {
		if err := sign(); err != nil {
			t.Fatalf("bad share from cosigner 2 not routed around: %v", err)
		}
	}
}

func TestShareSignerRefusals(t *testing.T) {
	tc := newTestCluster(t, 2, 3)
	s1, s2 := tc.signers[0], tc.signers[1]
	t0 := time.Unix(1700000000, 0).UTC()

	request := func(h int64, step privval.Step, block string) *ShareRequest {
		v := vote(h, 0, step, block, t0)
		c1, _ := s1.Pool().Generate(1)
		c2, _ := s2.Pool().Generate(1)
		return &ShareRequest{ChainID: testChain, Messages: []ShareMessage{{Kind: ShareKind(step), Height: h, SignBytes: v.SignBytes,
			Commitments: []PublishedCommitment{c1[0], c2[0]}}}}
	}
	reason := func(err error) signstate.RefusalReason {
		var r *signstate.Refusal
		if !errors.As(err, &r) {
			t.Fatalf("not a refusal: %v", err)
		}
		return r.Reason
	}

	req := request(20, privval.StepPrevote, "A")
	if _, err := s2.Sign(req); err != nil {
		t.Fatal(err)
	}
	// The same commitment again: its nonce is gone.
	if _, err := s2.Sign(req); reason(err) != signstate.RefusedUnknownCommitment {
		t.Fatalf("reused commitment: %v", err)
	}
	// A commitment from another boot.
	req = request(21, privval.StepPrevote, "A")
	req.Messages[0].Commitments[1].BootID[0] ^= 1
	if _, err := s2.Sign(req); reason(err) != signstate.RefusedUnknownCommitment {
		t.Fatalf("foreign boot id: %v", err)
	}
	// Conflict at the same HRS, then regression.
	if _, err := s2.Sign(request(20, privval.StepPrevote, "B")); reason(err) != signstate.RefusedConflict {
		t.Fatalf("conflict: %v", err)
	}
	if _, err := s2.Sign(request(19, privval.StepPrecommit, "A")); reason(err) != signstate.RefusedRegression {
		t.Fatalf("regression: %v", err)
	}
	// Same vote again with another timestamp is admitted (no double sign).
	again := request(20, privval.StepPrevote, "A")
	again.Messages[0].SignBytes = vote(20, 0, privval.StepPrevote, "A", t0.Add(time.Second)).SignBytes
	if _, err := s2.Sign(again); err != nil {
		t.Fatalf("timestamp-only repeat: %v", err)
	}
	// Too far ahead of the mark (bound 100 in newTestCluster).
	if _, err := s2.Sign(request(500, privval.StepPrevote, "A")); reason(err) != signstate.RefusedTooFarAhead {
		t.Fatalf("far ahead: %v", err)
	}
	// Labels that disagree with the sign bytes.
	lie := request(30, privval.StepPrevote, "A")
	lie.Messages[0].Height = 31
	if _, err := s2.Sign(lie); reason(err) != signstate.RefusedInvalidRequest {
		t.Fatalf("lying label: %v", err)
	}
	// Unknown chain.
	other := request(30, privval.StepPrevote, "A")
	other.ChainID = "other-chain"
	if _, err := s2.Sign(other); reason(err) != signstate.RefusedUnknownChain {
		t.Fatalf("unknown chain: %v", err)
	}
	// An extension after a prevote.
	ext := request(31, privval.StepPrevote, "A")
	e := precommitWithExt(31, 0, "A", t0)
	c1, _ := s1.Pool().Generate(1)
	c2, _ := s2.Pool().Generate(1)
	ext.Messages = append(ext.Messages, ShareMessage{Kind: KindVoteExtension, Height: 31, SignBytes: e.ExtSignBytes,
		Commitments: []PublishedCommitment{c1[0], c2[0]}})
	if _, err := s2.Sign(ext); reason(err) != signstate.RefusedInvalidRequest {
		t.Fatalf("extension of a prevote: %v", err)
	}
	// None of the refusals moved the mark past 20/prevote.
	if m, _ := s2.Mark(testChain); m.Height != 20 || m.Step != privval.StepPrevote {
		t.Fatalf("mark moved to %d/%s", m.Height, m.Step)
	}
}

// TestCoordinatorStepsDownWithoutQuorum: a leader that reaches fewer than M
// cosigners for StepDownAfter probes hands leadership over (a leader cut off
// from the others' gRPC while Raft still elects it would otherwise sign
// nothing).
func TestCoordinatorStepsDownWithoutQuorum(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	dealing, err := threshold.Deal(key.Seed(), 2, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	clients := map[int]PeerClient{}
	var peers []*faultyPeer
	for i, share := range dealing.Shares {
		boot, _ := NewBootID()
		s, err := NewShareSigner(share, NewNoncePool(share, boot, 0), SignerOptions{MaxHeightAhead: 100, Log: discard})
		if err != nil {
			t.Fatal(err)
		}
		f := &faultyPeer{PeerClient: LocalPeer{keyringOf(s)}, probes: make(chan struct{}, 64)}
		peers = append(peers, f)
		clients[i+1] = f
	}
	stepped := make(chan struct{}, 4)
	cfg := DefaultCoordinatorConfig()
	cfg.StepDownAfter = 2
	cfg.ProbeInterval = 10 * time.Millisecond
	cfg.StepDown = func(context.Context) error { stepped <- struct{}{}; return nil }
	coord, err := NewCoordinator(cfg, dealing.Group, 1, clients, &memState{}, discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { coord.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// One of three down: quorum holds, no step-down over several times
	// StepDownAfter probes (counted on the peer still up).
	peers[1].set(true, false)
	for range 3 * cfg.StepDownAfter {
		// Drain the probe count first: a probe seen now may predate the
		// peer going down.
		for len(peers[2].probes) > 0 {
			<-peers[2].probes
		}
		select {
		case <-stepped:
			t.Fatal("stepped down with a quorum reachable")
		case <-peers[2].probes:
		case <-time.After(10 * time.Second):
			t.Fatal("no probe")
		}
	}
	select {
	case <-stepped:
		t.Fatal("stepped down with a quorum reachable")
	default:
	}
	// Two of three down: the leader hands over.
	peers[2].set(true, false)
	select {
	case <-stepped:
	case <-time.After(10 * time.Second):
		t.Fatal("no step-down without a quorum")
	}
}

// TestShareSignerRefusalMetrics: each reason a cosigner refuses a share is
// counted under its label.
func TestShareSignerRefusalMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, "test")
	if err != nil {
		t.Fatal(err)
	}
	tc := newTestClusterWith(t, 2, 3, m)
	ctx := context.Background()
	ts := time.Unix(1700000000, 0)

	if _, err := tc.coord.Sign(ctx, vote(5, 0, privval.StepPrevote, "A", ts)); err != nil {
		t.Fatal(err)
	}
	// The coordinator's own check against the cluster's last signature.
	if _, err := tc.coord.Sign(ctx, vote(5, 0, privval.StepPrevote, "B", ts)); err == nil {
		t.Fatal("conflicting prevote signed")
	}
	if _, err := tc.coord.Sign(ctx, vote(4, 0, privval.StepPrevote, "A", ts)); err == nil {
		t.Fatal("regressing prevote signed")
	}
	// Beyond max_height_ahead (100 in the test cluster): every chosen
	// cosigner refuses.
	if _, err := tc.coord.Sign(ctx, vote(500, 0, privval.StepPrevote, "A", ts)); err == nil {
		t.Fatal("prevote 500 heights ahead signed")
	}
	counter := func(reason string) float64 {
		return testkit.Value(t, reg, "cosigner_sign_refusals_total", testkit.Labels("chain", testChain, "reason", reason))
	}
	if got := counter("conflict"); got != 1 {
		t.Errorf("conflict refusals = %v, want 1", got)
	}
	if got := counter("regression"); got != 1 {
		t.Errorf("regression refusals = %v, want 1", got)
	}
	if got := counter("too_far_ahead"); got < 1 {
		t.Errorf("too_far_ahead refusals = %v, want at least 1", got)
	}
	// Share RPCs of the signed prevote and the refused request.
	if n := testkit.HistogramCount(t, reg, "cosigner_peer_share_rpc_duration_seconds", nil); n < 4 {
		t.Errorf("share RPCs observed: %d, want at least 4", n)
	}
	if n := testkit.HistogramCount(t, reg, "cosigner_state_write_duration_seconds", nil); n < 2 {
		t.Errorf("state writes observed: %d, want at least 2 (two cosigners signed prevote 5)", n)
	}
}

// countingState is a memState that counts proposals and signals each.
type countingState struct {
	memState
	proposals atomic.Int64
	proposed  chan struct{}
}

func (s *countingState) Propose(ctx context.Context, r raft.Record) error {
	err := s.memState.Propose(ctx, r)
	s.proposals.Add(1)
	select {
	case s.proposed <- struct{}{}:
	default:
	}
	return err
}

// TestCoordinatorReplicatesAtMostEveryInterval: signatures back to back
// are proposed through Raft at most once per ReplicateInterval (the first
// at once, the newest after the interval), not once each, and the last
// one always reaches the replicated state.
func TestCoordinatorReplicatesAtMostEveryInterval(t *testing.T) {
	tc := newTestCluster(t, 2, 3)
	state := &countingState{proposed: make(chan struct{}, 1)}
	coord := tc.startCoordinator(t, 1, state, discard)
	interval := DefaultCoordinatorConfig().ReplicateInterval
	if interval <= 0 {
		t.Fatalf("DefaultCoordinatorConfig().ReplicateInterval = %v, want > 0", interval)
	}
	ctx := context.Background()
	t0 := time.Unix(1700000000, 0).UTC()
	const heights = 30
	start := time.Now()
	var last int64
	for h := int64(2); h < 2+heights; h++ {
		tc.clock.Advance(time.Second)
		if _, err := coord.Sign(ctx, testkit.Vote(h, 0, privval.StepPrevote, "A", t0)); err != nil {
			t.Fatalf("height %d: %v", h, err)
		}
		last = h
	}
	elapsed := time.Since(start)

	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		if r, ok := state.Last(testChain); ok && r.Height == last {
			break
		}
		select {
		case <-state.proposed:
		case <-deadline.C:
			r, _ := state.Last(testChain)
			t.Fatalf("the last signature (height %d) was not replicated; the replicated state holds height %d", last, r.Height)
		}
	}
	// The first at once, one per interval while signing, the newest after.
	limit := 2 + int64(elapsed/interval)
	if n := state.proposals.Load(); n > limit {
		t.Errorf("%d signatures in %v took %d proposals, want at most %d (one per %v)", heights, elapsed.Round(time.Millisecond), n, limit, interval)
	}
}

// TestCoordinatorFlush: records held back by ReplicateInterval reach the
// replicated state at once when a leader about to hand over flushes.
func TestCoordinatorFlush(t *testing.T) {
	tc := newTestClusterOpts(t, 2, 3, testClusterOptions{Configure: func(c *CoordinatorConfig) { c.ReplicateInterval = time.Hour }})
	state := &countingState{proposed: make(chan struct{}, 1)}
	coord := tc.startCoordinator(t, 1, state, discard)
	ctx := context.Background()
	t0 := time.Unix(1700000000, 0).UTC()
	sign := func(h int64) {
		t.Helper()
		tc.clock.Advance(time.Second)
		if _, err := coord.Sign(ctx, testkit.Vote(h, 0, privval.StepPrevote, "A", t0)); err != nil {
			t.Fatalf("height %d: %v", h, err)
		}
	}
	sign(2)
	select { // the first record is proposed at once
	case <-state.proposed:
	case <-time.After(10 * time.Second):
		t.Fatal("the first record was not proposed")
	}
	sign(3)
	sign(4)
	if r, _ := state.Last(testChain); r.Height != 2 {
		t.Fatalf("replicated height %d before the flush, want 2 (the rest held for the interval)", r.Height)
	}
	if err := coord.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ := state.Last(testChain); r.Height != 4 {
		t.Fatalf("replicated height %d after the flush, want 4", r.Height)
	}
}
