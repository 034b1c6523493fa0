package cosigner

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cosigner/cosigner/privval"
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
	ChainID  string
	Messages []ShareMessage

	// pkgs, set only in-process by the leader for its own share, are the
	// signing packages it derived from exactly these messages and
	// commitment lists, so its share signer need not derive them again.
	pkgs []*threshold.SigningPackage
}

// RefusalReason says why a cosigner released nothing. The values are those
// of the cluster protocol's RefusalReason.
type RefusalReason int

// Refusal reasons.
const (
	RefusedRegression        RefusalReason = 1
	RefusedConflict          RefusalReason = 2
	RefusedTooFarAhead       RefusalReason = 3
	RefusedUnknownCommitment RefusalReason = 4
	RefusedNotLeader         RefusalReason = 5
	RefusedInvalidRequest    RefusalReason = 6
	RefusedUnavailable       RefusalReason = 7
	RefusedUnknownChain      RefusalReason = 8
)

var refusalNames = map[RefusalReason]string{
	RefusedRegression: "regression", RefusedConflict: "conflict", RefusedTooFarAhead: "too far ahead",
	RefusedUnknownCommitment: "unknown commitment", RefusedNotLeader: "not leader",
	RefusedInvalidRequest: "invalid request", RefusedUnavailable: "unavailable", RefusedUnknownChain: "unknown chain",
}

func (r RefusalReason) String() string {
	if s, ok := refusalNames[r]; ok {
		return s
	}
	return fmt.Sprintf("reason %d", int(r))
}

// Refusal is the error of a cosigner that released no share.
type Refusal struct {
	Signer int
	Reason RefusalReason
	Err    error
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("cosigner %d refused (%s): %v", r.Signer, r.Reason, r.Err)
}

func (r *Refusal) Unwrap() error { return r.Err }

// Final reports whether retrying elsewhere cannot help: the request itself is
// refused by the sign-state rules, not this cosigner's circumstances. A
// cosigner that finds the height too far ahead is lagging (its own mark and
// replicated state are old), so the leader routes around it instead.
func (r *Refusal) Final() bool {
	return r.Reason == RefusedRegression || r.Reason == RefusedConflict
}

// ShareSigner is one cosigner's signing side: its key share, its nonce pool
// and its per-chain high-water marks. It checks every request itself from
// the sign bytes (never trusting the leader's labels), records its mark
// durably and only then releases shares. It is safe for concurrent use.
type ShareSigner struct {
	share    *threshold.KeyShare
	pool     *NoncePool
	maxAhead int64
	log      *slog.Logger
	// knownHeight returns the highest height the cluster is known to have
	// signed for a chain (from the replicated state); may be nil.
	knownHeight func(chainID string) int64
	metrics     *Metrics

	// chains is filled before serving and read-only after.
	chains map[string]*SignState

	// mu serialises requests so that a mark check, its durable write and
	// the use of the nonces happen as one step per chain.
	mu sync.Mutex
}

// NewShareSigner returns a ShareSigner for share drawing nonces from pool.
func NewShareSigner(share *threshold.KeyShare, pool *NoncePool, maxAhead int64, log *slog.Logger) *ShareSigner {
	return &ShareSigner{share: share, pool: pool, maxAhead: maxAhead, log: log, chains: map[string]*SignState{}}
}

// AddChain makes s sign for the chain of state. Call before serving.
func (s *ShareSigner) AddChain(state *SignState) { s.chains[state.chainID] = state }

// SetKnownHeight installs the source of the cluster's last signed height,
// used with max_height_ahead. Call before serving.
func (s *ShareSigner) SetKnownHeight(f func(chainID string) int64) { s.knownHeight = f }

// SetMetrics makes s record its refusals and state writes in m. Call
// before serving.
func (s *ShareSigner) SetMetrics(m *Metrics) { s.metrics = m }

// PublicKey returns the validator's public key (the group key).
func (s *ShareSigner) PublicKey() ed25519.PublicKey { return s.share.Group().PublicKey() }

// ID returns the cosigner's FROST identifier.
func (s *ShareSigner) ID() int { return int(s.share.ID()) }

// Pool returns the nonce pool.
func (s *ShareSigner) Pool() *NoncePool { return s.pool }

// Mark returns the high-water mark of chainID.
func (s *ShareSigner) Mark(chainID string) (Mark, bool) {
	st, ok := s.chains[chainID]
	if !ok {
		return Mark{}, false
	}
	return st.Mark(), true
}

func (s *ShareSigner) refuse(reason RefusalReason, format string, args ...any) *Refusal {
	return &Refusal{Signer: s.ID(), Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Sign returns this cosigner's signature shares for req's messages, in order,
// or a *Refusal. The nonces behind this cosigner's commitments in req are
// consumed whether it signs or refuses.
func (s *ShareSigner) Sign(req *ShareRequest) ([]threshold.SignatureShare, error) {
	shares, err := s.signOnce(req)
	if err != nil {
		s.metrics.refusedErr(req.ChainID, err)
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
			return nil, s.refuse(RefusedInvalidRequest, "message %d: %v", i, err)
		}
		if nonces[i], err = s.pool.Take(own); err != nil {
			destroy()
			return nil, s.refuse(RefusedUnknownCommitment, "message %d: %v", i, err)
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
		return nil, s.refuse(RefusedUnknownChain, "chain %q is not configured here", req.ChainID)
	}
	pv, err := s.check(req)
	if err != nil {
		return nil, err
	}
	pkgs := req.pkgs
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
			return nil, s.refuse(RefusedInvalidRequest, "message %d: %v", i, err)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	mark := state.Mark()
	limit := mark.Height
	if s.knownHeight != nil {
		limit = max(limit, s.knownHeight(req.ChainID))
	}
	if pv.Height > limit+s.maxAhead {
		return nil, s.refuse(RefusedTooFarAhead, "height %d is more than %d above the highest height known signed (%d)", pv.Height, s.maxAhead, limit)
	}
	start := time.Now()
	err = state.Admit(pv)
	if now := state.Mark(); now.Height != mark.Height || now.Round != mark.Round || now.Step != mark.Step {
		s.metrics.observeStateWrite(time.Since(start)) // the mark advanced: a durable write
	}
	if err != nil {
		switch {
		case errors.Is(err, ErrRegression):
			return nil, s.refuse(RefusedRegression, "%w", err)
		case errors.Is(err, ErrConflict):
			s.log.Warn("refused double sign", "chain", req.ChainID, "height", pv.Height, "round", pv.Round, "step", pv.Step.String(), "err", err)
			return nil, s.refuse(RefusedConflict, "%w", err)
		}
		return nil, s.refuse(RefusedUnavailable, "%w", err)
	}
	shares, err := threshold.SignShares(s.share, nonces, pkgs)
	if err != nil {
		return nil, s.refuse(RefusedInvalidRequest, "%v", err)
	}
	s.log.Debug("released share", "chain", req.ChainID, "height", pv.Height, "round", pv.Round,
		"step", pv.Step.String(), "block", shortBlock(pv.BlockID), "messages", len(shares))
	return shares, nil
}

// check decodes the sign bytes of req and checks them against its labels and
// against each other. It returns the request as the sign-state rules see it.
func (s *ShareSigner) check(req *ShareRequest) (*privval.SignRequest, error) {
	msgs := req.Messages
	if len(msgs) == 0 || len(msgs) > 2 {
		return nil, s.refuse(RefusedInvalidRequest, "%d messages: want a vote or proposal, optionally followed by its vote extension", len(msgs))
	}
	first := msgs[0]
	info, err := privval.ParseSignBytes(first.SignBytes)
	if err != nil {
		return nil, s.refuse(RefusedInvalidRequest, "message 0: %v", err)
	}
	if info.ChainID != req.ChainID || ShareKind(info.Step) != first.Kind || info.Height != first.Height || info.Round != first.Round {
		return nil, s.refuse(RefusedInvalidRequest, "message 0 is labelled %s %d/%d/kind %d but its sign bytes say %s %d/%d/%s",
			req.ChainID, first.Height, first.Round, first.Kind, info.ChainID, info.Height, info.Round, info.Step)
	}
	pv := &privval.SignRequest{ChainID: req.ChainID, Step: info.Step, Height: info.Height, Round: info.Round,
		Timestamp: info.Timestamp, BlockID: info.BlockID.Hash, SignBytes: first.SignBytes}
	if len(msgs) == 2 {
		ext := msgs[1]
		if ext.Kind != KindVoteExtension || info.Step != privval.StepPrecommit || info.BlockID.IsZero() {
			return nil, s.refuse(RefusedInvalidRequest, "a second message must be the vote extension of a non-nil precommit")
		}
		e, err := privval.ParseVoteExtensionSignBytes(ext.SignBytes)
		if err != nil {
			return nil, s.refuse(RefusedInvalidRequest, "message 1: %v", err)
		}
		if e.ChainID != req.ChainID || e.Height != info.Height || e.Round != info.Round || ext.Height != info.Height || ext.Round != info.Round {
			return nil, s.refuse(RefusedInvalidRequest, "the vote extension is for %s %d/%d, the precommit for %s %d/%d",
				e.ChainID, e.Height, e.Round, req.ChainID, info.Height, info.Round)
		}
	}
	return pv, nil
}
