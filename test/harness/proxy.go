package harness

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// proxyDialTimeout bounds each dial of the proxy's target.
const proxyDialTimeout = 2 * time.Second

// Proxy is a fault-injecting TCP proxy on 127.0.0.1: every connection it
// accepts is forwarded, byte for byte, to Target. Cut partitions the link:
// live connections are closed and new ones are accepted but blackholed (held
// open, nothing read or forwarded), as a dropped route looks to a dialer
// whose SYN still gets through a stateful firewall. Heal closes the
// blackholed connections, so their dialers notice at once, and forwards again.
// SetTargets spreads new connections over several targets in turn, and
// SetMaxConnAge closes each connection after a while: together, an address
// that two hosts answer, each connection reaching one or the other.
//
// A Proxy is safe for concurrent use. It is closed when the test that
// created it ends.
type Proxy struct {
	Name   string
	Addr   string // host:port the proxy listens on
	Target string // host:port it forwards to

	ln net.Listener
	wg sync.WaitGroup // the accept loop and every connection's goroutines

	// mu guards everything below.
	mu       sync.Mutex
	cut      bool
	closed   bool
	delay    time.Duration
	live     map[net.Conn]bool     // both ends of forwarded connections; true for the accepted end
	held     map[net.Conn]struct{} // blackholed connections, while cut
	accepted int
	dropped  int // connections blackholed or closed by a cut

	targets []string      // if set, new connections go to each in turn instead of Target
	next    int           // the index in targets of the next connection's target
	maxAge  time.Duration // if set, forwarded connections are closed this long after they start
}

// NewProxy starts a proxy on 127.0.0.1 with a kernel-chosen port that
// forwards to target. It is closed by a t.Cleanup.
func NewProxy(t testing.TB, name, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy %s: %v", name, err)
	}
	p := &Proxy{Name: name, Addr: ln.Addr().String(), Target: target, ln: ln,
		live: map[net.Conn]bool{}, held: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.acceptLoop()
	t.Cleanup(p.Close)
	return p
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		p.accepted++
		switch {
		case p.closed:
			p.mu.Unlock()
			c.Close()
			return
		case p.cut:
			p.held[c] = struct{}{}
			p.dropped++
			p.mu.Unlock()
			continue
		}
		p.live[c] = true
		p.wg.Add(1)
		p.mu.Unlock()
		go p.forward(c)
	}
}

// forward dials the target for the accepted connection c and copies both
// ways until either side ends or a cut closes them.
func (p *Proxy) forward(c net.Conn) {
	defer p.wg.Done()
	p.mu.Lock()
	target, maxAge := p.Target, p.maxAge
	if len(p.targets) > 0 {
		target = p.targets[p.next%len(p.targets)]
		p.next++
	}
	p.mu.Unlock()
	up, err := net.DialTimeout("tcp", target, proxyDialTimeout)
	if err != nil {
		p.drop(c)
		return
	}
	p.mu.Lock()
	if _, ok := p.live[c]; !ok {
		// Cut or closed while dialing.
		p.mu.Unlock()
		up.Close()
		return
	}
	p.live[up] = false
	p.mu.Unlock()
	if maxAge > 0 {
		age := time.AfterFunc(maxAge, func() {
			p.drop(c)
			p.drop(up)
		})
		defer age.Stop()
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		p.copyDelayed(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	// One direction ended: end the other (TLS and gRPC need no half-close).
	p.drop(c)
	p.drop(up)
	<-done
}

// copyDelayed copies src to dst until either fails, holding each chunk
// back until the delay set when it was read has passed: added latency,
// not a throughput limit.
func (p *Proxy) copyDelayed(dst, src net.Conn) {
	type chunk struct {
		b   []byte
		due time.Time
	}
	chunks := make(chan chunk, 256)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(chunks)
		buf := make([]byte, 32*1024)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case chunks <- chunk{append([]byte(nil), buf[:n]...), time.Now().Add(p.Delay())}:
				case <-stop:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for ch := range chunks {
		if wait := time.Until(ch.due); wait > 0 {
			timer.Reset(wait)
			<-timer.C
		}
		if _, err := dst.Write(ch.b); err != nil {
			// Unblock the reader: closing src ends its Read.
			src.Close()
			for range chunks {
			}
			return
		}
	}
}

// SetDelay makes the proxy hold every chunk of data, both ways, for d
// before forwarding it; 0 forwards at once.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// SetTargets makes the proxy forward each new connection to the next of
// targets in turn (none: Target again). Live connections keep theirs.
func (p *Proxy) SetTargets(targets ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.targets, p.next = slices.Clone(targets), 0
}

// SetMaxConnAge makes the proxy close each connection it forwards from now
// on d after it was set up, as a flapping route does; 0: never.
func (p *Proxy) SetMaxConnAge(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.maxAge = d
}

// Delay returns the added latency.
func (p *Proxy) Delay() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.delay
}

func (p *Proxy) drop(c net.Conn) {
	p.mu.Lock()
	delete(p.live, c)
	p.mu.Unlock()
	c.Close()
}

// Cut closes every live connection and blackholes new ones until Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c, accepted := range p.live {
		c.Close()
		delete(p.live, c)
		if accepted {
			p.dropped++
		}
	}
}

// Heal closes the blackholed connections and forwards new ones again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	for c := range p.held {
		c.Close()
		delete(p.held, c)
	}
}

// IsCut reports whether the proxy is cut.
func (p *Proxy) IsCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// Stats returns how many connections the proxy accepted and how many of
// them a cut closed or blackholed.
func (p *Proxy) Stats() (accepted, dropped int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted, p.dropped
}

// Close stops the proxy: the listener and every connection are closed and
// its goroutines waited for. It is safe to call more than once.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.ln.Close()
	for c := range p.live {
		c.Close()
	}
	for c := range p.held {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) String() string {
	return fmt.Sprintf("proxy %s %s->%s", p.Name, p.Addr, p.Target)
}
