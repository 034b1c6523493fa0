package privval

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
)

// NodeClientConfig tunes a NodeClient. Start from DefaultNodeClientConfig.
type NodeClientConfig struct {
	// DialTimeout bounds one TCP or unix connect.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the SecretConnection handshake.
	HandshakeTimeout time.Duration
	// ReadTimeout is how long a connection may stay silent. The node pings
	// about every 3.3 s when idle, so a longer silence means it is gone.
	ReadTimeout time.Duration
	// WriteTimeout bounds the write of one reply.
	WriteTimeout time.Duration
	// RequestTimeout is the deadline of the context each Signer call gets.
	// The node gives up on a request after about 5 s.
	RequestTimeout time.Duration
	// MinBackoff and MaxBackoff bound the exponential wait between dials
	// while the node cannot be reached.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// Observer, if set, is told of every connection and every answered
	// sign request, for metrics.
	Observer Observer
}

// Observer watches a NodeClient, for metrics and status. Its methods are
// called from the client's goroutine, one call at a time per client but
// concurrently across clients; they must be safe for that and must not
// block.
type Observer interface {
	// NodeConnected reports that the connection to the node at address
	// (as configured) came up, or went down.
	NodeConnected(chainID, address string, up bool)
	// SignAnswered reports one vote or proposal request answered, after
	// the reply was written.
	SignAnswered(r SignResult)
}

// SignResult describes one answered vote or proposal request.
type SignResult struct {
	ChainID string
	// Address is the node's address as configured.
	Address string
	// Step is 0 when the request named no valid vote type.
	Step   Step
	Height int64
	Round  int32
	// Latency runs from the request's arrival to the reply's write.
	Latency time.Duration
	// Code is 0 for a signature, else the RemoteSignerError code sent
	// (CodeWrongChainID, CodeInvalidRequest, CodeSignerError).
	Code int32
	// Err is the Signer's error behind a CodeSignerError, for its caller
	// to classify (errors.Is, errors.As).
	Err error
}

// DefaultNodeClientConfig returns timeouts that suit CometBFT's defaults
// (3 s accept, 5 s read and write timeouts, 3.3 s pings).
func DefaultNodeClientConfig() NodeClientConfig {
	return NodeClientConfig{
		DialTimeout:      3 * time.Second,
		HandshakeTimeout: 5 * time.Second,
		ReadTimeout:      10 * time.Second,
		WriteTimeout:     5 * time.Second,
		RequestTimeout:   4 * time.Second,
		MinBackoff:       100 * time.Millisecond,
		MaxBackoff:       2 * time.Second,
	}
}

// Validate checks every field; its error names the field and the rule.
func (c NodeClientConfig) Validate() error {
	var errs []error
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s is %v, must be positive", name, d))
		}
	}
	positive("DialTimeout", c.DialTimeout)
	positive("HandshakeTimeout", c.HandshakeTimeout)
	positive("ReadTimeout", c.ReadTimeout)
	positive("WriteTimeout", c.WriteTimeout)
	positive("RequestTimeout", c.RequestTimeout)
	positive("MinBackoff", c.MinBackoff)
	if c.MaxBackoff < c.MinBackoff {
		errs = append(errs, fmt.Errorf("MaxBackoff %v is below MinBackoff %v", c.MaxBackoff, c.MinBackoff))
	}
	return errors.Join(errs...)
}

// NodeClient keeps one connection open to one CometBFT node's
// priv_validator_laddr and answers its requests with a Signer. It dials
// (the node listens), redials at once when a live connection ends, and
// backs off exponentially while the node cannot be reached.
type NodeClient struct {
	address  string // as configured, for logs
	network  string // "tcp" or "unix"
	addr     string // host:port or socket path
	chainID  string
	identity cmted25519.PrivKey // nil for unix sockets
	signer   Signer
	log      *slog.Logger
	cfg      NodeClientConfig
}

// ParseNodeAddress splits a priv_validator_laddr-style address,
// "tcp://host:port" or "unix:///path/to/socket", into a network and an
// address for net.Dial.
func ParseNodeAddress(address string) (network, addr string, err error) {
	scheme, rest, ok := strings.Cut(address, "://")
	if !ok || rest == "" {
		return "", "", fmt.Errorf("node address %q: want tcp://host:port or unix:///path", address)
	}
	switch scheme {
	case "tcp":
		if !strings.Contains(rest, ":") {
			return "", "", fmt.Errorf("node address %q: no port", address)
		}
		return "tcp", rest, nil
	case "unix":
		return "unix", rest, nil
	}
	return "", "", fmt.Errorf("node address %q: scheme %q is neither tcp nor unix", address, scheme)
}

// NewNodeClient returns a client of the node at address ("tcp://host:port"
// or "unix:///path") that signs for chainID with signer. identity is the
// signer's persistent ed25519 identity for SecretConnection; it is required
// for tcp:// and ignored for unix://. logger receives one line per
// signature and per connection event.
func NewNodeClient(address, chainID string, identity ed25519.PrivateKey, signer Signer, logger *slog.Logger, cfg NodeClientConfig) (*NodeClient, error) {
	network, addr, err := ParseNodeAddress(address)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("node client for %s: %w", address, err)
	}
	if chainID == "" {
		return nil, fmt.Errorf("node client for %s: empty chain id", address)
	}
	if signer == nil || logger == nil {
		return nil, fmt.Errorf("node client for %s: nil signer or logger", address)
	}
	c := &NodeClient{
		address: address,
		network: network,
		addr:    addr,
		chainID: chainID,
		signer:  signer,
		log:     logger.With("chain", chainID, "node", address),
		cfg:     cfg,
	}
	if network == "tcp" {
		if len(identity) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("node client for %s: identity key of %d bytes, want a %d-byte ed25519 private key", address, len(identity), ed25519.PrivateKeySize)
		}
		// CometBFT's ed25519.PrivKey is the same 64-byte seed||public form.
		c.identity = cmted25519.PrivKey(append([]byte(nil), identity...))
	}
	return c, nil
}

// ID returns the node id of the client's SecretConnection identity, as the
// node would name it, or "" for a unix socket, which has no identity.
func (c *NodeClient) ID() string {
	if c.identity == nil {
		return ""
	}
	return NodeID(ed25519.PublicKey(c.identity.PubKey().Bytes()))
}

// NodeID returns the CometBFT node id of an ed25519 public key, as
// p2p.PubKeyToID computes it: the hex of the first 20 bytes of its SHA-256.
func NodeID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:20])
}

// Run serves the node until ctx ends, then closes the connection and
// returns nil. It holds at most one connection at a time. When a
// connection that was up ends, for any reason, it redials at once:
// CometBFT 0.34 and 0.37.2 close the first connection they accept after a
// signer restart, and only an immediate redial recovers. When dials fail,
// or a fresh connection again ends without serving anything, it waits
// MinBackoff, doubling up to MaxBackoff, and starts over at the first
// connection that serves a request.
func (c *NodeClient) Run(ctx context.Context) error {
	c.log.Info("dialing node", "identity", c.ID())
	failures := 0
	// unservedRedial is set once an immediate redial has been spent on a
	// connection that served nothing; it keeps a node that accepts and
	// drops at once from turning the loop into a spin.
	unservedRedial := false
	for {
		res := c.session(ctx)
		if ctx.Err() != nil {
			c.log.Info("stopped serving node")
			return nil
		}
		var wait time.Duration
		switch {
		case res.served:
			failures, unservedRedial = 0, false
			c.log.Warn("connection to node lost, redialing", "error", res.err)
		case res.established && !unservedRedial:
			unservedRedial = true
			c.log.Warn("connection to node lost before any request, redialing", "error", res.err)
		default:
			failures++
			wait = backoff(c.cfg.MinBackoff, c.cfg.MaxBackoff, failures)
			// A node that is down for long would fill the log: say it at
			// first, then once a minute or so.
			level := slog.LevelDebug
			if failures <= 3 || failures%30 == 0 {
				level = slog.LevelWarn
			}
			c.log.Log(ctx, level, "cannot reach node", "error", res.err, "attempt", failures, "retry_in", wait)
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				c.log.Info("stopped serving node")
				return nil
			case <-t.C:
			}
		}
	}
}

// backoff is min·2^(n-1), capped at max.
func backoff(min, max time.Duration, n int) time.Duration {
	d := min
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}
