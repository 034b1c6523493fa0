// Package cosigner is one cosigner process: its configuration, its durable
// per-chain sign state and the rules that keep it from double signing, the
// softsign signer that holds a whole key, and (in threshold mode) the share
// signer, nonce pool and leader's coordinator.
package cosigner
