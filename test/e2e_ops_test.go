package test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/admin"
	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/test/harness"
)

// opsNode is a second "node" of the cluster's chain on a unix socket,
// played by the test: it keeps the leader's connection alive with pings
// and sends the requests a test chooses, as a misbehaving sentry would.
type opsNode struct {
	ln       net.Listener
	addr     string
	accepted chan struct{} // closed at the first connection

	// mu serialises exchanges and guards conn and r.
	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
}

func newOpsNode(t *testing.T) *opsNode {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sentry.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	n := &opsNode{ln: ln, addr: "unix://" + path, accepted: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(n.accept)
	wg.Go(func() { n.keepalive(ctx) })
	t.Cleanup(func() {
		cancel()
		ln.Close()
		n.mu.Lock()
		if n.conn != nil {
			n.conn.Close()
		}
		n.mu.Unlock()
		wg.Wait()
	})
	return n
}

// accept takes each (re)dial of the leader, replacing the last one.
func (n *opsNode) accept() {
	first := true
	for {
		c, err := n.ln.Accept()
		if err != nil {
			return
		}
		n.mu.Lock()
		if n.conn != nil {
			n.conn.Close()
		}
		n.conn, n.r = c, bufio.NewReader(c)
		n.mu.Unlock()
		if first {
			close(n.accepted)
			first = false
		}
	}
}

// keepalive pings every 2 s, as a node does when idle, so that the
// signer's read timeout never drops the connection.
func (n *opsNode) keepalive(ctx context.Context) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			n.exchange(&privval.PingRequest{}) // a broken connection is redialled
		}
	}
}

func (n *opsNode) exchange(req privval.Message) (privval.Message, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		return nil, errors.New("no signer connected")
	}
	if err := n.conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return nil, err
	}
	if err := privval.WriteMessage(n.conn, req); err != nil {
		return nil, err
	}
	return privval.ReadMessage(n.r)
}

// signVote sends a prevote for h with a block id of its own and returns
// the signer's refusal, if any.
func (n *opsNode) signVote(t *testing.T, chainID string, h int64) *privval.RemoteSignerError {
	t.Helper()
	hash := make([]byte, 32)
	copy(hash, "not the chain's block")
	v := &privval.Vote{Type: privval.PrevoteType, Height: h, Timestamp: time.Now().UTC(),
		BlockID: privval.BlockID{Hash: hash, PartSetHeader: privval.PartSetHeader{Total: 1, Hash: hash}}}
	res, err := n.exchange(&privval.SignVoteRequest{Vote: v, ChainID: chainID})
	if err != nil {
		t.Fatal(err)
	}
	r, ok := res.(*privval.SignedVoteResponse)
	if !ok {
		t.Fatalf("reply %T to a vote request", res)
	}
	return r.Error
}

// opsStatus runs `cosigner status --json` for m and decodes it.
func opsStatus(t *testing.T, m *harness.Member) (admin.Status, harness.Result) {
	t.Helper()
	res := m.CLI.Run("status", "--home", m.Home, "--json")
	var st admin.Status
	if res.Code == 0 || strings.HasPrefix(strings.TrimSpace(res.Stdout), "{") {
		if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
			t.Fatalf("status --json of cosigner %d: %v\n%s", m.ID, err, res)
		}
	}
	return st, res
}

func readyz(t *testing.T, addr string) int {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestOpsCluster runs a 2-of-3 cluster for a CometBFT v0.38.17
// single-validator chain, with a second, test-played node on a unix socket,
// and checks what an operator sees: the leader's metrics move (heights
// rise, quorum available, share RPCs, state writes and Raft applies timed),
// a conflicting vote is refused and counted, `cosigner status --json`
// names the leader and what the 2-of-3 shape withstands from every
// cosigner, `cosigner leader transfer` run on a follower refuses and names
// the leader and its address, run on the leader it moves the leadership;
// with a follower killed the leader
// reports 2 reachable cosigners and still signs; with both followers
// killed there is no quorum and `cosigner status` exits 1.
func TestOpsCluster(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	node := harness.NewNode(t, harness.NodeConfig{Version: "v0.38.17", ChainID: "ops-1"})
	sentry := newOpsNode(t)
	cl := harness.NewCluster(t, harness.ClusterConfig{Bin: bin, Threshold: 2, Shares: 3,
		ChainID: node.ChainID, KeyFile: node.ValidatorKeyFile, Nodes: []string{node.SignerAddr, sentry.addr}})
	cl.Start()
	wctx, wcancel := context.WithTimeout(ctx, 90*time.Second)
	defer wcancel()
	leader, err := cl.WaitLeader(wctx)
	if err != nil {
		t.Fatal(err)
	}
	node.Start(ctx)
	chain := []string{"chain", node.ChainID}
	precommit := append([]string{"type", "precommit"}, chain...)
	above := func(h float64) func(float64) bool { return func(v float64) bool { return v > h } }
	equals := func(x float64) func(float64) bool { return func(v float64) bool { return v == x } }

	// Heights rise on the leader. On a loaded machine the first leader
	// may lose its lead while the node starts (a missed heartbeat): ask
	// again who leads until one leader's heights rise.
	var s harness.Scrape
	for {
		sctx, scancel := context.WithTimeout(wctx, 15*time.Second)
		s, err = harness.WaitMetric(sctx, leader.MetricsAddr, "cosigner_sign_last_height", above(2), precommit...)
		scancel()
		if err == nil {
			break
		}
		now, lerr := cl.WaitLeader(wctx)
		if lerr != nil {
			t.Fatal(err, lerr)
		}
		if now == leader && wctx.Err() != nil {
			t.Fatal(err)
		}
		t.Logf("cosigner %d leads now (was %d): %v", now.ID, leader.ID, err)
		leader = now
	}
	var followers []*harness.Member
	for _, m := range cl.Members {
		if m != leader {
			followers = append(followers, m)
		}
	}
	h0, _ := s.Value("cosigner_sign_last_height", precommit...)
	if _, err = harness.WaitMetric(wctx, leader.MetricsAddr, "cosigner_sign_last_height", above(h0+2), precommit...); err != nil {
		t.Fatal(err)
	}
	if _, err := harness.WaitMetric(wctx, leader.MetricsAddr, "cosigner_node_connected", equals(1), "address", sentry.addr); err != nil {
		t.Fatal(err)
	}
	if s, err = harness.WaitMetric(wctx, leader.MetricsAddr, "cosigner_cluster_peers_reachable", equals(3)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"cosigner_cluster_quorum_available", nil, 1},
		{"cosigner_cluster_threshold", nil, 2},
		{"cosigner_raft_is_leader", nil, 1},
		{"cosigner_raft_leader_id", nil, float64(leader.ID)},
		{"cosigner_node_connected", []string{"address", node.SignerAddr}, 1},
	} {
		if v, ok := s.Value(c.name, c.labels...); !ok || v != c.want {
			t.Errorf("leader: %s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if v, _ := s.Value("cosigner_sign_signatures_total", append([]string{"outcome", "signed"}, precommit...)...); v < 3 {
		t.Errorf("leader: %v precommits signed, want at least 3", v)
	}
	for _, h := range []string{"cosigner_sign_request_duration_seconds", "cosigner_peer_share_rpc_duration_seconds",
		"cosigner_state_write_duration_seconds", "cosigner_raft_apply_duration_seconds"} {
		if s.HistogramCount(h) == 0 {
			t.Errorf("leader: %s has no samples", h)
		}
	}
	for _, m := range cl.Members {
		if _, ok := s.Value("cosigner_nonce_pool_size", "peer", strconv.Itoa(m.ID)); !ok {
			t.Errorf("leader: no nonce pool size for cosigner %d", m.ID)
		}
	}
	for _, f := range followers {
		fs, err := harness.WaitMetric(wctx, f.MetricsAddr, "cosigner_raft_leader_id", equals(float64(leader.ID)))
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := fs.Value("cosigner_raft_is_leader"); v != 0 {
			t.Errorf("follower %d: raft_is_leader %v", f.ID, v)
		}
		if _, ok := fs.Value("cosigner_cluster_peers_reachable"); ok {
			t.Errorf("follower %d exports peers_reachable; only the leader knows it", f.ID)
		}
		if v, _ := fs.Value("cosigner_cluster_quorum_available"); v != 1 {
			t.Errorf("follower %d: quorum_available %v, want 1", f.ID, v)
		}
		if code := readyz(t, f.MetricsAddr); code != http.StatusOK {
			t.Errorf("follower %d: /readyz %d, want 200", f.ID, code)
		}
	}
	if code := readyz(t, leader.MetricsAddr); code != http.StatusOK {
		t.Errorf("leader: /readyz %d, want 200", code)
	}

	// A vote for a signed height with another block: refused and counted.
	<-sentry.accepted
	if e := sentry.signVote(t, node.ChainID, 2); e == nil || !strings.Contains(e.Description, "regression") {
		t.Errorf("conflicting prevote at height 2: refusal %v, want a regression", e)
	}
	if e := sentry.signVote(t, "other-chain", int64(h0)+1000); e == nil || e.Code != privval.CodeWrongChainID {
		t.Errorf("prevote for another chain: refusal %v, want wrong chain id", e)
	}
	if s, err = harness.WaitMetric(wctx, leader.MetricsAddr, "cosigner_sign_refusals_total", above(0), append([]string{"reason", "regression"}, chain...)...); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Value("cosigner_sign_refusals_total", append([]string{"reason", "chain_id"}, chain...)...); v != 1 {
		t.Errorf("chain_id refusals %v, want 1", v)
	}
	if v, _ := s.Value("cosigner_sign_signatures_total", append([]string{"type", "prevote", "outcome", "refused"}, chain...)...); v != 2 {
		t.Errorf("refused prevotes %v, want 2", v)
	}

	// Every cosigner names the leader.
	for _, m := range cl.Members {
		st, res := opsStatus(t, m)
		if res.Code != 0 || st.LeaderID != leader.ID || !st.Quorum || len(st.Peers) != 3 {
			t.Errorf("status of cosigner %d: leader %d, quorum %v, %d peers, exit %d; want leader %d, quorum, 3 peers, exit 0\n%s",
				m.ID, st.LeaderID, st.Quorum, len(st.Peers), res.Code, leader.ID, res)
		}
		if m == leader && (st.Role != "leader" || st.PeersView != "leader" || len(st.Chains) != 1 || st.Chains[0].Height < int64(h0)) {
			t.Errorf("status of the leader: %+v", st)
		}
		if st.DownTolerated != 1 || st.CompromisedTolerated != 0 || st.SharesToSign != 2 {
			t.Errorf("status of cosigner %d: 2-of-3 withstands %d down, %d compromised, %d shares to sign; want 1, 0, 2",
				m.ID, st.DownTolerated, st.CompromisedTolerated, st.SharesToSign)
		}
	}

	// A follower refuses to hand leadership over: it names the leader and
	// its address, and nothing moves.
	old, target := leader, followers[1]
	res := followers[0].CLI.Run("leader", "transfer", strconv.Itoa(target.ID), "--home", followers[0].Home)
	for _, want := range []string{
		fmt.Sprintf("cosigner %d does not lead: cosigner %d (%s) does", followers[0].ID, leader.ID, leader.GRPCAddr),
		fmt.Sprintf("run 'cosigner leader transfer %d' on cosigner %d's host", target.ID, leader.ID),
	} {
		if res.Code != 1 || !strings.Contains(res.Stderr, want) {
			t.Errorf("leader transfer on follower %d: exit %d, want 1 with %q\n%s", followers[0].ID, res.Code, want, res)
		}
	}
	if st, _ := opsStatus(t, followers[0]); st.LeaderID != leader.ID {
		t.Fatalf("after a refused transfer cosigner %d names leader %d, want %d", followers[0].ID, st.LeaderID, leader.ID)
	}
	// Run on the leader, it hands leadership to the target; the new
	// leader serves the nodes and the old one drops its sign series.
	if res := old.CLI.Run("leader", "transfer", strconv.Itoa(target.ID), "--home", old.Home); res.Code != 0 {
		t.Fatalf("leader transfer on the leader: %s", res)
	}
	if _, err := harness.WaitMetric(wctx, target.MetricsAddr, "cosigner_raft_is_leader", equals(1)); err != nil {
		t.Fatal(err)
	}
	leader, followers = target, []*harness.Member{followers[0], old}
	s, err = harness.WaitMetric(wctx, old.MetricsAddr, "cosigner_raft_is_leader", equals(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Value("cosigner_sign_last_height", precommit...); ok {
		t.Errorf("the old leader still exports cosigner_sign_last_height")
	}
	s, err = harness.WaitMetric(wctx, leader.MetricsAddr, "cosigner_sign_last_height", above(0), precommit...)
	if err != nil {
		t.Fatal(err)
	}
	hNew, _ := s.Value("cosigner_sign_last_height", precommit...)
	if _, err = harness.WaitMetric(wctx, leader.MetricsAddr, "cosigner_sign_last_height", above(hNew+1), precommit...); err != nil {
		t.Fatal(err)
	}

	// A follower killed: unreachable, and the remaining two still sign.
	victim, other := followers[0], followers[1]
	victim.Kill()
	if s, err = harness.WaitMetric(wctx, leader.MetricsAddr, "cosigner_cluster_peers_reachable", equals(2)); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Value("cosigner_cluster_quorum_available"); v != 1 {
		t.Errorf("2 of 3 up: quorum_available %v, want 1", v)
	}
	h1, _ := s.Value("cosigner_sign_last_height", precommit...)
	if _, err = harness.WaitMetric(wctx, leader.MetricsAddr, "cosigner_sign_last_height", above(h1+2), precommit...); err != nil {
		t.Fatal(err)
	}
	st, res := opsStatus(t, leader)
	if res.Code != 0 || !st.Quorum {
		t.Errorf("status with a follower down: exit %d, quorum %v\n%s", res.Code, st.Quorum, res)
	}
	for _, p := range st.Peers {
		if p.Reachable == (p.ID == victim.ID) {
			t.Errorf("status with cosigner %d down: cosigner %d reachable %v", victim.ID, p.ID, p.Reachable)
		}
	}
	if res := victim.CLI.Run("status", "--home", victim.Home); res.Code != 1 || !strings.Contains(res.Stderr, "hint: start it") {
		t.Errorf("status of the killed cosigner: exit %d, want 1 with a hint to start it\n%s", res.Code, res)
	}

	// Both followers killed: no quorum anywhere, status exits 1.
	other.Kill()
	if _, err = harness.WaitMetric(wctx, leader.MetricsAddr, "cosigner_cluster_quorum_available", equals(0)); err != nil {
		t.Fatal(err)
	}
	st, res = opsStatus(t, leader)
	if res.Code != 1 || st.Quorum || !strings.Contains(res.Stderr, "no quorum") {
		t.Errorf("status with 1 of 3 up: exit %d, quorum %v; want exit 1, no quorum\n%s", res.Code, st.Quorum, res)
	}
	if code := readyz(t, leader.MetricsAddr); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with 1 of 3 up: %d, want 503", code)
	}
	t.Logf("e2e: ops: 2-of-3 cluster: leader cosigner %d handed over to %d; heights rose to %v; cosigner %d killed -> 2 reachable with quorum, then no quorum and status exit 1 (%s)",
		old.ID, leader.ID, h1, victim.ID, time.Since(started).Round(time.Second))
}
