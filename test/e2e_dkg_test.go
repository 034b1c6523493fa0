package test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/test/harness"
)

// dkgWait bounds each wait for a `cosigner dkg` run to end; the runs get a
// --timeout below it.
const dkgWait = 90 * time.Second

// waitDKG waits for every process to exit and returns their outputs.
func waitDKG(t *testing.T, ps []*harness.Process) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dkgWait)
	defer cancel()
	var outs []string
	for _, p := range ps {
		if err := p.Wait(ctx); err != nil && !p.Exited() {
			t.Fatal(err)
		}
		outs = append(outs, p.Output())
	}
	return outs
}

// runDKG runs `cosigner dkg` on every member, requires every run to
// succeed and print the same validator key, and returns it.
func runDKG(t *testing.T, cl *harness.Cluster, args ...string) ed25519.PublicKey {
	t.Helper()
	ps := cl.StartDKG(nil, append([]string{"--timeout", "60s"}, args...)...)
	outs := waitDKG(t, ps)
	var pub ed25519.PublicKey
	for i, p := range ps {
		if p.ExitCode() != 0 {
			t.Fatalf("dkg on cosigner %d exited %d:\n%s", i+1, p.ExitCode(), outs[i])
		}
		k, err := harness.DKGPubKey(outs[i])
		if err != nil {
			t.Fatal(err)
		}
		if pub != nil && !pub.Equal(k) {
			t.Fatalf("cosigner %d printed key %X, cosigner 1 printed %X", i+1, []byte(k), []byte(pub))
		}
		pub = k
	}
	return pub
}

// TestDKGChain: three hosts prepared with `shard --no-key` generate the
// validator key with `cosigner dkg` (real processes on loopback, over the
// cluster's mutual TLS); a chain whose genesis validator is that key signs
// clusterBlocks blocks through the 2-of-3 cluster (`cosigner start`), every
// commit verified, nothing signed twice. A second dkg on a home with a
// share refuses and leaves the share as it was. Then `keys reassemble` from
// two of the three DKG shares gives a scalar key file that softsign signs a
// second chain of that key with.
func TestDKGChain(t *testing.T) {
	bin := requireCosigner(t)
	ctx := context.Background()
	version := harness.Versions[len(harness.Versions)-1]
	node := harness.NewNode(t, harness.NodeConfig{Version: version, ChainID: "dkg-1"})
	cl := harness.NewCluster(t, harness.ClusterConfig{Bin: bin, Threshold: 2, Shares: 3,
		ChainID: node.ChainID, Nodes: []string{node.SignerAddr}})
	for _, m := range cl.Members {
		if _, err := os.Stat(filepath.Join(m.Home, "share.json")); err == nil {
			t.Fatalf("shard --no-key wrote a share in %s", m.Home)
		}
	}
	start := time.Now()
	pub := runDKG(t, cl)
	t.Logf("e2e: dkg 2-of-3 on loopback: %v from start to the last exit, key %X", time.Since(start).Round(time.Millisecond), []byte(pub))
	show := cl.Member(2).CLI.MustRun("keys", "show", "--home", cl.Member(2).Home, "--json")
	if !strings.Contains(show, fmt.Sprintf("%X", []byte(pub))) {
		t.Fatalf("keys show on cosigner 2 does not show the DKG key %X:\n%s", []byte(pub), show)
	}

	// A second run refuses: the share stays as it is.
	sharePath := filepath.Join(cl.Member(1).Home, "share.json")
	before, err := os.ReadFile(sharePath)
	if err != nil {
		t.Fatal(err)
	}
	again := cl.Member(1).CLI.Run("dkg", "--home", cl.Member(1).Home, "--timeout", "5s")
	if again.Code == 0 || !strings.Contains(again.Stderr, "already in place") {
		t.Fatalf("a second dkg on a home with a share: %s", again.String())
	}
	if after, err := os.ReadFile(sharePath); err != nil || !bytes.Equal(before, after) {
		t.Fatalf("the refused dkg changed %s (%v)", sharePath, err)
	}

	if err := node.SetGenesisValidator(pub); err != nil {
		t.Fatal(err)
	}
	startCluster(t, cl, node)
	top := node.WaitHeight(ctx, clusterBlocks+2, 3*time.Minute)
	verified, err := node.VerifyChain(ctx, pub, 1, top-1)
	if err != nil {
		t.Fatal(err)
	}
	sigs, shares := checkCluster(t, cl)
	checkSignedEveryHeight(t, sigs, 1, top-1)
	t.Logf("e2e: DKG key, 2-of-3 cluster: %d commits verified (heights 1..%d), %d signatures from %d shares", verified, top-1, len(sigs), shares)
	for _, m := range cl.Members {
		m.Stop()
	}

	// Emergency reassembly of the DKG key, signing with softsign.
	node2 := harness.NewNode(t, harness.NodeConfig{Version: version, ChainID: "dkg-2"})
	if err := node2.SetGenesisValidator(pub); err != nil {
		t.Fatal(err)
	}
	cs := harness.NewCosigner(t, bin, node2.ChainID, node2.SignerAddr)
	keyFile := filepath.Join(cs.Home, "keys", node2.ChainID+".json")
	r := cs.Run("keys", "reassemble", "--out", keyFile, cl.Member(1).Home, cl.Member(3).Home)
	if r.Code != 0 {
		t.Fatal(r.String())
	}
	cs.MustRun("state", "init", "--home", cs.Home, "--chain-id", node2.ChainID)
	cs.Start()
	node2.Start(ctx)
	top2 := node2.WaitHeight(ctx, 12, 2*time.Minute)
	n2, err := node2.VerifyChain(ctx, pub, 1, top2-1)
	if err != nil {
		t.Fatal(err)
	}
	recs := cs.Records()
	if err := harness.CheckNoDoubleSign(recs); err != nil {
		t.Error(err)
	}
	checkSignedEveryHeight(t, recs, 1, top2-1)
	t.Logf("e2e: DKG key reassembled from shares 1 and 3, softsign: %d commits verified (heights 1..%d)", n2, top2-1)
}

// buildCheatingCosigner builds the cosigner binary with the test hooks of
// testdata/dkgcheat.go (a dealer that corrupts its deal to one participant)
// and testdata/dkgreplay.go (a participant that sends a message twice, or
// holds back its deals),
// each switched on by an environment variable; the product binary has
// neither.
func buildCheatingCosigner(t *testing.T) string {
	t.Helper()
	bin, err := harness.BuildCosignerOverlay(t.TempDir(), map[string]string{
		filepath.Join("threshold", "zz_e2e_dkgcheat.go"):             filepath.Join("testdata", "dkgcheat.go"),
		filepath.Join("cosigner", "ceremony", "zz_e2e_dkgreplay.go"): filepath.Join("testdata", "dkgreplay.go"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// wantDKGAborted checks that every run failed, that its output contains
// want[i], and that no home got a share or group file.
func wantDKGAborted(t *testing.T, cl *harness.Cluster, ps []*harness.Process, want ...string) {
	t.Helper()
	outs := waitDKG(t, ps)
	for i, p := range ps {
		if p.ExitCode() == 0 {
			t.Errorf("dkg on run %d completed, want an abort:\n%s", i+1, outs[i])
			continue
		}
		if i < len(want) && !strings.Contains(outs[i], want[i]) {
			t.Errorf("dkg run %d: want %q in its output:\n%s", i+1, want[i], outs[i])
		}
		if !strings.Contains(outs[i], "cosigner: hint:") {
			t.Errorf("dkg run %d: no hint:\n%s", i+1, outs[i])
		}
	}
	for _, m := range cl.Members {
		for _, f := range []string{"share.json", "group.json"} {
			if _, err := os.Stat(filepath.Join(m.Home, f)); err == nil {
				t.Errorf("an aborted ceremony left %s in %s", f, m.Home)
			}
		}
	}
}

// TestDKGFailures: each way a ceremony must abort (a cheating dealer, a host
// killed in the hello phase or while the others wait for its deals, a
// mismatched threshold, a wrong peer list, a replayed message), on real
// processes over loopback mutual TLS, leaves no share anywhere; after each,
// a rerun on the same homes succeeds (rerunning is safe).
func TestDKGFailures(t *testing.T) {
	requireCosigner(t)
	bin := buildCheatingCosigner(t)
	newCluster := func(t *testing.T) *harness.Cluster {
		return harness.NewCluster(t, harness.ClusterConfig{Bin: bin, Threshold: 2, Shares: 3, ChainID: "dkg-fail-1", Nodes: []string{"tcp://127.0.0.1:1"}})
	}
	t.Run("cheating dealer is named", func(t *testing.T) {
		cl := newCluster(t)
		ps := cl.StartDKG(map[int][]string{2: {"COSIGNER_TEST_DKG_CORRUPT_DEAL_TO=3"}}, "--timeout", "60s")
		bad := "cosigner 2: dealt a bad share to cosigner 3"
		wantDKGAborted(t, cl, ps, bad, bad, bad)
		runDKG(t, cl)
	})
	t.Run("host killed in the hello phase", func(t *testing.T) {
		cl := newCluster(t)
		// Cosigners 3 and 1 meet; 2 is not started yet, so the ceremony
		// waits in its hello phase until 3 is killed.
		p3 := cl.Member(3).StartDKG(nil, "--timeout", "10m")
		p1 := cl.Member(1).StartDKG(nil, "--timeout", "10m")
		ctx, cancel := context.WithTimeout(context.Background(), dkgWait)
		defer cancel()
		if _, _, err := p1.WaitLine(ctx, 0, func(l string) bool { return strings.Contains(l, `msg="ceremony hello" peer=3`) }); err != nil {
			t.Fatal(err)
		}
		p3.Kill()
		// 1 aborts at once (a 10-minute timeout would fail the wait).
		wantDKGAborted(t, cl, []*harness.Process{p1}, "cosigner 3: left the ceremony before it completed")
		runDKG(t, cl)
	})
	t.Run("host killed while the others wait for its deals", func(t *testing.T) {
		cl := newCluster(t)
		ps := cl.StartDKG(map[int][]string{3: {"COSIGNER_TEST_DKG_HOLD=1"}}, "--timeout", "10m")
		ctx, cancel := context.WithTimeout(context.Background(), dkgWait)
		defer cancel()
		for _, p := range ps[:2] {
			if _, _, err := p.WaitLine(ctx, 0, func(l string) bool { return strings.Contains(l, `msg="ceremony transcript confirmed: dealing"`) }); err != nil {
				t.Fatal(err)
			}
		}
		ps[2].Kill()
		left := "cosigner 3: left the ceremony before it completed"
		wantDKGAborted(t, cl, ps[:2], left, left)
		runDKG(t, cl)
	})
	t.Run("mismatched threshold", func(t *testing.T) {
		cl := newCluster(t)
		editConfig(t, cl.Member(3).Home, "threshold = 2\n", "threshold = 3\n")
		ps := cl.StartDKG(nil, "--timeout", "60s")
		wantDKGAborted(t, cl, ps, `it has "threshold: 3", we have "threshold: 2"`, "", `it has "threshold: 2", we have "threshold: 3"`)
		editConfig(t, cl.Member(3).Home, "threshold = 3\n", "threshold = 2\n")
		runDKG(t, cl)
	})
	t.Run("wrong peer set", func(t *testing.T) {
		cl := newCluster(t)
		port, err := harness.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		wrong := fmt.Sprintf("127.0.0.1:%d", port)
		editConfig(t, cl.Member(3).Home, fmt.Sprintf("address = %q", cl.Member(2).GRPCAddr), fmt.Sprintf("address = %q", wrong))
		ps := cl.StartDKG(nil, "--timeout", "60s")
		wantDKGAborted(t, cl, ps, "cosigner 3: runs a different ceremony", "cosigner 3: runs a different ceremony", "participant 2: "+wrong)
	})
	t.Run("replayed message", func(t *testing.T) {
		cl := newCluster(t)
		ps := cl.StartDKG(map[int][]string{1: {"COSIGNER_TEST_DKG_REPLAY=1"}}, "--timeout", "60s")
		wantDKGAborted(t, cl, ps, "replay", "replay", "replay")
	})
}

// editConfig replaces old with new in home's cosigner.toml, once.
func editConfig(t *testing.T, home, old, new string) {
	t.Helper()
	path := filepath.Join(home, "cosigner.toml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s does not contain %q:\n%s", path, old, data)
	}
	if err := os.WriteFile(path, bytes.Replace(data, []byte(old), []byte(new), 1), 0o600); err != nil {
		t.Fatal(err)
	}
}
