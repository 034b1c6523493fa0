// Package config is cosigner.toml: its structure, defaults, strict decoding
// and one Validate covering every field and cross-field rule, and the
// commented rendering `init` and `shard` write.
//
// It knows nothing of what the files it names hold.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/cosigner/cosigner/cosigner/hsm"
)

// FileName is the name of the configuration file inside a home
// directory.
const FileName = "cosigner.toml"

// Config is the content of cosigner.toml. Relative paths in it are relative to
// the home directory (the directory holding the file).
type Config struct {
	// Mode is "softsign" (one process holding whole keys).
	Mode string `toml:"mode"`
	// LogLevel is one of debug, info, warn, error.
	LogLevel string `toml:"log_level"`
	// IdentityKey is the file holding the ed25519 key cosigner presents in
	// SecretConnection handshakes with nodes (CometBFT node_key.json format).
	IdentityKey string `toml:"identity_key"`
	// StateDir holds one sign-state file per chain.
	StateDir string `toml:"state_dir"`

	Metrics   MetricsConfig   `toml:"metrics"`
	Softsign  SoftsignConfig  `toml:"softsign"`
	Threshold ThresholdConfig `toml:"threshold"`
	Chains    []ChainConfig   `toml:"chain"`
	// HSM is the YubiHSM2 holding softsign keys or a threshold share.
	HSM hsm.Config `toml:"hsm"`

	// home is the directory the config was loaded from; relative paths
	// resolve against it.
	home string
	// allowNoChains lets commands that only read keys load a configuration
	// whose chains are still to be filled in (a fresh shard output).
	allowNoChains bool
}

// MetricsConfig configures the Prometheus endpoint.
type MetricsConfig struct {
	// Listen is a host:port for /metrics; empty disables the endpoint.
	Listen string `toml:"listen"`
}

// ThresholdConfig configures threshold mode: this cosigner's share and its
// cluster. `cosigner shard` writes it.
type ThresholdConfig struct {
	// ID is this cosigner's FROST identifier, 1..Shares.
	ID int `toml:"id"`
	// Threshold is M: how many cosigners sign together. M > Shares/2.
	Threshold int `toml:"threshold"`
	// Shares is N, the number of cosigners.
	Shares int `toml:"shares"`
	// ShareFile holds this cosigner's key share (secret, 0600).
	ShareFile string `toml:"share_file"`
	// ShareHSMObject, when not 0, is the YubiHSM2 opaque object holding
	// the share instead of ShareFile ('cosigner hsm share import').
	ShareHSMObject int `toml:"share_hsm_object"`
	// GroupFile holds the group public key and Feldman commitments.
	GroupFile string `toml:"group_file"`
	// TLSDir holds the cluster CA certificate and this cosigner's cluster
	// certificate and key.
	TLSDir string `toml:"tls_dir"`
	// RaftDir holds Raft's log, stable store and snapshots.
	RaftDir string `toml:"raft_dir"`
	// MaxHeightAhead and MaxHeightRate bound the heights a cosigner signs
	// (signstate.Bound): at most MaxHeightAhead above its mark as loaded
	// at start, plus MaxHeightRate heights per second since that mark was
	// recorded. The bound never moves with the requests, so a stolen
	// cluster certificate or a buggy leader cannot burn future heights by
	// asking again and again.
	MaxHeightAhead int64   `toml:"max_height_ahead"`
	MaxHeightRate  float64 `toml:"max_height_rate"`
	// Peers lists every cosigner, this one included.
	Peers []PeerConfig `toml:"peer"`
}

// SoftsignConfig configures softsign mode (whole keys in files or in the
// YubiHSM2).
type SoftsignConfig struct {
	// MaxHeightAhead and MaxHeightRate are the optional height bound of
	// every chain, as threshold.max_height_ahead and max_height_rate; 0
	// (the default) turns it off, as TMKMS and FilePV have none.
	MaxHeightAhead int64   `toml:"max_height_ahead"`
	MaxHeightRate  float64 `toml:"max_height_rate"`
}

// PeerConfig is one cosigner of the cluster.
type PeerConfig struct {
	ID int `toml:"id"`
	// Address is the host:port of its gRPC service.
	Address string `toml:"address"`
	// RaftAddress is the host:port of its Raft transport.
	RaftAddress string `toml:"raft_address"`
}

// Self returns this cosigner's own peer entry.
func (t *ThresholdConfig) Self() (PeerConfig, bool) {
	for _, p := range t.Peers {
		if p.ID == t.ID {
			return p, true
		}
	}
	return PeerConfig{}, false
}

// ChainConfig is one chain this cosigner signs for.
type ChainConfig struct {
	// ID is the chain id; sign requests for any other chain are refused.
	ID string `toml:"id"`
	// Key is the softsign key file (CometBFT priv_validator_key.json format).
	Key string `toml:"key"`
	// HSMKeyID, when not 0, is the YubiHSM2 ed25519 key object softsign
	// signs with instead of Key.
	HSMKeyID int `toml:"hsm_key_id"`
	// GroupFile, with ShareFile or ShareHSMObject, names in threshold mode
	// the validator key this chain is signed with, when it is not the one
	// of [threshold] (one cluster signing several chains with different
	// keys; 'cosigner shard --add-to' writes them). Empty: [threshold]'s.
	GroupFile      string `toml:"group_file"`
	ShareFile      string `toml:"share_file"`
	ShareHSMObject int    `toml:"share_hsm_object"`
	// Bech32Prefix is the chain's account prefix ("cosmos", "kira"); keys
	// show derives <prefix>valconspub and <prefix>valcons from it.
	Bech32Prefix string `toml:"bech32_prefix"`
	// Nodes are the priv_validator_laddr addresses to dial: the validator
	// and any sentries, as tcp://host:port or unix:///path.
	Nodes []string `toml:"nodes"`
	// SignRawBytes lets the chain's nodes have arbitrary application bytes
	// signed with its consensus key: celestia-core's SignRawBytesRequest,
	// signed over "COMET::RAW_BYTES::SIGN" and the request (see
	// privval.RawBytesSignBytes). Off by default: such requests are refused.
	// In threshold mode every cosigner checks its own setting, so set it on
	// all of them.
	SignRawBytes bool `toml:"sign_raw_bytes"`
	// RPC are CometBFT RPC addresses (http://host:26657) of the chain's
	// nodes; the doppelganger watch reads our validator's signatures in
	// their commits. Tried in order, the first that answers is used.
	RPC []string `toml:"rpc"`
	// DoppelgangerWatch is how many new heights cosigner watches at start
	// before it signs (nil: DefaultDoppelgangerWatch when RPC is set; 0
	// turns the watch off, with a warning at start).
	DoppelgangerWatch *int `toml:"doppelganger_watch"`
	// DoppelgangerRPCDown is what happens while no RPC address answers
	// (or answers nonsense): RPCDownRefuse (empty, the default) signs
	// nothing until the watch can see the chain; RPCDownWarn logs and
	// signs without it.
	DoppelgangerRPCDown string `toml:"doppelganger_rpc_down"`
}

// DefaultDoppelgangerWatch is the number of heights watched at start when
// a chain names RPC addresses and no doppelganger_watch: three blocks, the
// figure docs/operations.md gives the cost of.
const DefaultDoppelgangerWatch = 3

// MaxDoppelgangerWatch bounds doppelganger_watch: more than 1000 blocks
// of downtime at every start is a typo.
const MaxDoppelgangerWatch = 1000

// What the doppelganger watch does while no RPC address answers.
const (
	RPCDownRefuse = "refuse"
	RPCDownWarn   = "warn"
)

// Watch returns the number of heights the doppelganger watch waits at
// start: 0 (off) when the chain names no RPC address.
func (ch *ChainConfig) Watch() int {
	if len(ch.RPC) == 0 {
		return 0
	}
	if ch.DoppelgangerWatch == nil {
		return DefaultDoppelgangerWatch
	}
	return *ch.DoppelgangerWatch
}

// RPCDown returns doppelganger_rpc_down with its default filled in.
func (ch *ChainConfig) RPCDown() string {
	if ch.DoppelgangerRPCDown == "" {
		return RPCDownRefuse
	}
	return ch.DoppelgangerRPCDown
}

// Modes.
const (
	ModeSoftsign  = "softsign"
	ModeThreshold = "threshold"
)

// DefaultConfig returns a configuration with every default filled in and no
// chains.
func DefaultConfig() *Config {
	return &Config{
		Mode:        ModeSoftsign,
		LogLevel:    "info",
		IdentityKey: "identity_key.json",
		StateDir:    "state",
		Threshold: ThresholdConfig{
			ShareFile:      "share.json",
			GroupFile:      "group.json",
			TLSDir:         "tls",
			RaftDir:        "raft",
			MaxHeightAhead: DefaultMaxHeightAhead,
			MaxHeightRate:  DefaultMaxHeightRate,
		},
		Softsign: SoftsignConfig{MaxHeightRate: DefaultMaxHeightRate},
		HSM: hsm.Config{
			AuthKeyID:      hsm.DefaultAuthKeyID,
			PasswordFile:   hsm.DefaultPasswordFile,
			Domain:         hsm.DefaultDomain,
			RequestTimeout: hsm.DefaultRequestTimeout,
		},
	}
}

// DefaultBech32Prefix is used when a chain names none.
const DefaultBech32Prefix = "cosmos"

// chainIDPattern is what CometBFT allows in practice (its limit is 50
// bytes); we additionally keep chain ids usable as file names.
var chainIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$`)

var bech32PrefixPattern = regexp.MustCompile(`^[a-z][a-z0-9]{0,30}$`)

// ValidateChainID reports whether id is a chain id cosigner accepts.
func ValidateChainID(id string) error {
	if !chainIDPattern.MatchString(id) {
		return fmt.Errorf("chain id %q is not allowed: use 1 to 50 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	return nil
}

// Validate checks every field and cross-field rule and returns all problems
// found, each naming the key, the value and what is allowed.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch c.Mode {
	case ModeSoftsign:
		errs = append(errs, c.Softsign.validate()...)
	case ModeThreshold:
		errs = append(errs, c.Threshold.validate()...)
		if c.Softsign.MaxHeightAhead != 0 {
			bad("softsign.max_height_ahead = %d applies to mode = %q only; threshold mode uses threshold.max_height_ahead", c.Softsign.MaxHeightAhead, ModeSoftsign)
		}
	default:
		bad("mode = %q: allowed are %q and %q", c.Mode, ModeSoftsign, ModeThreshold)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level = %q: allowed are debug, info, warn, error", c.LogLevel)
	}
	if c.IdentityKey == "" {
		bad("identity_key is empty: name the SecretConnection identity key file")
	}
	if c.StateDir == "" {
		bad("state_dir is empty: name the directory for sign-state files")
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			bad("metrics.listen = %q: want host:port (%v)", c.Metrics.Listen, err)
		}
	}
	if len(c.Chains) == 0 && !c.allowNoChains {
		bad("no [[chain]] configured: add one with id, key and nodes")
	}
	seen := map[string]bool{}
	for i, ch := range c.Chains {
		where := fmt.Sprintf("chain[%d]", i)
		if err := ValidateChainID(ch.ID); err != nil {
			bad("%s.id: %v", where, err)
		} else {
			where = fmt.Sprintf("chain %q", ch.ID)
		}
		if seen[ch.ID] {
			bad("%s is configured twice: one [[chain]] per chain id", where)
		}
		seen[ch.ID] = true
		if c.Mode == ModeSoftsign && ch.Key == "" && ch.HSMKeyID == 0 {
			bad("%s: key is empty: name the key file (cosigner keys import writes keys/<chain-id>.json), or set hsm_key_id", where)
		}
		errs = append(errs, c.validateChainHSM(where, ch)...)
		if c.Mode == ModeThreshold && ch.Key != "" {
			bad("%s: key = %q: threshold mode signs with [threshold] share_file, or the chain's own group_file and share_file ('cosigner shard --add-to'); remove the key", where, ch.Key)
		}
		errs = append(errs, c.validateChainShare(where, ch)...)
		if ch.Bech32Prefix != "" && !bech32PrefixPattern.MatchString(ch.Bech32Prefix) {
			bad("%s: bech32_prefix = %q: want lower-case letters and digits, like \"cosmos\" or \"kira\"", where, ch.Bech32Prefix)
		}
		if len(ch.Nodes) == 0 {
			bad("%s: nodes is empty: list the node's priv_validator_laddr, like \"tcp://10.0.0.2:26659\"", where)
		}
		nodes := map[string]bool{}
		for _, n := range ch.Nodes {
			if err := ValidateNodeAddress(n); err != nil {
				bad("%s: nodes: %v", where, err)
			}
			if nodes[n] {
				bad("%s: nodes lists %q twice", where, n)
			}
			nodes[n] = true
		}
		errs = append(errs, validateDoppelganger(where, ch)...)
	}
	errs = append(errs, c.validateShareSources()...)
	if c.HSM.Enabled() {
		errs = append(errs, c.HSM.Validate()...)
	}
	if c.Mode == ModeThreshold && c.Threshold.ShareHSMObject != 0 {
		if c.Threshold.ShareHSMObject < 1 || c.Threshold.ShareHSMObject > 0xffff {
			bad("threshold.share_hsm_object = %d: allowed are object ids 1 to 65535", c.Threshold.ShareHSMObject)
		}
		if !c.HSM.Enabled() {
			bad("threshold.share_hsm_object = %d needs an [hsm] section with connector, auth_key_id and password_file", c.Threshold.ShareHSMObject)
		}
	}
	return errors.Join(errs...)
}

// DefaultMaxHeightAhead is the default of threshold.max_height_ahead.
const DefaultMaxHeightAhead = 10000

// DefaultMaxHeightRate is the default of threshold.max_height_rate and
// softsign.max_height_rate: 10 heights per second, ten times what a chain
// with 1-second blocks makes, so bursts and clock drift never reach it.
const DefaultMaxHeightRate = 10.0

// MaxMaxHeightRate is the highest max_height_rate accepted: 1000 heights
// per second is a block every millisecond; anything above is a typo (or
// turns the bound off in all but name).
const MaxMaxHeightRate = 1000.0

// validateHeightRate checks a max_height_rate key.
func validateHeightRate(key string, rate float64) error {
	if !(rate > 0 && rate <= MaxMaxHeightRate) { // also refuses NaN
		return fmt.Errorf("%s = %g: allowed are more than 0 up to %g heights per second; set it above the chain's fastest block rate (the default %g suits blocks down to 100 ms)",
			key, rate, MaxMaxHeightRate, DefaultMaxHeightRate)
	}
	return nil
}

func (s *SoftsignConfig) validate() []error {
	var errs []error
	if s.MaxHeightAhead < 0 {
		errs = append(errs, fmt.Errorf("softsign.max_height_ahead = %d: must be 0 (no bound) or more", s.MaxHeightAhead))
	}
	if err := validateHeightRate("softsign.max_height_rate", s.MaxHeightRate); err != nil {
		errs = append(errs, err)
	}
	return errs
}

func (t *ThresholdConfig) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if t.Shares < 2 || t.Shares > 255 {
		bad("threshold.shares = %d: allowed are 2 to 255 cosigners", t.Shares)
	}
	if t.Threshold < 2 || t.Threshold > t.Shares {
		bad("threshold.threshold = %d: allowed are 2 to threshold.shares (%d)", t.Threshold, t.Shares)
	} else if 2*t.Threshold <= t.Shares {
		bad("threshold.threshold = %d of %d shares: it must be more than half (at least %d), or two quorums could sign different blocks",
			t.Threshold, t.Shares, t.Shares/2+1)
	}
	if t.ID < 1 || t.ID > t.Shares {
		bad("threshold.id = %d: allowed are 1 to threshold.shares (%d)", t.ID, t.Shares)
	}
	for _, f := range []struct{ key, val string }{
		{"share_file", t.ShareFile}, {"group_file", t.GroupFile}, {"tls_dir", t.TLSDir}, {"raft_dir", t.RaftDir},
	} {
		if f.val == "" {
			bad("threshold.%s is empty", f.key)
		}
	}
	if t.MaxHeightAhead < 1 {
		bad("threshold.max_height_ahead = %d: must be at least 1", t.MaxHeightAhead)
	}
	if err := validateHeightRate("threshold.max_height_rate", t.MaxHeightRate); err != nil {
		errs = append(errs, err)
	}
	if len(t.Peers) != t.Shares {
		bad("threshold.peer lists %d cosigners, threshold.shares says %d: list every cosigner, this one included", len(t.Peers), t.Shares)
	}
	ids := map[int]bool{}
	addrs := map[string]bool{}
	for i, p := range t.Peers {
		if p.ID < 1 || p.ID > t.Shares {
			bad("threshold.peer[%d].id = %d: allowed are 1 to %d", i, p.ID, t.Shares)
		}
		if ids[p.ID] {
			bad("threshold.peer[%d].id = %d appears twice", i, p.ID)
		}
		ids[p.ID] = true
		for _, a := range []struct{ key, val string }{{"address", p.Address}, {"raft_address", p.RaftAddress}} {
			if _, port, err := net.SplitHostPort(a.val); err != nil || port == "" {
				bad("threshold.peer[%d].%s = %q: want host:port", i, a.key, a.val)
			} else if addrs[a.val] {
				bad("threshold.peer[%d].%s = %q is used twice", i, a.key, a.val)
			}
			addrs[a.val] = true
		}
	}
	if _, ok := t.Self(); !ok && t.ID >= 1 {
		bad("threshold.id = %d is not in the threshold.peer list: add this cosigner's own entry", t.ID)
	}
	return errs
}

// ValidateNodeAddress checks a node address: tcp://host:port or
// unix:///absolute/path.
//
// It refuses TMKMS's tcp://ID@host:port. The ID would pin the node's
// SecretConnection key, but CometBFT's privval listener makes a new key at
// every start, so no ID names a stock node for longer than one run: a
// pinned dial would fail after the node's first restart, and an unpinned
// one would pretend to an authentication it lacks.
func ValidateNodeAddress(addr string) error {
	switch {
	case strings.HasPrefix(addr, "tcp://"):
		hp := strings.TrimPrefix(addr, "tcp://")
		if i := strings.LastIndex(hp, "@"); i >= 0 {
			return fmt.Errorf("node address %q: cosigner cannot verify a node ID: CometBFT's privval listener makes a new "+
				"SecretConnection key at every start, so the node's ID changes at every restart; write %q and protect the "+
				"link with a firewall or WireGuard", addr, "tcp://"+hp[i+1:])
		}
		host, port, err := net.SplitHostPort(hp)
		if err != nil || host == "" || port == "" {
			return fmt.Errorf("node address %q: want tcp://host:port", addr)
		}
	case strings.HasPrefix(addr, "unix://"):
		p := strings.TrimPrefix(addr, "unix://")
		if !filepath.IsAbs(p) {
			return fmt.Errorf("node address %q: want unix:///absolute/path", addr)
		}
	default:
		return fmt.Errorf("node address %q: want tcp://host:port or unix:///path", addr)
	}
	return nil
}

// Home returns the directory the configuration was loaded from.
func (c *Config) Home() string { return c.home }

// Path resolves p against the home directory.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.home, p)
}

// Chain returns the configuration of chain id.
func (c *Config) Chain(id string) (*ChainConfig, bool) {
	for i := range c.Chains {
		if c.Chains[i].ID == id {
			return &c.Chains[i], true
		}
	}
	return nil, false
}

// Prefix returns the chain's bech32 account prefix, or the default.
func (ch *ChainConfig) Prefix() string {
	if ch.Bech32Prefix == "" {
		return DefaultBech32Prefix
	}
	return ch.Bech32Prefix
}

// Load reads home/cosigner.toml strictly (unknown keys are errors),
// fills defaults and validates it.
func Load(home string) (*Config, error) { return load(home, false) }

// LoadForKeys is Load for commands that only read keys: it
// accepts a configuration without chains, as `cosigner shard` writes one
// when no chain id is given.
func LoadForKeys(home string) (*Config, error) { return load(home, true) }

func load(home string, allowNoChains bool) (*Config, error) {
	path := filepath.Join(home, FileName)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := parse(data, allowNoChains)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.home = home
	return cfg, nil
}

// Parse decodes TOML strictly over DefaultConfig and validates the
// result.
func Parse(data []byte) (*Config, error) { return parse(data, false) }

func parse(data []byte, allowNoChains bool) (*Config, error) {
	cfg := DefaultConfig()
	cfg.allowNoChains = allowNoChains
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			var keys []string
			for _, e := range strict.Errors {
				keys = append(keys, strings.Join(e.Key(), "."))
			}
			return nil, fmt.Errorf("unknown key(s) %s: check the spelling against 'cosigner init' output", strings.Join(keys, ", "))
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("line %d column %d: %s", row, col, de.Error())
		}
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Marshal renders the configuration as commented TOML, the way init writes
// it.
func (c *Config) Marshal() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# cosigner configuration. Relative paths are relative to this file's directory.\n\n")
	fmt.Fprintf(&b, "# softsign: this process holds each chain's whole key; threshold: one share of it, see [threshold].\n")
	fmt.Fprintf(&b, "mode = %q\n", c.Mode)
	fmt.Fprintf(&b, "# debug, info, warn or error.\n")
	fmt.Fprintf(&b, "log_level = %q\n", c.LogLevel)
	fmt.Fprintf(&b, "# Key cosigner presents in SecretConnection handshakes (its node id is shown by 'cosigner keys show').\n")
	fmt.Fprintf(&b, "identity_key = %q\n", c.IdentityKey)
	fmt.Fprintf(&b, "# One sign-state file per chain; 'cosigner start' refuses to run without it.\n")
	fmt.Fprintf(&b, "state_dir = %q\n\n", c.StateDir)
	fmt.Fprintf(&b, "[metrics]\n# host:port for Prometheus /metrics; empty disables it.\n")
	fmt.Fprintf(&b, "listen = %q\n", c.Metrics.Listen)
	if c.Mode == ModeThreshold {
		t := &c.Threshold
		fmt.Fprintf(&b, "\n[threshold]\n")
		fmt.Fprintf(&b, "# This cosigner's FROST identifier, and M of N: any %d of the %d cosigners sign.\n", t.Threshold, t.Shares)
		fmt.Fprintf(&b, "id = %d\nthreshold = %d\nshares = %d\n", t.ID, t.Threshold, t.Shares)
		fmt.Fprintf(&b, "# Key share (secret, 0600) and the group key with its Feldman commitments.\n")
		fmt.Fprintf(&b, "share_file = %q\ngroup_file = %q\n", t.ShareFile, t.GroupFile)
		if t.ShareHSMObject != 0 {
			fmt.Fprintf(&b, "# The share is sealed in the YubiHSM2 as this opaque object; share_file is not read.\n")
			fmt.Fprintf(&b, "share_hsm_object = %d\n", t.ShareHSMObject)
		}
		fmt.Fprintf(&b, "# Cluster CA certificate, this cosigner's certificate and key; Raft's data.\n")
		fmt.Fprintf(&b, "tls_dir = %q\nraft_dir = %q\n", t.TLSDir, t.RaftDir)
		fmt.Fprintf(&b, "# Height bound: sign at most max_height_ahead heights above this cosigner's mark as\n")
		fmt.Fprintf(&b, "# loaded at start, plus max_height_rate heights per second since that mark was recorded\n")
		fmt.Fprintf(&b, "# (the state file's modification time). It never moves with the requests, so a stolen\n")
		fmt.Fprintf(&b, "# cluster certificate or a buggy leader asking again and again cannot burn future heights;\n")
		fmt.Fprintf(&b, "# and the chain cannot outrun it: after a week down the current height is still in it.\n")
		fmt.Fprintf(&b, "# Keep max_height_rate above the chain's fastest block rate (10 suits blocks down to\n")
		fmt.Fprintf(&b, "# 100 ms); closer to it limits how fast a patient attacker gains. See docs/threshold.md.\n")
		fmt.Fprintf(&b, "max_height_ahead = %d\nmax_height_rate = %s\n", t.MaxHeightAhead, formatRate(t.MaxHeightRate))
		for _, p := range t.Peers {
			fmt.Fprintf(&b, "\n[[threshold.peer]]\nid = %d\naddress = %q\nraft_address = %q\n", p.ID, p.Address, p.RaftAddress)
		}
	}
	if c.Mode == ModeSoftsign {
		sc := c.Softsign
		fmt.Fprintf(&b, "\n[softsign]\n")
		fmt.Fprintf(&b, "# Optional height bound of every chain, off at max_height_ahead = 0 (as TMKMS): sign at\n")
		fmt.Fprintf(&b, "# most max_height_ahead heights above the chain's mark as loaded at start, plus\n")
		fmt.Fprintf(&b, "# max_height_rate heights per second since that mark was recorded. It never moves with\n")
		fmt.Fprintf(&b, "# the requests, so a node asking for ever higher heights cannot burn them. Keep\n")
		fmt.Fprintf(&b, "# max_height_rate above the chain's fastest block rate. See docs/softsign.md.\n")
		fmt.Fprintf(&b, "max_height_ahead = %d\nmax_height_rate = %s\n", sc.MaxHeightAhead, formatRate(sc.MaxHeightRate))
	}
	if c.HSM.Enabled() {
		h := c.HSM
		fmt.Fprintf(&b, "\n[hsm]\n# yubihsm-connector's address, the authentication key and the file holding its password.\n")
		fmt.Fprintf(&b, "connector = %q\nauth_key_id = %d\npassword_file = %q\n", h.Connector, h.AuthKeyID, h.PasswordFile)
		fmt.Fprintf(&b, "# Domain of objects cosigner creates; bound on each device request (sign requests fail, never hang).\n")
		fmt.Fprintf(&b, "domain = %d\nrequest_timeout = %q\n", h.Domain, h.RequestTimeout)
	}
	if len(c.Chains) == 0 {
		fmt.Fprintf(&b, "\n# Fill in the chain this cluster signs for, then run 'cosigner state init'.\n")
		fmt.Fprintf(&b, "# [[chain]]\n# id = \"kira-1\"\n# bech32_prefix = \"kira\"\n# nodes = [\"tcp://10.0.0.2:26659\"]\n")
	}
	for _, ch := range c.Chains {
		c.marshalChain(&b, ch)
	}
	return []byte(b.String())
}

// MarshalChain renders one [[chain]] table as Marshal does, to append to
// a configuration ('cosigner shard --add-to').
func (c *Config) MarshalChain(ch ChainConfig) []byte {
	var b strings.Builder
	c.marshalChain(&b, ch)
	return []byte(b.String())
}

func (c *Config) marshalChain(b *strings.Builder, ch ChainConfig) {
	fmt.Fprintf(b, "\n[[chain]]\n")
	fmt.Fprintf(b, "id = %q\n", ch.ID)
	if c.Mode == ModeSoftsign && ch.HSMKeyID != 0 {
		fmt.Fprintf(b, "# The key is held by the YubiHSM2 as this ed25519 key object.\n")
		fmt.Fprintf(b, "hsm_key_id = %d\n", ch.HSMKeyID)
	} else if c.Mode == ModeSoftsign {
		fmt.Fprintf(b, "# Whole key for softsign (CometBFT priv_validator_key.json format).\n")
		fmt.Fprintf(b, "key = %q\n", ch.Key)
	}
	if c.Mode == ModeThreshold && ch.GroupFile != "" {
		fmt.Fprintf(b, "# This chain's own validator key (not [threshold]'s): its group key and this cosigner's share.\n")
		fmt.Fprintf(b, "group_file = %q\n", ch.GroupFile)
		if ch.ShareHSMObject != 0 {
			fmt.Fprintf(b, "share_hsm_object = %d\n", ch.ShareHSMObject)
		} else {
			fmt.Fprintf(b, "share_file = %q\n", ch.ShareFile)
		}
	}
	if ch.SignRawBytes {
		fmt.Fprintf(b, "# Sign celestia-core's raw-bytes requests (application bytes) with the consensus key.\n")
		fmt.Fprintf(b, "sign_raw_bytes = true\n")
	}
	fmt.Fprintf(b, "# Account prefix: keys show prints <prefix>valconspub and <prefix>valcons.\n")
	fmt.Fprintf(b, "bech32_prefix = %q\n", ch.Prefix())
	fmt.Fprintf(b, "# priv_validator_laddr of the validator and of any sentries: tcp://host:port or unix:///path.\n")
	fmt.Fprintf(b, "nodes = [")
	for i, n := range ch.Nodes {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "%q", n)
	}
	b.WriteString("]\n")
	marshalDoppelganger(b, ch)
}

// validateDoppelganger checks a chain's rpc and doppelganger_* keys.
func validateDoppelganger(where string, ch ChainConfig) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	seen := map[string]bool{}
	for _, r := range ch.RPC {
		if err := ValidateRPCAddress(r); err != nil {
			bad("%s: rpc: %v", where, err)
		}
		if seen[r] {
			bad("%s: rpc lists %q twice", where, r)
		}
		seen[r] = true
	}
	if w := ch.DoppelgangerWatch; w != nil {
		switch {
		case *w < 0 || *w > MaxDoppelgangerWatch:
			bad("%s: doppelganger_watch = %d: allowed are 0 (off) to %d heights", where, *w, MaxDoppelgangerWatch)
		case *w > 0 && len(ch.RPC) == 0:
			bad("%s: doppelganger_watch = %d needs rpc: list the CometBFT RPC of the chain's nodes, like \"http://10.0.0.2:26657\"", where, *w)
		}
	}
	switch ch.DoppelgangerRPCDown {
	case "", RPCDownRefuse, RPCDownWarn:
	default:
		bad("%s: doppelganger_rpc_down = %q: allowed are %q (sign nothing while no rpc answers, the default) and %q (log and sign)",
			where, ch.DoppelgangerRPCDown, RPCDownRefuse, RPCDownWarn)
	}
	return errs
}

// ValidateRPCAddress checks a CometBFT RPC address: http:// or https://
// with a host and a port, and nothing after them but an optional path.
func ValidateRPCAddress(addr string) error {
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("rpc address %q: want http://host:port, the node's CometBFT RPC (rpc.laddr, port 26657 by default)", addr)
	}
	return nil
}

// marshalDoppelganger renders a chain's rpc and doppelganger_* keys.
func marshalDoppelganger(b *strings.Builder, ch ChainConfig) {
	fmt.Fprintf(b, "# CometBFT RPC of the chain's nodes (http://host:26657): the doppelganger watch reads our\n")
	fmt.Fprintf(b, "# validator's signatures from their commits. See docs/operations.md \"Doppelganger watch\".\n")
	if len(ch.RPC) == 0 {
		fmt.Fprintf(b, "# Without it the watch is off: nothing sees a second signer left running for this key.\n")
		fmt.Fprintf(b, "# rpc = [\"http://10.0.0.2:26657\"]\n")
		return
	}
	b.WriteString("rpc = [")
	for i, r := range ch.RPC {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "%q", r)
	}
	b.WriteString("]\n")
	fmt.Fprintf(b, "# Heights watched at start before signing; the validator misses them. 0 turns the watch off.\n")
	fmt.Fprintf(b, "doppelganger_watch = %d\n", ch.Watch())
	fmt.Fprintf(b, "# While no rpc answers: \"refuse\" signs nothing (safe), \"warn\" logs and signs.\n")
	fmt.Fprintf(b, "doppelganger_rpc_down = %q\n", ch.RPCDown())
}

// formatRate renders a max_height_rate as a TOML number.
func formatRate(r float64) string { return strconv.FormatFloat(r, 'g', -1, 64) }

// validateChainHSM checks a chain's hsm_key_id against the mode, its key
// and the [hsm] section.
func (c *Config) validateChainHSM(where string, ch ChainConfig) []error {
	if ch.HSMKeyID == 0 {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if ch.HSMKeyID < 1 || ch.HSMKeyID > 0xffff {
		bad("%s: hsm_key_id = %d: allowed are object ids 1 to 65535", where, ch.HSMKeyID)
	}
	if c.Mode == ModeThreshold {
		bad("%s: hsm_key_id = %d: threshold mode signs with its share; seal the share with 'cosigner hsm share import' instead", where, ch.HSMKeyID)
	}
	if ch.Key != "" {
		bad("%s: key = %q and hsm_key_id = %d: name one, the key file or the YubiHSM2 key object", where, ch.Key, ch.HSMKeyID)
	}
	if !c.HSM.Enabled() {
		bad("%s: hsm_key_id = %d needs an [hsm] section with connector, auth_key_id and password_file", where, ch.HSMKeyID)
	}
	return errs
}

// HSMOptions builds the YubiHSM2 client options of the [hsm] section,
// reading its password file.
func (c *Config) HSMOptions() (hsm.Options, error) {
	return c.HSM.Options(c.Path(c.HSM.PasswordFile))
}
