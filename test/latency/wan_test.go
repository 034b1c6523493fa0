package latency

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// defaultWANSignatures is TestLatencyWAN's number of signatures per
// cluster and mode.
const defaultWANSignatures = 600

// TestLatencyWAN measures the selected clusters as TestLatency does, with
// $COSIGNER_LATENCY_WAN_DELAY (default 5ms; 0 skips the test) added each
// way on every link between cosigners by the harness's proxies, and reports
// the latency minus one round trip between cosigners: what the cluster adds
// beyond the network. $COSIGNER_LATENCY_WAN_SIGNATURES sets the number of
// signatures per cluster and mode (default 600).
func TestLatencyWAN(t *testing.T) {
	if os.Getenv("COSIGNER_LATENCY") == "" {
		t.Skip("set COSIGNER_LATENCY=1 to measure signer latency")
	}
	delay := durationFromEnv(t, "COSIGNER_LATENCY_WAN_DELAY", 5*time.Millisecond)
	if delay == 0 {
		t.Skip("COSIGNER_LATENCY_WAN_DELAY=0")
	}
	cfg := configFromEnv(t)
	// Each request takes a round trip longer: fewer of them by default.
	cfg.signatures = wholeHeights(intFromEnv(t, "COSIGNER_LATENCY_WAN_SIGNATURES", defaultWANSignatures))
	var ms []measurement
	for _, tgt := range selectedTargets(t) {
		if tgt.n == 0 {
			continue
		}
		wan := clusterTarget(tgt.m, tgt.n, delay)
		if !t.Run(wan.name, func(t *testing.T) { ms = append(ms, measureTarget(t, wan, cfg)...) }) {
			t.FailNow()
		}
	}
	if len(ms) == 0 {
		t.Skip("COSIGNER_LATENCY_TARGETS selects no cluster")
	}
	t.Logf("each cluster alone, %v added each way between cosigners, %d signatures per mode after %d warm-up heights:\n%s",
		delay, cfg.signatures, warmupHeights, wanReport(ms, 2*delay))
}

// wanReport formats the measurements of TestLatencyWAN: latency, latency
// minus rtt, and CPU per signature, then each process's CPU.
func wanReport(all []measurement, rtt time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "request->reply as the node sees it (ms), and minus one round trip between cosigners (%v):\n", rtt)
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "target\tmode\tn\tp50\tp90\tp99\tp50-RTT\tp90-RTT\tp99-RTT\tCPU ms/sig")
	for _, m := range all {
		s := m.stats()
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.target, m.mode.name, s.N, ms(s.P50), ms(s.P90), ms(s.P99),
			ms(s.P50-rtt), ms(s.P90-rtt), ms(s.P99-rtt), ms(m.cpuPerSignature()))
	}
	w.Flush()
	b.WriteString("\n")
	b.WriteString(processTable(all))
	return b.String()
}
