package latency

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/test/harness"
)

// horcruxTargetName is Horcrux v3.3.2 (harness.HorcruxVersion) in 2-of-3,
// measured side by side with cosigner-2of3.
const horcruxTargetName = "horcrux-2of3"

// horcruxWarmupFailures is how many failed requests Horcrux's warm-up
// tolerates. Freshly started, v3.3.2 at times fails its first requests:
// seen once in about ten runs, the second request (the prevote of height 1)
// failed with "signature is invalid" from the leader's own share and
// "failed to decrypt nonce pub: ecies: invalid message" from a follower,
// and the next ones succeeded. A node misses such a vote; the warm-up
// goes on to the next request.
const horcruxWarmupFailures = 3

// startHorcrux shards a fresh validator key 2-of-3 with Horcrux's own
// commands (harness.NewHorcruxCluster: 2 s gRPC and Raft timeouts, state on
// disk) and starts the three `horcrux start` processes on loopback, each of
// which dials addr. It returns once Horcrux's Raft has a leader: Horcrux
// fails every request until then. Whichever cosigner's connection the node
// accepts first serves it; a follower forwards each request to the leader.
func startHorcrux(tb testing.TB, addr string) started {
	tb.Helper()
	requireCosigner(tb) // the same opt-in as the other targets
	bin := harness.Horcrux(tb)
	keyFile := filepath.Join(tb.TempDir(), "priv_validator_key.json")
	pub, err := harness.WriteNewValidatorKey(keyFile)
	if err != nil {
		tb.Fatal(err)
	}
	hc := harness.NewHorcruxCluster(tb, harness.HorcruxConfig{Bin: bin, Threshold: 2, Shares: 3,
		ChainID: chainID, KeyFile: keyFile, Nodes: []string{addr}})
	hc.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := hc.WaitLeader(ctx); err != nil {
		tb.Fatalf("%s: %v", horcruxTargetName, err)
	}
	procs := func() []*harness.Process {
		var ps []*harness.Process
		for _, m := range hc.Members {
			ps = append(ps, m.Current())
		}
		return ps
	}
	return started{pub: pub, procs: procs, horcrux: hc}
}

// Horcrux's metrics (signer/metrics.go of v3.3.2) that say who did what:
// summaries of the leader's signatures and of its share RPCs by peer, and
// the counter of requests a follower forwarded to the leader.
const (
	horcruxSignedMetric  = "signer_sign_block_lag_seconds"
	horcruxPeerMetric    = "signer_cosigner_sign_lag_seconds"
	horcruxProxiedMetric = "signer_total_raft_not_leader"
)

// horcruxCounts is what a Horcrux cluster's metrics say at one moment.
type horcruxCounts struct {
	// leader is the Raft leader's id, from `horcrux leader`.
	leader int
	// shares is, by cosigner id, the share RPCs the leader has sent it
	// (its own: the signatures it made, as it always signs itself).
	shares map[int]int
	// proxied is, by cosigner id, the requests it forwarded to the leader.
	proxied map[int]int
}

// horcruxSnapshot reads the leader and the counts of hc; counts that cannot
// be scraped are logged and left nil.
func horcruxSnapshot(tb testing.TB, name string, hc *harness.HorcruxCluster) horcruxCounts {
	tb.Helper()
	for _, m := range hc.Members {
		if p := m.Current(); p == nil || p.Exited() {
			tb.Fatalf("%s: horcrux-%d is not running", name, m.ID)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leader, err := hc.WaitLeader(ctx)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	c := horcruxCounts{leader: leader, proxied: map[int]int{}}
	for _, m := range hc.Members {
		sc, err := harness.ScrapeMetrics(ctx, m.DebugAddr)
		if err != nil {
			tb.Logf("%s: share counts unknown: horcrux-%d: %v", name, m.ID, err)
			return horcruxCounts{leader: leader}
		}
		if v, ok := sc.Value(horcruxProxiedMetric); ok {
			c.proxied[m.ID] = int(v)
		}
		if m.ID != leader {
			continue
		}
		c.shares = map[int]int{}
		for _, mt := range sc[horcruxSignedMetric].GetMetric() {
			c.shares[m.ID] += int(mt.GetSummary().GetSampleCount())
		}
		for _, mt := range sc[horcruxPeerMetric].GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() != "peerid" {
					continue
				}
				for _, p := range hc.Members {
					if l.GetValue() == "tcp://"+p.P2PAddr {
						c.shares[p.ID] += int(mt.GetSummary().GetSampleCount())
					}
				}
			}
		}
	}
	return c
}

// horcruxFigures returns each Horcrux process's share of a measurement
// between the snapshots c0 and c1: its CPU, its role (leader or follower in
// Raft, "leader, then follower" and "follower, then leader" if the lead
// moved; ", proxy" added for a follower that forwarded the node's requests
// to the leader, which it does when the node accepted its connection) and
// the share RPCs the leader sent it (unknown if the lead moved).
func horcruxFigures(tb testing.TB, name string, hc *harness.HorcruxCluster, c0, c1 horcruxCounts, cpu cpuReading) []procFigure {
	tb.Helper()
	moved := c1.leader != c0.leader
	if moved {
		// Not fatal, unlike for cosigner: the requests were all served,
		// and how often Horcrux's lead moves under load is a finding.
		tb.Logf("%s: the Raft lead moved during the measurement, from horcrux-%d to horcrux-%d: share RPCs unknown", name, c0.leader, c1.leader)
	}
	var fs []procFigure
	for _, m := range hc.Members {
		f := procFigure{name: fmt.Sprintf("horcrux-%d", m.ID), role: "follower", cpu: cpu[m.Current()], shares: -1}
		switch {
		case m.ID == c0.leader && !moved:
			f.role = "leader"
		case m.ID == c0.leader:
			f.role = "leader, then follower"
		case m.ID == c1.leader:
			f.role = "follower, then leader"
		}
		if c0.proxied != nil && c1.proxied != nil && c1.proxied[m.ID] > c0.proxied[m.ID] {
			f.role += ", proxy"
		}
		if c0.shares != nil && c1.shares != nil && !moved {
			f.shares = c1.shares[m.ID] - c0.shares[m.ID]
		}
		fs = append(fs, f)
	}
	return fs
}

// horcruxInside returns how long the requests of heights from to to took
// inside Horcrux's leader, from the duration_ms= of its "Signed" lines:
// ThresholdValidator.Sign from after the leader check to the signature,
// without the node's connection and a proxying follower's hop.
func horcruxInside(tb testing.TB, name string, hc *harness.HorcruxCluster, leader int, from, to int64) []time.Duration {
	tb.Helper()
	i := slices.IndexFunc(hc.Members, func(m *harness.HorcruxMember) bool { return m.ID == leader })
	if i < 0 {
		return nil
	}
	p := hc.Members[i].Current()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, _, err := p.WaitLine(ctx, 0, func(l string) bool {
		h, step, _, ok := parseHorcruxSigned(l)
		return ok && h == to && step == "precommit"
	})
	cancel()
	if err != nil {
		tb.Logf("%s: the leader's log lacks the measurement's last signature: %v", name, err)
	}
	var lat []time.Duration
	for _, l := range p.Lines() {
		if h, _, d, ok := parseHorcruxSigned(l); ok && h >= from && h <= to {
			lat = append(lat, d)
		}
	}
	return lat
}

// parseHorcruxSigned reads the height, type and duration_ms of a Horcrux
// leader's "Signed" line, such as
//
//	I[2026-12-01|22:51:59.175] Signed    chain_id=latency-1 height=75 round=0 type=precommit duration_ms=4.861
func parseHorcruxSigned(line string) (height int64, step string, d time.Duration, ok bool) {
	if !strings.Contains(line, "] Signed ") {
		return 0, "", 0, false
	}
	kv := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, found := strings.Cut(f, "="); found {
			kv[k] = v
		}
	}
	h, err := strconv.ParseInt(kv["height"], 10, 64)
	if err != nil {
		return 0, "", 0, false
	}
	msec, err := strconv.ParseFloat(kv["duration_ms"], 64)
	if err != nil {
		return 0, "", 0, false
	}
	return h, kv["type"], time.Duration(msec * float64(time.Millisecond)), true
}

func TestParseHorcruxSigned(t *testing.T) {
	tests := []struct {
		name, line string
		height     int64
		step       string
		d          time.Duration
		ok         bool
	}{
		{"signed", "I[2026-12-01|22:51:59.175] Signed                                       chain_id=latency-1 height=75 round=0 type=precommit duration_ms=4.861",
			75, "precommit", 4861 * time.Microsecond, true},
		{"not signed", "D[2026-12-01|22:51:59.170] I am the leader. Managing the sign process for this block chain_id=latency-1 height=75 round=0 type=precommit", 0, "", 0, false},
		{"no duration", "I[2026-12-01|22:51:59.175] Signed chain_id=latency-1 height=75 round=0 type=prevote", 0, "", 0, false},
		{"bad height", "I[2026-12-01|22:51:59.175] Signed chain_id=latency-1 height=x type=prevote duration_ms=1", 0, "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, step, d, ok := parseHorcruxSigned(tt.line)
			if h != tt.height || step != tt.step || d != tt.d || ok != tt.ok {
				t.Fatalf("parseHorcruxSigned(%q) = %d, %q, %v, %v; want %d, %q, %v, %v", tt.line, h, step, d, ok, tt.height, tt.step, tt.d, tt.ok)
			}
		})
	}
}

func TestHorcruxFigures(t *testing.T) {
	hc := &harness.HorcruxCluster{Members: []*harness.HorcruxMember{{ID: 1}, {ID: 2}, {ID: 3}}}
	at := func(leader int, shares, proxied map[int]int) horcruxCounts {
		return horcruxCounts{leader: leader, shares: shares, proxied: proxied}
	}
	tests := []struct {
		name       string
		c0, c1     horcruxCounts
		roles      []string
		wantShares []int
	}{
		{"leader answers the node",
			at(1, map[int]int{1: 10, 2: 4, 3: 6}, map[int]int{}), at(1, map[int]int{1: 40, 2: 30, 3: 10}, map[int]int{}),
			[]string{"leader", "follower", "follower"}, []int{30, 26, 4}},
		{"a follower proxies",
			at(2, map[int]int{2: 0}, map[int]int{3: 5}), at(2, map[int]int{1: 3, 2: 9, 3: 6}, map[int]int{3: 14}),
			[]string{"follower", "leader", "follower, proxy"}, []int{3, 9, 6}},
		{"the lead moves",
			at(2, map[int]int{2: 0}, map[int]int{1: 1}), at(3, map[int]int{3: 9}, map[int]int{1: 2}),
			[]string{"follower, proxy", "leader, then follower", "follower, then leader"}, []int{-1, -1, -1}},
		{"metrics unknown",
			at(1, nil, nil), at(1, map[int]int{1: 3}, map[int]int{2: 3}),
			[]string{"leader", "follower", "follower"}, []int{-1, -1, -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := horcruxFigures(t, "horcrux-2of3", hc, tt.c0, tt.c1, cpuReading{})
			if len(fs) != 3 {
				t.Fatalf("%d figures, want 3", len(fs))
			}
			for i, f := range fs {
				if want := fmt.Sprintf("horcrux-%d", i+1); f.name != want || f.role != tt.roles[i] || f.shares != tt.wantShares[i] {
					t.Errorf("figure %d = %s %q shares %d; want %s %q shares %d", i, f.name, f.role, f.shares, want, tt.roles[i], tt.wantShares[i])
				}
			}
		})
	}
}
