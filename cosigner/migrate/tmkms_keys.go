package migrate

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"filippo.io/edwards25519"

	"github.com/cosigner/cosigner/cosigner/keys"
)

// TMKMS v0.15's softsign reads a base64 key file by its decoded length
// (src/keyring/ed25519/signing_key.rs): 32 bytes are an ed25519 seed; 64
// bytes an expanded key, the scalar then the nonce prefix, with no seed; 96
// bytes a YubiHSM2 export, the scalar big-endian, the prefix, then the
// public key. TMKMS up to v0.14 read only the 32-byte seed, and every TMKMS
// command that writes a key (softsign keygen, softsign import) writes one.
const (
	tmkmsSeedLen     = 32
	tmkmsExpandedLen = 64
	tmkmsYubiHSMLen  = 96
)

// readTMKMSSoftsignKey reads a [[providers.softsign]] consensus key as TMKMS
// does. A seed (32 bytes, or a priv_validator_key.json) is a seed key; a
// 64-byte expanded key, which holds no seed, is its scalar (clamped and
// reduced as ed25519-dalek does), written as a cosigner/ed25519-scalar-key
// file: the same validator key, signing with fresh nonces instead of the
// prefix. A 96-byte YubiHSM2 export, and 64 bytes that are also CometBFT's
// seed||public key layout (TMKMS would sign with another key than the
// layout says), are refused with what to do instead, naming the validator
// key they hold.
func readTMKMSSoftsignKey(path, format, prefix string) (*keys.ChainKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read softsign key: %w%s", err, pathMapHint(err))
	}
	return parseTMKMSSoftsignKey(data, path, format, prefix)
}

// parseTMKMSSoftsignKey decodes the content of a softsign key file named
// path (for messages).
func parseTMKMSSoftsignKey(data []byte, path, format, prefix string) (*keys.ChainKey, error) {
	trimmed := bytes.TrimSpace(data)
	switch format {
	case "json":
		if len(trimmed) == 0 || trimmed[0] != '{' {
			return nil, fmt.Errorf("softsign key %s: key_format = \"json\" but the file is not JSON "+
				"(a base64 key? then TMKMS reads it with key_format = \"base64\", its default)", path)
		}
		key, err := keys.ParseKey(trimmed)
		if err != nil {
			return nil, fmt.Errorf("softsign key %s: %w", path, err)
		}
		return &keys.ChainKey{Seed: key, Public: key.Public().(ed25519.PublicKey)}, nil
	case "", "base64":
	default:
		return nil, fmt.Errorf("[[providers.softsign]] key_format = %q is unknown: TMKMS allows \"base64\" (the default) and \"json\"", format)
	}
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return nil, fmt.Errorf("softsign key %s is JSON, but key_format is base64 (TMKMS's default), so TMKMS could not "+
			"have loaded it: if it is a priv_validator_key.json, set key_format = \"json\" in [[providers.softsign]]", path)
	}
	raw, err := base64.StdEncoding.DecodeString(string(trimmed))
	if err != nil {
		return nil, fmt.Errorf("softsign key %s is not base64 (%v): TMKMS's base64 key files hold the base64 of a 32-byte seed, "+
			"as 'tmkms softsign keygen' and 'tmkms softsign import' write them", path, err)
	}
	switch len(raw) {
	case tmkmsSeedLen:
		key := ed25519.NewKeyFromSeed(raw)
		return &keys.ChainKey{Seed: key, Public: key.Public().(ed25519.PublicKey)}, nil
	case tmkmsExpandedLen:
		return expandedKey(path, raw, prefix)
	case tmkmsYubiHSMLen:
		return nil, yubiHSMExportError(path, raw, prefix)
	}
	return nil, fmt.Errorf("softsign key %s holds %d bytes: TMKMS reads 32 (an ed25519 seed), 64 (an expanded key) or "+
		"96 (a YubiHSM2 export); a file of another length is not a key TMKMS signed with", path, len(raw))
}

// expandedKey reads a 64-byte expanded key as TMKMS v0.15 does: its first
// half is the secret scalar (clamped, reduced mod L), the second the nonce
// prefix, which cosigner does not need. Bytes that are also CometBFT's
// seed||public key layout are refused: TMKMS signs them as an expanded key,
// with another validator key than the layout names, and only the operator
// knows which one the chain has.
func expandedKey(path string, raw []byte, prefix string) (*keys.ChainKey, error) {
	s, err := edwards25519.NewScalar().SetBytesWithClamping(raw[:32])
	if err != nil {
		return nil, fmt.Errorf("softsign key %s: 64 bytes that are not an ed25519 expanded key: %v", path, err)
	}
	pub := ed25519.PublicKey(new(edwards25519.Point).ScalarBaseMult(s).Bytes())
	// CometBFT's priv_key.value is 64 bytes too: the seed, then the public
	// key. TMKMS does not read that layout, but an operator may have put it
	// there.
	if seedPub := ed25519.NewKeyFromSeed(raw[:32]).Public().(ed25519.PublicKey); bytes.Equal(seedPub, raw[32:]) {
		return nil, fmt.Errorf("softsign key %s is 64 bytes that TMKMS v0.15 reads as an expanded ed25519 key, of validator %s (%s), "+
			"but they are also CometBFT's seed||public key layout of validator %s (%s), so which key the chain has is unclear: "+
			"if it is %s, give cosigner the seed (base64 of the first 32 bytes) or the priv_validator_key.json; "+
			"if it is %s, give the key file you made the expanded key from",
			path, keys.Address(pub), describe(pub, prefix), keys.Address(seedPub), describe(seedPub, prefix), keys.Address(seedPub), keys.Address(pub))
	}
	return &keys.ChainKey{Scalar: s, Public: pub}, nil
}

// yubiHSMExportError explains a 96-byte YubiHSM2 export.
func yubiHSMExportError(path string, raw []byte, prefix string) error {
	scalar := slices.Clone(raw[:32])
	slices.Reverse(scalar) // the device stores the scalar big-endian
	pub, err := expandedPublicKey(scalar)
	if err != nil || !bytes.Equal(pub, raw[64:]) {
		return fmt.Errorf("softsign key %s: 96 bytes that are not a YubiHSM2 ed25519 export (its public key, "+
			"the last 32 bytes, does not match its scalar): the file is corrupt or not a key", path)
	}
	return fmt.Errorf("softsign key %s is a YubiHSM2 ed25519 export (expanded key, no seed) of validator %s (%s); "+
		"cosigner's key files hold the 32-byte seed, which the export does not contain: keep the key in a YubiHSM2 "+
		"(import the wrapped export back with 'tmkms yubihsm keys import'), list it under [[providers.yubihsm]] keys "+
		"for this chain instead of [[providers.softsign]], and migrate again: cosigner signs with the key object (hsm_key_id)",
		path, keys.Address(pub), describe(pub, prefix))
}

// expandedPublicKey is the public key of an expanded key's scalar half, as
// ed25519-dalek derives it: the 32 bytes clamped (RFC 8032 section 5.1.5),
// reduced mod L, times the base point.
func expandedPublicKey(scalar []byte) (ed25519.PublicKey, error) {
	s, err := edwards25519.NewScalar().SetBytesWithClamping(scalar)
	if err != nil {
		return nil, err
	}
	return new(edwards25519.Point).ScalarBaseMult(s).Bytes(), nil
}

// readTMKMSIdentity reads a [[validator]] secret_key: base64 of a 32-byte
// ed25519 seed, the only form TMKMS accepts for it. When the file cannot be
// used it returns why, and the caller makes a fresh identity.
func readTMKMSIdentity(path string) (ed25519.PrivateKey, string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err.Error()
	}
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data)))
	if err != nil {
		return nil, fmt.Sprintf("%s is not base64", path)
	}
	if len(raw) != ed25519.SeedSize {
		return nil, fmt.Sprintf("%s holds %d bytes, not a 32-byte ed25519 seed", path, len(raw))
	}
	return ed25519.NewKeyFromSeed(raw), ""
}

// pathMapHint is what to do about a file tmkms.toml names that is not
// there: most often a path inside TMKMS's container.
func pathMapHint(err error) string {
	if !errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	return " (if tmkms.toml names paths inside a container, read them from the host with --path-map, like --path-map /tmkms=/srv/sekin/tmkms)"
}

func describe(pub ed25519.PublicKey, prefix string) string {
	if prefix == "" {
		return "hex " + keys.DescribePubKey(pub, "cosmos").Hex
	}
	return keys.DescribePubKey(pub, prefix).Bech32
}
