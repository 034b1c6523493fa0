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

func newSim(t *testing.T) *yubihsmsim.Sim {
	t.Helper()
	sim, err := yubihsmsim.New(yubihsmsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return sim
}

var keyLine = regexp.MustCompile(`(?m)^key = ".*"$`)

// TestHSMSoftsign runs a CometBFT v0.38.17 single-validator chain whose
// key is held by the YubiHSM2 simulator (running in this test process):
// imported with `cosigner hsm keys import`, named by hsm_key_id, never on
// cosigner's disk. Mid-run the connector goes away, sign requests fail
// while it is away, and after it comes back the same process signs on
// without a restart. Every commit verifies and nothing is signed twice.
func TestHSMSoftsign(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	ctx := context.Background()
	sim := newSim(t)
	node := harness.NewNode(t, harness.NodeConfig{Version: "v0.38.17", ChainID: "hsm-1"})
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

	p := cs.Start()
	node.Start(ctx)
	node.WaitHeight(ctx, 10, 2*time.Minute)

	// The connector goes away until cosigner has seen a sign request fail.
	sim.Stop()
	stopped, err := node.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, downLine, err := p.WaitLine(wctx, 0, func(l string) bool { return strings.Contains(l, "hsm unavailable") })
	if err != nil {
		t.Fatalf("no 'hsm unavailable' log line while the connector is away: %v", err)
	}
	if err := sim.Restart(); err != nil {
		t.Fatal(err)
	}
	top := node.WaitHeight(ctx, max(stopped, minBlocks)+5, 2*time.Minute)
	if p.Exited() {
		t.Fatal("cosigner exited")
	}
	restored := false
	for _, l := range p.Lines() {
		restored = restored || strings.Contains(l, "hsm session restored")
	}
	if !restored {
		t.Error("no 'hsm session restored' log line")
	}

	n, err := node.VerifyChain(ctx, node.PubKey, 1, top-1)
	if err != nil {
		t.Fatal(err)
	}
	recs := cs.Records()
	if err := harness.CheckNoDoubleSign(recs); err != nil {
		t.Error(err)
	}
	checkSignedEveryHeight(t, recs, 1, top-1)
	entries, _ := os.ReadDir(filepath.Join(cs.Home, "keys"))
	if len(entries) != 0 {
		t.Errorf("key files in cosigner's home: %v", entries)
	}
	var latency string
	for _, l := range p.Lines() {
		if strings.Contains(l, "hsm sign latency") {
			latency = l
		}
	}
	t.Logf("e2e: hsm softsign: %d commits verified with the simulator-held key (heights 1..%d), %d device signatures, %d signatures logged; connector away at height %d (%s); last latency line: %s",
		n, top-1, sim.Count(yubihsmsim.CmdSignEddsa), len(recs), stopped, strings.TrimSpace(downLine[strings.Index(downLine, "level="):]), latency)
}

// TestHSMSealedShare runs a 2-of-3 cluster on a v0.38.17 chain in which
// cosigner 2's share is sealed in the simulator with `cosigner hsm share
// import` (share.json removed). With another cosigner killed, the chain can
// only go on with cosigner 2's share, read from the device at start.
func TestHSMSealedShare(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	ctx := context.Background()
	sim := newSim(t)
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
