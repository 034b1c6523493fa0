package harness

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// ValidatorKey is CometBFT's priv_validator_key.json (amino JSON, the same
// in every version we test).
type ValidatorKey struct {
	Address string      `json:"address"`
	PubKey  aminoKeyRef `json:"pub_key"`
	PrivKey aminoKeyRef `json:"priv_key"`
}

type aminoKeyRef struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// ReadValidatorKey reads a priv_validator_key.json and returns its private
// key, checking that the stored public key and address match it.
func ReadValidatorKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var k ValidatorKey
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	raw, err := base64.StdEncoding.DecodeString(k.PrivKey.Value)
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("parse %s: priv_key.value is not a base64 64-byte ed25519 key", path)
	}
	priv := ed25519.PrivateKey(raw)
	pub := priv.Public().(ed25519.PublicKey)
	if k.PubKey.Value != base64.StdEncoding.EncodeToString(pub) {
		return nil, fmt.Errorf("parse %s: pub_key does not match priv_key", path)
	}
	if !strings.EqualFold(k.Address, Address(pub)) {
		return nil, fmt.Errorf("parse %s: address %s does not match the key", path, k.Address)
	}
	return priv, nil
}

// WriteNewValidatorKey writes a freshly generated key in
// priv_validator_key.json format to path and returns its public key.
func WriteNewValidatorKey(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	k := ValidatorKey{
		Address: Address(pub),
		PubKey:  aminoKeyRef{Type: "tendermint/PubKeyEd25519", Value: base64.StdEncoding.EncodeToString(pub)},
		PrivKey: aminoKeyRef{Type: "tendermint/PrivKeyEd25519", Value: base64.StdEncoding.EncodeToString(priv)},
	}
	data, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return nil, err
	}
	return pub, os.WriteFile(path, data, 0o600)
}

// Address returns CometBFT's validator address of an ed25519 public key:
// the first 20 bytes of its SHA-256, upper-case hex.
func Address(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return strings.ToUpper(hex.EncodeToString(sum[:20]))
}
