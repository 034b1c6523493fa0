package latency

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// idleSettle is how long TestLatencyIdle waits after its warm-up before it
// measures, so that the refill of the nonce pools and the replication the
// warm-up started are over.
const idleSettle = time.Second

// TestLatencyIdle measures the CPU that a connected 2-of-3 cluster uses
// without sign requests, over $COSIGNER_LATENCY_IDLE (default 10s; 0 skips
// the test), after warmupHeights heights and idleSettle: Raft heartbeats,
// the leader's probes of its peers, the node's pings, Go's runtime.
func TestLatencyIdle(t *testing.T) {
	if os.Getenv("COSIGNER_LATENCY") == "" {
		t.Skip("set COSIGNER_LATENCY=1 to measure signer CPU")
	}
	d := durationFromEnv(t, "COSIGNER_LATENCY_IDLE", 10*time.Second)
	if d == 0 {
		t.Skip("COSIGNER_LATENCY_IDLE=0")
	}
	s := connect(t, clusterTarget(2, 3, 0))
	s.warmUp(t)
	time.Sleep(idleSettle) // not synchronisation: the idle state to measure
	leader := s.cluster.Leader()
	procs := s.procs()
	c0, err := readCPU(procs)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	time.Sleep(d) // the measurement
	wall := time.Since(start)
	c1, err := readCPU(procs)
	if err != nil {
		t.Fatal(err)
	}
	cpu, err := c1.since(c0)
	if err != nil {
		t.Fatal(err)
	}
	if l := s.cluster.Leader(); l != leader {
		t.Fatalf("the lead moved while idle, from %s to %s", memberName(leader), memberName(l))
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "process\trole\tCPU ms/s\t% of a core")
	for _, m := range s.cluster.Members {
		role := "follower"
		if m == leader {
			role = "leader"
		}
		c := cpu[m.Current()]
		fmt.Fprintf(w, "%s\t%s\t%.1f\t%.2f\n", memberName(m), role, float64(c)/1e6/wall.Seconds(), 100*c.Seconds()/wall.Seconds())
	}
	fmt.Fprintf(w, "all\t\t%.1f\t%.2f\n", float64(cpu.total())/1e6/wall.Seconds(), 100*cpu.total().Seconds()/wall.Seconds())
	w.Flush()
	t.Logf("connected 2-of-3 cluster, no requests for %v (user+system from /proc/PID/stat, %v resolution per process):\n%s",
		wall.Round(time.Millisecond), clockTick, b.String())
}
