package hsm

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Key is a chain's consensus key inside a YubiHSM2, for Softsign
// (AddChainKey): the sign-state rules are Softsign's, the signature comes
// from the device's Sign EdDSA, and the key never enters this process. A
// device signature takes on the order of 100 ms on real hardware, so it
// suits chains with block times of a second or more.
type Key struct {
	dev     *Client
	keyID   uint16
	pub     ed25519.PublicKey
	timeout time.Duration
	log     *slog.Logger

	// mu guards lat.
	mu  sync.Mutex
	lat latencyWindow
}

// NewKey reads the public key of the device's ed25519 key keyID. Each
// signature later gets at most timeout (a vote and its extension are two
// signatures).
func NewKey(ctx context.Context, dev *Client, keyID uint16, timeout time.Duration, log *slog.Logger) (*Key, error) {
	pub, err := dev.PublicKey(ctx, keyID)
	if err != nil {
		return nil, err
	}
	return &Key{dev: dev, keyID: keyID, pub: pub, timeout: timeout, log: log}, nil
}

// Public returns the key's public key, read from the device by NewKey.
func (k *Key) Public() ed25519.PublicKey { return k.pub }

// Sign has the device sign msg within the timeout, and checks the signature
// before it can be recorded or released.
func (k *Key) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	start := time.Now()
	sig, err := k.dev.SignEd25519(ctx, k.keyID, msg)
	if err != nil {
		return nil, err
	}
	k.observe(time.Since(start))
	if !ed25519.Verify(k.pub, msg, sig) {
		return nil, fmt.Errorf("yubihsm key %d returned a signature that does not verify", k.keyID)
	}
	return sig, nil
}

// Ready reports the device unavailable since the last request, or nil.
func (k *Key) Ready() error {
	if !k.dev.down.Load() {
		return nil
	}
	return fmt.Errorf("yubihsm at %s unavailable", k.dev.opts.Addr)
}

// latencyWindow summarises device signature latencies between log lines.
type latencyWindow struct {
	n          int
	sum, max   time.Duration
	first      bool
	totalCount int
}

// latencyEvery is how many device signatures one latency log line
// summarises.
const latencyEvery = 100

func (k *Key) observe(d time.Duration) {
	k.mu.Lock()
	w := &k.lat
	w.n++
	w.totalCount++
	w.sum += d
	w.max = max(w.max, d)
	if w.n < latencyEvery && w.first {
		k.mu.Unlock()
		return
	}
	n, mean, mx, total := w.n, w.sum/time.Duration(w.n), w.max, w.totalCount
	*w = latencyWindow{first: true, totalCount: total}
	k.mu.Unlock()
	k.log.Info("hsm sign latency", "key_id", k.keyID, "signatures", n, "mean_ms", millis(mean), "max_ms", millis(mx), "total", total)
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
