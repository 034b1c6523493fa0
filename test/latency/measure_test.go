package latency

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/test/harness"
)

// A mode is how the node sends its requests: back to back (the next
// request as soon as the reply is read) or paced, with a pause between a
// reply and the next request, as a node does between the steps of a
// height.
type mode struct {
	name  string
	pause time.Duration
}

var backToBack = mode{name: "back-to-back"}

func paced(pause time.Duration) mode { return mode{name: "paced " + pause.String(), pause: pause} }

// config is what the environment asks of a run.
type config struct {
	// signatures is the number of timed requests per target and mode, a
	// whole number of heights.
	signatures int
	modes      []mode
}

// Defaults: about three minutes for `make bench`'s three latency tests on
// an idle 2-core machine.
const (
	defaultSignatures = 1500
	defaultPause      = 5 * time.Millisecond
)

// configFromEnv reads COSIGNER_LATENCY_SIGNATURES, COSIGNER_LATENCY_PAUSE
// and COSIGNER_LATENCY_MODES.
func configFromEnv(tb testing.TB) config {
	tb.Helper()
	if s := os.Getenv("COSIGNER_LATENCY_HEIGHTS"); s != "" {
		tb.Fatalf("COSIGNER_LATENCY_HEIGHTS=%s is no longer read: the targets are measured one after the other, "+
			"a number of signatures each; set COSIGNER_LATENCY_SIGNATURES (default %d) instead", s, defaultSignatures)
	}
	n := wholeHeights(intFromEnv(tb, "COSIGNER_LATENCY_SIGNATURES", defaultSignatures))
	pause := durationFromEnv(tb, "COSIGNER_LATENCY_PAUSE", defaultPause)
	if pause <= 0 {
		tb.Fatalf("COSIGNER_LATENCY_PAUSE=%s: want a positive duration such as 5ms", pause)
	}
	cfg := config{signatures: n}
	names := os.Getenv("COSIGNER_LATENCY_MODES")
	if names == "" {
		names = "back-to-back,paced"
	}
	for _, name := range strings.Split(names, ",") {
		switch strings.TrimSpace(name) {
		case "back-to-back":
			cfg.modes = append(cfg.modes, backToBack)
		case "paced":
			cfg.modes = append(cfg.modes, paced(pause))
		default:
			tb.Fatalf("COSIGNER_LATENCY_MODES: unknown mode %q; known: back-to-back, paced", name)
		}
	}
	return cfg
}

// wholeHeights rounds n signatures up to whole heights, so that the
// heights a measurement signs are its requests.
func wholeHeights(n int) int {
	return (n + requestsPerHeight - 1) / requestsPerHeight * requestsPerHeight
}

// durationFromEnv reads a duration (time.ParseDuration syntax) from the
// environment variable name, or returns def when it is unset.
func durationFromEnv(tb testing.TB, name string, def time.Duration) time.Duration {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		tb.Fatalf("%s=%q: want a duration such as 5ms or 10s", name, s)
	}
	return d
}

// measurement is n requests timed against one target in one mode.
type measurement struct {
	target string
	mode   mode
	// lat is each request as the node sees it; inside the same requests
	// inside the cosigner that served them, from its log's latency=.
	lat, inside []time.Duration
	// wall is the measurement's duration, pauses included.
	wall  time.Duration
	procs []procFigure
}

// procFigure is one signer process's share of a measurement.
type procFigure struct {
	name string
	role string // "signer" alone, "leader" or "follower" in a cluster (see horcruxFigures)
	cpu  time.Duration
	// shares is how many share RPCs the leader sent this cosigner during
	// the measurement (its own share included), -1 if not a cluster or
	// unknown.
	shares int
}

// cpu returns the CPU time of all the target's processes.
func (m measurement) cpu() time.Duration {
	var sum time.Duration
	for _, p := range m.procs {
		sum += p.cpu
	}
	return sum
}

// cpuPerSignature returns the target's CPU time per request.
func (m measurement) cpuPerSignature() time.Duration { return perSignature(m.cpu(), len(m.lat)) }

func perSignature(d time.Duration, n int) time.Duration {
	if n == 0 {
		return 0
	}
	return d / time.Duration(n)
}

// measure times n requests in mode md, and the CPU time of every signer
// process from just before the first to just after the last.
func measure(tb testing.TB, s *session, md mode, n int) measurement {
	tb.Helper()
	if s.cluster != nil {
		for _, mb := range s.cluster.Members {
			if !mb.Running() {
				tb.Fatalf("%s: %s is not running: %s", s.name, memberName(mb), mb.Current().Tail(5))
			}
		}
	}
	var hx0 horcruxCounts
	if s.horcrux != nil {
		hx0 = horcruxSnapshot(tb, s.name, s.horcrux)
	}
	procs := s.procs()
	leader, shares0 := s.shareCounts(tb)
	c0, err := readCPU(procs)
	if err != nil {
		tb.Fatalf("%s: %v", s.name, err)
	}
	from := s.height()
	lat := make([]time.Duration, 0, n)
	start := time.Now()
	for range n {
		if md.pause > 0 {
			time.Sleep(md.pause) // the pacing under measurement
		}
		lat = append(lat, s.sign(tb))
	}
	wall := time.Since(start)
	c1, err := readCPU(procs)
	if err != nil {
		tb.Fatalf("%s: %v", s.name, err)
	}
	cpu, err := c1.since(c0)
	if err != nil {
		tb.Fatalf("%s: %v", s.name, err)
	}
	to := s.height() - 1
	m := measurement{target: s.name, mode: md, lat: lat, wall: wall, inside: s.inside(tb, procs, from, to)}

	if s.horcrux != nil {
		m.procs = horcruxFigures(tb, s.name, s.horcrux, hx0, horcruxSnapshot(tb, s.name, s.horcrux), cpu)
		m.inside = horcruxInside(tb, s.name, s.horcrux, hx0.leader, from, to)
		return m
	}
	if s.cluster == nil {
		for _, p := range procs {
			m.procs = append(m.procs, procFigure{name: s.name, role: "signer", cpu: cpu[p], shares: -1})
		}
		return m
	}
	leader1, shares1 := s.shareCounts(tb)
	if leader1 != leader {
		tb.Fatalf("%s: the lead moved during the measurement, from %s to %s", s.name, memberName(leader), memberName(leader1))
	}
	for _, mb := range s.cluster.Members {
		p := mb.Current()
		f := procFigure{name: memberName(mb), role: "follower", cpu: cpu[p], shares: -1}
		if mb == leader {
			f.role = "leader"
		}
		if shares0 != nil && shares1 != nil {
			f.shares = shares1[mb.ID] - shares0[mb.ID]
		}
		m.procs = append(m.procs, f)
	}
	return m
}

func isSignedLine(l string) bool { _, ok := harness.ParseSignRecord(l); return ok }

func memberName(m *harness.Member) string {
	if m == nil {
		return "none"
	}
	return fmt.Sprintf("cosigner-%d", m.ID)
}

// shareRPCMetric is the leader's histogram of its share RPCs, by peer.
const shareRPCMetric = "cosigner_peer_share_rpc_duration_seconds"

// shareCounts returns the cluster's leader and how many share RPCs it has
// sent each cosigner (by id) so far, from its metrics; nil counts if the
// session is not a cluster or the scrape fails (logged).
func (s *session) shareCounts(tb testing.TB) (*harness.Member, map[int]int) {
	tb.Helper()
	if s.cluster == nil {
		return nil, nil
	}
	leader := s.cluster.Leader()
	if leader == nil {
		tb.Fatalf("%s: no cosigner leads", s.name)
	}
	sc, err := harness.ScrapeMetrics(context.Background(), leader.MetricsAddr)
	if err != nil {
		tb.Logf("%s: share counts unknown: %v", s.name, err)
		return leader, nil
	}
	counts := map[int]int{}
	for _, mb := range s.cluster.Members {
		counts[mb.ID] = int(sc.HistogramCount(shareRPCMetric, "peer", strconv.Itoa(mb.ID)))
	}
	return leader, counts
}

// inside returns how long the requests of heights from to to took inside
// the cosigner processes among procs, from request read to reply ready (the
// latency= of their "signed ..." lines); nil for a signer that logs none.
// The difference from what the node sees is the transport: SecretConnection
// and the scheduling of both ends.
func (s *session) inside(tb testing.TB, procs []*harness.Process, from, to int64) []time.Duration {
	tb.Helper()
	var lat []time.Duration
	for _, p := range procs {
		if !slices.ContainsFunc(p.Lines(), isSignedLine) {
			continue // not the process that answers the node
		}
		// A cosigner logs a signature after its reply: wait for the
		// last one of the measurement.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _, err := p.WaitLine(ctx, 0, func(l string) bool {
			rec, ok := harness.ParseSignRecord(l)
			return ok && rec.Height == to && rec.Step == "precommit"
		})
		cancel()
		if err != nil {
			tb.Logf("%s: the log lacks the measurement's last signature: %v", s.name, err)
		}
		for _, line := range p.Lines() {
			rec, ok := harness.ParseSignRecord(line)
			if !ok || rec.Height < from || rec.Height > to {
				continue
			}
			d, err := time.ParseDuration(harness.ParseSlogText(line)["latency"])
			if err != nil {
				continue
			}
			lat = append(lat, d)
		}
	}
	return lat
}
