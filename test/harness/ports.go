package harness

import (
	"fmt"
	"net"
	"sync"
)

// usedPorts keeps FreePort from handing the same port out twice within one
// test binary, however quickly it is reused by the kernel.
var (
	portsMu   sync.Mutex
	usedPorts = map[int]bool{}
)

// FreePort returns a TCP port on ip that was free a moment ago: it listens
// on port 0, closes, and returns the port. Another process may still take
// it before it is used; callers that can, retry on "address already in use".
func FreePort(ip string) (int, error) {
	for range 20 {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, fmt.Errorf("find a free port on %s: %w", ip, err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		portsMu.Lock()
		fresh := !usedPorts[port]
		usedPorts[port] = true
		portsMu.Unlock()
		if fresh {
			return port, nil
		}
	}
	return 0, fmt.Errorf("find a free port on %s: kernel keeps returning used ports", ip)
}
