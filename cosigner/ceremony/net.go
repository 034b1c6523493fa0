package ceremony

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/cosigner/cosigner/cosigner/clustertls"
)

// handshakeTimeout bounds each TLS handshake.
const handshakeTimeout = 10 * time.Second

// writeTimeout bounds each frame write, so a peer that stops reading cannot
// stall a writer past the end of the ceremony.
const writeTimeout = 10 * time.Second

// event is what the connection goroutines report to Run's loop.
type event struct {
	peer    int
	inbound bool
	// connected: an inbound connection from peer completed its handshake;
	// nothing else is set.
	connected bool
	frame     *frame
	// err ends the connection (inbound: read failed or closed; outbound:
	// dial, handshake or write failed). fatal marks an outbound error that
	// retrying cannot cure (the peer's certificate is wrong).
	err   error
	fatal bool
}

// links are a ceremony's connections: one listener, one reader per inbound
// connection and one writer per peer. Every goroutine reports through
// events until stop is closed, and close waits for all of them.
type links struct {
	tls      *clustertls.Identity
	ln       net.Listener
	events   chan event
	stop     chan struct{} // closed by close: everything ends
	dialWait time.Duration

	wg sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]bool // open connections (true: dialed by a writer), closed by close
}

func newLinks(id *clustertls.Identity, ln net.Listener, dialWait time.Duration) *links {
	l := &links{tls: id, ln: ln, events: make(chan event), stop: make(chan struct{}),
		dialWait: dialWait, conns: map[net.Conn]bool{}}
	l.wg.Add(1)
	go l.accept()
	return l
}

func (l *links) report(e event) bool {
	select {
	case l.events <- e:
		return true
	case <-l.stop:
		return false
	}
}

func (l *links) track(c net.Conn, outbound bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns == nil {
		return false
	}
	l.conns[c] = outbound
	return true
}

func (l *links) untrack(c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
}

func (l *links) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			// Closed by close, or a listener that cannot go on; either way
			// peers can no longer reach us, which they report.
			return
		}
		if !l.track(c, false) {
			c.Close()
			return
		}
		l.wg.Add(1)
		go l.read(c)
	}
}

// read handshakes an accepted connection and reports its frames.
func (l *links) read(raw net.Conn) {
	defer l.wg.Done()
	defer l.untrack(raw)
	defer raw.Close()
	tc := tls.Server(raw, l.tls.ServerTLSConfig())
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		// Not a cluster member, or a scan: it never reaches the ceremony.
		return
	}
	peer, err := clustertls.PeerID(tc.ConnectionState())
	if err != nil {
		return
	}
	if !l.report(event{peer: peer, inbound: true, connected: true}) {
		return
	}
	for {
		f, err := readFrame(tc)
		if err != nil {
			l.report(event{peer: peer, inbound: true, err: err})
			return
		}
		if !l.report(event{peer: peer, inbound: true, frame: &f}) {
			return
		}
	}
}

// writer sends frames to one peer in order. It dials until it is connected
// (the peer may start later, within the ceremony's window), then writes what
// send queues. After finish it writes what is left and closes.
type writer struct {
	peer  int
	addr  string
	queue chan frame
}

func (l *links) startWriter(ctx context.Context, peer int, addr string, size int) *writer {
	w := &writer{peer: peer, addr: addr, queue: make(chan frame, size)}
	l.wg.Add(1)
	go l.write(ctx, w)
	return w
}

// send queues f; the queue is sized for everything a ceremony sends to one
// peer, so it never blocks the loop. It reports false if the queue is full.
func (w *writer) send(f frame) bool {
	select {
	case w.queue <- f:
		return true
	default:
		return false
	}
}

// finish tells the writer that nothing more will be queued.
func (w *writer) finish() { close(w.queue) }

func (l *links) write(ctx context.Context, w *writer) {
	defer l.wg.Done()
	conn, raw, err := l.dial(ctx, w)
	if err != nil {
		return // reported by dial
	}
	defer l.untrack(raw)
	defer conn.Close()
	for f := range w.queue {
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := conn.Write(f.bytes()); err != nil {
			l.report(event{peer: w.peer, err: fmt.Errorf("send %s to cosigner %d at %s: %w", frameName(f.typ), w.peer, w.addr, err)})
			// Drain, so the loop's sends keep not blocking.
			for range w.queue {
			}
			return
		}
	}
}

// dial connects to w's peer, retrying refused or unreachable addresses
// every dialWait until ctx ends or the queue is finished.
func (l *links) dial(ctx context.Context, w *writer) (*tls.Conn, net.Conn, error) {
	var lastErr error
	for {
		d := net.Dialer{Timeout: handshakeTimeout}
		raw, err := d.DialContext(ctx, "tcp", w.addr)
		if err == nil {
			if !l.track(raw, true) {
				raw.Close()
				return nil, nil, net.ErrClosed
			}
			tc := tls.Client(raw, l.tls.ClientTLSConfig(w.peer))
			hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
			err = tc.HandshakeContext(hctx)
			cancel()
			if err == nil {
				return tc, raw, nil
			}
			l.untrack(raw)
			raw.Close()
			err = fmt.Errorf("TLS with cosigner %d at %s: %w", w.peer, w.addr, err)
			if ctx.Err() == nil && !transient(err) {
				l.report(event{peer: w.peer, err: err, fatal: true})
				return nil, nil, err
			}
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if lastErr == nil || lastErr.Error() != err.Error() {
			// Only changes are reported: the loop keeps the last one for the
			// timeout's message.
			if !l.report(event{peer: w.peer, err: err}) {
				return nil, nil, net.ErrClosed
			}
		}
		lastErr = err
		t := time.NewTimer(l.dialWait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-l.stop:
			t.Stop()
			if len(w.queue) == 0 {
				return nil, nil, net.ErrClosed
			}
			// An abort frame to deliver: the peer may be just starting, so
			// keep dialing until close's grace ends (it cancels ctx).
			t2 := time.NewTimer(l.dialWait)
			select {
			case <-t2.C:
			case <-ctx.Done():
				t2.Stop()
				return nil, nil, ctx.Err()
			}
		}
	}
}

// flushGrace bounds how long close lets writers deliver what is queued
// (an abort frame, the last done), dialing a peer not reached yet.
const flushGrace = 3 * time.Second

// close stops everything: the listener and the readers at once; writers
// first deliver what was queued, for at most flushGrace, after which cancel
// ends their dials and every connection is closed.
func (l *links) close(writers map[int]*writer, cancel context.CancelFunc) {
	for _, w := range writers {
		w.finish()
	}
	l.ln.Close()
	close(l.stop)
	l.mu.Lock()
	for c, out := range l.conns {
		if !out {
			c.Close()
		}
	}
	l.mu.Unlock()
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(flushGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
	cancel()
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.conns = nil
	l.mu.Unlock()
	<-done
}

// transient reports whether a handshake failed for want of a peer (its
// process starting or stopping: the connection closed or reset) rather than
// for a certificate one side refused, which retrying cannot cure.
func transient(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}
