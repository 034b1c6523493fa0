package cosigner

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/raft"
)

// Metrics are one cosigner process's Prometheus metrics, and the little
// state behind `cosigner status` (last signature per chain, node
// connections). Every method is safe for concurrent use and a nil *Metrics
// records nothing.
//
// Families (labels are bounded: chain ids and node addresses come from
// cosigner.toml, peers are cosigner ids; never a height):
//
//   - cosigner_cluster_threshold, cosigner_cluster_quorum_available and, on
//     the leader only, cosigner_cluster_peers_reachable (cosigners the
//     leader reaches, itself included). A follower reports quorum available
//     while its Raft knows a leader. Softsign reports a cluster of one:
//     threshold 1, one peer reachable, quorum 1.
//   - cosigner_raft_is_leader, cosigner_raft_term, cosigner_raft_leader_id
//     (threshold mode only), cosigner_raft_apply_duration_seconds (the
//     leader's replication of each new signature).
//   - cosigner_sign_* per chain, from the requests of the nodes this
//     process serves (the leader, or softsign): last height and round by
//     type, signatures by type and outcome (signed, duplicate, refused,
//     error), request latency as the node sees it, and heights the node
//     moved past without our signature. The last height and round series
//     of a chain exist only while this process serves its nodes.
//   - cosigner_sign_refusals_total{chain,reason}: every request refused by
//     this process's rules, counted where the rule fired: the node-facing
//     checks (chain_id, invalid), the leader's check against the cluster's
//     last signature, softsign's sign state, and each cosigner's own
//     high-water mark (so a share request refused by two cosigners counts
//     once on each).
//   - cosigner_peer_share_rpc_duration_seconds{peer} (the leader's share
//     RPCs), cosigner_state_write_duration_seconds (durable mark writes),
//     cosigner_nonce_pool_size{peer} (on the leader: commitments it holds
//     per cosigner; on a follower: its own pool), cosigner_node_connected
//     {chain,address} (while this process dials the node), and
//     cosigner_build_info{version}.
type Metrics struct {
	lastHeight     *prometheus.GaugeVec
	lastRound      *prometheus.GaugeVec
	signatures     *prometheus.CounterVec
	refusals       *prometheus.CounterVec
	missed         *prometheus.CounterVec
	requestLatency *prometheus.HistogramVec
	peerRPC        *prometheus.HistogramVec
	stateWrite     prometheus.Histogram
	raftApply      prometheus.Histogram
	nodeConnected  *prometheus.GaugeVec

	cluster *clusterCollector

	// mu guards chains and nodes.
	mu     sync.Mutex
	chains map[string]*chainActivity
	nodes  map[nodeKey]bool // present while dialled; value: connected
}

// chainActivity is what this process last signed for a chain's nodes.
type chainActivity struct {
	height int64
	round  int32
	step   privval.Step
	at     time.Time
	// baseline is the height the missed-heights count starts from: the
	// last height known signed (by anyone) when this process began to
	// serve the chain's nodes; 0 when unknown.
	baseline int64
}

type nodeKey struct{ chain, address string }

// Refusal reasons as the metrics label them.
const (
	reasonRegression  = "regression"
	reasonConflict    = "conflict"
	reasonTooFarAhead = "too_far_ahead"
	reasonChainID     = "chain_id"
	reasonInvalid     = "invalid"
)

// Sign outcomes as the metrics label them.
const (
	outcomeSigned    = "signed"
	outcomeDuplicate = "duplicate"
	outcomeRefused   = "refused"
	outcomeError     = "error"
)

// latencyBuckets run from 100 µs (a durable write) to 5 s (the node's
// timeout).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

var _ privval.Observer = (*Metrics)(nil)

// NewMetrics creates the metrics of one process running version and
// registers them on reg. It fails only if reg already holds metrics of the
// same names.
func NewMetrics(reg prometheus.Registerer, version string) (*Metrics, error) {
	m := &Metrics{
		lastHeight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cosigner_sign_last_height",
			Help: "Height of the last vote or proposal signed for the chain's nodes, by type."}, []string{"chain", "type"}),
		lastRound: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cosigner_sign_last_round",
			Help: "Round of the last vote or proposal signed for the chain's nodes, by type."}, []string{"chain", "type"}),
		signatures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cosigner_sign_signatures_total",
			Help: "Sign requests answered, by type and outcome (signed, duplicate, refused, error)."}, []string{"chain", "type", "outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cosigner_sign_refusals_total",
			Help: "Requests refused by this cosigner's rules, by reason (regression, conflict, too_far_ahead, chain_id, invalid)."}, []string{"chain", "reason"}),
		missed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cosigner_sign_missed_heights_total",
			Help: "Heights the chain's nodes moved past without a signature of ours."}, []string{"chain"}),
		requestLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cosigner_sign_request_duration_seconds",
			Help: "Time from a node's sign request to our reply.", Buckets: latencyBuckets}, []string{"chain", "type"}),
		peerRPC: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cosigner_peer_share_rpc_duration_seconds",
			Help: "The leader's signature-share RPCs, by cosigner.", Buckets: latencyBuckets}, []string{"peer"}),
		stateWrite: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cosigner_state_write_duration_seconds",
			Help: "Durable writes of a chain's high-water mark.", Buckets: latencyBuckets}),
		raftApply: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cosigner_raft_apply_duration_seconds",
			Help: "Replication of a new signature record through Raft, on the leader.", Buckets: latencyBuckets}),
		nodeConnected: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cosigner_node_connected",
			Help: "1 while the connection to the node is up; present while this process dials it."}, []string{"chain", "address"}),
		cluster: newClusterCollector(),
		chains:  map[string]*chainActivity{},
		nodes:   map[nodeKey]bool{},
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cosigner_build_info",
		Help: "Always 1; the version label names the build."}, []string{"version"})
	build.WithLabelValues(version).Set(1)
	for _, c := range []prometheus.Collector{m.lastHeight, m.lastRound, m.signatures, m.refusals, m.missed,
		m.requestLatency, m.peerRPC, m.stateWrite, m.raftApply, m.nodeConnected, m.cluster, build} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// NodeConnected implements privval.Observer.
func (m *Metrics) NodeConnected(chainID, address string, up bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := nodeKey{chainID, address}
	if _, ok := m.nodes[k]; !ok {
		return // no longer dialled: a late report of a closed client
	}
	m.nodes[k] = up
	m.nodeConnected.WithLabelValues(chainID, address).Set(boolFloat(up))
}

// ServeNodes records that this process now dials the nodes of chainID,
// none connected yet, and that the chain's last known signed height is
// baseline (0: unknown).
func (m *Metrics) ServeNodes(chainID string, nodes []string, baseline int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range nodes {
		m.nodes[nodeKey{chainID, a}] = false
		m.nodeConnected.WithLabelValues(chainID, a).Set(0)
	}
	a := m.chainLocked(chainID)
	a.baseline = max(baseline, a.height)
}

// stopServingNodes removes the node and last-signature series of every
// chain: this process no longer answers nodes (a leader that stepped down).
func (m *Metrics) stopServingNodes() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.nodes {
		m.nodeConnected.DeleteLabelValues(k.chain, k.address)
		delete(m.nodes, k)
	}
	m.lastHeight.Reset()
	m.lastRound.Reset()
}

func (m *Metrics) chainLocked(chainID string) *chainActivity {
	a, ok := m.chains[chainID]
	if !ok {
		a = &chainActivity{}
		m.chains[chainID] = a
	}
	return a
}

// SignAnswered implements privval.Observer: it classifies the outcome,
// counts it, and on a new signature moves the last height and round and
// counts the heights skipped since the previous one.
func (m *Metrics) SignAnswered(r privval.SignResult) {
	if m == nil || r.Step == 0 {
		return
	}
	typ := r.Step.String()
	m.requestLatency.WithLabelValues(r.ChainID, typ).Observe(r.Latency.Seconds())
	outcome := outcomeError
	switch r.Code {
	case 0:
		outcome = m.signed(r)
	case privval.CodeWrongChainID:
		outcome = outcomeRefused
		m.refused(r.ChainID, reasonChainID)
	case privval.CodeInvalidRequest:
		outcome = outcomeRefused
		m.refused(r.ChainID, reasonInvalid)
	case privval.CodeSignerError:
		// Counted in refusals where the rule fired.
		if _, ok := refusalReason(r.Err); ok {
			outcome = outcomeRefused
		}
	}
	m.signatures.WithLabelValues(r.ChainID, typ, outcome).Inc()
}

func (m *Metrics) signed(r privval.SignResult) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.chainLocked(r.ChainID)
	if !hrsAbove(r.Height, r.Round, r.Step, a.height, a.round, a.step) {
		return outcomeDuplicate
	}
	prev := max(a.height, a.baseline)
	if prev > 0 && r.Height > prev+1 {
		m.missed.WithLabelValues(r.ChainID).Add(float64(r.Height - prev - 1))
	}
	a.height, a.round, a.step, a.at = r.Height, r.Round, r.Step, time.Now()
	typ := r.Step.String()
	m.lastHeight.WithLabelValues(r.ChainID, typ).Set(float64(r.Height))
	m.lastRound.WithLabelValues(r.ChainID, typ).Set(float64(r.Round))
	return outcomeSigned
}

func hrsAbove(h int64, r int32, s privval.Step, h0 int64, r0 int32, s0 privval.Step) bool {
	if h != h0 {
		return h > h0
	}
	if r != r0 {
		return r > r0
	}
	return s > s0
}

// refused counts one refusal of chainID's request.
func (m *Metrics) refused(chainID, reason string) {
	if m == nil {
		return
	}
	m.refusals.WithLabelValues(chainID, reason).Inc()
}

// refusedErr counts err if it is a refusal by the sign-state rules.
func (m *Metrics) refusedErr(chainID string, err error) {
	if reason, ok := refusalReason(err); ok {
		m.refused(chainID, reason)
	}
}

// refusalReason names the rule that refused a request, or reports that err
// is no refusal (a failure: no quorum, a full disk).
func refusalReason(err error) (string, bool) {
	var r *Refusal
	if errors.As(err, &r) {
		switch r.Reason {
		case RefusedRegression:
			return reasonRegression, true
		case RefusedConflict:
			return reasonConflict, true
		case RefusedTooFarAhead:
			return reasonTooFarAhead, true
		case RefusedInvalidRequest:
			return reasonInvalid, true
		case RefusedUnknownChain:
			return reasonChainID, true
		}
		return "", false
	}
	switch {
	case errors.Is(err, ErrRegression):
		return reasonRegression, true
	case errors.Is(err, ErrConflict):
		return reasonConflict, true
	}
	return "", false
}

func (m *Metrics) observeStateWrite(d time.Duration) {
	if m != nil {
		m.stateWrite.Observe(d.Seconds())
	}
}

func (m *Metrics) observeRaftApply(d time.Duration) {
	if m != nil {
		m.raftApply.Observe(d.Seconds())
	}
}

func (m *Metrics) observePeerRPC(peer int, d time.Duration) {
	if m != nil {
		m.peerRPC.WithLabelValues(strconv.Itoa(peer)).Observe(d.Seconds())
	}
}

// setClusterSource installs the function the cluster gauges are read from
// at each scrape.
func (m *Metrics) setClusterSource(f func() ClusterView) {
	if m != nil {
		m.cluster.set(f)
	}
}

// ChainActivity is the last signature this process made for a chain's
// nodes.
type ChainActivity struct {
	ChainID  string
	Height   int64
	Round    int32
	Step     privval.Step
	SignedAt time.Time // zero if none since the process started
}

// NodeState is one node connection.
type NodeState struct {
	ChainID, Address string
	Connected        bool
}

// Activity returns the last signature per chain, sorted by chain id.
func (m *Metrics) Activity() []ChainActivity {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ChainActivity
	for id, a := range m.chains {
		out = append(out, ChainActivity{ChainID: id, Height: a.height, Round: a.round, Step: a.step, SignedAt: a.at})
	}
	slices.SortFunc(out, func(a, b ChainActivity) int { return cmp.Compare(a.ChainID, b.ChainID) })
	return out
}

// Nodes returns the nodes this process dials, sorted.
func (m *Metrics) Nodes() []NodeState {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []NodeState
	for k, up := range m.nodes {
		out = append(out, NodeState{ChainID: k.chain, Address: k.address, Connected: up})
	}
	slices.SortFunc(out, func(a, b NodeState) int {
		if c := cmp.Compare(a.ChainID, b.ChainID); c != 0 {
			return c
		}
		return cmp.Compare(a.Address, b.Address)
	})
	return out
}

// nodesDown describes the first node not connected, or "" when all are.
func (m *Metrics) nodesDown() string {
	for _, n := range m.Nodes() {
		if !n.Connected {
			return fmt.Sprintf("node %s of chain %s is not connected", n.Address, n.ChainID)
		}
	}
	return ""
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// ClusterView is what the cluster gauges show at a scrape.
type ClusterView struct {
	Threshold int
	// Reachable is the number of cosigners the leader reaches, itself
	// included; -1 when this process does not lead.
	Reachable int
	Quorum    bool
	// Raft is nil in softsign mode.
	Raft *raft.View
	// Pools is the nonce pool size per cosigner id.
	Pools map[int]int
}

// clusterCollector reads a ClusterView at each scrape.
type clusterCollector struct {
	threshold, reachable, quorum, isLeader, term, leaderID, pool *prometheus.Desc

	mu  sync.Mutex
	src func() ClusterView
}

func newClusterCollector() *clusterCollector {
	return &clusterCollector{
		threshold: prometheus.NewDesc("cosigner_cluster_threshold", "Cosigners needed to sign (M); 1 in softsign mode.", nil, nil),
		reachable: prometheus.NewDesc("cosigner_cluster_peers_reachable",
			"Cosigners the leader reaches, itself included; exported by the leader (and softsign) only.", nil, nil),
		quorum: prometheus.NewDesc("cosigner_cluster_quorum_available",
			"1 when enough cosigners are reachable to sign: the leader's view; a follower's is whether it knows a leader.", nil, nil),
		isLeader: prometheus.NewDesc("cosigner_raft_is_leader", "1 while this cosigner is the Raft leader.", nil, nil),
		term:     prometheus.NewDesc("cosigner_raft_term", "Current Raft term.", nil, nil),
		leaderID: prometheus.NewDesc("cosigner_raft_leader_id", "Cosigner id of the leader this cosigner knows, 0 if none.", nil, nil),
		pool: prometheus.NewDesc("cosigner_nonce_pool_size",
			"Nonce commitments held per cosigner (on the leader), or this cosigner's own pool (on a follower).", []string{"peer"}, nil),
	}
}

func (c *clusterCollector) set(f func() ClusterView) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.src = f
}

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.threshold, c.reachable, c.quorum, c.isLeader, c.term, c.leaderID, c.pool} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	src := c.src
	c.mu.Unlock()
	if src == nil {
		return
	}
	v := src()
	gauge := func(d *prometheus.Desc, x float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, x, labels...)
	}
	gauge(c.threshold, float64(v.Threshold))
	gauge(c.quorum, boolFloat(v.Quorum))
	if v.Reachable >= 0 {
		gauge(c.reachable, float64(v.Reachable))
	}
	if v.Raft != nil {
		gauge(c.isLeader, boolFloat(v.Raft.Role == raft.RoleLeader))
		gauge(c.term, float64(v.Raft.Term))
		gauge(c.leaderID, float64(v.Raft.LeaderID))
	}
	for id, n := range v.Pools {
		gauge(c.pool, float64(n), strconv.Itoa(id))
	}
}
