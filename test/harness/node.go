package harness

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// NodeConfig describes a single-validator chain.
type NodeConfig struct {
	// Version of CometBFT, for example "v0.38.17".
	Version string
	// ChainID defaults to "cosigner-test".
	ChainID string
	// Unix makes the node listen for its signer on a unix socket instead of
	// tcp:// with SecretConnection.
	Unix bool
	// VoteExtensionsHeight is the height vote extensions are enabled from on
	// versions that have them (0.38, 1.0); 0 means 2, negative means never.
	VoteExtensionsHeight int64
	// IP is the loopback address the node binds; "" means 127.0.0.1.
	IP string
}

// Node is one CometBFT node whose validator key lives outside it: the key
// the node generated at init has been moved to ValidatorKeyFile for the
// signer under test, and the node holds a fresh, unrelated key it never
// uses because priv_validator_laddr is set.
type Node struct {
	Version string
	ChainID string
	Home    string
	Bin     string
	IP      string

	// SignerAddr is priv_validator_laddr: where the node listens for its
	// signer (tcp://127.0.0.1:P or unix:///path).
	SignerAddr string
	RPCPort    int
	P2PPort    int
	// ValidatorKeyFile is the genesis validator's priv_validator_key.json,
	// moved out of the node's home.
	ValidatorKeyFile string
	// PubKey is the genesis validator's public key.
	PubKey ed25519.PublicKey
	// VoteExtensionsHeight is the height vote extensions start at, 0 if
	// never.
	VoteExtensionsHeight int64

	t     testing.TB
	proc  *Process
	runs  int
	peers string // persistent_peers
}

// NewNode initialises a single-validator chain's node under t.TempDir()
// without starting it.
func NewNode(t testing.TB, cfg NodeConfig) *Node {
	t.Helper()
	if cfg.ChainID == "" {
		cfg.ChainID = "cosigner-test"
	}
	if cfg.IP == "" {
		cfg.IP = "127.0.0.1"
	}
	n := &Node{
		Version: cfg.Version,
		ChainID: cfg.ChainID,
		Home:    filepath.Join(t.TempDir(), "node"),
		Bin:     CometBFT(t, cfg.Version),
		IP:      cfg.IP,
		t:       t,
	}
	if out, err := exec.Command(n.Bin, "init", "--home", n.Home).CombinedOutput(); err != nil {
		t.Fatalf("cometbft %s init: %v\n%s", n.Version, err, out)
	}
	if err := n.setSignerAddr(cfg.Unix); err != nil {
		t.Fatal(err)
	}
	if err := n.pickPorts(); err != nil {
		t.Fatal(err)
	}
	if err := n.writeConfig(); err != nil {
		t.Fatal(err)
	}
	veHeight := cfg.VoteExtensionsHeight
	if veHeight == 0 {
		veHeight = 2
	}
	if err := n.editGenesis(veHeight); err != nil {
		t.Fatal(err)
	}
	if err := n.moveKey(filepath.Join(filepath.Dir(n.Home), "validator_key.json")); err != nil {
		t.Fatal(err)
	}
	if vals, err := n.GenesisValidators(); err != nil || len(vals) != 1 {
		t.Fatalf("genesis of a single-validator chain: %d validators, %v", len(vals), err)
	}
	return n
}

func (n *Node) pickPorts() error {
	var err error
	if n.RPCPort, err = FreePort(n.IP); err != nil {
		return err
	}
	n.P2PPort, err = FreePort(n.IP)
	return err
}

// RPCURL returns the node's RPC base URL.
func (n *Node) RPCURL() string { return fmt.Sprintf("http://%s:%d", n.IP, n.RPCPort) }

// P2PAddr returns the node's p2p listen address (host:port).
func (n *Node) P2PAddr() string { return fmt.Sprintf("%s:%d", n.IP, n.P2PPort) }

func (n *Node) configPath() string { return filepath.Join(n.Home, "config", "config.toml") }

// writeConfig sets fast blocks, loopback-only ports, the built-in kvstore
// app and the signer address.
func (n *Node) writeConfig() error {
	return EditTOMLFile(n.configPath(), map[string]map[string]string{
		"": {
			"proxy_app":            `"kvstore"`,
			"priv_validator_laddr": fmt.Sprintf("%q", n.SignerAddr),
			"moniker":              fmt.Sprintf("%q", filepath.Base(n.Home)),
		},
		"rpc": {
			"laddr":       fmt.Sprintf(`"tcp://%s:%d"`, n.IP, n.RPCPort),
			"pprof_laddr": `""`,
		},
		"p2p": {
			"laddr":              fmt.Sprintf(`"tcp://%s:%d"`, n.IP, n.P2PPort),
			"persistent_peers":   fmt.Sprintf("%q", n.peers),
			"addr_book_strict":   "false",
			"allow_duplicate_ip": "true",
		},
		"consensus": {
			"timeout_propose":         `"1s"`,
			"timeout_propose_delta":   `"200ms"`,
			"timeout_prevote":         `"200ms"`,
			"timeout_prevote_delta":   `"100ms"`,
			"timeout_precommit":       `"200ms"`,
			"timeout_precommit_delta": `"100ms"`,
			"timeout_commit":          `"300ms"`,
		},
		"instrumentation": {
			"prometheus": "false",
		},
	})
}

// EditTOMLFile replaces the values of existing keys in a CometBFT
// config.toml, section by section ("" is the top level). Values are TOML
// literals. A key missing from its section is an error, so a config layout
// that changes between versions is noticed rather than silently ignored.
func EditTOMLFile(path string, edits map[string]map[string]string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(string(data), "\n")
	done := map[string]bool{}
	section := ""
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "[") {
			section = strings.Trim(trimmed, "[] ")
			continue
		}
		key, _, ok := strings.Cut(trimmed, "=")
		if !ok || strings.HasPrefix(trimmed, "#") {
			continue
		}
		key = strings.TrimSpace(key)
		if v, ok := edits[section][key]; ok {
			lines[i] = key + " = " + v
			done[section+"."+key] = true
		}
	}
	var missing []string
	for section, kv := range edits {
		for key := range kv {
			if !done[section+"."+key] {
				missing = append(missing, fmt.Sprintf("[%s] %s", section, key))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("edit %s: keys not found: %s", path, strings.Join(missing, ", "))
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600)
}

func (n *Node) genesisPath() string { return filepath.Join(n.Home, "config", "genesis.json") }

// editGenesis sets the chain id and, where the version has them, the height
// vote extensions start at (0.38: consensus_params.abci, 1.0:
// consensus_params.feature).
func (n *Node) editGenesis(veHeight int64) error {
	return n.updateGenesis(func(g map[string]any) error {
		g["chain_id"] = n.ChainID
		cp, _ := g["consensus_params"].(map[string]any)
		for _, group := range []string{"abci", "feature"} {
			m, ok := cp[group].(map[string]any)
			if !ok {
				continue
			}
			if _, ok := m["vote_extensions_enable_height"]; !ok {
				continue
			}
			if veHeight > 0 {
				m["vote_extensions_enable_height"] = fmt.Sprint(veHeight)
				n.VoteExtensionsHeight = veHeight
			}
		}
		return nil
	})
}

// updateGenesis reads the node's genesis.json (numbers kept as written),
// lets edit change it and writes it back.
func (n *Node) updateGenesis(edit func(g map[string]any) error) error {
	path := n.genesisPath()
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var g map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&g); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	if err := edit(g); err != nil {
		return err
	}
	out, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}

// moveKey moves the node's priv_validator_key.json to dst, replaces it with
// a fresh unrelated key, and checks that the moved key is a genesis
// validator and the node's new one is not.
func (n *Node) moveKey(dst string) error {
	src := filepath.Join(n.Home, "config", "priv_validator_key.json")
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	priv, err := ReadValidatorKey(dst)
	if err != nil {
		return err
	}
	n.ValidatorKeyFile = dst
	n.PubKey = priv.Public().(ed25519.PublicKey)
	decoy, err := WriteNewValidatorKey(src)
	if err != nil {
		return err
	}
	vals, err := n.GenesisValidators()
	if err != nil {
		return err
	}
	found := false
	for _, v := range vals {
		if v.Equal(decoy) {
			return fmt.Errorf("node still holds a genesis validator key")
		}
		found = found || v.Equal(n.PubKey)
	}
	if !found {
		return fmt.Errorf("the moved key %X is not a genesis validator", []byte(n.PubKey))
	}
	return nil
}

// GenesisValidators returns the public keys of the genesis validators.
func (n *Node) GenesisValidators() ([]ed25519.PublicKey, error) {
	data, err := os.ReadFile(n.genesisPath())
	if err != nil {
		return nil, err
	}
	var g struct {
		Validators []struct {
			PubKey struct {
				Type  string `json:"type"`
				Value string `json:"value"`
			} `json:"pub_key"`
		} `json:"validators"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, err
	}
	var keys []ed25519.PublicKey
	for _, v := range g.Validators {
		pub, err := base64.StdEncoding.DecodeString(v.PubKey.Value)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("genesis validator pub_key %q is not an ed25519 key", v.PubKey.Value)
		}
		keys = append(keys, pub)
	}
	return keys, nil
}

// Start starts the node and waits until its RPC answers, which happens only
// after it has fetched the validator's public key from its signer: the
// signer must be dialing already (the node gives it about 3 s). If the node
// fails to bind its RPC or p2p port, it is retried on fresh ports.
func (n *Node) Start(ctx context.Context) {
	n.t.Helper()
	for attempt := 1; ; attempt++ {
		n.runs++
		logPath := filepath.Join(filepath.Dir(n.Home), fmt.Sprintf("%s-%d.log", filepath.Base(n.Home), n.runs))
		n.proc = StartProcess(n.t, "cometbft "+n.Version+" "+filepath.Base(n.Home), logPath, nil, n.Bin, "start", "--home", n.Home)
		err := n.waitRPC(ctx)
		if err == nil {
			return
		}
		if attempt < 3 && n.proc.Exited() && strings.Contains(n.proc.Output(), "address already in use") {
			n.t.Logf("node %s: port collision, retrying on fresh ports", n.Version)
			if err := n.pickPorts(); err != nil {
				n.t.Fatal(err)
			}
			if err := n.writeConfig(); err != nil {
				n.t.Fatal(err)
			}
			continue
		}
		n.t.Fatalf("start node %s: %v\n%s", n.Version, err, n.proc.Tail(30))
	}
}

// Stop stops the node (SIGTERM, then SIGKILL after a grace period).
func (n *Node) Stop() {
	if n.proc != nil {
		n.proc.Stop()
	}
}

// Process returns the running node process.
func (n *Node) Process() *Process { return n.proc }

func (n *Node) waitRPC(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return n.poll(ctx, func() (bool, error) {
		_, err := n.Height(ctx)
		return err == nil, nil
	})
}

// poll calls check every 100 ms until it reports done, fails, the node
// exits, or ctx ends. It is only used against the node's RPC, which offers
// nothing to wait on.
func (n *Node) poll(ctx context.Context, check func() (bool, error)) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := check()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-n.proc.Done():
			return fmt.Errorf("node %s exited: %w", n.Version, ErrExited)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// WaitHeight waits until the node's latest block height is at least h,
// failing the test after timeout.
func (n *Node) WaitHeight(ctx context.Context, h int64, timeout time.Duration) int64 {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last int64
	err := n.poll(ctx, func() (bool, error) {
		got, err := n.Height(ctx)
		if err == nil {
			last = got
		}
		return got >= h, nil
	})
	if err != nil {
		n.t.Fatalf("node %s: waiting for height %d (at %d): %v", n.Version, h, last, err)
	}
	return last
}
