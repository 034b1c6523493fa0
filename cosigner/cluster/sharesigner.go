package cluster

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cosigner/cosigner/cosigner/metrics"
	"github.com/cosigner/cosigner/cosigner/signstate"

	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/raft"
	"github.com/cosigner/cosigner/threshold"
)

// ShareKind says what a message of a share request is. Proposal, prevote and
// precommit use the steps of CometBFT's FilePV; KindVoteExtension is the
// extension of the precommit before it in the same request.
type ShareKind int8

// Share kinds.
const (
	KindProposal                = ShareKind(privval.StepProposal)
	KindPrevote                 = ShareKind(privval.StepPrevote)
	KindPrecommit               = ShareKind(privval.StepPrecommit)
	KindVoteExtension ShareKind = 4
	// KindRawBytes (5) is in rawbytes.go.
)

// ShareMessage is one message of a share request, with the commitment list
// the leader chose for it (one per signing cosigner, sorted by id).
type ShareMessage struct {
	Kind        ShareKind
	Height      int64
	Round       int32
	SignBytes   []byte
	Commitments []PublishedCommitment
}

// ShareRequest asks one cosigner for its signature shares of one or two
// messages of one chain: a vote or proposal, optionally followed by the
// precommit's vote extension.
type ShareRequest struct {
	ChainID string
	// GroupKey is the validator public key the leader signs the chain with
	// and drew the commitments of; empty: the receiver's only key. Read
	// only: the leader's requests share one copy per key.
	GroupKey ed25519.PublicKey
	Messages []ShareMessage

	// Packages, set only in-process by the leader for its own share, are
	// the signing packages it derived from exactly these messages and
	// commitment lists, so its share signer need not derive them again. A
	// request decoded from the wire never carries them.
	Packages []*threshold.SigningPackage
}

// ShareSigner is one cosigner's signing side: its key share, its nonce pool
// and its per-chain high-water marks. It checks every request itself from
// the sign bytes (never trusting the leader's labels), records its mark
// durably and only then releases shares. It is safe for concurrent use.
type ShareSigner struct {
	share *threshold.KeyShare
	// pub is the group key, copied once (requests are checked against it).
	pub  ed25519.PublicKey
	pool *NoncePool
	opts SignerOptions
	// chains is filled at construction and read-only after.
	chains map[string]*signstate.SignState
	now    func() time.Time

	// mu serialises requests so that a mark check, its durable write and
	// the use of the nonces happen as one step per chain.
	mu sync.Mutex

	// boundMu guards bounds, each chain's height bound (its key set is
	// fixed at construction). It is apart from mu so that Raft's record
	// check never waits for a share's durable write.
	boundMu sync.Mutex
	bounds  map[string]signstate.Bound
}

// SignerOptions are what a ShareSigner needs besides its share and pool.
type SignerOptions struct {
	// Chains are the sign states of the chains it signs for, one each.
	Chains []*signstate.SignState
	// MaxHeightAhead and MaxHeightRate are threshold.max_height_ahead and
	// threshold.max_height_rate: each chain's signstate.Bound, anchored at
	// its mark as loaded (SignState.Bound). MaxHeightAhead 0: no bound.
	MaxHeightAhead int64
	MaxHeightRate  float64
	// Now is the clock the bound reads; nil: time.Now.
	Now func() time.Time
	// SignRawBytes holds the chain ids with sign_raw_bytes = true, whose
	// KindRawBytes requests are signed (see rawbytes.go).
	SignRawBytes map[string]bool
	// Metrics records refusals and state writes; nil: none.
	Metrics *metrics.Metrics
	Log     *slog.Logger
}

// NewShareSigner returns a ShareSigner for share drawing nonces from pool.
func NewShareSigner(share *threshold.KeyShare, pool *NoncePool, opts SignerOptions) (*ShareSigner, error) {
	s := &ShareSigner{share: share, pub: share.Group().PublicKey(), pool: pool, opts: opts, chains: map[string]*signstate.SignState{},
		bounds: map[string]signstate.Bound{}, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	for _, st := range opts.Chains {
		if _, ok := s.chains[st.ChainID()]; ok {
			return nil, fmt.Errorf("share signer: chain %q given twice", st.ChainID())
		}
		s.chains[st.ChainID()] = st
		s.bounds[st.ChainID()] = st.Bound(opts.MaxHeightAhead, opts.MaxHeightRate)
	}
	return s, nil
}

// PublicKey returns the validator's public key (the group key).
func (s *ShareSigner) PublicKey() ed25519.PublicKey { return s.share.Group().PublicKey() }

// ID returns the cosigner's FROST identifier.
func (s *ShareSigner) ID() int { return int(s.share.ID()) }

// Chains returns the chain ids this signer signs for, in no order.
func (s *ShareSigner) Chains() []string {
	out := make([]string, 0, len(s.chains))
	for id := range s.chains {
		out = append(out, id)
	}
	return out
}

// Pool returns the nonce pool.
func (s *ShareSigner) Pool() *NoncePool { return s.pool }

// CheckRecord is the raft.RecordCheck of this cosigner: a replicated
// record of the cluster's sign state passes only within the height bound
// the cosigner's own shares are held to. A record above it (a buggy or
// hostile Raft leader's) must not become the cluster's last signature here,
// where the leader's regression check would refuse every real height below
// it. Records of chains this cosigner does not sign for pass.
func (s *ShareSigner) CheckRecord(r raft.Record) error {
	return s.checkBound(r.ChainID, r.Height)
}

// checkBound checks height against chainID's bound; a chain without one
// passes.
func (s *ShareSigner) checkBound(chainID string, height int64) error {
	s.boundMu.Lock()
	b, ok := s.bounds[chainID]
	s.boundMu.Unlock()
	if !ok {
		return nil
	}
	return b.Check(height, s.now())
}

// admitBound records an admitted height in chainID's bound (the first
// above the loaded mark anchors the catch-up).
func (s *ShareSigner) admitBound(chainID string, height int64) {
	s.boundMu.Lock()
	defer s.boundMu.Unlock()
	if b, ok := s.bounds[chainID]; ok {
		s.bounds[chainID] = b.Admit(height, s.now())
	}
}

// HeightLimit returns the highest height this cosigner releases a share
// for on chainID now, by its height bound (max_height_ahead,
// max_height_rate), and false when it does not sign the chain or the
// bound is off.
func (s *ShareSigner) HeightLimit(chainID string) (int64, bool) {
	s.boundMu.Lock()
	b, ok := s.bounds[chainID]
	s.boundMu.Unlock()
	if !ok || b.Off() {
		return 0, false
	}
	return b.Limit(s.now()), true
}

// Mark returns the high-water mark of chainID.
func (s *ShareSigner) Mark(chainID string) (signstate.Mark, bool) {
	st, ok := s.chains[chainID]
	if !ok {
		return signstate.Mark{}, false
	}
	return st.Mark(), true
}

func (s *ShareSigner) refuse(reason signstate.RefusalReason, format string, args ...any) *signstate.Refusal {
	return &signstate.Refusal{Signer: s.ID(), Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Sign returns this cosigner's signature shares for req's messages, in order,
// or a *signstate.Refusal. The nonces behind this cosigner's commitments in req are
// consumed whether it signs or refuses.
func (s *ShareSigner) Sign(req *ShareRequest) ([]threshold.SignatureShare, error) {
	shares, err := s.signOnce(req)
	if err != nil {
		s.opts.Metrics.RefusedErr(req.ChainID, err)
	}
	return shares, err
}

func (s *ShareSigner) signOnce(req *ShareRequest) ([]threshold.SignatureShare, error) {
	// Take the nonces first: whatever happens next, they are never offered
	// again.
	nonces := make([]*threshold.Nonce, len(req.Messages))
	destroy := func() {
		for _, n := range nonces {
			if n != nil {
				n.Destroy()
			}
		}
	}
	for i, m := range req.Messages {
		own, err := s.ownCommitment(m.Commitments)
		if err != nil {
			destroy()
			return nil, s.refuse(signstate.RefusedInvalidRequest, "message %d: %v", i, err)
		}
		if nonces[i], err = s.pool.Take(own); err != nil {
			destroy()
			return nil, s.refuse(signstate.RefusedUnknownCommitment, "message %d: %v", i, err)
		}
	}
	shares, err := s.sign(req, nonces)
	destroy() // no-op for the nonces SignShares consumed
	return shares, err
}

func (s *ShareSigner) ownCommitment(list []PublishedCommitment) (PublishedCommitment, error) {
	var own PublishedCommitment
	found := 0
	for _, c := range list {
		if c.Commitment.ID() == s.share.ID() {
			own = c
			found++
		}
	}
	if found != 1 {
		return own, fmt.Errorf("the commitment list holds %d commitments of cosigner %d, want 1", found, s.ID())
	}
	return own, nil
}

func (s *ShareSigner) sign(req *ShareRequest, nonces []*threshold.Nonce) ([]threshold.SignatureShare, error) {
	state, ok := s.chains[req.ChainID]
	if !ok {
		return nil, s.refuse(signstate.RefusedUnknownChain, "chain %q is not signed with validator key %X here", req.ChainID, s.PublicKey())
	}
	if len(req.GroupKey) != 0 && !bytes.Equal(req.GroupKey, s.pub) {
		return nil, s.refuse(signstate.RefusedUnknownChain, "chain %q is signed with validator key %X here, the request is for key %X: the cosigners' configurations disagree",
			req.ChainID, s.pub, req.GroupKey)
	}
	if len(req.Messages) > 0 && req.Messages[0].Kind == KindRawBytes {
		return s.signRawBytes(req, nonces)
	}
	pv, err := s.check(req)
	if err != nil {
		return nil, err
	}
	pkgs := req.Packages
	if len(pkgs) != len(req.Messages) {
		pkgs = make([]*threshold.SigningPackage, len(req.Messages))
	}
	for i, m := range req.Messages {
		if pkgs[i] != nil {
			continue
		}
		commits := make([]threshold.Commitment, len(m.Commitments))
		for j, c := range m.Commitments {
			commits[j] = c.Commitment
		}
		if pkgs[i], err = threshold.NewSigningPackage(s.share.Group(), m.SignBytes, commits); err != nil {
			return nil, s.refuse(signstate.RefusedInvalidRequest, "message %d: %v", i, err)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	// The bound counts from the mark loaded at start (and from the first
	// height admitted since), not from the current mark: admitted requests
	// do not raise it, only elapsed time does.
	if err := s.checkBound(req.ChainID, pv.Height); err != nil {
		return nil, s.refuse(signstate.RefusedTooFarAhead, "%w", err)
	}
	mark := state.Mark()
	start := time.Now()
	err = state.Admit(pv)
	if now := state.Mark(); now.Height != mark.Height || now.Round != mark.Round || now.Step != mark.Step {
		s.opts.Metrics.ObserveStateWrite(time.Since(start)) // the mark advanced: a durable write
	}
	if err != nil {
		switch {
		case errors.Is(err, signstate.ErrRegression):
			return nil, s.refuse(signstate.RefusedRegression, "%w", err)
		case errors.Is(err, signstate.ErrConflict):
			s.opts.Log.Warn(signstate.LogRefusedDoubleSign, "chain", req.ChainID, "height", pv.Height, "round", pv.Round, "step", pv.Step.String(), "err", err)
			return nil, s.refuse(signstate.RefusedConflict, "%w", err)
		}
		return nil, s.refuse(signstate.RefusedUnavailable, "%w", err)
	}
	s.admitBound(req.ChainID, pv.Height)
	shares, err := threshold.SignShares(s.share, nonces, pkgs)
	if err != nil {
		return nil, s.refuse(signstate.RefusedInvalidRequest, "%v", err)
	}
	// Checked first: the attributes (boxed values, the block's hex) cost
	// allocations on every share even when Debug is off.
	if s.opts.Log.Enabled(context.Background(), slog.LevelDebug) {
		s.opts.Log.Debug(LogReleasedShare, "chain", req.ChainID, "height", pv.Height, "round", pv.Round,
			"step", pv.Step.String(), "block", signstate.ShortBlock(pv.BlockID), "messages", len(shares))
	}
	return shares, nil
}

// check decodes the sign bytes of req and checks them against its labels and
// against each other. It returns the request as the sign-state rules see it.
func (s *ShareSigner) check(req *ShareRequest) (*privval.SignRequest, error) {
	msgs := req.Messages
	if len(msgs) == 0 || len(msgs) > 2 {
		return nil, s.refuse(signstate.RefusedInvalidRequest, "%d messages: want a vote or proposal, optionally followed by its vote extension", len(msgs))
	}
	first := msgs[0]
	info, err := privval.ParseSignBytes(first.SignBytes)
	if err != nil {
		return nil, s.refuse(signstate.RefusedInvalidRequest, "message 0: %v", err)
	}
	if info.ChainID != req.ChainID || ShareKind(info.Step) != first.Kind || info.Height != first.Height || info.Round != first.Round {
		return nil, s.refuse(signstate.RefusedInvalidRequest, "message 0 is labelled %s %d/%d/kind %d but its sign bytes say %s %d/%d/%s",
			req.ChainID, first.Height, first.Round, first.Kind, info.ChainID, info.Height, info.Round, info.Step)
	}
	pv := &privval.SignRequest{ChainID: req.ChainID, Step: info.Step, Height: info.Height, Round: info.Round,
		Timestamp: info.Timestamp, BlockID: info.BlockID.Hash, SignBytes: first.SignBytes}
	if len(msgs) == 2 {
		ext := msgs[1]
		if ext.Kind != KindVoteExtension || info.Step != privval.StepPrecommit || info.BlockID.IsZero() {
			return nil, s.refuse(signstate.RefusedInvalidRequest, "a second message must be the vote extension of a non-nil precommit")
		}
		e, err := privval.ParseVoteExtensionSignBytes(ext.SignBytes)
		if err != nil {
			return nil, s.refuse(signstate.RefusedInvalidRequest, "message 1: %v", err)
		}
		if e.ChainID != req.ChainID || e.Height != info.Height || e.Round != info.Round || ext.Height != info.Height || ext.Round != info.Round {
			return nil, s.refuse(signstate.RefusedInvalidRequest, "the vote extension is for %s %d/%d, the precommit for %s %d/%d",
				e.ChainID, e.Height, e.Round, req.ChainID, info.Height, info.Round)
		}
	}
	return pv, nil
}
