// Package privval speaks CometBFT's remote-signer protocol from the signer's
// side: it dials a node's priv_validator_laddr (tcp:// with SecretConnection,
// or unix://), frames and decodes the privval messages of every CometBFT
// version from v0.34 to v1.0, computes canonical sign bytes, and hands each
// sign request to a Signer.
//
// It knows nothing of thresholds or Raft; the cosigner package supplies the
// Signer.
package privval
