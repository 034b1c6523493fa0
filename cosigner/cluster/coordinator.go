package cluster

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/cosigner/cosigner/cosigner/metrics"
	"github.com/cosigner/cosigner/cosigner/signstate"

	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/raft"
	"github.com/cosigner/cosigner/threshold"
)

// PeerClient is how the leader reaches one cosigner, itself included. Both
// methods must honour ctx's deadline. Sign returns a *signstate.Refusal when the
// cosigner refused; any other error is a transport failure.
type PeerClient interface {
	// Commitments asks the cosigner for n fresh nonce commitments of its
	// share of validator key key.
	Commitments(ctx context.Context, key ed25519.PublicKey, n int) ([]PublishedCommitment, error)
	// Sign asks the cosigner for its signature shares of req.
	Sign(ctx context.Context, req *ShareRequest) ([]threshold.SignatureShare, error)
}

// Prober is a PeerClient that can also be asked, cheaply, whether the
// cosigner answers. The coordinator probes such peers every second, so that
// a cosigner it has no reason to call is still known to be up or down, and
// which process answers as it (two alternating boot ids are two live
// copies of one cosigner).
type Prober interface {
	// Probe returns the round-trip time of one health request and the
	// boot id of the process that answered it (zero if it sent none).
	Probe(ctx context.Context) (time.Duration, BootID, error)
}

// Starter is a PeerClient that can send a share request without waiting
// for its answer: StartSign sends req and returns a function that waits for
// the shares (until ctx ends) and says when they arrived. The leader sends
// to such cosigners from the request's own goroutine, with no goroutine
// started, and waits once its own share is done.
type Starter interface {
	StartSign(ctx context.Context, req *ShareRequest) func() ([]threshold.SignatureShare, time.Time, error)
}

// Replicated is the cluster's replicated sign state as the leader uses it:
// the last record of each chain, and a way to replicate a new one.
type Replicated interface {
	Last(chainID string) (raft.Record, bool)
	Propose(ctx context.Context, r raft.Record) error
}

// LocalPeer serves the leader's own shares in-process.
type LocalPeer struct{ Keys *Keyring }

var _ PeerClient = LocalPeer{}

// Commitments draws n fresh nonces from the local pool of key.
func (l LocalPeer) Commitments(_ context.Context, key ed25519.PublicKey, n int) ([]PublishedCommitment, error) {
	s, err := l.Keys.ForKey(key)
	if err != nil {
		return nil, err
	}
	return s.Pool().Generate(n)
}

// Sign signs with the local share of req's key. A refusal carries the
// share signer's mark, as the gRPC service reports it.
func (l LocalPeer) Sign(_ context.Context, req *ShareRequest) ([]threshold.SignatureShare, error) {
	signer, err := l.Keys.ForKey(req.GroupKey)
	if err != nil {
		return nil, &signstate.Refusal{Signer: l.Keys.ID(), Reason: signstate.RefusedUnknownChain, Err: fmt.Errorf("chain %q: %w", req.ChainID, err)}
	}
	shares, err := signer.Sign(req)
	var refusal *signstate.Refusal
	if errors.As(err, &refusal) && refusal.Last == nil && reportsMark(refusal.Reason) {
		if m, ok := signer.Mark(req.ChainID); ok {
			refusal.Last = &signstate.Mark{Height: m.Height, Round: m.Round, Step: m.Step}
		}
	}
	return shares, err
}

// reportsMark reports whether a refusal for reason carries the cosigner's
// high-water mark.
func reportsMark(reason signstate.RefusalReason) bool {
	return reason == signstate.RefusedRegression || reason == signstate.RefusedConflict || reason == signstate.RefusedTooFarAhead
}

// CoordinatorConfig tunes the leader's coordinator.
type CoordinatorConfig struct {
	// AttemptTimeout bounds one round of share RPCs.
	AttemptTimeout time.Duration
	// Deadline bounds a whole sign request, retries included; the node
	// gives up after 5 s, so this stays well below.
	Deadline time.Duration
	// PoolTarget is how many commitments the leader keeps per cosigner, and
	// PoolLow the level that triggers a top-up.
	PoolTarget, PoolLow int
	// ProbeInterval is how often every cosigner is probed; RefillInterval
	// how often, at the least, pools are topped up.
	ProbeInterval, RefillInterval time.Duration
	// StepDownAfter is how many probes in a row may reach fewer than M
	// cosigners before the leader hands leadership over with StepDown; 0
	// never.
	StepDownAfter int
	// StepDown hands leadership away (cut off from the others' gRPC while
	// Raft still elects this cosigner), so a better-placed cosigner can
	// lead; nil: never.
	StepDown func(context.Context) error
	// Metrics records share RPCs, refusals and Raft applies; nil: none.
	Metrics *metrics.Metrics
	// ReplicateInterval is the least time between two Raft proposals of the
	// same chain's sign state: a record signed sooner after the last
	// proposal waits, and records signed meanwhile collapse into the
	// newest. Every proposal costs a bolt commit (an fdatasync) on every
	// member and an AppendEntries to each follower; Raft only carries the
	// last signature to the next leader, the cosigners' own marks prevent
	// double signs. 0: the first record after a quiet spell is proposed at
	// once and the rest as fast as Raft takes them.
	ReplicateInterval time.Duration
	// Duplicates holds the cosigner ids found answering as two live
	// processes, which are never chosen. Pass the same one to every
	// coordinator of a process, so that an id stays out when this
	// cosigner leads again; nil: the coordinator keeps its own.
	Duplicates *Duplicates
	// SignRawBytes holds the chain ids with sign_raw_bytes = true, whose
	// raw-bytes requests SignRawBytes serves.
	SignRawBytes map[string]bool
	// Guard, when set, is the doppelganger watch (doppel.Guards): asked
	// before every signature, told of every precommit signed.
	Guard Guard
	// ChainKeys maps a chain to the validator key it is signed with when
	// that is not the coordinator's group (several keys in one cluster,
	// each of the group's shape); chains not listed are signed with the
	// group.
	ChainKeys map[string]*threshold.GroupKey
}

// Guard decides whether a chain may sign now and learns what was signed.
// Allow returns why chainID must not sign (an error returned to the node
// as is), or nil; Signed records a precommit (blockHash empty for nil)
// and its signature before the signature leaves the process. Both must
// be quick and safe for concurrent use.
type Guard interface {
	Allow(chainID string) error
	Signed(chainID string, height int64, round int32, blockHash, sig []byte)
}

// DefaultCoordinatorConfig returns timeouts for a LAN or a WireGuard link.
func DefaultCoordinatorConfig() CoordinatorConfig {
	return CoordinatorConfig{AttemptTimeout: time.Second, Deadline: 3 * time.Second, PoolTarget: 64, PoolLow: 16,
		ProbeInterval: time.Second, RefillInterval: time.Second, StepDownAfter: 3, ReplicateInterval: 100 * time.Millisecond}
}

// peer is the leader's view of one cosigner.
type peer struct {
	id     int
	client PeerClient

	mu sync.Mutex
	// commits are the fresh commitments of each key (by the coordinator's
	// key index), oldest first.
	commits [][]PublishedCommitment
	boots   bootHistory
	rtt     time.Duration // smoothed share RPC round trip
	pingRTT time.Duration // last probe round trip
	healthy bool
	lastErr error
	// suspectUntil: the cosigner sent an invalid share; it is chosen last
	// until then, whatever its transport health says.
	suspectUntil time.Time
	// ahead is, per chain, the high-water mark the cosigner reported when
	// it last refused a request by its own mark (regression, conflict).
	// While a request is not above it, the cosigner is chosen last: it
	// would refuse again. Forgotten when its process changes.
	ahead map[string]signstate.Mark
}

// suspectPeriod is how long a cosigner that sent an invalid share is chosen
// only as a last resort.
const suspectPeriod = time.Minute

func (p *peer) suspect(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.suspectUntil = time.Now().Add(suspectPeriod)
	p.lastErr = err
}

// usable reports whether p is healthy and not suspect.
func (p *peer) usable(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.healthy && now.After(p.suspectUntil)
}

// pop takes k commitments of key, or reports that too few are held.
func (p *peer) pop(key, k int) ([]PublishedCommitment, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.commits[key]) < k {
		return nil, false
	}
	out := slices.Clone(p.commits[key][:k])
	p.commits[key] = p.commits[key][k:]
	return out, true
}

// held returns the number of commitments of key held.
func (p *peer) held(key int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.commits[key])
}

// dropCommitsLocked forgets every commitment held, of every key. p.mu must
// be held.
func (p *peer) dropCommitsLocked() {
	for i := range p.commits {
		p.commits[i] = nil
	}
}

// add stores fresh commitments from a call sent at sent; a new boot id
// drops the old ones, whose nonces died with the cosigner's previous
// process, and commitments of a process already replaced are dropped. It
// returns the boot ids in play when they show two live processes
// answering as this id (see bootHistory).
func (p *peer) add(key int, cs []PublishedCommitment, sent time.Time) []BootID {
	if len(cs) == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch seen, dup := p.observeLocked(cs[0].BootID, sent); seen {
	case bootDuplicate:
		return dup
	case bootStale:
		return nil
	}
	for _, c := range cs {
		if c.BootID == p.boots.current {
			p.commits[key] = append(p.commits[key], c)
		}
	}
	return nil
}

// observeLocked records which process answered a call sent at sent; a new
// process drops what the leader knew of the old one. p.mu must be held.
func (p *peer) observeLocked(b BootID, sent time.Time) (bootSeen, []BootID) {
	seen, dup := p.boots.observe(b, sent)
	if seen == bootNew {
		p.dropCommitsLocked()
		p.ahead = nil
	}
	return seen, dup
}

// refused records the mark a cosigner reported with a refusal by its own
// mark, for chain.
func (p *peer) refused(chain string, last signstate.Mark) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ahead == nil {
		p.ahead = map[string]signstate.Mark{}
	}
	p.ahead[chain] = last
}

// refuses reports whether the cosigner's last reported mark on req's chain
// is at or above req: it would refuse it, or may.
func (p *peer) refuses(req *privval.SignRequest) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.ahead[req.ChainID]
	return ok && !signstate.Above(req.Height, req.Round, req.Step, m.Height, m.Round, m.Step)
}

func (p *peer) result(rtt time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr = err
	p.healthy = err == nil
	if err != nil {
		// Its outstanding commitments may belong to a dead process.
		p.dropCommitsLocked()
		return
	}
	if p.rtt == 0 {
		p.rtt = rtt
	} else {
		p.rtt = (7*p.rtt + rtt) / 8
	}
}

// probed records the outcome of a health probe sent at sent: a cosigner
// that does not answer is unhealthy (and its commitments, perhaps of a dead
// process, are dropped); one that answers is healthy again. It returns the
// boot ids in play when the answer shows two live processes answering as
// this id.
func (p *peer) probed(rtt time.Duration, boot BootID, sent time.Time, err error) []BootID {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.healthy, p.lastErr = false, err
		p.dropCommitsLocked()
		return nil
	}
	p.healthy, p.pingRTT = true, rtt
	if seen, dup := p.observeLocked(boot, sent); seen == bootDuplicate {
		return dup
	}
	return nil
}

// PeerStatus is the leader's view of one cosigner, for status and metrics.
type PeerStatus struct {
	ID int
	// Reachable: the last call or probe of the cosigner succeeded.
	Reachable bool
	// Healthy: reachable, not suspected of sending an invalid share, and
	// not a duplicate id (two live processes answering as one cosigner).
	Healthy bool
	// Duplicate: two live processes answer as this cosigner; the leader
	// no longer uses it.
	Duplicate bool
	// RTT is the smoothed round trip of share RPCs; PingRTT that of the
	// last health probe (0 for the leader itself).
	RTT, PingRTT time.Duration
	Commitments  int
	LastError    string
}

// Coordinator is the leader's Signer: it answers duplicates from the
// cluster's state, gathers M signature shares in one round trip, checks
// them, aggregates one ed25519 signature, verifies it, replies, and
// replicates the new state. It is safe for concurrent use.
type Coordinator struct {
	cfg   CoordinatorConfig
	group *threshold.GroupKey
	// keys are the validator keys the coordinator signs with, the group
	// first, and chainKey the index in keys of each chain in
	// cfg.ChainKeys; both read-only after construction.
	keys     []*threshold.GroupKey
	pubs     []ed25519.PublicKey // pubs[i] is keys[i].PublicKey()
	chainKey map[string]int
	self     int
	state    Replicated
	log      *slog.Logger
	peers    []*peer // by id order; read-only after construction
	dups     *Duplicates
	refil    chan struct{}
	// repl wakes Run's replicator: last holds a record not proposed yet.
	repl chan struct{}

	// mu guards last: the newest record this leader produced per chain,
	// ahead of Raft.
	mu   sync.Mutex
	last map[string]raft.Record
	// signMu serialises sign requests per coordinator: requests of one
	// chain must not race each other past the duplicate check.
	signMu sync.Mutex
}

var _ privval.Signer = (*Coordinator)(nil)

// NewCoordinator returns a coordinator for group, reaching cosigner i
// through peers[i]; self is this cosigner's id.
func NewCoordinator(cfg CoordinatorConfig, group *threshold.GroupKey, self int, peers map[int]PeerClient, state Replicated, log *slog.Logger) (*Coordinator, error) {
	if len(peers) != group.N() {
		return nil, fmt.Errorf("coordinator: %d peers for a group of %d", len(peers), group.N())
	}
	if _, ok := peers[self]; !ok {
		return nil, fmt.Errorf("coordinator: cosigner %d (self) has no client", self)
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = time.Second
	}
	if cfg.RefillInterval <= 0 {
		cfg.RefillInterval = time.Second
	}
	dups := cfg.Duplicates
	if dups == nil {
		dups = NewDuplicates(log, cfg.Metrics)
	}
	c := &Coordinator{cfg: cfg, group: group, self: self, state: state, log: log, dups: dups,
		keys: []*threshold.GroupKey{group}, chainKey: map[string]int{},
		refil: make(chan struct{}, 1), repl: make(chan struct{}, 1), last: map[string]raft.Record{}}
	for _, chain := range slices.Sorted(maps.Keys(cfg.ChainKeys)) {
		g := cfg.ChainKeys[chain]
		if g.Threshold() != group.Threshold() || g.N() != group.N() {
			return nil, fmt.Errorf("coordinator: chain %s's key %X is %d-of-%d, the cluster %d-of-%d", chain, g.PublicKey(), g.Threshold(), g.N(), group.Threshold(), group.N())
		}
		i := slices.IndexFunc(c.keys, func(k *threshold.GroupKey) bool { return k.Equal(g) })
		if i < 0 {
			i = len(c.keys)
			c.keys = append(c.keys, g)
		}
		c.chainKey[chain] = i
	}
	for _, k := range c.keys {
		c.pubs = append(c.pubs, k.PublicKey())
	}
	for id := 1; id <= group.N(); id++ {
		client, ok := peers[id]
		if !ok {
			return nil, fmt.Errorf("coordinator: cosigner %d has no client", id)
		}
		c.peers = append(c.peers, &peer{id: id, client: client, healthy: true, commits: make([][]PublishedCommitment, len(c.keys))})
	}
	return c, nil
}

// PubKey returns the validator public key of chainID.
func (c *Coordinator) PubKey(_ context.Context, chainID string) (ed25519.PublicKey, error) {
	return c.keys[c.keyOf(chainID)].PublicKey(), nil // a copy: the caller may keep it
}

// keyOf returns the index in c.keys of the key that signs chainID.
func (c *Coordinator) keyOf(chainID string) int { return c.chainKey[chainID] }

// Peers reports the leader's view of every cosigner.
func (c *Coordinator) Peers() []PeerStatus {
	out := make([]PeerStatus, len(c.peers))
	for i, p := range c.peers {
		healthy := p.usable(time.Now())
		dup := c.dups.Has(p.id)
		p.mu.Lock()
		out[i] = PeerStatus{ID: p.id, Reachable: p.healthy, Healthy: healthy && !dup, Duplicate: dup,
			RTT: p.rtt, PingRTT: p.pingRTT}
		for _, cs := range p.commits {
			out[i].Commitments += len(cs)
		}
		if p.lastErr != nil {
			out[i].LastError = p.lastErr.Error()
		}
		p.mu.Unlock()
		if dup {
			out[i].LastError = c.dups.describe(p.id)
		}
	}
	return out
}

// Run keeps every cosigner's commitments topped up until ctx ends: at start
// (a new leader holds none), after each signature, and every RefillInterval
// for cosigners that failed. It also replicates new records through Raft
// and probes every cosigner that is a Prober every ProbeInterval.
func (c *Coordinator) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { c.replicator(ctx) })
	wg.Go(func() { c.prober(ctx) })
	defer wg.Wait()
	tick := time.NewTicker(c.cfg.RefillInterval)
	defer tick.Stop()
	for {
		c.refill(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-c.refil:
		case <-tick.C:
		}
	}
}

// reachable counts the cosigners whose last call or probe succeeded, this
// one included.
func (c *Coordinator) reachable() int {
	n := 0
	for _, p := range c.peers {
		p.mu.Lock()
		if p.healthy || p.id == c.self {
			n++
		}
		p.mu.Unlock()
	}
	return n
}

// prober probes every Prober peer, in parallel, every ProbeInterval until
// ctx ends, and steps down after StepDownAfter probes in a row that reach
// fewer than M cosigners.
func (c *Coordinator) prober(ctx context.Context) {
	tick := time.NewTicker(c.cfg.ProbeInterval)
	defer tick.Stop()
	short := 0
	for {
		var wg sync.WaitGroup
		for _, p := range c.peers {
			pr, ok := p.client.(Prober)
			if !ok {
				continue
			}
			wg.Go(func() {
				pctx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
				defer cancel()
				sent := time.Now()
				rtt, boot, err := pr.Probe(pctx)
				if ctx.Err() == nil {
					if dup := p.probed(rtt, boot, sent, err); dup != nil {
						c.dups.add(p.id, dup)
					}
				}
			})
		}
		wg.Wait()
		if n := c.reachable(); n < c.group.Threshold() && ctx.Err() == nil {
			short++
			if c.cfg.StepDown != nil && c.cfg.StepDownAfter > 0 && short >= c.cfg.StepDownAfter {
				c.log.Warn("no quorum reachable from this leader: handing leadership over",
					"reachable", n, "threshold", c.group.Threshold(), "probes", short)
				tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				if err := c.cfg.StepDown(tctx); err != nil && ctx.Err() == nil {
					c.log.Warn("leadership transfer failed", "err", err)
				}
				cancel()
				short = 0
			}
		} else {
			short = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// refill tops up, in parallel, each cosigner's pool of each key that is
// low.
func (c *Coordinator) refill(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range c.peers {
		if c.dups.Has(p.id) {
			continue
		}
		for key := range c.keys {
			if p.held(key) >= c.cfg.PoolLow {
				continue
			}
			wg.Go(func() { c.fetch(ctx, p, key, c.cfg.PoolTarget-p.held(key)) })
		}
	}
	wg.Wait()
}

func (c *Coordinator) fetch(ctx context.Context, p *peer, key, n int) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
	defer cancel()
	start := time.Now()
	cs, err := p.client.Commitments(ctx, c.pubs[key], n)
	if err == nil {
		err = c.checkCommitments(p.id, cs)
	}
	var refusal *signstate.Refusal
	if errors.As(err, &refusal) && refusal.Reason == signstate.RefusedUnknownChain {
		// It holds no share of this key (not restarted since the key was
		// added): reachable, and its commitments of other keys stay good.
		c.log.Debug("nonce commitments unavailable", "peer", p.id, "err", err)
		p.result(time.Since(start), nil)
		return
	}
	if err != nil {
		if ctx.Err() == nil || !errors.Is(err, context.Canceled) {
			c.log.Debug("nonce commitments unavailable", "peer", p.id, "err", err)
		}
		p.result(0, err)
		return
	}
	p.result(time.Since(start), nil)
	if dup := p.add(key, cs, start); dup != nil {
		c.dups.add(p.id, dup)
	}
}

func (c *Coordinator) checkCommitments(id int, cs []PublishedCommitment) error {
	for _, pc := range cs {
		if int(pc.Commitment.ID()) != id {
			return fmt.Errorf("cosigner %d sent a commitment of cosigner %d", id, pc.Commitment.ID())
		}
	}
	return nil
}

func (c *Coordinator) nudge() {
	select {
	case c.refil <- struct{}{}:
	default:
	}
}

// lastRecord returns the newest record of chainID known to this leader.
func (c *Coordinator) lastRecord(chainID string) (raft.Record, bool) {
	c.mu.Lock()
	mine, okMine := c.last[chainID]
	c.mu.Unlock()
	theirs, okTheirs := c.state.Last(chainID)
	switch {
	case okMine && okTheirs:
		if theirs.Compare(mine) > 0 {
			return theirs, true
		}
		return mine, true
	case okMine:
		return mine, true
	}
	return theirs, okTheirs
}

// Sign produces the signature of req with M cosigners.
func (c *Coordinator) Sign(ctx context.Context, req *privval.SignRequest) (*privval.SignResponse, error) {
	c.signMu.Lock()
	defer c.signMu.Unlock()
	if err := c.allow(req); err != nil {
		return nil, err
	}

	// Duplicates and conflicts with what the cluster already signed.
	var cached *raft.Record
	if rec, ok := c.lastRecord(req.ChainID); ok {
		m := signstate.Mark{Height: rec.Height, Round: rec.Round, Step: privval.Step(rec.Step), SignBytes: rec.SignBytes, Signature: rec.Signature}
		d, err := signstate.Decide(m, req)
		if err != nil {
			if errors.Is(err, signstate.ErrConflict) {
				c.log.Warn(signstate.LogRefusedDoubleSign, "chain", req.ChainID, "height", req.Height, "round", req.Round, "step", req.Step.String(), "err", err)
			}
			c.cfg.Metrics.RefusedErr(req.ChainID, err)
			return nil, err
		}
		if d.Verdict == signstate.Resend {
			// A repeated vote keeps its first signature and timestamp (a
			// Resign, a proposal differing only by timestamp, is signed
			// afresh).
			cached = &rec
			if req.ExtSignBytes == nil {
				if c.cfg.Guard != nil && req.Step == privval.StepPrecommit {
					c.cfg.Guard.Signed(req.ChainID, req.Height, req.Round, req.BlockID, rec.Signature)
				}
				return &privval.SignResponse{Signature: rec.Signature, Timestamp: rec.Timestamp}, nil
			}
		}
	}

	deadline := c.cfg.Deadline
	if d, ok := ctx.Deadline(); ok && time.Until(d) < deadline {
		deadline = time.Until(d)
	}
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()

	msgs := [][]byte{req.SignBytes}
	if req.ExtSignBytes != nil {
		msgs = append(msgs, req.ExtSignBytes)
	}
	sigs, err := c.gather(ctx, req, msgs)
	defer c.nudge()
	if err != nil {
		return nil, err
	}
	// The watch may have tripped during the round (it reads commits in
	// parallel): a signature made meanwhile is withheld, not released.
	if err := c.allow(req); err != nil {
		return nil, err
	}
	resp := &privval.SignResponse{Signature: sigs[0], Timestamp: req.Timestamp}
	if len(sigs) == 2 {
		resp.ExtSignature = sigs[1]
	}
	if c.cfg.Guard != nil && req.Step == privval.StepPrecommit {
		sig := resp.Signature
		if cached != nil {
			sig = cached.Signature
		}
		c.cfg.Guard.Signed(req.ChainID, req.Height, req.Round, req.BlockID, sig)
	}
	if cached != nil {
		// A repeated vote keeps its first signature and timestamp; only its
		// extension is signed afresh.
		resp.Signature, resp.Timestamp = cached.Signature, cached.Timestamp
		return resp, nil
	}
	rec := raft.Record{ChainID: req.ChainID, Height: req.Height, Round: req.Round, Step: int8(req.Step),
		SignBytes: req.SignBytes, Signature: resp.Signature, ExtensionSignature: resp.ExtSignature, Timestamp: req.Timestamp}
	c.mu.Lock()
	c.last[req.ChainID] = rec
	c.mu.Unlock()
	c.replicate()
	return resp, nil
}

// allow asks the Guard, if any, whether req's chain may sign now, and logs
// a refusal.
func (c *Coordinator) allow(req *privval.SignRequest) error {
	if c.cfg.Guard == nil {
		return nil
	}
	err := c.cfg.Guard.Allow(req.ChainID)
	if err != nil {
		c.log.Warn(signstate.LogRefusedDoppelganger, "chain", req.ChainID, "height", req.Height, "round", req.Round, "step", req.Step.String(), "err", err)
	}
	return err
}

// Flush proposes, now, the newest record of every chain this leader
// signed, for a leader about to hand over: with ReplicateInterval the last
// records may not have been proposed yet, and the next leader answers
// duplicates from them. Proposing a record twice is harmless (the FSM keeps
// the newest per chain).
func (c *Coordinator) Flush(ctx context.Context) error {
	c.mu.Lock()
	recs := make([]raft.Record, 0, len(c.last))
	for _, rec := range c.last {
		recs = append(recs, rec)
	}
	c.mu.Unlock()
	var errs []error
	for _, rec := range recs {
		if err := c.state.Propose(ctx, rec); err != nil {
			errs = append(errs, fmt.Errorf("replicate %s at %d: %w", rec.ChainID, rec.Height, err))
		}
	}
	return errors.Join(errs...)
}

// replicate wakes the replicator, off the hot path: the record is in
// c.last already.
func (c *Coordinator) replicate() {
	select {
	case c.repl <- struct{}{}:
	default:
	}
}

// replicator proposes through Raft, until ctx ends, the newest record of
// each chain in c.last that it has not proposed yet, at most once every
// ReplicateInterval. The FSM keeps only the newest record per chain, so
// the records signed in between need no proposal of their own; a cosigner
// that signed them holds its own durable mark of each. What a next leader
// misses when this one dies is at most the interval's signatures (and the
// Raft commit in flight, as before): a repeated request among them is
// signed again rather than answered from the record, with the same sign
// bytes (which every mark admits) or a later timestamp (which the marks
// admit too, as FilePV re-signs), and a conflicting one is refused by the
// marks of the M cosigners that signed the first.
func (c *Coordinator) replicator(ctx context.Context) {
	proposed := map[string]raft.Record{}
	var hold *time.Timer
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.repl:
		}
		if hold != nil {
			select {
			case <-ctx.Done():
				hold.Stop()
				return
			case <-hold.C:
			}
		}
		start := time.Now()
		c.mu.Lock()
		var todo []raft.Record
		for chain, rec := range c.last {
			if old, ok := proposed[chain]; !ok || rec.Compare(old) > 0 {
				todo = append(todo, rec)
			}
		}
		c.mu.Unlock()
		for _, rec := range todo {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			pstart := time.Now()
			if err := c.state.Propose(pctx, rec); err != nil {
				c.log.Warn("replicate sign state", "chain", rec.ChainID, "height", rec.Height, "err", err)
			} else {
				proposed[rec.ChainID] = rec
				c.cfg.Metrics.ObserveRaftApply(time.Since(pstart))
			}
			cancel()
		}
		if c.cfg.ReplicateInterval > 0 {
			hold = time.NewTimer(c.cfg.ReplicateInterval - time.Since(start))
		}
	}
}

// gather runs share rounds until one yields verified signatures of every
// message, excluding cosigners that failed, within ctx. When no quorum can
// be chosen it waits briefly and tries again with every cosigner until the
// deadline: right after an election the followers refuse the new leader
// until Raft has told them who leads, and the node sends its pending
// request the moment the new leader connects (CometBFT does not retry a
// vote it failed to get signed).
//
// A cosigner that refuses the request by its own mark (regression,
// conflict) stays out of every later round of this request; the leader
// signs with the others. That is safe because every cosigner enforces its
// own mark, and Sign checked the request against the cluster's last
// signature before gather: a genuine conflict is refused by every
// cosigner that signed the first content, at least M of them, so the
// N-M < M left cannot sign it. When too few cosigners remain without
// those that refused, the request is refused with their refusals.
func (c *Coordinator) gather(ctx context.Context, req *privval.SignRequest, msgs [][]byte) ([][]byte, error) {
	excluded := map[int]bool{}
	refused := map[int]*signstate.Refusal{}
	var lastRound error // the latest failed round, for the final error
	rounds := 0
	for {
		quorum, commits, err := c.choose(ctx, req, len(msgs), excluded)
		if err != nil {
			if lastRound != nil {
				err = fmt.Errorf("%w (after: %w)", err, lastRound)
			}
			t := time.NewTimer(chooseRetryPause)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, err
			case <-t.C:
			}
			clear(excluded)
			for id := range refused {
				excluded[id] = true
			}
			continue
		}
		sigs, failed, refusals, err := c.round(ctx, req, msgs, quorum, commits)
		if err == nil {
			return sigs, nil
		}
		for id, r := range refusals {
			refused[id] = r
			c.routeAround(req, id, r)
		}
		if len(refusals) > 0 && c.candidates(refused) < c.group.Threshold() {
			return nil, refusedError(refused)
		}
		lastRound = err
		rounds++
		if len(failed) == 0 || rounds >= 2*c.group.N() {
			return nil, err
		}
		for _, id := range failed {
			excluded[id] = true
		}
		c.log.Warn("share round failed, retrying", "chain", req.ChainID, "height", req.Height, "round", req.Round,
			"step", req.Step.String(), "attempt", rounds, "failed", failed, "err", err)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("no signature before the deadline: %w", lastRound)
		}
	}
}

// candidates counts the cosigners a request may still be signed with: not
// a duplicate id and not among those that refused it.
func (c *Coordinator) candidates(refused map[int]*signstate.Refusal) int {
	n := 0
	for _, p := range c.peers {
		if refused[p.id] == nil && !c.dups.Has(p.id) {
			n++
		}
	}
	return n
}

// refusedError is the error of a request refused by the cosigners in
// refused, too many to sign without: their refusals, conflicts first.
func refusedError(refused map[int]*signstate.Refusal) error {
	ids := slices.Sorted(maps.Keys(refused))
	slices.SortStableFunc(ids, func(a, b int) int {
		ca, cb := refused[a].Reason == signstate.RefusedConflict, refused[b].Reason == signstate.RefusedConflict
		if ca != cb {
			if ca {
				return -1
			}
			return 1
		}
		return 0
	})
	errs := make([]error, len(ids))
	for i, id := range ids {
		errs[i] = refused[id]
	}
	return fmt.Errorf("refused by cosigners %v by their own marks, and the others cannot form a quorum: %w", slices.Sorted(maps.Keys(refused)), errors.Join(errs...))
}

// routeAround records that cosigner id refused req by its own mark: it is
// counted, logged with the mark it reported, and chosen last while
// requests are not above that mark.
func (c *Coordinator) routeAround(req *privval.SignRequest, id int, r *signstate.Refusal) {
	p := c.peers[id-1]
	reason, _ := metrics.RefusalReason(r)
	c.cfg.Metrics.PeerRefused(id, reason)
	attrs := []any{"peer", id, "reason", reason, "chain", req.ChainID, "height", req.Height, "round", req.Round, "step", req.Step.String()}
	if r.Last != nil {
		p.refused(req.ChainID, *r.Last)
		attrs = append(attrs, "last_height", r.Last.Height, "last_round", r.Last.Round, "last_step", r.Last.Step.String())
	}
	p.mu.Lock()
	p.lastErr = r
	p.mu.Unlock()
	hint := "its sign state is above this request: a wrong 'cosigner state init --height', a state file from elsewhere, or another process with this id; " +
		"the others sign without it, and it takes part again once the chain passes its mark; check 'cosigner state show' on that host (docs/operations.md, 'A cosigner refuses')"
	if r.Reason == signstate.RefusedConflict {
		hint = "it signed other content at this height/round/step: something asked for a double sign, or the cluster lost a signature; " +
			"find the source before anything else (docs/operations.md, 'Refused double sign')"
	}
	c.log.Warn(LogPeerRefused, append(attrs, "err", r.Err, "hint", hint)...)
}

// chooseRetryPause is how long the leader waits before it tries again to
// find a quorum.
const chooseRetryPause = 50 * time.Millisecond

// choose picks M cosigners for req, healthiest and fastest first (itself
// first when healthy), with k commitments each, fetching commitments
// inline for a chosen cosigner that has run out. A cosigner whose last
// reported mark is at or above req comes last; a duplicate id never.
func (c *Coordinator) choose(ctx context.Context, req *privval.SignRequest, k int, excluded map[int]bool) ([]*peer, [][]PublishedCommitment, error) {
	type cand struct {
		p       *peer
		healthy bool
		rtt     time.Duration
	}
	var cands []cand
	var dups []int
	now := time.Now()
	for _, p := range c.peers {
		if c.dups.Has(p.id) {
			dups = append(dups, p.id)
			continue
		}
		if excluded[p.id] {
			continue
		}
		usable := p.usable(now) && !p.refuses(req)
		p.mu.Lock()
		cands = append(cands, cand{p, usable, p.rtt})
		p.mu.Unlock()
	}
	slices.SortStableFunc(cands, func(a, b cand) int {
		if a.healthy != b.healthy {
			if a.healthy {
				return -1
			}
			return 1
		}
		if (a.p.id == c.self) != (b.p.id == c.self) {
			if a.p.id == c.self {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.rtt, b.rtt)
	})
	m := c.group.Threshold()
	key := c.keyOf(req.ChainID)
	var quorum []*peer
	var commits [][]PublishedCommitment
	for _, cd := range cands {
		if len(quorum) == m {
			break
		}
		cs, ok := cd.p.pop(key, k)
		if !ok {
			c.fetch(ctx, cd.p, key, c.cfg.PoolTarget)
			if cs, ok = cd.p.pop(key, k); !ok {
				excluded[cd.p.id] = true
				continue
			}
		}
		quorum = append(quorum, cd.p)
		commits = append(commits, cs)
	}
	if len(quorum) < m {
		var down []int
		for id := range excluded {
			down = append(down, id)
		}
		slices.Sort(down)
		if len(dups) > 0 {
			return nil, nil, fmt.Errorf("no quorum: %d of the %d cosigners needed are reachable (unavailable: %v; not used, two live processes answer as each: %v)", len(quorum), m, down, dups)
		}
		return nil, nil, fmt.Errorf("no quorum: %d of the %d cosigners needed are reachable (unavailable: %v)", len(quorum), m, down)
	}
	return quorum, commits, nil
}

// round sends one Sign RPC to each cosigner of quorum in parallel, then
// aggregates and verifies. It returns the cosigners to blame on failure
// and, by id, the refusals of those that refused by their own mark.
func (c *Coordinator) round(ctx context.Context, req *privval.SignRequest, msgs [][]byte, quorum []*peer, commits [][]PublishedCommitment) ([][]byte, []int, map[int]*signstate.Refusal, error) {
	share := buildShareRequest(req, c.pubs[c.keyOf(req.ChainID)], msgs, quorum, commits)
	replies, pkgs, err := c.fanOut(ctx, share, quorum)
	if err != nil {
		return nil, nil, nil, err
	}
	var failed []int
	var errs []error
	refusals := map[int]*signstate.Refusal{}
	for i, r := range replies {
		if r.err != nil {
			var refusal *signstate.Refusal
			if errors.As(r.err, &refusal) && refusal.Final() {
				refusals[quorum[i].id] = refusal
			}
			failed = append(failed, quorum[i].id)
			errs = append(errs, fmt.Errorf("cosigner %d: %w", quorum[i].id, r.err))
		}
	}
	if len(failed) > 0 {
		return nil, failed, refusals, errors.Join(errs...)
	}
	sigs, blame, err := c.aggregate(req, msgs, pkgs, replies)
	return sigs, blame, nil, err
}

// buildShareRequest lays out the share request of msgs: message k's
// commitment list is commitment k of each cosigner of quorum, sorted by id
// (quorum is not in id order).
func buildShareRequest(req *privval.SignRequest, key ed25519.PublicKey, msgs [][]byte, quorum []*peer, commits [][]PublishedCommitment) *ShareRequest {
	order := make([]int, len(quorum))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(quorum[a].id, quorum[b].id) })
	share := &ShareRequest{ChainID: req.ChainID, GroupKey: key, Messages: make([]ShareMessage, len(msgs))}
	for k, msg := range msgs {
		list := make([]PublishedCommitment, len(quorum))
		for j, i := range order {
			list[j] = commits[i][k]
		}
		kind := ShareKind(req.Step)
		if k == 1 {
			kind = KindVoteExtension
		}
		share.Messages[k] = ShareMessage{Kind: kind, Height: req.Height, Round: req.Round, SignBytes: msg, Commitments: list}
	}
	return share
}

// shareReply is one cosigner's answer to a share request.
type shareReply struct {
	shares []threshold.SignatureShare
	err    error
}

// fanOut sends share to every cosigner of quorum within one attempt's
// timeout and returns their replies, in quorum order, with the signing
// packages of share's messages. The other cosigners are sent to first:
// their round trip is the longest part of the round. A Starter is sent to
// from this goroutine (a goroutine started per cosigner costs a thread's
// wake-up before the request leaves), any other PeerClient from a
// goroutine of its own. Meanwhile this leader derives the signing packages
// it aggregates with, and its own share reuses them; the answers are
// collected last, each timed from its send to its arrival.
func (c *Coordinator) fanOut(ctx context.Context, share *ShareRequest, quorum []*peer) ([]shareReply, []*threshold.SigningPackage, error) {
	attemptCtx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
	defer cancel()
	n := len(share.Messages)
	replies := make([]shareReply, len(quorum))
	var wg sync.WaitGroup
	// done records cosigner p's answer, sent at start, arrived at at.
	done := func(i int, p *peer, start, at time.Time, shares []threshold.SignatureShare, err error) {
		c.cfg.Metrics.ObservePeerRPC(p.id, at.Sub(start))
		if err == nil && len(shares) != n {
			err = fmt.Errorf("cosigner %d returned %d shares for %d messages", p.id, len(shares), n)
		}
		var refusal *signstate.Refusal
		// A cosigner that refuses by its mark, or because its own
		// configuration does not sign the chain with this key (one not
		// restarted yet after 'shard --add-to'), is healthy: the request
		// was wrong for it, and its commitments of other keys stay good.
		if errors.As(err, &refusal) && (refusal.Final() || refusal.Reason == signstate.RefusedUnknownChain) {
			p.result(at.Sub(start), nil)
		} else {
			p.result(at.Sub(start), err)
		}
		replies[i] = shareReply{shares, err}
	}
	call := func(i int, p *peer, r *ShareRequest) {
		start := time.Now()
		shares, err := p.client.Sign(attemptCtx, r)
		done(i, p, start, time.Now(), shares, err)
	}
	// The answers of the cosigners sent to from here, collected at the end.
	type started struct {
		i     int
		p     *peer
		start time.Time
		wait  func() ([]threshold.SignatureShare, time.Time, error)
	}
	var pending []started
	collect := func() {
		for _, st := range pending {
			shares, at, err := st.wait()
			done(st.i, st.p, st.start, at, shares, err)
		}
		wg.Wait()
	}
	for i, p := range quorum {
		if p.id == c.self {
			continue
		}
		if s, ok := p.client.(Starter); ok {
			pending = append(pending, started{i, p, time.Now(), s.StartSign(attemptCtx, share)})
		} else {
			wg.Go(func() { call(i, p, share) })
		}
	}
	pkgs := make([]*threshold.SigningPackage, n)
	for k, m := range share.Messages {
		plain := make([]threshold.Commitment, len(m.Commitments))
		for j, pc := range m.Commitments {
			plain[j] = pc.Commitment
		}
		var err error
		if pkgs[k], err = threshold.NewSigningPackage(c.keys[c.keyOf(share.ChainID)], m.SignBytes, plain); err != nil {
			cancel()
			collect()
			return nil, nil, err
		}
	}
	// This cosigner's own share runs here, beside the RPCs in flight: a
	// goroutine of its own would grow a fresh stack on every request.
	for i, p := range quorum {
		if p.id == c.self {
			local := *share
			local.Packages = pkgs
			call(i, p, &local)
		}
	}
	collect()
	return replies, pkgs, nil
}

// aggregate combines the shares of every message into its signature and
// verifies it, once: threshold.Aggregate checks the signature and only when
// that fails each share, to name the culprit (RFC 9591, Section 5.3). A share that does not verify names its cosigner, who is
// suspected for a while and returned for blame.
func (c *Coordinator) aggregate(req *privval.SignRequest, msgs [][]byte, pkgs []*threshold.SigningPackage, replies []shareReply) ([][]byte, []int, error) {
	sigs := make([][]byte, len(msgs))
	for k := range msgs {
		zs := make([]threshold.SignatureShare, len(replies))
		for i, r := range replies {
			zs[i] = r.shares[k]
		}
		sig, err := threshold.Aggregate(pkgs[k], zs)
		if err != nil {
			var blame []int
			for _, id := range threshold.Culprits(err) {
				blame = append(blame, int(id))
			}
			for _, id := range blame {
				c.peers[id-1].suspect(err)
				c.log.Warn("invalid signature share", "peer", id, "chain", req.ChainID, "height", req.Height, "err", err)
			}
			return nil, blame, err
		}
		// No second ed25519.Verify: Aggregate has just made its check,
		// [z]B - [c]PK == R with c = SHA-512(R || PK || msgs[k]) mod L
		// for this very message, group key and R, z canonical, which is
		// the equation crypto/ed25519 checks (threshold.TestAggregateMatchesVerify
		// and every test that signs through the coordinator hold the
		// two to the same answer).
		sigs[k] = sig
	}
	return sigs, nil, nil
}
