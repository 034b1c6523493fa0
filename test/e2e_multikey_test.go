package test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/test/harness"
)

// multiKeyBlocks is how many blocks each chain of TestClusterTwoKeys signs.
const multiKeyBlocks = 12

// validatorAddress is CometBFT's address of an ed25519 key, as cosigner
// prints it.
func validatorAddress(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return strings.ToUpper(hex.EncodeToString(sum[:20]))
}

// hashTree hashes every regular file under dir, to show a refused command
// changed nothing.
func hashTree(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		out[p] = sha256.Sum256(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestClusterTwoKeys runs one 2-of-3 cluster for two single-validator
// CometBFT v0.38.17 chains with different genesis validator keys: the
// first 'cosigner shard' makes the homes for chain A, a second one adds
// chain B's key to them ('shard --add-to'). Adding a chain the homes sign
// already, a key they hold already, or to homes of another shape is
// refused and changes no file. keys show names each chain's key; both
// chains then sign multiKeyBlocks blocks, every commit carries a valid
// precommit of the chain's own key and no evidence, no (chain, height,
// round, step) is signed twice, and status and metrics name the key of
// each chain. Then the leader is SIGKILLed and the next one signs both
// chains on, every commit still verified for its own key.
func TestClusterTwoKeys(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	ctx := context.Background()
	a := harness.NewNode(t, harness.NodeConfig{Version: "v0.38.17", ChainID: "multi-a"})
	b := harness.NewNode(t, harness.NodeConfig{Version: "v0.38.17", ChainID: "multi-b"})
	if a.PubKey.Equal(b.PubKey) {
		t.Fatal("the two chains have one validator key")
	}
	cl := harness.NewCluster(t, harness.ClusterConfig{Bin: bin, Threshold: 2, Shares: 3, ChainID: a.ChainID,
		KeyFile: a.ValidatorKeyFile, Nodes: []string{a.SignerAddr}})
	if res := cl.AddChain(b.ValidatorKeyFile, b.ChainID, []string{b.SignerAddr}); res.Code != 0 {
		t.Fatal(res)
	}

	before := hashTree(t, cl.Dir)
	for _, tc := range []struct {
		name, key, chain string
		extra            []string
		want             string
	}{
		{"chain exists", a.ValidatorKeyFile, b.ChainID, nil, "signs chain multi-b already"},
		{"first chain exists", b.ValidatorKeyFile, a.ChainID, nil, "signs chain multi-a already"},
		{"key held", b.ValidatorKeyFile, "multi-c", nil, "already hold a share of this validator key"},
		{"other shape", b.ValidatorKeyFile, "multi-c", []string{"--threshold", "3", "--shares", "5"}, "2-of-3 cluster, asked for 3-of-5"},
	} {
		res := cl.AddChain(tc.key, tc.chain, []string{"tcp://127.0.0.1:1"}, tc.extra...)
		if res.Code != 1 || !strings.Contains(res.Stderr, tc.want) || !strings.Contains(res.Stderr, "hint:") {
			t.Errorf("%s: want exit 1 with %q and a hint:\n%s", tc.name, tc.want, res)
		}
	}
	after := hashTree(t, cl.Dir)
	if len(after) != len(before) {
		t.Errorf("refused additions left %d files, were %d", len(after), len(before))
	}
	for p, h := range before {
		if after[p] != h {
			t.Errorf("a refused addition changed %s", p)
		}
	}

	want := map[string]string{a.ChainID: validatorAddress(a.PubKey), b.ChainID: validatorAddress(b.PubKey)}
	for _, m := range cl.Members {
		var shown []struct {
			ChainID string `json:"chain_id"`
			Address string `json:"address"`
		}
		if err := json.Unmarshal([]byte(m.CLI.MustRun("keys", "show", "--home", m.Home, "--json")), &shown); err != nil {
			t.Fatal(err)
		}
		if len(shown) != 2 || want[shown[0].ChainID] != shown[0].Address || want[shown[1].ChainID] != shown[1].Address {
			t.Errorf("cosigner %d keys show: %+v, want %v", m.ID, shown, want)
		}
	}

	leader := startCluster(t, cl, a, b)
	topA := a.WaitHeight(ctx, multiKeyBlocks+2, 3*time.Minute)
	topB := b.WaitHeight(ctx, multiKeyBlocks+2, 3*time.Minute)
	for _, c := range []struct {
		n   *harness.Node
		top int64
	}{{a, topA}, {b, topB}} {
		n, err := c.n.VerifyChain(ctx, c.n.PubKey, 1, c.top-1)
		if err != nil {
			t.Fatalf("chain %s: %v", c.n.ChainID, err)
		}
		t.Logf("chain %s: %d commits verified with its own key %s", c.n.ChainID, n, validatorAddress(c.n.PubKey))
	}
	sigs, shares := checkCluster(t, cl)
	perChain := map[string][]harness.SignRecord{}
	for _, s := range sigs {
		perChain[s.Chain] = append(perChain[s.Chain], s)
	}
	checkSignedEveryHeight(t, perChain[a.ChainID], 1, topA-1)
	checkSignedEveryHeight(t, perChain[b.ChainID], 1, topB-1)

	st, res := opsStatus(t, leader)
	if res.Code != 0 {
		t.Fatal(res)
	}
	for _, ch := range st.Chains {
		if want[ch.ID] == "" || ch.Address != want[ch.ID] {
			t.Errorf("status: chain %s with key %s, want %s", ch.ID, ch.Address, want[ch.ID])
		}
	}
	if len(st.Chains) != 2 {
		t.Errorf("status shows %d chains, want 2", len(st.Chains))
	}
	scrape, err := harness.ScrapeMetrics(ctx, leader.MetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	for chain, addr := range want {
		if v, ok := scrape.Value("cosigner_chain_key_info", "chain", chain, "address", addr); !ok || v != 1 {
			t.Errorf("cosigner_chain_key_info{chain=%q,address=%q} = %v, %v", chain, addr, v, ok)
		}
		if v, ok := scrape.Value("cosigner_sign_last_height", "chain", chain, "type", "precommit"); !ok || v < multiKeyBlocks {
			t.Errorf("cosigner_sign_last_height{chain=%q} = %v, %v", chain, v, ok)
		}
	}

	// The leader is SIGKILLed: the next one fetches commitments of both
	// keys and both chains go on, each with its own key.
	leader.Kill()
	wctx, cancel := context.WithTimeout(ctx, clusterWait)
	defer cancel()
	next, err := cl.WaitLeader(wctx, leader)
	if err != nil {
		t.Fatal(err)
	}
	endA := a.WaitHeight(ctx, topA+5, 2*time.Minute)
	endB := b.WaitHeight(ctx, topB+5, 2*time.Minute)
	for _, c := range []struct {
		n   *harness.Node
		top int64
	}{{a, endA}, {b, endB}} {
		if _, err := c.n.VerifyChain(ctx, c.n.PubKey, 1, c.top-1); err != nil {
			t.Fatalf("chain %s after the leader's kill: %v", c.n.ChainID, err)
		}
	}
	if err := harness.CheckClusterNoDoubleSign(cl.Records()); err != nil {
		t.Error(err)
	}
	t.Logf("e2e: one 2-of-3 cluster, leader cosigner %d: %s to height %d and %s to %d, %d signatures and %d shares logged; "+
		"leader killed, cosigner %d led both on to %d and %d",
		leader.ID, a.ChainID, topA-1, b.ChainID, topB-1, len(sigs), shares, next.ID, endA-1, endB-1)
}
