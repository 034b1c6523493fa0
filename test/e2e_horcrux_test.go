package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/test/harness"
)

// horcruxBlocks is how many blocks Horcrux signs before the switch, and
// cosigner after it.
const horcruxBlocks = 8

// horcruxMark is a Horcrux state file's height, round and step, read here
// on its own, without the reader under test.
type horcruxMark struct {
	h    int64
	r    int64
	step int8
}

func (m horcruxMark) String() string { return fmt.Sprintf("%d/%d/%d", m.h, m.r, m.step) }

func (m horcruxMark) above(o horcruxMark) bool {
	if m.h != o.h {
		return m.h > o.h
	}
	if m.r != o.r {
		return m.r > o.r
	}
	return m.step > o.step
}

func readHorcruxMark(t *testing.T, path string) horcruxMark {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Height string `json:"height"`
		Round  string `json:"round"`
		Step   int8   `json:"step"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	h, err1 := strconv.ParseInt(f.Height, 10, 64)
	r, err2 := strconv.ParseInt(f.Round, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("%s: height %q round %q", path, f.Height, f.Round)
	}
	return horcruxMark{h, r, f.Step}
}

var stepNumbers = map[string]int8{"proposal": 1, "prevote": 2, "precommit": 3}

// TestMigrateFromHorcrux runs a 2-of-3 Horcrux v3.3.2 cluster, built from
// the Go module proxy and set up with Horcrux's own commands, that signs a
// CometBFT v0.38 chain; stops it; migrates its three homes with `cosigner
// migrate horcrux` (export, tls, migrate on each host); and starts
// cosigner on them. The chain goes on with the same validator key and the
// same shares: every commit from height 1, Horcrux's and cosigner's, holds
// a valid precommit of the key, no block holds evidence, every host
// printed the same group fingerprint, and no cosigner released a signature
// or share below the higher of its host's two Horcrux marks.
func TestMigrateFromHorcrux(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	horcruxBin := harness.Horcrux(t)
	ctx := context.Background()
	node := harness.NewNode(t, harness.NodeConfig{Version: "v0.38.17", ChainID: "horcrux-1"})
	hc := harness.NewHorcruxCluster(t, harness.HorcruxConfig{Bin: horcruxBin, Threshold: 2, Shares: 3,
		ChainID: node.ChainID, KeyFile: node.ValidatorKeyFile, Nodes: []string{node.SignerAddr}})
	hc.Start()
	wctx, cancel := context.WithTimeout(ctx, clusterWait)
	leader, err := hc.WaitLeader(wctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	node.Start(ctx)
	// Freshly started, Horcrux v3.3.2 at times fails its first requests
	// ("ecies: invalid message", "signature is invalid"; see
	// test/latency/README.md); CometBFT does not ask again for a vote it
	// failed to get, and a one-validator chain then waits for ever. A node
	// restart asks again; Horcrux is not what this test proves.
	for restarts := 0; ; restarts++ {
		if h := waitHeightFor(ctx, node, 1, 30*time.Second); h >= 1 || restarts == 2 {
			break
		}
		t.Logf("horcrux signed nothing for height 1 in 30 s (its known first-request failure): restarting the node")
		node.Stop()
		node.Start(ctx)
	}
	node.WaitHeight(ctx, horcruxBlocks, 2*time.Minute)
	if err := hc.Stop(); err != nil {
		t.Fatal(err)
	}
	switched, err := node.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Each host's two marks, and the higher one its cosigner starts from.
	marks := map[int]horcruxMark{}
	for _, m := range hc.Members {
		pv := readHorcruxMark(t, filepath.Join(m.Home, "state", node.ChainID+"_priv_validator_state.json"))
		share := readHorcruxMark(t, filepath.Join(m.Home, "state", node.ChainID+"_share_sign_state.json"))
		marks[m.ID] = pv
		if share.above(pv) {
			marks[m.ID] = share
		}
		t.Logf("horcrux-%d stopped at cluster %s, share %s", m.ID, pv, share)
	}

	cli := harness.CLI(t, bin)
	work := t.TempDir()
	var public []string
	for _, m := range hc.Members {
		out := filepath.Join(work, fmt.Sprintf("horcrux-%d.public.json", m.ID))
		cli.MustRun("migrate", "horcrux", "export", "--horcrux-home", m.Home, "--out", out)
		public = append(public, "--public", out)
	}
	tlsDir := filepath.Join(work, "cluster-tls")
	cli.MustRun("migrate", "horcrux", "tls", "--out", tlsDir, "--shares", "3")
	fingerprint := regexp.MustCompile(`group fingerprint ([0-9A-F]{16})`)
	var homes []string
	var first string
	for _, m := range hc.Members {
		home := filepath.Join(work, fmt.Sprintf("cosigner-%d", m.ID))
		args := append([]string{"migrate", "horcrux", "--horcrux-home", m.Home, "--home", home,
			"--tls", filepath.Join(tlsDir, fmt.Sprintf("cosigner-%d", m.ID))}, public...)
		out := cli.MustRun(args...)
		fp := fingerprint.FindStringSubmatch(out)
		if fp == nil || (first != "" && fp[1] != first) {
			t.Fatalf("host %d: group fingerprint %v, host 1's %s:\n%s", m.ID, fp, first, out)
		}
		first = fp[1]
		mk := marks[m.ID]
		if want := fmt.Sprintf("signs only above %d/%d/%d", mk.h, mk.r, mk.step); !strings.Contains(out, want) {
			t.Errorf("host %d: output lacks %q:\n%s", m.ID, want, out)
		}
		// Debug level logs every released share, which checkCluster reads.
		if err := harness.EditTOMLFile(filepath.Join(home, "cosigner.toml"), map[string]map[string]string{"": {"log_level": `"debug"`}}); err != nil {
			t.Fatal(err)
		}
		homes = append(homes, home)
	}

	cl := harness.OpenCluster(t, bin, node.ChainID, homes)
	cl.Start()
	wctx, cancel = context.WithTimeout(ctx, clusterWait)
	next, err := cl.WaitLeader(wctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	top := node.WaitHeight(ctx, switched+horcruxBlocks, 2*time.Minute)

	verified, err := node.VerifyChain(ctx, node.PubKey, 1, top-1)
	if err != nil {
		t.Fatal(err)
	}
	sigs, shares := checkCluster(t, cl)
	if len(sigs) == 0 {
		t.Fatal("cosigner signed nothing after the switch")
	}
	for _, r := range cl.Records() {
		got := horcruxMark{r.Height, int64(r.Round), stepNumbers[r.Step]}
		if mk := marks[r.Member]; mk.above(got) {
			t.Errorf("cosigner %d released a %s at %s, below its Horcrux mark %s: %s", r.Member, r.Step, got, mk, r.Line)
		}
	}
	t.Logf("e2e: horcrux %s 2-of-3 (leader %d) signed heights 1..%d (%d signatures logged); migrated, fingerprint %s; "+
		"cosigner (leader %d) signed on to %d: %d commits verified with the same key, %d signatures and %d shares, none below Horcrux's marks",
		harness.HorcruxVersion, leader, switched, hc.Signed(), first, next.ID, top, verified, len(sigs), shares)
}

// waitHeightFor polls node until it reaches height h or d passes, and
// returns the last height seen (0 if it never answered).
func waitHeightFor(ctx context.Context, node *harness.Node, h int64, d time.Duration) int64 {
	deadline := time.Now().Add(d)
	var last int64
	for {
		if got, err := node.Height(ctx); err == nil {
			last = got
		}
		if last >= h || time.Now().After(deadline) {
			return last
		}
		time.Sleep(200 * time.Millisecond)
	}
}
