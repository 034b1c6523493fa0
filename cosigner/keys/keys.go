package keys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cosigner/cosigner/internal/bech32"
	"github.com/cosigner/cosigner/internal/fsutil"
)

// Amino JSON type names CometBFT writes into key files.
const (
	aminoPrivKeyType = "tendermint/PrivKeyEd25519"
	aminoPubKeyType  = "tendermint/PubKeyEd25519"
)

type aminoKey struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// privValidatorKeyFile is CometBFT's priv_validator_key.json (and, without
// address and pub_key, its node_key.json).
type privValidatorKeyFile struct {
	Address string    `json:"address,omitempty"`
	PubKey  *aminoKey `json:"pub_key,omitempty"`
	PrivKey aminoKey  `json:"priv_key"`
}

// ParseKey reads an ed25519 private key from any of the formats operators
// bring: CometBFT's priv_validator_key.json or node_key.json (amino JSON,
// priv_key.value = base64 of seed||pubkey), or a TMKMS softsign key (base64
// of the 32-byte seed, or of the 64-byte seed||pubkey). Public keys and
// addresses present in the file must match the private key.
func ParseKey(data []byte) (ed25519.PrivateKey, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("key file is empty")
	}
	if trimmed[0] == '{' {
		return parseAminoKey(trimmed)
	}
	// Decode from the bytes, not a string copy that could not be cleared.
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(trimmed)))
	defer clear(raw)
	n, err := base64.StdEncoding.Decode(raw, trimmed)
	if err != nil {
		return nil, fmt.Errorf("not a priv_validator_key.json and not a base64 TMKMS key: %w", err)
	}
	return keyFromBytes(raw[:n])
}

// keyFromBytes returns a new key; it keeps no reference to raw, which the
// caller clears.
func keyFromBytes(raw []byte) (ed25519.PrivateKey, error) {
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		key := ed25519.NewKeyFromSeed(raw[:32])
		if !bytes.Equal(key[32:], raw[32:]) {
			return nil, errors.New("64-byte key: the public half does not belong to the seed (a corrupt seed||public key; " +
				"or a TMKMS v0.15 expanded key, which holds no seed: 'cosigner migrate tmkms' reads those)")
		}
		return key, nil
	}
	return nil, fmt.Errorf("key is %d bytes: want a 32-byte ed25519 seed or 64-byte seed||public key", len(raw))
}

// privValidatorKeyInput is privValidatorKeyFile as parsed: encoding/json
// decodes the base64 private value into bytes that can be cleared (a
// string cannot be).
type privValidatorKeyInput struct {
	Address string    `json:"address"`
	PubKey  *aminoKey `json:"pub_key"`
	PrivKey struct {
		Type  string `json:"type"`
		Value []byte `json:"value"`
	} `json:"priv_key"`
}

func parseAminoKey(data []byte) (ed25519.PrivateKey, error) {
	// Unmarshal reads data in place; a json.Decoder would keep a copy of
	// the key file in a buffer nobody clears.
	var f privValidatorKeyInput
	err := json.Unmarshal(data, &f)
	defer clear(f.PrivKey.Value)
	var b64err base64.CorruptInputError
	switch {
	case errors.As(err, &b64err):
		return nil, fmt.Errorf("priv_key.value is not base64: %w", err)
	case err != nil:
		return nil, fmt.Errorf("malformed key JSON: %w", err)
	}
	if f.PrivKey.Type != aminoPrivKeyType {
		return nil, fmt.Errorf("priv_key.type is %q: only %q keys are supported", f.PrivKey.Type, aminoPrivKeyType)
	}
	raw := f.PrivKey.Value
	key, err := keyFromBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("priv_key.value: %w", err)
	}
	pub := key.Public().(ed25519.PublicKey)
	if f.PubKey != nil {
		if f.PubKey.Type != aminoPubKeyType {
			return nil, fmt.Errorf("pub_key.type is %q: want %q", f.PubKey.Type, aminoPubKeyType)
		}
		want, err := base64.StdEncoding.DecodeString(f.PubKey.Value)
		if err != nil {
			return nil, fmt.Errorf("pub_key.value is not base64: %w", err)
		}
		if !bytes.Equal(want, pub) {
			return nil, errors.New("pub_key does not match priv_key (corrupt or edited key file)")
		}
	}
	if f.Address != "" && !strings.EqualFold(f.Address, Address(pub)) {
		return nil, fmt.Errorf("address %s does not match the key (want %s)", f.Address, Address(pub))
	}
	return key, nil
}

// LoadKey reads and parses a key file cosigner keeps and signs with: a
// softsign chain's key or the SecretConnection identity. A file that group
// or others may access is refused with an error wrapping *fsutil.ModeError
// (which says to run chmod 600): whoever could read it may hold a copy of
// the key. The file's bytes are cleared once parsed.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	data, err := fsutil.ReadSecret(path)
	var me *fsutil.ModeError
	switch {
	case errors.As(err, &me):
		return nil, fmt.Errorf("key file %w", err)
	case err != nil:
		return nil, fmt.Errorf("read key: %w", err)
	}
	defer clear(data)
	return parseKeyFile(path, data)
}

// LoadImportKey reads and parses a key file brought to cosigner to be
// imported or sharded (keys import, hsm keys import, shard): CometBFT's
// priv_validator_key.json or a TMKMS key, wherever the operator keeps it.
// Unlike LoadKey it does not refuse a file that group or others may access:
// cosigner only reads it once, and every copy it writes is 0600. warning is
// then the error (wrapping *fsutil.ModeError) LoadKey would have returned,
// for the caller to pass on (the key may have been copied already); it is
// nil otherwise. The
// file's bytes are cleared once parsed.
func LoadImportKey(path string) (key ed25519.PrivateKey, warning error, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read key: %w", err)
	}
	defer clear(data)
	if key, err = parseKeyFile(path, data); err != nil {
		return nil, nil, err
	}
	if st, err := os.Stat(path); err == nil {
		if err := fsutil.CheckSecretMode(path, st.Mode()); err != nil {
			warning = fmt.Errorf("key file %w", err)
		}
	}
	return key, warning, nil
}

func parseKeyFile(path string, data []byte) (ed25519.PrivateKey, error) {
	key, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	return key, nil
}

// MarshalPrivValidatorKey renders key as CometBFT's priv_validator_key.json.
func MarshalPrivValidatorKey(key ed25519.PrivateKey) []byte {
	pub := key.Public().(ed25519.PublicKey)
	f := privValidatorKeyFile{
		Address: Address(pub),
		PubKey:  &aminoKey{Type: aminoPubKeyType, Value: base64.StdEncoding.EncodeToString(pub)},
		PrivKey: aminoKey{Type: aminoPrivKeyType, Value: base64.StdEncoding.EncodeToString(key)},
	}
	out, _ := json.MarshalIndent(f, "", "  ") // cannot fail: plain strings
	return append(out, '\n')
}

// MarshalNodeKey renders key as CometBFT's node_key.json.
func MarshalNodeKey(key ed25519.PrivateKey) []byte {
	f := privValidatorKeyFile{PrivKey: aminoKey{Type: aminoPrivKeyType, Value: base64.StdEncoding.EncodeToString(key)}}
	out, _ := json.MarshalIndent(f, "", "  ")
	return append(out, '\n')
}

// Address is CometBFT's validator address: the first 20 bytes of SHA-256 of
// the public key, upper-case hex.
func Address(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return strings.ToUpper(hex.EncodeToString(sum[:20]))
}

// aminoPubKeyPrefix is the amino prefix of an ed25519 public key
// (registered concrete type prefix 0x1624DE64, then the length 0x20); Cosmos
// SDK's legacy bech32 consensus public keys encode these bytes.
var aminoPubKeyPrefix = []byte{0x16, 0x24, 0xde, 0x64, 0x20}

// PubKeyInfo is every rendering of a consensus public key operators meet.
type PubKeyInfo struct {
	Hex        string `json:"hex"`
	Base64     string `json:"base64"`
	CosmosJSON string `json:"cosmos_json"`
	Bech32     string `json:"bech32"`
	Address    string `json:"address"`
	Bech32Addr string `json:"bech32_address"`
}

// DescribePubKey renders pub with the chain's bech32 account prefix (for
// example "kira" gives kiravalconspub... and kiravalcons...).
func DescribePubKey(pub ed25519.PublicKey, prefix string) PubKeyInfo {
	b64 := base64.StdEncoding.EncodeToString(pub)
	sum := sha256.Sum256(pub)
	return PubKeyInfo{
		Hex:        strings.ToUpper(hex.EncodeToString(pub)),
		Base64:     b64,
		CosmosJSON: fmt.Sprintf(`{"@type":"/cosmos.crypto.ed25519.PubKey","key":"%s"}`, b64),
		Bech32:     bech32.Encode(prefix+"valconspub", append(append([]byte{}, aminoPubKeyPrefix...), pub...)),
		Address:    Address(pub),
		Bech32Addr: bech32.Encode(prefix+"valcons", sum[:20]),
	}
}
