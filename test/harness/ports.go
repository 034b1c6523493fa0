package harness

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
)

// FreePort hands out ports from [portLow, portHigh), below the kernel's
// ephemeral range (32768-60999 on Linux). Listeners on port 0 (the
// harness's proxies) and outgoing connections take ephemeral ports, so they
// can never take a port FreePort handed out between the moment it checked
// it and the moment its user binds it; a port drawn from the ephemeral
// range could (seen: a proxy took a cosigner's metrics port).
const (
	portLow  = 20000
	portHigh = 32000
)

// usedPorts keeps FreePort from handing the same port out twice within one
// test binary; nextPort starts at an offset drawn from the process id, so
// test binaries running side by side start far apart.
var (
	portsMu   sync.Mutex
	usedPorts = map[int]bool{}
	nextPort  = portLow + (os.Getpid()*7919)%(portHigh-portLow)
)

// FreePort returns a TCP port on ip, outside the ephemeral range, that was
// free a moment ago (it binds and closes it) and that this test binary has
// not handed out before. Another process may still take it before it is
// used; callers that can, retry on "address already in use".
func FreePort(ip string) (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range portHigh - portLow {
		port := nextPort
		if nextPort++; nextPort >= portHigh {
			nextPort = portLow
		}
		if usedPorts[port] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		usedPorts[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("find a free port on %s: every port from %d to %d is in use", ip, portLow, portHigh-1)
}
