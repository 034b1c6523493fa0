package raft

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"

	"github.com/cosigner/cosigner/internal/certid"
)

// maxPendingHandshakes bounds the TLS handshakes in progress on the server
// side, so a flood of connections that never finish their handshake cannot
// grow goroutines without limit; further connections wait in the kernel's
// accept queue.
const maxPendingHandshakes = 32

// StreamConfig configures a StreamLayer.
type StreamConfig struct {
	// Listener accepts the raw TCP connections. The StreamLayer owns it and
	// closes it on Close.
	Listener net.Listener
	// Advertise is the address other members dial to reach this one, as
	// listed in the membership. Empty means Listener.Addr().
	Advertise string
	// ServerTLS is the configuration for accepted connections. It must
	// require and verify a client certificate from the cluster, as
	// cosigner's ClusterTLS.ServerTLSConfig does; NewStreamLayer refuses one
	// that does not require client certificates. A client whose certificate
	// carries no cosigner id (see certPeerID) is dropped after the
	// handshake.
	ServerTLS *tls.Config
	// ClientTLS returns the configuration for dialing address; it must
	// verify that the server is the member listed at that address. It is
	// called from raft's goroutines and must be safe for concurrent use.
	ClientTLS func(address string) (*tls.Config, error)
	// HandshakeTimeout bounds each TLS handshake, in both directions.
	HandshakeTimeout time.Duration
	// Logger receives rejected connections at debug level; nil discards.
	Logger *slog.Logger
}

// StreamLayer is a hashicorp/raft StreamLayer over mutual TLS 1.3: every
// connection, accepted or dialed, has completed a handshake in which both
// sides proved a cluster certificate. Accept returns only such connections,
// each a *peerConn that knows the cosigner id in the client's certificate;
// a client without a cluster certificate is dropped during the handshake and
// never reaches Raft.
//
// It is safe for concurrent use. Handshakes of accepted connections run in
// their own goroutines, so a slow or hostile client cannot stall Accept;
// Close stops them all and waits for them.
type StreamLayer struct {
	ln        net.Listener
	addr      net.Addr
	serverTLS *tls.Config
	clientTLS func(address string) (*tls.Config, error)
	timeout   time.Duration
	logger    *slog.Logger

	conns     chan *peerConn // handshaken connections for Accept
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // the accept loop and handshake goroutines

	mu      sync.Mutex
	pending map[net.Conn]struct{} // raw connections mid-handshake
}

var _ hraft.StreamLayer = (*StreamLayer)(nil)

// NewStreamLayer starts accepting on c.Listener.
func NewStreamLayer(c StreamConfig) (*StreamLayer, error) {
	switch {
	case c.Listener == nil:
		return nil, errors.New("raft stream layer: no listener")
	case c.ServerTLS == nil:
		return nil, errors.New("raft stream layer: no server TLS configuration")
	case c.ServerTLS.ClientAuth != tls.RequireAndVerifyClientCert:
		return nil, fmt.Errorf("raft stream layer: server TLS configuration has ClientAuth %v, want RequireAndVerifyClientCert", c.ServerTLS.ClientAuth)
	case c.ClientTLS == nil:
		return nil, errors.New("raft stream layer: no client TLS configuration")
	case c.HandshakeTimeout <= 0:
		return nil, fmt.Errorf("raft stream layer: HandshakeTimeout %v must be positive", c.HandshakeTimeout)
	}
	s := &StreamLayer{
		ln:        c.Listener,
		addr:      c.Listener.Addr(),
		serverTLS: c.ServerTLS,
		clientTLS: c.ClientTLS,
		timeout:   c.HandshakeTimeout,
		logger:    c.Logger,
		conns:     make(chan *peerConn),
		closed:    make(chan struct{}),
		pending:   make(map[net.Conn]struct{}),
	}
	if c.Advertise != "" {
		if err := checkHostPort(c.Advertise, false); err != nil {
			return nil, fmt.Errorf("raft stream layer: advertise address %q: %w", c.Advertise, err)
		}
		s.addr = tcpAddr(c.Advertise)
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func (s *StreamLayer) acceptLoop() {
	defer s.wg.Done()
	sem := make(chan struct{}, maxPendingHandshakes)
	var backoff time.Duration
	for {
		select {
		case sem <- struct{}{}:
		case <-s.closed:
			return
		}
		raw, err := s.ln.Accept()
		if err != nil {
			<-sem
			select {
			case <-s.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off rather than
			// spin, but keep the listener.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logger.Warn("raft stream accept failed", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.closed:
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		if !s.track(raw) {
			raw.Close()
			<-sem
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-sem }()
			s.serverHandshake(raw)
		}()
	}
}

// track registers a connection mid-handshake so Close can abort it; it
// reports false if the layer is already closed.
func (s *StreamLayer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		return false
	}
	s.pending[c] = struct{}{}
	return true
}

func (s *StreamLayer) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, c)
}

func (s *StreamLayer) serverHandshake(raw net.Conn) {
	defer s.untrack(raw)
	tc := tls.Server(raw, s.serverTLS)
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		s.logger.Debug("raft stream rejected connection", "remote", raw.RemoteAddr().String(), "err", err)
		raw.Close()
		return
	}
	id, err := certPeerID(tc.ConnectionState())
	if err != nil {
		s.logger.Debug("raft stream rejected connection", "remote", raw.RemoteAddr().String(), "err", err)
		tc.Close()
		return
	}
	select {
	case s.conns <- &peerConn{Conn: tc, id: id}:
	case <-s.closed:
		tc.Close()
	}
}

// Accept returns the next connection whose mutual TLS handshake succeeded,
// a *peerConn. After Close it returns net.ErrClosed.
func (s *StreamLayer) Accept() (net.Conn, error) {
	c, err := s.acceptPeer()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// acceptPeer is Accept with the peer's id.
func (s *StreamLayer) acceptPeer() (*peerConn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

// Close stops accepting, aborts handshakes in progress and waits for the
// layer's goroutines. Connections already returned by Accept or Dial are the
// caller's to close. Close is idempotent.
func (s *StreamLayer) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		err = s.ln.Close()
		s.mu.Lock()
		for c := range s.pending {
			c.Close()
		}
		s.pending = nil
		s.mu.Unlock()
		s.wg.Wait()
	})
	return err
}

// Addr returns the advertised address.
func (s *StreamLayer) Addr() net.Addr { return s.addr }

// Dial connects to address and completes a mutual TLS handshake within
// timeout, with the configuration ClientTLS returns for address.
func (s *StreamLayer) Dial(address hraft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	cfg, err := s.clientTLS(string(address))
	if err != nil {
		return nil, fmt.Errorf("raft stream dial %s: %w", address, err)
	}
	if timeout <= 0 || timeout > s.timeout {
		timeout = s.timeout
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, fmt.Errorf("raft stream dial %s: %w", address, err)
	}
	return c, nil
}

// peerConn is an accepted connection and the cosigner id in the client's
// verified certificate.
type peerConn struct {
	*tls.Conn
	id int
}

// certPeerID returns the cosigner id in the peer certificate of a verified
// TLS connection. The certificate must carry it as cosigner's cluster
// certificates do: exactly one URI SAN "cosigner://<id>" and Subject CN
// "cosigner-<id>" with the same id, in canonical decimal 1..65535. It is the
// rule of cosigner's certID, restated here because raft does not import
// cosigner; the chain is not checked here, the TLS handshake did that.
func certPeerID(cs tls.ConnectionState) (int, error) {
	if len(cs.PeerCertificates) == 0 {
		return 0, errors.New("peer presented no certificate")
	}
	return certid.Of(cs.PeerCertificates[0])
}

// tcpAddr is an advertised address that need not be resolvable locally.
type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }
