package harness

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestnetConfig describes a several-validator chain on one machine.
type TestnetConfig struct {
	Version string
	// ChainID defaults to "cosigner-testnet".
	ChainID string
	// Validators defaults to 4.
	Validators int
	// RemoteSigner is the index of the validator whose key is moved out of
	// its node for an external signer; the other validators sign with their
	// own FilePV.
	RemoteSigner int
	// Unix makes the remote signer's node listen on a unix socket.
	Unix bool
	// VoteExtensionsHeight as in NodeConfig.
	VoteExtensionsHeight int64
}

// Testnet is a chain of several validators, node i on 127.0.0.(i+2) (all of
// 127/8 is loopback), built with `cometbft testnet` and rewired with free
// ports. Nodes[RemoteSigner] has its SignerAddr, ValidatorKeyFile and
// PubKey set like a single-validator Node.
type Testnet struct {
	ChainID      string
	Nodes        []*Node
	RemoteSigner int
}

// Signer returns the node whose validator key lives outside it.
func (tn *Testnet) Signer() *Node { return tn.Nodes[tn.RemoteSigner] }

// NewTestnet creates the testnet's homes under t.TempDir() without
// starting any node.
func NewTestnet(t testing.TB, cfg TestnetConfig) *Testnet {
	t.Helper()
	if cfg.ChainID == "" {
		cfg.ChainID = "cosigner-testnet"
	}
	if cfg.Validators == 0 {
		cfg.Validators = 4
	}
	if cfg.RemoteSigner < 0 || cfg.RemoteSigner >= cfg.Validators {
		t.Fatalf("testnet: remote signer %d out of range [0,%d)", cfg.RemoteSigner, cfg.Validators)
	}
	bin := CometBFT(t, cfg.Version)
	dir := t.TempDir()
	out := filepath.Join(dir, "testnet")
	cmd := exec.Command(bin, "testnet", "--v", fmt.Sprint(cfg.Validators), "--o", out,
		"--starting-ip-address", "127.0.0.2")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cometbft %s testnet: %v\n%s", cfg.Version, err, b)
	}
	tn := &Testnet{ChainID: cfg.ChainID, RemoteSigner: cfg.RemoteSigner}
	var peers []string
	for i := range cfg.Validators {
		n := &Node{
			Version: cfg.Version,
			ChainID: cfg.ChainID,
			Home:    filepath.Join(out, fmt.Sprintf("node%d", i)),
			Bin:     bin,
			IP:      fmt.Sprintf("127.0.0.%d", i+2),
			t:       t,
		}
		if err := n.pickPorts(); err != nil {
			t.Fatal(err)
		}
		id, err := nodeID(filepath.Join(n.Home, "config", "node_key.json"))
		if err != nil {
			t.Fatal(err)
		}
		peers = append(peers, fmt.Sprintf("%s@%s", id, n.P2PAddr()))
		tn.Nodes = append(tn.Nodes, n)
	}
	veHeight := cfg.VoteExtensionsHeight
	if veHeight == 0 {
		veHeight = 2
	}
	first := tn.Nodes[0]
	if err := first.editGenesis(veHeight); err != nil {
		t.Fatal(err)
	}
	genesis, err := os.ReadFile(first.genesisPath())
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range tn.Nodes {
		n.VoteExtensionsHeight = first.VoteExtensionsHeight
		if err := os.WriteFile(n.genesisPath(), genesis, 0o600); err != nil {
			t.Fatal(err)
		}
		var others []string
		for j, p := range peers {
			if j != i {
				others = append(others, p)
			}
		}
		n.peers = strings.Join(others, ",")
		if i == cfg.RemoteSigner {
			if err := n.setSignerAddr(cfg.Unix); err != nil {
				t.Fatal(err)
			}
			if err := n.moveKey(filepath.Join(dir, "validator_key.json")); err != nil {
				t.Fatal(err)
			}
		}
		if err := n.writeConfig(); err != nil {
			t.Fatal(err)
		}
	}
	return tn
}

// setSignerAddr picks the address the node listens on for its signer.
func (n *Node) setSignerAddr(unix bool) error {
	if unix {
		// Socket paths are limited to ~108 bytes; t.TempDir() can be longer.
		dir, err := os.MkdirTemp("", "cs-sock-")
		if err != nil {
			return err
		}
		n.t.Cleanup(func() { os.RemoveAll(dir) })
		n.SignerAddr = "unix://" + filepath.Join(dir, "privval.sock")
		return nil
	}
	port, err := FreePort(n.IP)
	if err != nil {
		return err
	}
	n.SignerAddr = fmt.Sprintf("tcp://%s:%d", n.IP, port)
	return nil
}

// Start starts every node, the remote signer's first (its signer must
// already be dialing), and waits for each RPC.
func (tn *Testnet) Start(ctx context.Context) {
	tn.Signer().Start(ctx)
	for i, n := range tn.Nodes {
		if i != tn.RemoteSigner {
			n.Start(ctx)
		}
	}
}

// nodeID returns the p2p node ID of a node_key.json: the lower-case hex of
// the first 20 bytes of SHA-256 of its ed25519 public key.
func nodeID(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var k struct {
		PrivKey struct {
			Value string `json:"value"`
		} `json:"priv_key"`
	}
	if err := json.Unmarshal(data, &k); err != nil {
		return "", fmt.Errorf("parse %s: %w", path, err)
	}
	raw, err := base64.StdEncoding.DecodeString(k.PrivKey.Value)
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return "", fmt.Errorf("parse %s: priv_key.value is not a 64-byte ed25519 key", path)
	}
	sum := sha256.Sum256(raw[32:])
	return hex.EncodeToString(sum[:20]), nil
}
