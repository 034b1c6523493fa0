// Package cosigner is one cosigner process: its configuration, its durable
// per-chain sign state and the rules that keep it from double signing, the
// softsign signer that holds a whole key, and (in threshold mode) the share
// signer, nonce pool and leader's coordinator.
//
// # Operating it
//
// Metrics (NewMetrics, registered on a registry the caller owns) describe
// the cluster's health, every chain's signatures and refusals, and the
// latencies on the signing path; the Metrics doc lists the families and
// which cosigner exports what. OpsServer serves them on [metrics] listen
// with /healthz and /readyz; AdminServer answers `cosigner status` and
// `cosigner leader transfer` on <home>/admin.sock, a unix socket only the
// cosigner's user may open.
package cosigner
