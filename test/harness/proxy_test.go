package harness

import (
	"bufio"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// echoServer answers every line with the same line until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := c.Write(append(sc.Bytes(), '\n')); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip writes a line and reads it back, with a deadline.
func roundTrip(c net.Conn, r *bufio.Reader, d time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(d)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return errors.New("echo returned " + line)
	}
	return nil
}

func TestProxyCutAndHeal(t *testing.T) {
	p := NewProxy(t, "test", echoServer(t))
	dial := func() (net.Conn, *bufio.Reader) {
		t.Helper()
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}

	live, liveR := dial()
	if err := roundTrip(live, liveR, 5*time.Second); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}

	p.Cut()
	if err := roundTrip(live, liveR, 5*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("live connection after Cut: %v, want it closed", err)
	}
	held, heldR := dial()
	if err := roundTrip(held, heldR, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("new connection while cut: %v, want no answer (blackholed)", err)
	}

	p.Heal()
	if err := roundTrip(held, heldR, 5*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blackholed connection after Heal: %v, want it closed", err)
	}
	fresh, freshR := dial()
	if err := roundTrip(fresh, freshR, 5*time.Second); err != nil {
		t.Fatalf("after Heal: %v", err)
	}
	if accepted, dropped := p.Stats(); accepted != 3 || dropped != 2 {
		t.Errorf("Stats() = %d accepted, %d dropped; want 3, 2", accepted, dropped)
	}
}

func TestProxyDelay(t *testing.T) {
	p := NewProxy(t, "test", echoServer(t))
	const d = 100 * time.Millisecond
	p.SetDelay(d)
	c, err := net.DialTimeout("tcp", p.Addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	start := time.Now()
	if err := roundTrip(c, r, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// Held back once on the way there and once on the way back.
	if rtt := time.Since(start); rtt < 2*d {
		t.Errorf("round trip through a proxy delaying %v took %v, want at least %v", d, rtt, 2*d)
	}
	p.SetDelay(0)
	start = time.Now()
	if err := roundTrip(c, r, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt >= d {
		t.Errorf("round trip without delay took %v", rtt)
	}
}

// nameServer greets every connection with its name, then holds it open
// until the client closes it or the test ends.
func nameServer(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := c.Write([]byte(name + "\n")); err != nil {
					return
				}
				_, _ = c.Read(make([]byte, 1))
			}()
		}
	}()
	return ln.Addr().String()
}

// TestProxyAlternatesTargets: with two targets, new connections reach one
// and the other in turn; with a maximum age, each is closed after it.
func TestProxyAlternatesTargets(t *testing.T) {
	a, b := nameServer(t, "a"), nameServer(t, "b")
	p := NewProxy(t, "test", a)
	p.SetTargets(a, b)
	greet := func() (net.Conn, string) {
		t.Helper()
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("greeting through the proxy: %v", err)
		}
		return c, line
	}
	var got string
	for range 4 {
		_, name := greet()
		got += name[:1]
	}
	if got != "abab" {
		t.Errorf("connections reached %q, want abab", got)
	}

	p.SetMaxConnAge(100 * time.Millisecond)
	c, _ := greet()
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a connection past its maximum age: %v, want it closed", err)
	}
}
