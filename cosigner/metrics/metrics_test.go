package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newTestMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg, "test")
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// TestClusterCollector: the cluster gauges follow the source; the peers
// reachable gauge is absent off the leader.
func TestClusterCollector(t *testing.T) {
	m, reg := newTestMetrics(t)
	if n := testutil.CollectAndCount(m.cluster); n != 0 {
		t.Fatalf("%d cluster metrics without a source, want 0", n)
	}
	view := ClusterView{Threshold: 2, Reachable: 3, Quorum: true, Pools: map[int]int{1: 64, 2: 63, 3: 0}}
	m.SetClusterSource(func() ClusterView { return view })
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

// TestPeerMetrics: refusals the leader routed around count per cosigner
// and reason; a duplicate id shows how many processes answer as it; a nil
// *Metrics records nothing.
func TestPeerMetrics(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.PeerRefused(2, ReasonRegression)
	m.PeerRefused(2, ReasonRegression)
	m.PeerRefused(3, ReasonConflict)
	m.SetPeerDuplicate(3, 2)
	want := `
# HELP cosigner_peer_duplicate_boot_ids Live processes (boot ids, alternating) found answering as one cosigner id; present only for an id this cosigner no longer uses.
# TYPE cosigner_peer_duplicate_boot_ids gauge
cosigner_peer_duplicate_boot_ids{peer="3"} 2
# HELP cosigner_peer_refusals_total Share requests a cosigner refused by its own high-water mark (regression, conflict), counted by the leader, which routes around it.
# TYPE cosigner_peer_refusals_total counter
cosigner_peer_refusals_total{peer="2",reason="regression"} 2
cosigner_peer_refusals_total{peer="3",reason="conflict"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "cosigner_peer_refusals_total", "cosigner_peer_duplicate_boot_ids"); err != nil {
		t.Error(err)
	}
	var none *Metrics
	none.PeerRefused(1, ReasonConflict)
	none.SetPeerDuplicate(1, 2)
}
