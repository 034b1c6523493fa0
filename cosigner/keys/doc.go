// Package keys reads and writes the ed25519 key files operators bring:
// CometBFT's priv_validator_key.json and node_key.json, TMKMS softsign keys
// (base64 of a 32-byte seed or a 64-byte key), and renders a consensus
// public key every way a chain or an explorer shows it (hex, base64,
// Cosmos JSON, bech32 valconspub and valcons address).
//
// The keys cosigner keeps (LoadKey) must be 0600 or stricter: a key file
// that group or others may access is refused. Files being imported
// (LoadImportKey) are read whatever their mode, with a warning.
//
// It knows nothing of what the keys sign.
package keys
