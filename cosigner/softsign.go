package cosigner

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cosigner/cosigner/privval"
)

// Softsign signs with whole ed25519 keys held in this process, one key and
// one sign state per chain. It is the single-node mode, for testnets and for
// operators coming from TMKMS.
type Softsign struct {
	log     *slog.Logger
	metrics *Metrics
	chains  map[string]*softChain
}

type softChain struct {
	key   ChainKey
	state *SignState
}

// ChainKey is one chain's whole consensus key: held in this process
// (softsign) or in a device (HSMKey). Sign must honour ctx's deadline and
// return a signature of msg that verifies under Public; Softsign records and
// releases nothing when Sign fails.
type ChainKey interface {
	Public() ed25519.PublicKey
	Sign(ctx context.Context, msg []byte) ([]byte, error)
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

var _ privval.Signer = (*Softsign)(nil)

// NewSoftsign returns a Softsign with no chains.
func NewSoftsign(log *slog.Logger) *Softsign {
	return &Softsign{log: log, chains: map[string]*softChain{}}
}

// SetMetrics makes s record refusals and state writes in m. Call it before
// s serves requests.
// It also makes m report softsign as a cluster of one: threshold 1, one
// peer reachable, quorum available, no Raft series.
func (s *Softsign) SetMetrics(m *Metrics) {
	s.metrics = m
	m.setClusterSource(func() ClusterView {
		return ClusterView{Threshold: 1, Reachable: 1, Quorum: true}
	})
}

// AddChain makes s sign for chainID with key, guarded by state. It must be
// called before s serves requests.
func (s *Softsign) AddChain(chainID string, key ed25519.PrivateKey, state *SignState) error {
	return s.AddChainKey(chainID, memoryKey(key), state)
}

// AddChainKey makes s sign for chainID with key (in memory or in a device),
// guarded by state. It must be called before s serves requests.
func (s *Softsign) AddChainKey(chainID string, key ChainKey, state *SignState) error {
	if _, ok := s.chains[chainID]; ok {
		return fmt.Errorf("chain %q added twice", chainID)
	}
	if state.chainID != chainID {
		return fmt.Errorf("sign state of chain %q given for chain %q", state.chainID, chainID)
	}
	s.chains[chainID] = &softChain{key: key, state: state}
	return nil
}

func (s *Softsign) chain(chainID string) (*softChain, error) {
	c, ok := s.chains[chainID]
	if !ok {
		return nil, fmt.Errorf("no key for chain %q", chainID)
	}
	return c, nil
}

// PubKey returns the public key of chainID's key.
func (s *Softsign) PubKey(_ context.Context, chainID string) (ed25519.PublicKey, error) {
	c, err := s.chain(chainID)
	if err != nil {
		return nil, err
	}
	return c.key.Public(), nil
}

// ready reports the first chain whose key is unavailable (a device away),
// or nil.
func (s *Softsign) ready() error {
	for _, c := range s.chains {
		if r, ok := c.key.(interface{ ready() error }); ok {
			if err := r.ready(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Sign signs req under the chain's sign-state rules. The vote extension, if
// asked for, is signed fresh every time, as FilePV does: extensions are not
// slashable and may legitimately differ between retries.
func (s *Softsign) Sign(ctx context.Context, req *privval.SignRequest) (*privval.SignResponse, error) {
	c, err := s.chain(req.ChainID)
	if err != nil {
		return nil, err
	}
	// What follows the signature inside state.Sign is the durable write.
	var signedAt time.Time
	sig, ts, err := c.state.Sign(req, func(msg []byte) ([]byte, error) {
		defer func() { signedAt = time.Now() }()
		return c.key.Sign(ctx, msg)
	})
	if err != nil {
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrRegression) {
			s.metrics.refusedErr(req.ChainID, err)
			s.log.Warn("refused double sign", "chain", req.ChainID, "height", req.Height,
				"round", req.Round, "step", req.Step.String(), "err", err)
		}
		return nil, err
	}
	if !signedAt.IsZero() {
		s.metrics.observeStateWrite(time.Since(signedAt))
	}
	resp := &privval.SignResponse{Signature: sig, Timestamp: ts}
	if req.ExtSignBytes != nil {
		if resp.ExtSignature, err = c.key.Sign(ctx, req.ExtSignBytes); err != nil {
			return nil, fmt.Errorf("sign vote extension: %w", err)
		}
	}
	return resp, nil
}
