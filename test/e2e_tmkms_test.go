package test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/test/harness"
)

// TestMigrateFromTMKMS moves a running chain's validator from TMKMS to
// cosigner with 'cosigner migrate tmkms'. The chain first runs to some
// height with CometBFT's own FilePV as its remote signer; the test stops
// it and lays out what a TMKMS softsign signer would hold at that point, in
// TMKMS's own formats: the consensus key as 'tmkms softsign import' writes
// it (base64 of the seed), a SecretConnection identity as 'tmkms init'
// writes it, the consensus state file TMKMS keeps (the signer's last
// height, round and step, steps from 0, with the block id), and a
// tmkms.toml naming the node as tcp://ID@host:port. The migrated home
// starts, the chain goes on with the same validator key, every commit
// verifies, nothing is double-signed and nothing is signed at or below the
// imported state. It runs with the key as TMKMS v0.15 also reads it, a
// 64-byte expanded key (the scalar half of SHA-512 of the seed, then the
// prefix), which migrates as a scalar key file.
func TestMigrateFromTMKMS(t *testing.T) {
	bin := requireCosigner(t)
	for _, form := range []string{"seed", "expanded"} {
		t.Run(form, func(t *testing.T) {
			t.Parallel()
			migrateFromTMKMS(t, bin, form)
		})
	}
}

func migrateFromTMKMS(t *testing.T, bin, form string) {
	ctx := context.Background()
	node := harness.NewNode(t, harness.NodeConfig{Version: "v0.38.17", ChainID: "tmkms-1"})
	ref := harness.StartReferenceSigner(t, node.SignerAddr, node.ChainID, node.ValidatorKeyFile)
	node.Start(ctx)
	node.WaitHeight(ctx, 6, 2*time.Minute)
	ref.Stop()

	dir := filepath.Join(t.TempDir(), "tmkms")
	key, err := harness.ReadValidatorKey(node.ValidatorKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	idSeed := make([]byte, ed25519.SeedSize)
	rand.Read(idSeed)
	state, mark := tmkmsStateFrom(t, ref.StatePath)
	nodeID := make([]byte, 20)
	rand.Read(nodeID)
	addr := strings.Replace(node.SignerAddr, "tcp://", "tcp://"+hex.EncodeToString(nodeID)+"@", 1)
	toml := fmt.Sprintf(`[[chain]]
id = %q
key_format = { type = "bech32", account_key_prefix = "cosmospub", consensus_key_prefix = "cosmosvalconspub" }
state_file = "state/%[1]s-consensus.json"

[[providers.softsign]]
chain_ids = [%[1]q]
key_type = "consensus"
path = "secrets/%[1]s-consensus.key"

[[validator]]
chain_id = %[1]q
addr = %q
secret_key = "secrets/kms-identity.key"
protocol_version = "v0.38"
reconnect = true
`, node.ChainID, addr)
	consensusKey := key.Seed()
	if form == "expanded" {
		h := sha512.Sum512(key.Seed())
		consensusKey = h[:]
	}
	for name, data := range map[string]string{
		"tmkms.toml": toml,
		"secrets/" + node.ChainID + "-consensus.key": base64.StdEncoding.EncodeToString(consensusKey),
		"secrets/kms-identity.key":                   base64.StdEncoding.EncodeToString(idSeed),
		"state/" + node.ChainID + "-consensus.json":  state,
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	port, err := harness.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c := harness.CosignerAt(t, bin, filepath.Join(t.TempDir(), "cosigner"), node.ChainID)
	out := c.MustRun("migrate", "tmkms", "--home", c.Home, "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", port), filepath.Join(dir, "tmkms.toml"))
	if !strings.Contains(out, "dropped the node ID "+hex.EncodeToString(nodeID)) || !strings.Contains(out, "stop TMKMS") {
		t.Errorf("migrate output:\n%s", out)
	}
	if form == "expanded" && !strings.Contains(out, "64-byte expanded key") {
		t.Errorf("migrate output does not note the expanded key:\n%s", out)
	}
	imported := c.StateShow()
	if imported.Height != mark.Height || imported.Round != mark.Round || imported.Step != mark.Step {
		t.Fatalf("imported state %s, want the signer's last %d/%d/%d", imported.Raw, mark.Height, mark.Round, mark.Step)
	}
	show := c.MustRun("keys", "show", "--home", c.Home, "--json")
	if !strings.Contains(show, base64.StdEncoding.EncodeToString(node.PubKey)) {
		t.Fatalf("migrated key is not the validator's:\n%s", show)
	}

	c.Start()
	top := node.WaitHeight(ctx, mark.Height+8, 2*time.Minute)
	recs := c.Records()
	if err := harness.CheckNoDoubleSign(recs); err != nil {
		t.Error(err)
	}
	stepNum := map[string]int8{"proposal": 1, "prevote": 2, "precommit": 3}
	for _, r := range recs {
		atOrBelow := r.Height < mark.Height ||
			r.Height == mark.Height && (r.Round < mark.Round || r.Round == mark.Round && stepNum[r.Step] <= mark.Step)
		if atOrBelow {
			t.Errorf("signed at or below the imported TMKMS state %d/%d/%d: %s", mark.Height, mark.Round, mark.Step, r.Line)
		}
	}
	n, err := node.VerifyChain(ctx, node.PubKey, 1, top-1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("e2e: tmkms (%s key): state %s imported as %d/%d/%d, cosigner signed %d times, %d commits verified, chain at %d",
		form, strings.TrimSpace(state), mark.Height, mark.Round, mark.Step, len(recs), n, top)
}

// tmkmsStateFrom turns a FilePV priv_validator_state.json into the state
// file TMKMS keeps for the same last signature: height and round as
// strings, step numbered from 0, and the signed block id (hex, as
// tendermint-rs writes it; null for nil). It returns the file and the mark
// in cosigner's numbering.
func tmkmsStateFrom(t *testing.T, filePVState string) (string, harness.SignState) {
	t.Helper()
	data, err := os.ReadFile(filePVState)
	if err != nil {
		t.Fatal(err)
	}
	var pv struct {
		Height    string `json:"height"`
		Round     int32  `json:"round"`
		Step      int8   `json:"step"`
		SignBytes string `json:"signbytes"`
	}
	if err := json.Unmarshal(data, &pv); err != nil {
		t.Fatal(err)
	}
	h, err := strconv.ParseInt(pv.Height, 10, 64)
	if err != nil || pv.Step < 1 || pv.Step > 3 {
		t.Fatalf("FilePV state %s: want a signature at a positive height", data)
	}
	raw, err := hex.DecodeString(pv.SignBytes)
	if err != nil {
		t.Fatal(err)
	}
	info, err := privval.ParseSignBytes(raw)
	if err != nil {
		t.Fatalf("FilePV sign bytes: %v", err)
	}
	blockID := "null"
	if !info.BlockID.IsZero() {
		blockID = fmt.Sprintf(`{"hash":"%X","part_set_header":{"total":%d,"hash":"%X"}}`,
			info.BlockID.Hash, info.BlockID.PartSetHeader.Total, info.BlockID.PartSetHeader.Hash)
	}
	state := fmt.Sprintf(`{"height":"%d","round":"%d","step":%d,"block_id":%s}`, h, pv.Round, pv.Step-1, blockID)
	return state, harness.SignState{Height: h, Round: pv.Round, Step: pv.Step}
}
