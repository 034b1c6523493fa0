package cosigner

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// ConfigFileName is the name of the configuration file inside a home
// directory.
const ConfigFileName = "cosigner.toml"

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

	Metrics MetricsConfig `toml:"metrics"`
	Chains  []ChainConfig `toml:"chain"`

	// home is the directory the config was loaded from; relative paths
	// resolve against it.
	home string
}

// MetricsConfig configures the Prometheus endpoint.
type MetricsConfig struct {
	// Listen is a host:port for /metrics; empty disables the endpoint.
	Listen string `toml:"listen"`
}

// ChainConfig is one chain this cosigner signs for.
type ChainConfig struct {
	// ID is the chain id; sign requests for any other chain are refused.
	ID string `toml:"id"`
	// Key is the softsign key file (CometBFT priv_validator_key.json format).
	Key string `toml:"key"`
	// Bech32Prefix is the chain's account prefix ("cosmos", "kira"); keys
	// show derives <prefix>valconspub and <prefix>valcons from it.
	Bech32Prefix string `toml:"bech32_prefix"`
	// Nodes are the priv_validator_laddr addresses to dial: the validator
	// and any sentries, as tcp://host:port or unix:///path.
	Nodes []string `toml:"nodes"`
}

// Modes.
const (
	ModeSoftsign = "softsign"
)

// DefaultConfig returns a configuration with every default filled in and no
// chains.
func DefaultConfig() *Config {
	return &Config{
		Mode:        ModeSoftsign,
		LogLevel:    "info",
		IdentityKey: "identity_key.json",
		StateDir:    "state",
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
	default:
		bad("mode = %q: allowed is %q", c.Mode, ModeSoftsign)
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
	if len(c.Chains) == 0 {
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
		if c.Mode == ModeSoftsign && ch.Key == "" {
			bad("%s: key is empty: name the key file (cosigner keys import writes keys/<chain-id>.json)", where)
		}
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
	}
	return errors.Join(errs...)
}

// ValidateNodeAddress checks a node address: tcp://host:port or
// unix:///absolute/path.
func ValidateNodeAddress(addr string) error {
	switch {
	case strings.HasPrefix(addr, "tcp://"):
		hp := strings.TrimPrefix(addr, "tcp://")
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

// LoadConfig reads home/cosigner.toml strictly (unknown keys are errors),
// fills defaults and validates it.
func LoadConfig(home string) (*Config, error) {
	path := filepath.Join(home, ConfigFileName)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.home = home
	return cfg, nil
}

// ParseConfig decodes TOML strictly over DefaultConfig and validates the
// result.
func ParseConfig(data []byte) (*Config, error) {
	cfg := DefaultConfig()
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
	fmt.Fprintf(&b, "# softsign: this process holds each chain's whole key.\n")
	fmt.Fprintf(&b, "mode = %q\n", c.Mode)
	fmt.Fprintf(&b, "# debug, info, warn or error.\n")
	fmt.Fprintf(&b, "log_level = %q\n", c.LogLevel)
	fmt.Fprintf(&b, "# Key cosigner presents in SecretConnection handshakes (its node id is shown by 'cosigner keys show').\n")
	fmt.Fprintf(&b, "identity_key = %q\n", c.IdentityKey)
	fmt.Fprintf(&b, "# One sign-state file per chain; 'cosigner start' refuses to run without it.\n")
	fmt.Fprintf(&b, "state_dir = %q\n\n", c.StateDir)
	fmt.Fprintf(&b, "[metrics]\n# host:port for Prometheus /metrics; empty disables it.\n")
	fmt.Fprintf(&b, "listen = %q\n", c.Metrics.Listen)
	for _, ch := range c.Chains {
		fmt.Fprintf(&b, "\n[[chain]]\n")
		fmt.Fprintf(&b, "id = %q\n", ch.ID)
		fmt.Fprintf(&b, "# Whole key for softsign (CometBFT priv_validator_key.json format).\n")
		fmt.Fprintf(&b, "key = %q\n", ch.Key)
		fmt.Fprintf(&b, "# Account prefix: keys show prints <prefix>valconspub and <prefix>valcons.\n")
		fmt.Fprintf(&b, "bech32_prefix = %q\n", ch.Prefix())
		fmt.Fprintf(&b, "# priv_validator_laddr of the validator and of any sentries: tcp://host:port or unix:///path.\n")
		fmt.Fprintf(&b, "nodes = [")
		for i, n := range ch.Nodes {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", n)
		}
		b.WriteString("]\n")
	}
	return []byte(b.String())
}
