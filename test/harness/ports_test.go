package harness

import (
	"net"
	"strconv"
	"testing"
)

// TestFreePort: ports are distinct, bindable, and outside the ephemeral
// range that port-0 listeners (the proxies) draw from.
func TestFreePort(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p, err := FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if p < portLow || p >= portHigh {
			t.Fatalf("port %d outside [%d, %d)", p, portLow, portHigh)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	eph := ln.Addr().(*net.TCPAddr).Port
	if eph >= portLow && eph < portHigh {
		t.Skipf("this kernel's ephemeral range includes %d; FreePort's range gives no guarantee here", eph)
	}
	// A port held by another listener is skipped.
	held, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(nextPort))
	if err != nil {
		t.Skipf("cannot hold the next port: %v", err)
	}
	defer held.Close()
	p, err := FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if p == held.Addr().(*net.TCPAddr).Port {
		t.Fatalf("FreePort returned %d, which is held", p)
	}
}
