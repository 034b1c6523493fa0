package test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/cluster"

	"github.com/cosigner/cosigner/test/harness"
)

// bootID waits for the "starting" line of m's current process and returns
// its boot id.
func bootID(t *testing.T, m *harness.Member) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	_, line, err := m.Current().WaitLine(ctx, 0, func(l string) bool {
		a := harness.ParseSlogText(l)
		return a["msg"] == "starting" && a["boot_id"] != ""
	})
	if err != nil {
		t.Fatalf("%s: no boot id logged at start: %v", m.Home, err)
	}
	return harness.ParseSlogText(line)["boot_id"]
}

// shareCount is how many shares m released, all runs.
func shareCount(m *harness.Member) int {
	n := 0
	for _, r := range m.Records() {
		if r.Share {
			n++
		}
	}
	return n
}

// TestClusterDuplicateCosignerID starts a copy of a follower's home (as a
// cloned VM or a restored snapshot would run it) beside the original, on a
// 2-of-3 cluster signing a single-validator chain. The other cosigners
// reach that cosigner's address through a proxy that sends each connection
// to the original or the copy in turn and closes it after 400 ms, as an
// address two hosts answer does (on loopback the copy cannot bind the
// original's ports, so it listens on its own). Raft links are direct and
// reach the original only: the others refuse the copy's Raft RPCs, which
// name another address than the member's, so the copy's Raft knows no
// leader and it refuses shares, but it answers pings. The leader must log the duplicate with both boot
// ids, export it, show it in status, and never ask that cosigner for a
// share again, while the chain goes on with the other two.
func TestClusterDuplicateCosignerID(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	ctx := context.Background()
	node := harness.NewNode(t, harness.NodeConfig{Version: "v0.38.17", ChainID: "cluster-duplicate-id"})
	cl := harness.NewCluster(t, harness.ClusterConfig{Bin: bin, Threshold: 2, Shares: 3, ChainID: node.ChainID,
		KeyFile: node.ValidatorKeyFile, Nodes: []string{node.SignerAddr}, Proxies: true, ProxyProtocols: []string{harness.LinkGRPC}})
	leader := startCluster(t, cl, node)
	node.WaitHeight(ctx, 3, clusterWait)

	var dup, other *harness.Member
	for _, m := range cl.Members {
		switch {
		case m == leader:
		case dup == nil:
			dup = m
		default:
			other = m
		}
	}
	dup.Stop()
	twin := cl.CopyMember(dup.ID)
	dup.Start()
	twin.Start()
	boots := []string{bootID(t, dup), bootID(t, twin)}
	if boots[0] == "" || boots[0] == boots[1] {
		t.Fatalf("boot ids %q: want two different ones", boots)
	}
	detectFrom := len(leader.Current().Lines())
	for _, m := range []*harness.Member{leader, other} {
		p := cl.Proxy(harness.Link{From: m.ID, To: dup.ID, Proto: harness.LinkGRPC})
		p.SetTargets(dup.GRPCAddr, twin.GRPCAddr)
		p.SetMaxConnAge(400 * time.Millisecond)
		// A connection the leader made before the settings (it redials
		// as soon as dup restarts, sooner on an idle machine than a
		// loaded one) would reach the original for ever: close it, so
		// every connection from here on takes the rotation.
		p.Cut()
		p.Heal()
	}
	flipped := time.Now()

	wctx, cancel := context.WithTimeout(ctx, clusterWait)
	defer cancel()
	_, line, err := leader.Current().WaitLine(wctx, detectFrom, func(l string) bool {
		return strings.Contains(l, harness.Msg(cluster.LogDuplicateID))
	})
	if err != nil {
		t.Fatalf("the leader, cosigner %d, did not report two processes answering as cosigner %d: %v", leader.ID, dup.ID, err)
	}
	detected := time.Since(flipped)
	a := harness.ParseSlogText(line)
	if a["level"] != "ERROR" || a["peer"] != strconv.Itoa(dup.ID) || a["hint"] == "" {
		t.Errorf("logged %q: want an ERROR naming peer %d, with a hint", line, dup.ID)
	}
	for _, b := range boots {
		if !strings.Contains(a["boot_ids"], b) {
			t.Errorf("boot_ids=%q does not name boot id %s", a["boot_ids"], b)
		}
	}
	s, err := harness.ScrapeMetrics(ctx, leader.MetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := s.Value("cosigner_peer_duplicate_boot_ids", "peer", strconv.Itoa(dup.ID)); !ok || v != 2 {
		t.Errorf("cosigner_peer_duplicate_boot_ids{peer=%d} = %v (present: %v), want 2", dup.ID, v, ok)
	}
	st, res := opsStatus(t, leader)
	found := false
	for _, p := range st.Peers {
		if p.ID == dup.ID {
			found = true
			if !strings.Contains(p.Error, "live processes answer as cosigner") {
				t.Errorf("status of cosigner %d: error %q, want the duplicate named", dup.ID, p.Error)
			}
		}
	}
	if !found {
		t.Errorf("status names no cosigner %d:\n%s", dup.ID, res)
	}

	// Shares already under way settle within a height; from then on
	// neither process of that id releases one, and the chain goes on.
	h, err := node.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node.WaitHeight(ctx, h+2, clusterWait)
	before := shareCount(dup) + shareCount(twin)
	h, err = node.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	top := node.WaitHeight(ctx, h+5, clusterWait)
	if after := shareCount(dup) + shareCount(twin); after != before {
		t.Errorf("cosigner %d released %d shares after the leader found it duplicate", dup.ID, after-before)
	}
	verified, err := node.VerifyChain(ctx, node.PubKey, 1, top-1)
	if err != nil {
		t.Fatal(err)
	}
	if err := harness.CheckClusterNoDoubleSign(append(cl.Records(), twin.Records()...)); err != nil {
		t.Error(err)
	}
	t.Logf("e2e: cosigner %d copied (boot ids %s, %s); leader %d found the duplicate %v after the address began to alternate; "+
		"chain went on to %d with cosigners %d and %d (%d commits verified)",
		dup.ID, boots[0], boots[1], leader.ID, detected.Round(time.Millisecond), top, leader.ID, other.ID, verified)
}
