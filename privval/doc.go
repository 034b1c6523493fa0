// Package privval speaks CometBFT's remote-signer protocol from the signer's
// side: it dials a node's priv_validator_laddr (tcp:// with SecretConnection,
// or unix://), frames and decodes the privval messages of every CometBFT
// version from v0.34 to v1.0, computes canonical sign bytes, and hands each
// sign request to a Signer.
//
// It knows nothing of thresholds or Raft; the cosigner package supplies the
// Signer.
//
// # Use
//
// A process that signs for a chain runs one NodeClient per node it serves:
//
//	c, err := privval.NewNodeClient("tcp://10.0.0.5:26659", "kira-1",
//		identityKey, signer, logger, privval.DefaultNodeClientConfig())
//	...
//	err = c.Run(ctx) // returns nil when ctx ends
//
// Run keeps one connection to the node, answers its requests one at a time
// through HandleRequest, and redials as CometBFT's listener expects. The
// identity key should persist across restarts; NodeID gives the id a node
// operator would see for it.
//
// Code that checks what it is asked to sign, such as sign-state rules and
// threshold peers checking a leader, uses ParseSignBytes,
// ParseVoteExtensionSignBytes and OnlyTimestampDiffers on the canonical
// sign bytes in a SignRequest, never the node's structs.
//
// # What the wire holds
//
// Messages are uvarint-length-delimited protobuf tendermint.privval.Message
// values of at most MaxFrameSize bytes. v0.34 to v0.38 (and v0.39/v0.40)
// share one format; v0.38 adds vote extensions; v1.0 renames the package,
// moves the public key reply to pub_key_bytes and pub_key_type, adds
// skip_extension_signing and SignBytesRequest. One codec reads all of them,
// and every reply is written so that every version reads it (a public key
// reply carries both forms).
//
// Do not use this package to sign arbitrary bytes: it refuses v1.0's
// SignBytesRequest on purpose, and builds every sign bytes itself.
package privval
