package migrate

// This file is tmkms.toml as TMKMS v0.10 to v0.15 define it
// (src/config*.rs in iqlusioninc/tmkms): the structure, decoded strictly as
// TMKMS itself does (serde deny_unknown_fields), so a key this reader does
// not know is an error rather than a setting silently dropped.

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// tmkmsConfig is the whole of tmkms.toml.
type tmkmsConfig struct {
	Chain     []tmkmsChain     `toml:"chain"`
	Validator []tmkmsValidator `toml:"validator"`
	Providers tmkmsProviders   `toml:"providers"`
	// TxSigner is v0.10–v0.12's transaction signer: not a consensus
	// signer, not migrated.
	TxSigner []map[string]any `toml:"tx_signer"`
}

// tmkmsChain is one [[chain]].
type tmkmsChain struct {
	ID string `toml:"id"`
	// KeyFormat is how TMKMS prints public keys (not how key files are
	// stored): {type = "bech32", account_key_prefix, consensus_key_prefix},
	// {type = "cosmos-json"} or {type = "hex"}.
	KeyFormat *tmkmsKeyFormat `toml:"key_format"`
	// SignExtensions (v0.15): sign vote extensions. cosigner decides from
	// each request.
	SignExtensions *bool `toml:"sign_extensions"`
	// StateFile is the chain's consensus state; TMKMS's default is
	// "<id>_priv_validator_state.json" in its working directory.
	StateFile string `toml:"state_file"`
	// StateHook is a command printing the chain's height, run at start.
	StateHook map[string]any `toml:"state_hook"`
}

type tmkmsKeyFormat struct {
	Type               string `toml:"type"`
	AccountKeyPrefix   string `toml:"account_key_prefix"`
	ConsensusKeyPrefix string `toml:"consensus_key_prefix"`
}

// tmkmsValidator is one [[validator]]: a node TMKMS dials.
type tmkmsValidator struct {
	// Addr is tcp://[id@]host:port or unix:///path.
	Addr      string `toml:"addr"`
	ChainID   string `toml:"chain_id"`
	Reconnect *bool  `toml:"reconnect"`
	Timeout   *int64 `toml:"timeout"`
	// SecretKey is TMKMS's SecretConnection identity: base64 of a 32-byte
	// ed25519 seed (TMKMS refuses any other form for it).
	SecretKey string `toml:"secret_key"`
	// MaxHeight is a string or an integer in TMKMS's files.
	MaxHeight       any    `toml:"max_height"`
	ProtocolVersion string `toml:"protocol_version"`
}

type tmkmsProviders struct {
	Softsign []tmkmsSoftsign `toml:"softsign"`
	Yubihsm  []tmkmsYubihsm  `toml:"yubihsm"`
	// Providers cosigner cannot sign with: named in the error.
	Ledgertm    []map[string]any `toml:"ledgertm"`
	Fortanixdsm []map[string]any `toml:"fortanixdsm"`
}

// tmkmsSoftsign is one [[providers.softsign]].
type tmkmsSoftsign struct {
	ChainIDs []string `toml:"chain_ids"`
	// KeyType is "consensus" (the default) or "account" (secp256k1, for
	// transactions).
	KeyType string `toml:"key_type"`
	// KeyFormat is the key file's format: "base64" (the default) or
	// "json" (a CometBFT priv_validator_key.json).
	KeyFormat string `toml:"key_format"`
	Path      string `toml:"path"`
}

// tmkmsYubihsm is one [[providers.yubihsm]].
type tmkmsYubihsm struct {
	// Adapter is {type = "http", addr = "tcp://127.0.0.1:12345"} (through
	// yubihsm-connector) or {type = "usb", timeout_ms = N}.
	Adapter struct {
		Type      string `toml:"type"`
		Addr      string `toml:"addr"`
		TimeoutMS *int64 `toml:"timeout_ms"`
	} `toml:"adapter"`
	// Auth is {key = N, password_file = "..."} or {key = N, password = "..."}.
	Auth struct {
		Key          *int   `toml:"key"`
		PasswordFile string `toml:"password_file"`
		Password     string `toml:"password"`
	} `toml:"auth"`
	Keys []struct {
		ChainIDs []string `toml:"chain_ids"`
		Key      int      `toml:"key"`
		// Type is "consensus" (the default) or "account".
		Type string `toml:"type"`
	} `toml:"keys"`
	SerialNumber    string         `toml:"serial_number"`
	ConnectorServer map[string]any `toml:"connector_server"`
}

// parseTMKMSConfig decodes tmkms.toml strictly.
func parseTMKMSConfig(data []byte) (*tmkmsConfig, error) {
	var c tmkmsConfig
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			var keys []string
			for _, e := range strict.Errors {
				keys = append(keys, strings.Join(e.Key(), "."))
			}
			return nil, fmt.Errorf("unknown key(s) %s: this reader knows the tmkms.toml of TMKMS v0.10 to v0.15 "+
				"(TMKMS refuses unknown keys too); check the spelling, or remove the key if your TMKMS ignores it",
				strings.Join(keys, ", "))
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("line %d column %d: %s", row, col, de.Error())
		}
		return nil, err
	}
	return &c, nil
}

// bech32Prefix derives cosigner's bech32_prefix (the account prefix,
// "kira") from a chain's key_format, whose consensus_key_prefix is the
// full "kiravalconspub". It returns "" for formats without prefixes.
func (f *tmkmsKeyFormat) bech32Prefix(chainID string) (string, error) {
	if f == nil {
		return "", fmt.Errorf("[[chain]] %q has no key_format: TMKMS requires one, like "+
			`key_format = { type = "bech32", account_key_prefix = "kirapub", consensus_key_prefix = "kiravalconspub" }`, chainID)
	}
	switch f.Type {
	case "bech32":
		if p, ok := strings.CutSuffix(f.ConsensusKeyPrefix, "valconspub"); ok && p != "" {
			return p, nil
		}
		if p, ok := strings.CutSuffix(f.AccountKeyPrefix, "pub"); ok && p != "" {
			return p, nil
		}
		return "", fmt.Errorf("[[chain]] %q: key_format prefixes %q and %q do not end in \"valconspub\" and \"pub\": "+
			"write them as TMKMS's examples do (consensus_key_prefix = \"kiravalconspub\")",
			chainID, f.ConsensusKeyPrefix, f.AccountKeyPrefix)
	case "cosmos-json", "hex":
		return "", nil
	}
	return "", fmt.Errorf("[[chain]] %q: key_format type %q is unknown: TMKMS allows \"bech32\", \"cosmos-json\" and \"hex\"", chainID, f.Type)
}
