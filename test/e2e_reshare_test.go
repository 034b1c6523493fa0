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
	out := filepath.Join(t.TempDir(), "epoch2")
	addrs := map[int][2]string{}
	args := []string{"reshare", "prepare", "--old-group", filepath.Join(old.Member(1).Home, "group.json"),
		"--threshold", "3", "--shares", "5", "--keep", "1=1", "--keep", "2=2",
		"--chain-id", node.ChainID, "--node", node.SignerAddr, "--out", out}
	for id := 1; id <= 5; id++ {
		g, r := harness.FreePortPair(t)
		addrs[id] = [2]string{"127.0.0.1:" + strconv.Itoa(g), "127.0.0.1:" + strconv.Itoa(r)}
		args = append(args, "--peer", addrs[id][0])
	}
	retirePort, err := harness.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	args = append(args, "--retire", fmt.Sprintf("3@127.0.0.1:%d", retirePort))
	cli := harness.CLI(t, bin)
	t.Log(cli.MustRun(args...))
	var homes []string
	for id := 1; id <= 5; id++ {
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

	// 3. Reshare: every participant at once.
	runs := [][]string{
		{"reshare", "--home", homes[0], "--old-home", old.Member(1).Home},
		{"reshare", "--home", homes[1], "--old-home", old.Member(2).Home},
		{"reshare", "--home", homes[2]},
		{"reshare", "--home", homes[3]},
		{"reshare", "--home", homes[4]},
		{"reshare", "--home", filepath.Join(out, "retiring-3"), "--old-home", old.Member(3).Home},
	}
	results := make([]harness.Result, len(runs))
	began := time.Now()
	var wg sync.WaitGroup
	for i, a := range runs {
		wg.Go(func() { results[i] = cli.Run(append(a, "--timeout", "45s")...) })
	}
	wg.Wait()
	reshareTook := time.Since(began)
	for _, r := range results {
		if r.Code != 0 {
			t.Fatal(r.String())
		}
	}
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
