// Package softsign signs with whole ed25519 keys, one key and one sign
// state per chain: the single-process mode, for testnets and for operators
// coming from TMKMS. A key is held in this process (MemoryKey) or in a
// device (hsm.Key).
//
// It knows the sign-state rules through signstate; nothing of thresholds,
// Raft or the privval wire format.
package softsign

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cosigner/cosigner/cosigner/metrics"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/privval"
)

// Signer signs with whole ed25519 keys held in this process, one key and
// one sign state per chain. It is the single-node mode, for testnets and for
// operators coming from TMKMS.
type Signer struct {
	log     *slog.Logger
	metrics *metrics.Metrics
	opts    Options
	chains  map[string]*softChain
}

// Options are what a Signer needs besides its logger and metrics.
type Options struct {
	// MaxHeightAhead and MaxHeightRate are softsign.max_height_ahead and
	// softsign.max_height_rate: each chain's signstate.Bound, anchored at
	// its mark as loaded (SignState.Bound). MaxHeightAhead 0, the default:
	// no bound, as TMKMS and FilePV.
	MaxHeightAhead int64
	MaxHeightRate  float64
	// Now is the clock the bound reads; nil: time.Now.
	Now func() time.Time
	// SignRawBytes holds the chain ids whose sign_raw_bytes is true: the
	// chains whose raw-bytes requests SignRawBytes serves.
	SignRawBytes map[string]bool
	// Guard, when set, is the doppelganger watch (doppel.Guards): asked
	// before every signature, told of every precommit signed.
	Guard Guard
}

// Guard decides whether a chain may sign now and learns what was signed.
// Allow returns why chainID must not sign (an error returned to the node
// as is), or nil; Signed records a precommit (blockHash empty for nil)
// and its signature before the signature leaves the process. Both are called concurrently
// from every node connection and must be quick.
type Guard interface {
	Allow(chainID string) error
	Signed(chainID string, height int64, round int32, blockHash, sig []byte)
}

type softChain struct {
	key   ChainKey
	state *signstate.SignState

	// mu guards bound, the chain's height bound, and is held from its
	// check to the record of what was signed, so that two connections'
	// requests cannot both pass a check the first one's signature would
	// have tightened. (state.Sign serialises the chain's requests anyway.)
	mu    sync.Mutex
	bound signstate.Bound
}

// ChainKey is one chain's whole consensus key: held in this process
// (softsign) or in a device (HSMKey). Sign must honour ctx's deadline and
// return a signature of msg that verifies under Public; the Signer records and
// releases nothing when Sign fails.
//
// Ready reports why the key cannot sign now (a device away), or nil; it
// must be quick and safe for concurrent use.
type ChainKey interface {
	Public() ed25519.PublicKey
	Sign(ctx context.Context, msg []byte) ([]byte, error)
	Ready() error
}

// memoryKey is a ChainKey held in this process.
type memoryKey ed25519.PrivateKey

// MemoryKey returns key as a ChainKey held in this process.
func MemoryKey(key ed25519.PrivateKey) ChainKey { return memoryKey(key) }

func (k memoryKey) Public() ed25519.PublicKey {
	return ed25519.PrivateKey(k).Public().(ed25519.PublicKey)
}

func (k memoryKey) Sign(_ context.Context, msg []byte) ([]byte, error) {
	return ed25519.Sign(ed25519.PrivateKey(k), msg), nil
}

// Ready is always nil: the key is in memory.
func (memoryKey) Ready() error { return nil }

var _ privval.Signer = (*Signer)(nil)

// New returns a Signer with no chains that records refusals and state
// writes in m (nil: no metrics). It makes m report softsign as a cluster
// of one: threshold 1, one peer reachable, quorum available, no Raft
// series.
func New(log *slog.Logger, m *metrics.Metrics, opts Options) *Signer {
	m.SetClusterSource(func() metrics.ClusterView {
		return metrics.ClusterView{Threshold: 1, Reachable: 1, Quorum: true}
	})
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Signer{log: log, metrics: m, opts: opts, chains: map[string]*softChain{}}
}

// AddChain makes s sign for chainID with key, guarded by state. It must be
// called before s serves requests.
func (s *Signer) AddChain(chainID string, key ed25519.PrivateKey, state *signstate.SignState) error {
	return s.AddChainKey(chainID, memoryKey(key), state)
}

// AddChainKey makes s sign for chainID with key (in memory or in a device),
// guarded by state. It must be called before s serves requests.
func (s *Signer) AddChainKey(chainID string, key ChainKey, state *signstate.SignState) error {
	if _, ok := s.chains[chainID]; ok {
		return fmt.Errorf("chain %q added twice", chainID)
	}
	if state.ChainID() != chainID {
		return fmt.Errorf("sign state of chain %q given for chain %q", state.ChainID(), chainID)
	}
	s.chains[chainID] = &softChain{key: key, state: state, bound: state.Bound(s.opts.MaxHeightAhead, s.opts.MaxHeightRate)}
	return nil
}

func (s *Signer) chain(chainID string) (*softChain, error) {
	c, ok := s.chains[chainID]
	if !ok {
		return nil, fmt.Errorf("no key for chain %q", chainID)
	}
	return c, nil
}

// PubKey returns the public key of chainID's key.
func (s *Signer) PubKey(_ context.Context, chainID string) (ed25519.PublicKey, error) {
	c, err := s.chain(chainID)
	if err != nil {
		return nil, err
	}
	return c.key.Public(), nil
}

// Ready reports the first chain whose key is unavailable (a device away),
// or nil.
func (s *Signer) Ready() error {
	for _, id := range s.Chains() {
		if err := s.chains[id].key.Ready(); err != nil {
			return fmt.Errorf("chain %s: %w", id, err)
		}
	}
	return nil
}

// Chains returns the chain ids s signs for, sorted.
func (s *Signer) Chains() []string {
	ids := make([]string, 0, len(s.chains))
	for id := range s.chains {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Mark returns the high-water mark of chainID.
func (s *Signer) Mark(chainID string) (signstate.Mark, bool) {
	c, ok := s.chains[chainID]
	if !ok {
		return signstate.Mark{}, false
	}
	return c.state.Mark(), true
}

// HeightLimit returns the highest height chainID may be signed at now by
// its height bound (max_height_ahead, max_height_rate), and false when the
// chain is unknown or its bound is off.
func (s *Signer) HeightLimit(chainID string) (int64, bool) {
	c, ok := s.chains[chainID]
	if !ok {
		return 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bound.Off() {
		return 0, false
	}
	return c.bound.Limit(s.opts.Now()), true
}

// Sign signs req under the chain's sign-state rules and, if configured,
// its height bound (an error wrapping signstate.ErrTooFarAhead). The vote
// extension, if asked for, is signed fresh every time, as FilePV does:
// extensions are not slashable and may legitimately differ between
// retries.
func (s *Signer) Sign(ctx context.Context, req *privval.SignRequest) (*privval.SignResponse, error) {
	c, err := s.chain(req.ChainID)
	if err != nil {
		return nil, err
	}
	if s.opts.Guard != nil {
		if err := s.opts.Guard.Allow(req.ChainID); err != nil {
			s.log.Warn(signstate.LogRefusedDoppelganger, "chain", req.ChainID, "height", req.Height,
				"round", req.Round, "step", req.Step.String(), "err", err)
			return nil, err
		}
	}
	c.mu.Lock()
	// The bound counts from the mark loaded at start (and from the first
	// height signed since), not from the current mark: signing does not
	// raise it, only elapsed time does.
	if err := c.bound.Check(req.Height, s.opts.Now()); err != nil {
		c.mu.Unlock()
		s.metrics.RefusedErr(req.ChainID, err)
		s.log.Warn(LogRefusedTooFarAhead, "chain", req.ChainID, "height", req.Height,
			"round", req.Round, "step", req.Step.String(), "err", err)
		return nil, err
	}
	// What follows the signature inside state.Sign is the durable write.
	var signedAt time.Time
	sig, ts, err := c.state.Sign(req, func(msg []byte) ([]byte, error) {
		defer func() { signedAt = time.Now() }()
		return c.key.Sign(ctx, msg)
	})
	if err == nil {
		c.bound = c.bound.Admit(req.Height, s.opts.Now())
		if s.opts.Guard != nil && req.Step == privval.StepPrecommit {
			s.opts.Guard.Signed(req.ChainID, req.Height, req.Round, req.BlockID, sig)
		}
	}
	c.mu.Unlock()
	if err == nil && s.opts.Guard != nil {
		// The watch may have tripped while the key signed (a device takes
		// about 100 ms): the signature is withheld, not released.
		if gerr := s.opts.Guard.Allow(req.ChainID); gerr != nil {
			s.log.Warn(signstate.LogRefusedDoppelganger, "chain", req.ChainID, "height", req.Height,
				"round", req.Round, "step", req.Step.String(), "err", gerr)
			return nil, gerr
		}
	}
	if err != nil {
		if errors.Is(err, signstate.ErrConflict) || errors.Is(err, signstate.ErrRegression) {
			s.metrics.RefusedErr(req.ChainID, err)
			s.log.Warn(signstate.LogRefusedDoubleSign, "chain", req.ChainID, "height", req.Height,
				"round", req.Round, "step", req.Step.String(), "err", err)
		}
		return nil, err
	}
	if !signedAt.IsZero() {
		s.metrics.ObserveStateWrite(time.Since(signedAt))
	}
	resp := &privval.SignResponse{Signature: sig, Timestamp: ts}
	if req.ExtSignBytes != nil {
		if resp.ExtSignature, err = c.key.Sign(ctx, req.ExtSignBytes); err != nil {
			return nil, fmt.Errorf("sign vote extension: %w", err)
		}
	}
	return resp, nil
}

// LogRefusedTooFarAhead is what a Signer logs (at warn, with the chain,
// height, round, step and error) when the height bound refuses a request.
const LogRefusedTooFarAhead = "refused height too far ahead"
