// Package metrics defines one cosigner process's Prometheus metrics,
// registered on a registry the caller owns.
//
// It records what it is told; it is not where status or readiness are read
// from (that is admin.Tracker, which feeds these metrics).
package metrics

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/raft"
)

// Metrics are one cosigner process's Prometheus metrics. Every method is
// safe for concurrent use and a nil *Metrics records nothing.
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
//   - cosigner_peer_refusals_total{peer,reason} (on the leader: share
//     requests a cosigner refused by its own mark, regression or
//     conflict, which the leader routed around) and
//     cosigner_peer_duplicate_boot_ids{peer} (on a cosigner that led:
//     how many live processes it found answering as one cosigner id,
//     present only for an id it stopped using).
//   - cosigner_peer_epoch_mismatches_total{peer,side}: requests refused
//     because the peer holds a share of another epoch (see 'cosigner
//     reshare'), counted by the cosigner that refused (side "served") and
//     by the one that was refused or received an answer of another epoch
//     (side "called").
//   - cosigner_peer_share_rpc_duration_seconds{peer} (the leader's share
//     RPCs), cosigner_state_write_duration_seconds (durable mark writes),
//     cosigner_nonce_pool_size{peer} (on the leader: commitments it holds
//     per cosigner; on a follower: its own pool), cosigner_node_connected
//     {chain,address} (while this process dials the node), and
//     cosigner_build_info{version}.
//   - cosigner_chain_key_info{chain,address,pubkey}: always 1, one series
//     per configured chain, naming the validator key that signs it
//     (address: the validator address in hex; pubkey: the bech32
//     consensus public key), so a cluster signing several chains with
//     different keys shows which key signs which chain.
type Metrics struct {
	lastHeight     *prometheus.GaugeVec
	lastRound      *prometheus.GaugeVec
	signatures     *prometheus.CounterVec
	refusals       *prometheus.CounterVec
	missed         *prometheus.CounterVec
	requestLatency *prometheus.HistogramVec
	peerRPC        *prometheus.HistogramVec
	peerRefusals   *prometheus.CounterVec
	peerDuplicate  *prometheus.GaugeVec
	peerEpoch      *prometheus.CounterVec
	stateWrite     prometheus.Histogram
	raftApply      prometheus.Histogram
	nodeConnected  *prometheus.GaugeVec
	chainKey       *prometheus.GaugeVec

	cluster *clusterCollector
}

// Refusal reasons as the metrics label them.
const (
	ReasonRegression  = "regression"
	ReasonConflict    = "conflict"
	ReasonTooFarAhead = "too_far_ahead"
	ReasonChainID     = "chain_id"
	ReasonInvalid     = "invalid"
)

// Sign outcomes as the metrics label them.
const (
	OutcomeSigned    = "signed"
	OutcomeDuplicate = "duplicate"
	OutcomeRefused   = "refused"
	OutcomeError     = "error"
)

// LatencyBuckets run from 100 µs (a durable write) to 5 s (the node's
// timeout).
var LatencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// New creates the metrics of one process running version and
// registers them on reg. It fails only if reg already holds metrics of the
// same names.
func New(reg prometheus.Registerer, version string) (*Metrics, error) {
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
			Help: "Time from a node's sign request to our reply.", Buckets: LatencyBuckets}, []string{"chain", "type"}),
		peerRPC: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cosigner_peer_share_rpc_duration_seconds",
			Help: "The leader's signature-share RPCs, by cosigner.", Buckets: LatencyBuckets}, []string{"peer"}),
		peerRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cosigner_peer_refusals_total",
			Help: "Share requests a cosigner refused by its own high-water mark (regression, conflict), counted by the leader, which routes around it."}, []string{"peer", "reason"}),
		peerDuplicate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cosigner_peer_duplicate_boot_ids",
			Help: "Live processes (boot ids, alternating) found answering as one cosigner id; present only for an id this cosigner no longer uses."}, []string{"peer"}),
		peerEpoch: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cosigner_peer_epoch_mismatches_total",
			Help: "Cluster requests refused because the peer holds a share of another epoch (a missed reshare, an old home), by peer and side (served: this cosigner refused; called: this cosigner was refused or got an answer of another epoch)."}, []string{"peer", "side"}),
		stateWrite: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cosigner_state_write_duration_seconds",
			Help: "Durable writes of a chain's high-water mark.", Buckets: LatencyBuckets}),
		raftApply: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cosigner_raft_apply_duration_seconds",
			Help: "Replication of a new signature record through Raft, on the leader.", Buckets: LatencyBuckets}),
		nodeConnected: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cosigner_node_connected",
			Help: "1 while the connection to the node is up; present while this process dials it."}, []string{"chain", "address"}),
		chainKey: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cosigner_chain_key_info",
			Help: "Always 1; names the validator key (address, bech32 pubkey) that signs the chain."}, []string{"chain", "address", "pubkey"}),
		cluster: newClusterCollector(),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cosigner_build_info",
		Help: "Always 1; the version label names the build."}, []string{"version"})
	build.WithLabelValues(version).Set(1)
	for _, c := range []prometheus.Collector{m.lastHeight, m.lastRound, m.signatures, m.refusals, m.missed,
		m.requestLatency, m.peerRPC, m.peerRefusals, m.peerDuplicate, m.peerEpoch, m.stateWrite, m.raftApply, m.nodeConnected, m.chainKey, m.cluster, build} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// SetChainKey records the validator key that signs chainID: its address
// (hex) and bech32 public key.
func (m *Metrics) SetChainKey(chainID, address, pubkey string) {
	if m != nil {
		m.chainKey.WithLabelValues(chainID, address, pubkey).Set(1)
	}
}

// SetNodeConnected sets the connection gauge of a node this process dials.
func (m *Metrics) SetNodeConnected(chainID, address string, up bool) {
	if m != nil {
		m.nodeConnected.WithLabelValues(chainID, address).Set(boolFloat(up))
	}
}

// RemoveNode removes the connection gauge of a node this process no longer
// dials.
func (m *Metrics) RemoveNode(chainID, address string) {
	if m != nil {
		m.nodeConnected.DeleteLabelValues(chainID, address)
	}
}

// ResetLastSigned removes the last height and round series of every chain:
// this process no longer answers nodes (a leader that stepped down).
func (m *Metrics) ResetLastSigned() {
	if m != nil {
		m.lastHeight.Reset()
		m.lastRound.Reset()
	}
}

// Progress is what a signed request changed, as the tracker of the
// process's signatures classifies it.
type Progress struct {
	// Fresh: the signature is above the last one made for the chain's
	// nodes (not a duplicate).
	Fresh bool
	// Missed is the number of heights skipped since the previous one.
	Missed int64
}

// Answered records a node's request answered by this process: its latency
// and outcome and, for a fresh signature, the last height and round and
// the heights missed.
func (m *Metrics) Answered(r privval.SignResult, p Progress) {
	if m == nil || r.Step == 0 {
		return
	}
	typ := r.Step.String()
	m.requestLatency.WithLabelValues(r.ChainID, typ).Observe(r.Latency.Seconds())
	outcome := OutcomeError
	switch r.Code {
	case 0:
		outcome = OutcomeDuplicate
		if p.Fresh {
			outcome = OutcomeSigned
			if p.Missed > 0 {
				m.missed.WithLabelValues(r.ChainID).Add(float64(p.Missed))
			}
			m.lastHeight.WithLabelValues(r.ChainID, typ).Set(float64(r.Height))
			m.lastRound.WithLabelValues(r.ChainID, typ).Set(float64(r.Round))
		}
	case privval.CodeWrongChainID:
		outcome = OutcomeRefused
		m.Refused(r.ChainID, ReasonChainID)
	case privval.CodeInvalidRequest:
		outcome = OutcomeRefused
		m.Refused(r.ChainID, ReasonInvalid)
	case privval.CodeSignerError:
		// Counted in refusals where the rule fired.
		if _, ok := RefusalReason(r.Err); ok {
			outcome = OutcomeRefused
		}
	}
	m.signatures.WithLabelValues(r.ChainID, typ, outcome).Inc()
}

// Refused counts one refusal of chainID's request.
func (m *Metrics) Refused(chainID, reason string) {
	if m == nil {
		return
	}
	m.refusals.WithLabelValues(chainID, reason).Inc()
}

// RefusedErr counts err if it is a refusal by the sign-state rules.
func (m *Metrics) RefusedErr(chainID string, err error) {
	if reason, ok := RefusalReason(err); ok {
		m.Refused(chainID, reason)
	}
}

// RefusalReason names the rule that refused a request, or reports that err
// is no refusal (a failure: no quorum, a full disk).
func RefusalReason(err error) (string, bool) {
	var r *signstate.Refusal
	if errors.As(err, &r) {
		switch r.Reason {
		case signstate.RefusedRegression:
			return ReasonRegression, true
		case signstate.RefusedConflict:
			return ReasonConflict, true
		case signstate.RefusedTooFarAhead:
			return ReasonTooFarAhead, true
		case signstate.RefusedInvalidRequest:
			return ReasonInvalid, true
		case signstate.RefusedUnknownChain:
			return ReasonChainID, true
		}
		return "", false
	}
	switch {
	case errors.Is(err, signstate.ErrRegression):
		return ReasonRegression, true
	case errors.Is(err, signstate.ErrConflict):
		return ReasonConflict, true
	case errors.Is(err, signstate.ErrTooFarAhead):
		return ReasonTooFarAhead, true
	}
	return "", false
}

func (m *Metrics) ObserveStateWrite(d time.Duration) {
	if m != nil {
		m.stateWrite.Observe(d.Seconds())
	}
}

func (m *Metrics) ObserveRaftApply(d time.Duration) {
	if m != nil {
		m.raftApply.Observe(d.Seconds())
	}
}

func (m *Metrics) ObservePeerRPC(peer int, d time.Duration) {
	if m != nil {
		m.peerRPC.WithLabelValues(strconv.Itoa(peer)).Observe(d.Seconds())
	}
}

// PeerRefused counts a share request cosigner peer refused for reason (a
// label of RefusalReason).
func (m *Metrics) PeerRefused(peer int, reason string) {
	if m != nil {
		m.peerRefusals.WithLabelValues(strconv.Itoa(peer), reason).Inc()
	}
}

// Sides of an epoch mismatch as the metrics label them.
const (
	SideServed = "served"
	SideCalled = "called"
)

// PeerEpochMismatch counts a request refused because cosigner peer holds
// a share of another epoch; side is SideServed or SideCalled.
func (m *Metrics) PeerEpochMismatch(peer int, side string) {
	if m != nil {
		m.peerEpoch.WithLabelValues(strconv.Itoa(peer), side).Inc()
	}
}

// SetPeerDuplicate records that bootIDs live processes answer as cosigner
// peer, which is no longer used.
func (m *Metrics) SetPeerDuplicate(peer, bootIDs int) {
	if m != nil {
		m.peerDuplicate.WithLabelValues(strconv.Itoa(peer)).Set(float64(bootIDs))
	}
}

// SetClusterSource installs the function the cluster gauges are read from
// at each scrape.
func (m *Metrics) SetClusterSource(f func() ClusterView) {
	if m != nil {
		m.cluster.set(f)
	}
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
