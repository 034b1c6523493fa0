// Package keys reads and writes the ed25519 key files operators bring:
// CometBFT's priv_validator_key.json and node_key.json, TMKMS softsign keys
// (base64 of a 32-byte seed or a 64-byte key), and renders a consensus
// public key every way a chain or an explorer shows it (hex, base64,
// Cosmos JSON, bech32 valconspub and valcons address).
//
// It knows nothing of what the keys sign.
package keys
