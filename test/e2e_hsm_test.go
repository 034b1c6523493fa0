package test

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/internal/testkit"

	"github.com/cosigner/cosigner/test/harness"
	"github.com/cosigner/cosigner/test/yubihsmsim"
)

// useHSM adds an [hsm] section for the simulator to the home's
// configuration and writes the password file.
func useHSM(t *testing.T, home string, sim *yubihsmsim.Sim) {
	t.Helper()
	path := filepath.Join(home, "cosigner.toml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, fmt.Sprintf("\n[hsm]\nconnector = %q\nauth_key_id = 1\npassword_file = \"hsm_password\"\n", sim.Addr())...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "hsm_password"), []byte(yubihsmsim.DefaultPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

var keyLine = regexp.MustCompile(`(?m)^key = ".*"$`)

// setupHSMSoftsign prepares a softsign cosigner for node whose key lives in
// sim: `cosigner hsm keys import` of the node's moved validator key as
// object 7, `hsm keys list`, hsm_key_id = 7 in place of the key file, and
// the sign state at height 0.
func setupHSMSoftsign(t *testing.T, bin string, node *harness.Node, sim *yubihsmsim.Sim) *harness.Cosigner {
	t.Helper()
	cs := harness.NewCosigner(t, bin, node.ChainID, node.SignerAddr)
	useHSM(t, cs.Home, sim)
	out := cs.MustRun("hsm", "keys", "import", "--home", cs.Home, "--id", "7", "--label", node.ChainID, node.ValidatorKeyFile)
	if pub, ok := sim.PublicKey(7); !ok || !pub.Equal(node.PubKey) {
		t.Fatalf("the simulator does not hold the validator key:\n%s", out)
	}
	list := cs.MustRun("hsm", "keys", "list", "--home", cs.Home)
	if !strings.Contains(list, "valconspub1") || !strings.Contains(list, node.ChainID) {
		t.Fatalf("hsm keys list:\n%s", list)
	}
	cfgPath := filepath.Join(cs.Home, "cosigner.toml")
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, keyLine.ReplaceAll(data, []byte("hsm_key_id = 7")), 0o600); err != nil {
		t.Fatal(err)
	}
	cs.MustRun("state", "init", "--home", cs.Home, "--chain-id", node.ChainID)
	return cs
}

// checkStateCovers stops the cosigner and checks that its state file is at
// or above its last signature: nothing was lost.
func checkStateCovers(t *testing.T, cs *harness.Cosigner, recs []harness.SignRecord) {
	t.Helper()
	cs.Stop()
	var last harness.SignRecord
	for _, r := range recs {
		if r.Height > last.Height {
			last = r
		}
	}
	if st := cs.StateShow(); st.Height < last.Height {
		t.Errorf("state file at height %d, below the last signature at %d (%s)", st.Height, last.Height, st.Raw)
	}
}

func hasLine(p *harness.Process, s string) bool {
	for _, l := range p.Lines() {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// TestHSMSoftsign runs a CometBFT v0.38.17 single-validator chain whose
// key is held by the YubiHSM2 simulator (running in this test process):
// imported with `cosigner hsm keys import`, named by hsm_key_id, never on
// cosigner's disk. Mid-run the connector restarts: the request in flight
// rides it out within its 1 s budget on a new session, and the same
// process signs on. Every commit verifies and nothing is signed twice.
//
// A longer outage fails sign requests; a single-validator chain cannot
// survive that (the node does not retry a failed vote, and no other
// validator moves the round on), so TestHSMSoftsignOutage runs it on a
// four-validator chain.
func TestHSMSoftsign(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	ctx := context.Background()
	sim := testkit.Sim(t)
	node := harness.NewNode(t, harness.NodeConfig{Version: "v0.38.17", ChainID: "hsm-1"})
	cs := setupHSMSoftsign(t, bin, node, sim)
	p := cs.Start()
	node.Start(ctx)
	node.WaitHeight(ctx, 10, 2*time.Minute)

	// The connector goes away, and comes back as soon as cosigner notices.
	sim.Stop()
	stopped, err := node.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, _, err := p.WaitLine(wctx, 0, func(l string) bool { return strings.Contains(l, "hsm unavailable") }); err != nil {
		t.Fatalf("no 'hsm unavailable' log line while the connector is away: %v", err)
	}
	if err := sim.Restart(); err != nil {
		t.Fatal(err)
	}
	top := node.WaitHeight(ctx, max(stopped, minBlocks)+5, 2*time.Minute)
	if p.Exited() {
		t.Fatal("cosigner exited")
	}
	if !hasLine(p, "hsm session restored") {
		t.Error("no 'hsm session restored' log line")
	}

	// Block interval with the simulator's speed, then with a real device's
	// (about 100 ms per command).
	interval := func(blocks int64) time.Duration {
		start := time.Now()
		top = node.WaitHeight(ctx, top+blocks, 2*time.Minute)
		return time.Since(start) / time.Duration(blocks)
	}
	fast := interval(5)
	sim.SetDelay(100 * time.Millisecond)
	slow := interval(5)
	sim.SetDelay(0)

	n, err := node.VerifyChain(ctx, node.PubKey, 1, top-1)
	if err != nil {
		t.Fatal(err)
	}
	recs := cs.Records()
	if err := harness.CheckNoDoubleSign(recs); err != nil {
		t.Error(err)
	}
	checkSignedEveryHeight(t, recs, 1, top-1)
	checkStateCovers(t, cs, recs)
	if entries, _ := os.ReadDir(filepath.Join(cs.Home, "keys")); len(entries) != 0 {
		t.Errorf("key files in cosigner's home: %v", entries)
	}
	var latency string
	for _, l := range p.Lines() {
		if strings.Contains(l, "hsm sign latency") {
			latency = l[strings.Index(l, "signatures="):]
		}
	}
	t.Logf("e2e: hsm softsign: %d commits verified with the simulator-held key (heights 1..%d), %d device signatures, %d signatures logged; connector restarted at height %d; latency: %s; block interval %v, %v with 100 ms per device command",
		n, top-1, sim.Count(yubihsmsim.CmdSignEddsa), len(recs), stopped, latency, fast.Round(time.Millisecond), slow.Round(time.Millisecond))
}

// TestHSMSoftsignOutage: cosigner signs for one of four v0.38.17
// validators with the key in the simulator. The connector stays away long
// enough for several sign requests to fail (each within its budget) while
// the other three carry the chain; when it is back the same process signs
// again: our precommits return to the commits, all verify, nothing is
// signed twice and the state file covers the last signature.
func TestHSMSoftsignOutage(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	ctx := context.Background()
	sim := testkit.Sim(t)
	tn := harness.NewTestnet(t, harness.TestnetConfig{Version: "v0.38.17", ChainID: "hsm-testnet-1"})
	signer := tn.Signer()
	cs := setupHSMSoftsign(t, bin, signer, sim)
	p := cs.Start()
	tn.Start(ctx)
	obs := tn.Nodes[1]
	obs.WaitCommitSignedBy(ctx, signer.PubKey, 3, 2*time.Minute)

	sim.Stop()
	down, err := obs.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	at, failed := 0, 0
	var slowest time.Duration
	for failed < 3 {
		var line string
		at, line, err = p.WaitLine(wctx, at+1, func(l string) bool {
			return strings.Contains(l, "refused") && strings.Contains(l, "not reachable")
		})
		if err != nil {
			t.Fatalf("%d failed sign requests logged while the connector is away: %v\n%s", failed, err, p.Tail(20))
		}
		if d, err := time.ParseDuration(harness.ParseSlogText(line)["latency"]); err == nil {
			slowest = max(slowest, d)
		}
		failed++
	}
	if slowest > 1500*time.Millisecond {
		t.Errorf("a failing sign request took %v, budget 1 s", slowest)
	}
	back, err := obs.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Restart(); err != nil {
		t.Fatal(err)
	}
	again := obs.WaitCommitSignedBy(ctx, signer.PubKey, back+1, 2*time.Minute)
	top := obs.WaitHeight(ctx, again+3, time.Minute)
	if p.Exited() {
		t.Fatal("cosigner exited")
	}
	present, absent, err := obs.ScanChain(ctx, signer.PubKey, 1, top-1)
	if err != nil {
		t.Fatal(err)
	}
	recs := cs.Records()
	if err := harness.CheckNoDoubleSign(recs); err != nil {
		t.Error(err)
	}
	checkStateCovers(t, cs, recs)
	t.Logf("e2e: hsm outage: connector away from height %d to %d, %d sign requests failed (slowest %v), our precommit back in the commit at %d; chain at %d, our precommit in %d commits, missing at %v",
		down, back, failed, slowest, again, top, present, absent)
}

// TestHSMSealedShare runs a 2-of-3 cluster on a v0.38.17 chain in which
// cosigner 2's share is sealed in the simulator with `cosigner hsm share
// import` (share.json removed). With another cosigner killed, the chain can
// only go on with cosigner 2's share, read from the device at start.
func TestHSMSealedShare(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	ctx := context.Background()
	sim := testkit.Sim(t)
	node := harness.NewNode(t, harness.NodeConfig{Version: "v0.38.17", ChainID: "hsm-cluster-1"})
	cl := harness.NewCluster(t, harness.ClusterConfig{Bin: bin, Threshold: 2, Shares: 3,
		ChainID: node.ChainID, KeyFile: node.ValidatorKeyFile, Nodes: []string{node.SignerAddr}})
	sealed := cl.Member(2)
	useHSM(t, sealed.Home, sim)
	out := sealed.CLI.MustRun("hsm", "share", "import", "--home", sealed.Home)
	if _, err := os.Stat(filepath.Join(sealed.Home, "share.json")); !os.IsNotExist(err) {
		t.Fatalf("share.json is still on disk after import (%v):\n%s", err, out)
	}
	// keys show reads the sealed share from the device and checks it.
	if show := sealed.CLI.MustRun("keys", "show", "--home", sealed.Home, "--json"); !strings.Contains(strings.ToLower(show), hex.EncodeToString(node.PubKey)) {
		t.Fatalf("keys show on the sealed home does not report the validator key:\n%s", show)
	}

	leader := startCluster(t, cl, node)
	node.WaitHeight(ctx, 5, 2*time.Minute)
	victim := cl.Member(3)
	if leader.ID == 3 {
		victim = cl.Member(1)
	}
	victim.Kill()
	h, err := node.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// If the victim led, another leader takes over; either way only
	// cosigner 2 and the survivor remain.
	signed := node.WaitCommitSignedBy(ctx, node.PubKey, h+1, clusterWait)
	top := node.WaitHeight(ctx, signed+5, clusterWait)
	if _, err := node.VerifyChain(ctx, node.PubKey, 1, top-1); err != nil {
		t.Fatal(err)
	}
	_, shares := checkCluster(t, cl)
	fromSealed := 0
	for _, r := range sealed.Records() {
		if r.Share {
			fromSealed++
		}
	}
	if fromSealed == 0 {
		t.Fatal("cosigner 2 (sealed share) released no signature share")
	}
	readFromDevice := false
	for _, l := range sealed.Current().Lines() {
		readFromDevice = readFromDevice || strings.Contains(l, "share read from the yubihsm")
	}
	if !readFromDevice {
		t.Error("cosigner 2's log does not show the share read from the yubihsm")
	}
	t.Logf("e2e: hsm sealed share: 2-of-3 with cosigner 2's share in the simulator; cosigner %d killed at height %d, signed again at %d, chain at %d verified; %d shares logged, %d from cosigner 2",
		victim.ID, h, signed, top, shares, fromSealed)
}
