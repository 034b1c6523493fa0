package cosigner

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cosigner/cosigner/privval"
)

// HSMSoftsign is softsign with each chain's key inside a YubiHSM2: the sign
// state rules are Softsign's, the signature comes from the device's Sign
// EdDSA, and the key never enters this process. A device signature takes
// on the order of 100 ms on real hardware, so it suits chains with block
// times of a second or more.
type HSMSoftsign struct {
	log     *slog.Logger
	metrics *Metrics // nil: none
	hsm     *HSM
	timeout time.Duration
	chains  map[string]*hsmChain

	// mu guards lat.
	mu  sync.Mutex
	lat latencyWindow
}

type hsmChain struct {
	keyID uint16
	pub   ed25519.PublicKey
	state *SignState
}

var _ privval.Signer = (*HSMSoftsign)(nil)

// NewHSMSoftsign returns an HSMSoftsign with no chains signing through hsm.
// Each sign request, the vote extension included, gets at most timeout.
func NewHSMSoftsign(hsm *HSM, timeout time.Duration, log *slog.Logger) *HSMSoftsign {
	return &HSMSoftsign{log: log, hsm: hsm, timeout: timeout, chains: map[string]*hsmChain{}}
}

// SetMetrics makes s record refusals and state writes in m, as Softsign
// does. Call it before s serves requests.
func (s *HSMSoftsign) SetMetrics(m *Metrics) { s.metrics = m }

// AddChain makes s sign for chainID with the device's ed25519 key keyID,
// guarded by state, and returns the key's public key. It must be called
// before s serves requests.
func (s *HSMSoftsign) AddChain(ctx context.Context, chainID string, keyID uint16, state *SignState) (ed25519.PublicKey, error) {
	if _, ok := s.chains[chainID]; ok {
		return nil, fmt.Errorf("chain %q added twice", chainID)
	}
	if state.chainID != chainID {
		return nil, fmt.Errorf("sign state of chain %q given for chain %q", state.chainID, chainID)
	}
	pub, err := s.hsm.PublicKey(ctx, keyID)
	if err != nil {
		return nil, err
	}
	s.chains[chainID] = &hsmChain{keyID: keyID, pub: pub, state: state}
	return pub, nil
}

// PubKey returns the public key of chainID's key, read from the device at
// AddChain.
func (s *HSMSoftsign) PubKey(_ context.Context, chainID string) (ed25519.PublicKey, error) {
	c, ok := s.chains[chainID]
	if !ok {
		return nil, fmt.Errorf("no key for chain %q", chainID)
	}
	return c.pub, nil
}

// sign has the device sign msg and checks the signature before it can be
// recorded or released.
func (s *HSMSoftsign) sign(ctx context.Context, c *hsmChain, msg []byte) ([]byte, error) {
	start := time.Now()
	sig, err := s.hsm.SignEd25519(ctx, c.keyID, msg)
	if err != nil {
		return nil, err
	}
	s.observe(time.Since(start))
	if !ed25519.Verify(c.pub, msg, sig) {
		return nil, fmt.Errorf("yubihsm key %d returned a signature that does not verify", c.keyID)
	}
	return sig, nil
}

// Sign signs req under the chain's sign-state rules with the device key.
// The whole request, extension included, is bounded by the timeout: while
// the device is away the request fails and nothing is recorded.
func (s *HSMSoftsign) Sign(ctx context.Context, req *privval.SignRequest) (*privval.SignResponse, error) {
	c, ok := s.chains[req.ChainID]
	if !ok {
		return nil, fmt.Errorf("no key for chain %q", req.ChainID)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// What follows the signature inside state.Sign is the durable write.
	var signedAt time.Time
	sig, ts, err := c.state.Sign(req, func(msg []byte) ([]byte, error) {
		defer func() { signedAt = time.Now() }()
		return s.sign(ctx, c, msg)
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
		if resp.ExtSignature, err = s.sign(ctx, c, req.ExtSignBytes); err != nil {
			return nil, fmt.Errorf("sign vote extension: %w", err)
		}
	}
	return resp, nil
}

// AddHSM makes a's status and readiness cover the chains of s, whose keys
// are in a YubiHSM2. Call it before a serves requests.
func (a *SoftsignAdmin) AddHSM(s *HSMSoftsign) { a.hsm = s }

// states returns the sign state of each chain; nil s has none.
func (s *HSMSoftsign) states() map[string]*SignState {
	if s == nil {
		return nil
	}
	out := make(map[string]*SignState, len(s.chains))
	for id, c := range s.chains {
		out[id] = c.state
	}
	return out
}

// ready reports the device unavailable since the last request, or nil.
func (s *HSMSoftsign) ready() error {
	if s == nil || !s.hsm.down.Load() {
		return nil
	}
	return fmt.Errorf("yubihsm at %s unavailable", s.hsm.opts.Addr)
}

// latencyWindow summarises device signature latencies between log lines.
type latencyWindow struct {
	n          int
	sum, max   time.Duration
	first      bool
	totalCount int
}

// hsmLatencyEvery is how many device signatures one latency log line
// summarises.
const hsmLatencyEvery = 100

func (s *HSMSoftsign) observe(d time.Duration) {
	s.mu.Lock()
	w := &s.lat
	w.n++
	w.totalCount++
	w.sum += d
	w.max = max(w.max, d)
	if w.n < hsmLatencyEvery && w.first {
		s.mu.Unlock()
		return
	}
	n, mean, mx, total := w.n, w.sum/time.Duration(w.n), w.max, w.totalCount
	*w = latencyWindow{first: true, totalCount: total}
	s.mu.Unlock()
	s.log.Info("hsm sign latency", "signatures", n, "mean_ms", hsmMillis(mean), "max_ms", hsmMillis(mx), "total", total)
}

func hsmMillis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
