package latency

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Stats summarises latencies.
type Stats struct {
	N                  int
	P50, P90, P99, Max time.Duration
}

// summarise computes the percentiles of lat (nearest rank), sorting it.
func summarise(lat []time.Duration) Stats {
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		i := int(p*float64(len(lat))+0.5) - 1
		return lat[max(0, min(i, len(lat)-1))]
	}
	s := Stats{N: len(lat), P50: q(0.50), P90: q(0.90), P99: q(0.99)}
	if len(lat) > 0 {
		s.Max = lat[len(lat)-1]
	}
	return s
}

// stats summarises the latencies the node saw.
func (m measurement) stats() Stats { return summarise(slices.Clone(m.lat)) }

// ms formats d in milliseconds with microsecond precision.
func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }

// ratio formats a/b, or "-" without a reference.
func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(b))
}

// report formats the measurements of TestLatency: the main table (latency
// and CPU per signature against the reference of the same mode), each
// signer process's CPU, and the latency inside cosigner.
func report(all []measurement) string {
	var b strings.Builder
	ref := func(m measurement) (Stats, time.Duration, bool) {
		i := slices.IndexFunc(all, func(r measurement) bool { return r.target == refTarget && r.mode == m.mode })
		if i < 0 {
			return Stats{}, 0, false
		}
		return all[i].stats(), all[i].cpuPerSignature(), true
	}
	b.WriteString("request->reply as the node sees it (ms), CPU of the signer's processes per signature, ratios to " + refTarget + " in the same mode:\n")
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "target\tmode\tn\tp50\tp90\tp99\tCPU ms/sig\tp50/ref\tp99/ref\tCPU/ref")
	for _, m := range all {
		s, cpu := m.stats(), m.cpuPerSignature()
		rs, rcpu, ok := ref(m)
		if !ok {
			rs, rcpu = Stats{}, 0
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.target, m.mode.name, s.N, ms(s.P50), ms(s.P90), ms(s.P99),
			ms(cpu), ratio(s.P50, rs.P50), ratio(s.P99, rs.P99), ratio(cpu, rcpu))
	}
	w.Flush()
	b.WriteString("\n")
	b.WriteString(processTable(all))
	b.WriteString("\nthe same requests inside the signer, ms: cosigner's process that answers the node, request read -> reply ready (its log's latency=); " +
		"Horcrux's Raft leader, its Sign after the leader check (its log's duration_ms=):\n")
	w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "target\tmode\tn\tp50\tp90\tp99\tnode p50 - inside p50")
	for _, m := range all {
		if len(m.inside) == 0 {
			continue
		}
		in, s := summarise(slices.Clone(m.inside)), m.stats()
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", m.target, m.mode.name, in.N, ms(in.P50), ms(in.P90), ms(in.P99), ms(s.P50-in.P50))
	}
	w.Flush()
	return b.String()
}

// processTable formats the CPU of every signer process of all: per
// signature, and as a share of one core over the measurement's wall time.
func processTable(all []measurement) string {
	var b strings.Builder
	b.WriteString("CPU of each signer process (user+system, /proc/PID/stat); share RPCs: those the leader sent it, per request:\n")
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "target\tmode\tprocess\trole\tshare RPCs\tCPU ms/sig\t% of a core")
	for _, m := range all {
		for _, p := range m.procs {
			shares := "-"
			if p.shares >= 0 && len(m.lat) > 0 {
				shares = fmt.Sprintf("%.0f%%", 100*float64(p.shares)/float64(len(m.lat)))
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%.1f\n", m.target, m.mode.name, p.name, p.role, shares,
				ms(perSignature(p.cpu, len(m.lat))), 100*p.cpu.Seconds()/m.wall.Seconds())
		}
	}
	w.Flush()
	return b.String()
}
