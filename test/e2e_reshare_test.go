package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/cluster"
	"github.com/cosigner/cosigner/raft"
	"github.com/cosigner/cosigner/test/harness"
)

// TestReshare runs a single-validator chain signed by a 2-of-3 cluster,
// stops the cluster, reshares it with `cosigner reshare prepare` and six
// `cosigner reshare` processes to 3-of-5 (old hosts 1 and 2 continue, old
// host 3 deals and retires, three newcomers), and starts the new cluster:
// the chain goes on with the same validator key (every commit from height
// 1 verified against it, no evidence), nothing is signed twice across the
// two clusters, every new member started at or above the old cosigners'
// highest mark. The old homes refuse to start (retired), and the retired
// host's old share, put into a new home, is refused as a share of another
// epoch. It logs the gap: heights and seconds from the old cluster's last
// signature to the new cluster's first.
func TestReshare(t *testing.T) {
	bin := requireCosigner(t)
	ctx := context.Background()
	node := harness.NewNode(t, harness.NodeConfig{Version: "v0.38.17", ChainID: "reshare-1"})
	old := harness.NewCluster(t, harness.ClusterConfig{Bin: bin, Threshold: 2, Shares: 3,
		ChainID: node.ChainID, KeyFile: node.ValidatorKeyFile, Nodes: []string{node.SignerAddr}})
	startCluster(t, old, node)
	node.WaitHeight(ctx, 8, clusterWait)

	// 1. Stop the old cluster (SIGTERM, as systemctl stop).
	for _, m := range old.Members {
		m.Stop()
	}
	stopped := time.Now()
	oldTop, err := node.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var highest harness.SignState
	for _, m := range old.Members {
		if st := m.CLI.StateShow(); above(st, highest) {
			highest = st
		}
	}

	// 2. Prepare the new cluster's homes.
	retirePort, err := harness.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	out, homes := prepareReshare(t, bin, node, old, 3, 5, "--keep", "1=1", "--keep", "2=2",
		"--retire", fmt.Sprintf("3@127.0.0.1:%d", retirePort))

	// 3. Reshare: every participant at once.
	runs := [][]string{
		{"--home", homes[0], "--old-home", old.Member(1).Home},
		{"--home", homes[1], "--old-home", old.Member(2).Home},
		{"--home", homes[2]},
		{"--home", homes[3]},
		{"--home", homes[4]},
		{"--home", filepath.Join(out, "retiring-3"), "--old-home", old.Member(3).Home},
	}
	results, reshareTook := runReshare(t, bin, runs)
	if !strings.Contains(results[5].Stdout, "retires") || !strings.Contains(results[2].Stdout, "epoch 2") {
		t.Fatalf("unexpected reports:\n%s\n%s", results[5].Stdout, results[2].Stdout)
	}
	for i, home := range homes {
		st := harness.CosignerAt(t, bin, home, node.ChainID).StateShow()
		if above(highest, st) {
			t.Fatalf("new cosigner %d starts at %d/%d/%d, below the old cluster's %d/%d/%d", i+1, st.Height, st.Round, st.Step, highest.Height, highest.Round, highest.Step)
		}
	}

	// 4. An old-epoch cosigner is refused: its home is retired.
	r := harness.CosignerAt(t, bin, old.Member(1).Home, node.ChainID).Run("start", "--home", old.Member(1).Home)
	if r.Code != 2 || !strings.Contains(r.Stderr, "retired") {
		t.Fatalf("an old home started:\n%s", r.String())
	}

	// 5. Start the new cluster; the chain goes on with the same key.
	nc := harness.OpenCluster(t, bin, node.ChainID, homes)
	wctx, cancel := context.WithTimeout(ctx, clusterWait)
	defer cancel()
	nc.Start()
	if _, err := nc.WaitLeader(wctx); err != nil {
		t.Fatal(err)
	}
	first := node.WaitCommitSignedBy(ctx, node.PubKey, oldTop+1, clusterWait)
	resumed := time.Since(stopped)
	if st := nc.Member(3).CLI.Run("status", "--home", homes[2], "--json"); st.Code != 0 || !strings.Contains(st.Stdout, `"epoch": 2`) {
		t.Errorf("status of a new cosigner does not report epoch 2:\n%s", st.String())
	}
	top := node.WaitHeight(ctx, first+10, clusterWait)
	verified, err := node.VerifyChain(ctx, node.PubKey, 1, top-1)
	if err != nil {
		t.Fatal(err)
	}
	recs := append(old.Records(), nc.Records()...)
	if err := harness.CheckClusterNoDoubleSign(recs); err != nil {
		t.Error(err)
	}
	for _, rec := range nc.Records() {
		if !rec.Share && above(highest, harness.SignState{Height: rec.Height, Round: rec.Round, Step: stepNumber(rec.Step)}) {
			t.Errorf("the new cluster signed %s at %d/%d, below the old cluster's mark %d/%d/%d", rec.Step, rec.Height, rec.Round, highest.Height, highest.Round, highest.Step)
		}
	}

	// 6. The retired host's old share is of no use in the new cluster.
	for _, m := range nc.Members {
		m.Stop()
	}
	cp := nc.CopyMember(5)
	oldShare, err := os.ReadFile(filepath.Join(old.Member(3).Home, "share.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cp.Home, "share.json"), oldShare, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := cp.CLI.Run("start", "--home", cp.Home); r.Code != 2 || !strings.Contains(r.Stderr, "another epoch") {
		t.Fatalf("the retired share started:\n%s", r.String())
	}

	t.Logf("e2e: reshare 2-of-3 -> 3-of-5: old cluster stopped at chain height %d, %d-participant ceremony took %v; "+
		"new cluster signed again at height %d, %v after the stop (%d heights without our signature: the single validator's chain waits); "+
		"%d commits verified with the unchanged validator key (1..%d), no evidence",
		oldTop, len(runs), reshareTook.Round(time.Millisecond), first, resumed.Round(100*time.Millisecond), first-oldTop-1, verified, top-1)
}

// TestReshareReplaceHost: a 2-of-3 cluster loses host 3 for good; hosts 1
// and 2 reshare to 2-of-3 with a newcomer as cosigner 3, and the chain goes
// on with the same key. Then old host 3's share is restored onto the new
// host 3 by mistake (share and group of epoch 1, the same shape, the new
// cluster's certificate): it starts, and the cluster refuses it on the
// wire: both sides log the epoch mismatch, the leader counts it, the
// restored cosigner releases no share, and the chain goes on with
// cosigners 1 and 2, nothing signed twice.
func TestReshareReplaceHost(t *testing.T) {
	bin := requireCosigner(t)
	ctx := context.Background()
	node := harness.NewNode(t, harness.NodeConfig{Version: "v0.38.17", ChainID: "reshare-replace"})
	old := harness.NewCluster(t, harness.ClusterConfig{Bin: bin, Threshold: 2, Shares: 3,
		ChainID: node.ChainID, KeyFile: node.ValidatorKeyFile, Nodes: []string{node.SignerAddr}})
	startCluster(t, old, node)
	node.WaitHeight(ctx, 5, clusterWait)
	for _, m := range old.Members {
		m.Stop()
	}
	oldTop, err := node.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, homes := prepareReshare(t, bin, node, old, 2, 3, "--keep", "1=1", "--keep", "2=2")
	runReshare(t, bin, [][]string{
		{"--home", homes[0], "--old-home", old.Member(1).Home},
		{"--home", homes[1], "--old-home", old.Member(2).Home},
		{"--home", homes[2]},
	})
	nc := harness.OpenCluster(t, bin, node.ChainID, homes)
	wctx, cancel := context.WithTimeout(ctx, clusterWait)
	defer cancel()
	nc.Start()
	if _, err := nc.WaitLeader(wctx); err != nil {
		t.Fatal(err)
	}
	first := node.WaitCommitSignedBy(ctx, node.PubKey, oldTop+1, clusterWait)

	// Old host 3's share and group restored onto new host 3.
	m3 := nc.Member(3)
	m3.Stop()
	for _, f := range []string{"share.json", "group.json"} {
		data, err := os.ReadFile(filepath.Join(old.Member(3).Home, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(m3.Home, f)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(m3.Home, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	leader, err := nc.WaitLeader(wctx, m3)
	if err != nil {
		t.Fatal(err)
	}
	from := len(leader.Current().Lines())
	p := m3.Start()
	mismatch := func(side string) func(string) bool {
		return func(l string) bool {
			return strings.Contains(l, harness.Msg(cluster.LogEpochMismatch)) && strings.Contains(l, "side="+side)
		}
	}
	_, served, err := p.WaitLine(wctx, 0, mismatch("served"))
	if err != nil {
		t.Fatal(err)
	}
	_, called, err := leader.Current().WaitLine(wctx, from, func(l string) bool { return mismatch("called")(l) && strings.Contains(l, "peer=3") })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(served, "epoch 1") || !strings.Contains(served, "epoch 2") {
		t.Errorf("the restored cosigner's log does not name both epochs: %s", served)
	}
	sc, err := harness.ScrapeMetrics(ctx, leader.MetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := sc.Value("cosigner_peer_epoch_mismatches_total", "peer", "3", "side", "called"); v < 1 {
		t.Errorf("the leader counted %v epoch mismatches of cosigner 3", v)
	}
	h, err := node.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again := node.WaitCommitSignedBy(ctx, node.PubKey, h+2, clusterWait)
	for _, l := range p.Lines() {
		if strings.Contains(l, harness.Msg(cluster.LogReleasedShare)) {
			t.Fatalf("the restored old-epoch cosigner released a share: %s", l)
		}
		// Its Raft links fail their handshake (the epoch is their TLS
		// application protocol): it never learns of a leader, nor leads.
		if a := harness.ParseSlogText(l); a["msg"] == raft.LogLeadership && a["leader"] != "0" {
			t.Fatalf("the restored old-epoch cosigner took part in Raft: %s", l)
		}
	}
	verified, err := node.VerifyChain(ctx, node.PubKey, 1, again-1)
	if err != nil {
		t.Fatal(err)
	}
	if err := harness.CheckClusterNoDoubleSign(append(old.Records(), nc.Records()...)); err != nil {
		t.Error(err)
	}
	if !strings.Contains(called, "peer=3") {
		t.Errorf("the leader's log does not name cosigner 3: %s", called)
	}
	t.Logf("e2e: host 3 replaced by resharing 2-of-3 -> 2-of-3: signing again at %d (stopped at %d); old host 3's share restored onto the new host 3: refused on both sides, counted by the leader; chain at %d, %d commits verified",
		first, oldTop, again, verified)
}

// prepareReshare runs `cosigner reshare prepare` from old's group file to
// an m-of-n cluster on free loopback ports with flags (--keep, --retire),
// and gives each new home debug logs and free metrics and Raft ports. It
// returns the output directory and the new members' homes.
func prepareReshare(t *testing.T, bin string, node *harness.Node, old *harness.Cluster, m, n int, flags ...string) (string, []string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "epoch2")
	addrs := map[int][2]string{}
	args := append([]string{"reshare", "prepare", "--old-group", filepath.Join(old.Member(1).Home, "group.json"),
		"--threshold", strconv.Itoa(m), "--shares", strconv.Itoa(n),
		"--chain-id", node.ChainID, "--node", node.SignerAddr, "--out", out}, flags...)
	for id := 1; id <= n; id++ {
		g, r := harness.FreePortPair(t)
		addrs[id] = [2]string{"127.0.0.1:" + strconv.Itoa(g), "127.0.0.1:" + strconv.Itoa(r)}
		args = append(args, "--peer", addrs[id][0])
	}
	t.Log(harness.CLI(t, bin).MustRun(args...))
	var homes []string
	for id := 1; id <= n; id++ {
		home := filepath.Join(out, fmt.Sprintf("cosigner-%d", id))
		homes = append(homes, home)
		metrics, err := harness.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(home, "cosigner.toml")
		if err := harness.EditTOMLFile(path, map[string]map[string]string{
			"":        {"log_level": strconv.Quote("debug")},
			"metrics": {"listen": strconv.Quote("127.0.0.1:" + strconv.Itoa(metrics))},
		}); err != nil {
			t.Fatal(err)
		}
		if err := harness.RewritePeers(path, addrs); err != nil {
			t.Fatal(err)
		}
	}
	return out, homes
}

// runReshare runs `cosigner reshare` with each of runs' arguments at once
// and fails the test unless every one exits 0.
func runReshare(t *testing.T, bin string, runs [][]string) ([]harness.Result, time.Duration) {
	t.Helper()
	cli := harness.CLI(t, bin)
	results := make([]harness.Result, len(runs))
	began := time.Now()
	var wg sync.WaitGroup
	for i, a := range runs {
		wg.Go(func() { results[i] = cli.Run(append(append([]string{"reshare"}, a...), "--timeout", "45s")...) })
	}
	wg.Wait()
	took := time.Since(began)
	for _, r := range results {
		if r.Code != 0 {
			t.Fatal(r.String())
		}
	}
	return results, took
}

// above reports whether state a is above state b (height, round, step).
func above(a, b harness.SignState) bool {
	if a.Height != b.Height {
		return a.Height > b.Height
	}
	if a.Round != b.Round {
		return a.Round > b.Round
	}
	return a.Step > b.Step
}

// stepNumber is FilePV's number of a step as the share records name it.
func stepNumber(step string) int8 {
	switch step {
	case "proposal":
		return 1
	case "prevote":
		return 2
	case "precommit":
		return 3
	}
	return 0
}
