package metrics

import (
	"bufio"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/cosigner/cosigner/privval"
)

func newTestMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, "test")
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// histogramCount returns the sample count of the histogram name whose
// labels include want.
func histogramCount(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, want) {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// connWatch reports node connection changes on a channel, after Metrics
// has recorded them.
type connWatch struct {
	*Metrics
	changes chan bool
}

func (w connWatch) NodeConnected(chainID, address string, up bool) {
	w.Metrics.NodeConnected(chainID, address, up)
	w.changes <- up
}

func waitConn(t *testing.T, ch <-chan bool, want bool) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("node connected = %v, want %v", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no node connection change to %v", want)
	}
}

func testVote(typ privval.SignedMsgType, h int64, block string) *privval.Vote {
	v := &privval.Vote{Type: typ, Height: h, Timestamp: time.Unix(1700000000+h, 0).UTC()}
	if block != "" {
		hash := make([]byte, 32)
		copy(hash, block)
		part := make([]byte, 32)
		copy(part, "parts")
		v.BlockID = privval.BlockID{Hash: hash, PartSetHeader: privval.PartSetHeader{Total: 1, Hash: part}}
	}
	return v
}

// TestSignMetrics drives a softsign signer through a real NodeClient over a
// unix socket, as a node would, and checks that the sign metrics move: the
// last height rises, duplicates, refusals by reason and missed heights are
// counted, the node shows connected, then not.
func TestSignMetrics(t *testing.T) {
	m, reg := newTestMetrics(t)
	state, _ := newTestState(t, Mark{Height: 9})
	ss := NewSoftsign(discard)
	ss.SetMetrics(m)
	if err := ss.AddChain(testChain, testKey, state); err != nil {
		t.Fatal(err)
	}

	sock := filepath.Join(t.TempDir(), "pv.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := "unix://" + sock
	m.ServeNodes(testChain, []string{addr}, state.Mark().Height)
	if got := testutil.ToFloat64(m.nodeConnected.WithLabelValues(testChain, addr)); got != 0 {
		t.Fatalf("node_connected before dialing = %v, want 0", got)
	}

	watch := connWatch{m, make(chan bool, 4)}
	cfg := privval.DefaultNodeClientConfig()
	cfg.Observer = watch
	client, err := privval.NewNodeClient(addr, testChain, nil, ss, discard, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { client.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	waitConn(t, watch.changes, true)
	if got := testutil.ToFloat64(m.nodeConnected.WithLabelValues(testChain, addr)); got != 1 {
		t.Fatalf("node_connected = %v, want 1", got)
	}
	r := bufio.NewReader(conn)
	send := func(chainID string, v *privval.Vote) *privval.RemoteSignerError {
		t.Helper()
		if err := privval.WriteMessage(conn, &privval.SignVoteRequest{Vote: v, ChainID: chainID}); err != nil {
			t.Fatal(err)
		}
		res, err := privval.ReadMessage(r)
		if err != nil {
			t.Fatal(err)
		}
		return res.(*privval.SignedVoteResponse).Error
	}

	steps := []struct {
		name    string
		chainID string
		vote    *privval.Vote
		refused bool
	}{
		{"prevote 10", testChain, testVote(privval.PrevoteType, 10, "A"), false},
		{"precommit 10", testChain, testVote(privval.PrecommitType, 10, "A"), false},
		{"precommit 10 again", testChain, testVote(privval.PrecommitType, 10, "A"), false},
		{"prevote 13, after two missed heights", testChain, testVote(privval.PrevoteType, 13, "B"), false},
		{"prevote 13 for another block", testChain, testVote(privval.PrevoteType, 13, "C"), true},
		{"prevote 12", testChain, testVote(privval.PrevoteType, 12, "B"), true},
		{"another chain", "other-chain", testVote(privval.PrevoteType, 14, "B"), true},
		{"prevote 14", testChain, testVote(privval.PrevoteType, 14, "B"), false},
	}
	for _, s := range steps {
		if e := send(s.chainID, s.vote); (e != nil) != s.refused {
			t.Fatalf("%s: refusal %v, want refused %v", s.name, e, s.refused)
		}
	}
	// The client reports a request after writing its reply, and reads the
	// next request only then: a ping's reply means the last vote is
	// counted.
	if err := privval.WriteMessage(conn, &privval.PingRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := privval.ReadMessage(r); err != nil {
		t.Fatal(err)
	}

	gauge := func(g *prometheus.GaugeVec, labels ...string) float64 {
		return testutil.ToFloat64(g.WithLabelValues(labels...))
	}
	counter := func(c *prometheus.CounterVec, labels ...string) float64 {
		return testutil.ToFloat64(c.WithLabelValues(labels...))
	}
	checks := []struct {
		name      string
		got, want float64
	}{
		{"last prevote height", gauge(m.lastHeight, testChain, "prevote"), 14},
		{"last precommit height", gauge(m.lastHeight, testChain, "precommit"), 10},
		{"last prevote round", gauge(m.lastRound, testChain, "prevote"), 0},
		{"prevotes signed", counter(m.signatures, testChain, "prevote", "signed"), 3},
		{"precommits signed", counter(m.signatures, testChain, "precommit", "signed"), 1},
		{"precommit duplicates", counter(m.signatures, testChain, "precommit", "duplicate"), 1},
		{"prevotes refused", counter(m.signatures, testChain, "prevote", "refused"), 3},
		{"conflict refusals", counter(m.refusals, testChain, "conflict"), 1},
		{"regression refusals", counter(m.refusals, testChain, "regression"), 1},
		{"chain id refusals", counter(m.refusals, testChain, "chain_id"), 1},
		{"missed heights", counter(m.missed, testChain), 2},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if n := histogramCount(t, reg, "cosigner_sign_request_duration_seconds", map[string]string{"chain": testChain}); n != uint64(len(steps)) {
		t.Errorf("sign request durations observed: %d, want %d", n, len(steps))
	}
	// prevote 10, precommit 10, prevote 13 and 14 advanced the mark.
	if n := histogramCount(t, reg, "cosigner_state_write_duration_seconds", nil); n != 4 {
		t.Errorf("state writes observed: %d, want 4", n)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP cosigner_cluster_quorum_available 1 when enough cosigners are reachable to sign: the leader's view; a follower's is whether it knows a leader.
# TYPE cosigner_cluster_quorum_available gauge
cosigner_cluster_quorum_available 1
# HELP cosigner_cluster_threshold Cosigners needed to sign (M); 1 in softsign mode.
# TYPE cosigner_cluster_threshold gauge
cosigner_cluster_threshold 1
`), "cosigner_cluster_quorum_available", "cosigner_cluster_threshold"); err != nil {
		t.Error(err)
	}
	if a := m.Activity(); len(a) != 1 || a[0].Height != 14 || a[0].Step != privval.StepPrevote || a[0].SignedAt.IsZero() {
		t.Errorf("activity = %+v, want prevote 14", a)
	}

	ln.Close() // no redial may land
	conn.Close()
	waitConn(t, watch.changes, false)
	if got := testutil.ToFloat64(m.nodeConnected.WithLabelValues(testChain, addr)); got != 0 {
		t.Fatalf("node_connected after the node left = %v, want 0", got)
	}
	if down := m.nodesDown(); !strings.Contains(down, addr) {
		t.Errorf("nodesDown = %q, want it to name %s", down, addr)
	}
}

// TestMissedHeightsBaseline: a process that starts serving a chain counts
// the heights skipped since the last height known signed, and none before
// that height is known.
func TestMissedHeightsBaseline(t *testing.T) {
	signed := func(m *Metrics, h int64) {
		m.SignAnswered(privval.SignResult{ChainID: testChain, Step: privval.StepPrecommit, Height: h})
	}
	tests := []struct {
		name     string
		baseline int64
		heights  []int64
		want     float64
	}{
		{"unknown baseline", 0, []int64{100, 101, 102}, 0},
		{"no gap", 99, []int64{100, 101, 102}, 0},
		{"failover gap", 95, []int64{100, 101}, 4},
		{"gaps", 0, []int64{5, 6, 9, 10, 20}, 2 + 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newTestMetrics(t)
			m.ServeNodes(testChain, nil, tt.baseline)
			for _, h := range tt.heights {
				signed(m, h)
			}
			if got := testutil.ToFloat64(m.missed.WithLabelValues(testChain)); got != tt.want {
				t.Errorf("missed heights = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestShareSignerRefusalMetrics: each reason a cosigner refuses a share is
// counted under its label.
func TestShareSignerRefusalMetrics(t *testing.T) {
	tc := newTestCluster(t, 2, 3)
	m, reg := newTestMetrics(t)
	for _, s := range tc.signers {
		s.SetMetrics(m)
	}
	tc.coord.metrics = m
	ctx := context.Background()
	ts := time.Unix(1700000000, 0)

	if _, err := tc.coord.Sign(ctx, vote(5, 0, privval.StepPrevote, "A", ts)); err != nil {
		t.Fatal(err)
	}
	// The coordinator's own check against the cluster's last signature.
	if _, err := tc.coord.Sign(ctx, vote(5, 0, privval.StepPrevote, "B", ts)); err == nil {
		t.Fatal("conflicting prevote signed")
	}
	if _, err := tc.coord.Sign(ctx, vote(4, 0, privval.StepPrevote, "A", ts)); err == nil {
		t.Fatal("regressing prevote signed")
	}
	// Beyond max_height_ahead (100 in the test cluster): every chosen
	// cosigner refuses.
	if _, err := tc.coord.Sign(ctx, vote(500, 0, privval.StepPrevote, "A", ts)); err == nil {
		t.Fatal("prevote 500 heights ahead signed")
	}
	counter := func(reason string) float64 { return testutil.ToFloat64(m.refusals.WithLabelValues(testChain, reason)) }
	if got := counter("conflict"); got != 1 {
		t.Errorf("conflict refusals = %v, want 1", got)
	}
	if got := counter("regression"); got != 1 {
		t.Errorf("regression refusals = %v, want 1", got)
	}
	if got := counter("too_far_ahead"); got < 1 {
		t.Errorf("too_far_ahead refusals = %v, want at least 1", got)
	}
	// Share RPCs of the signed prevote and the refused request.
	if n := histogramCount(t, reg, "cosigner_peer_share_rpc_duration_seconds", nil); n < 4 {
		t.Errorf("share RPCs observed: %d, want at least 4", n)
	}
	if n := histogramCount(t, reg, "cosigner_state_write_duration_seconds", nil); n < 2 {
		t.Errorf("state writes observed: %d, want at least 2 (two cosigners signed prevote 5)", n)
	}
}

// TestClusterCollector: the cluster gauges follow the source; the peers
// reachable gauge is absent off the leader.
func TestClusterCollector(t *testing.T) {
	m, reg := newTestMetrics(t)
	if n := testutil.CollectAndCount(m.cluster); n != 0 {
		t.Fatalf("%d cluster metrics without a source, want 0", n)
	}
	view := ClusterView{Threshold: 2, Reachable: 3, Quorum: true, Pools: map[int]int{1: 64, 2: 63, 3: 0}}
	m.setClusterSource(func() ClusterView { return view })
	want := `
# HELP cosigner_cluster_peers_reachable Cosigners the leader reaches, itself included; exported by the leader (and softsign) only.
# TYPE cosigner_cluster_peers_reachable gauge
cosigner_cluster_peers_reachable 3
# HELP cosigner_nonce_pool_size Nonce commitments held per cosigner (on the leader), or this cosigner's own pool (on a follower).
# TYPE cosigner_nonce_pool_size gauge
cosigner_nonce_pool_size{peer="1"} 64
cosigner_nonce_pool_size{peer="2"} 63
cosigner_nonce_pool_size{peer="3"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "cosigner_cluster_peers_reachable", "cosigner_nonce_pool_size"); err != nil {
		t.Error(err)
	}
	view.Reachable, view.Quorum = -1, false
	if n := testutil.CollectAndCount(m.cluster, "cosigner_cluster_peers_reachable"); n != 0 {
		t.Errorf("peers_reachable exported off the leader")
	}
	if n := testutil.CollectAndCount(m.cluster, "cosigner_raft_term"); n != 0 {
		t.Errorf("raft metrics exported without a Raft view")
	}
}
