// Package doppel is the doppelganger watch: it reads our validator's
// signatures from the chain's commits over CometBFT's RPC and refuses to
// let cosigner sign while another signer is live for the same key (an old
// TMKMS left running, a restored backup, the node's own
// priv_validator_key.json put back, a second cluster).
//
// At start a Watch follows a few new heights before it opens its Gate; a
// commit in that window carrying our validator's signature above the sign
// state's mark was made by someone else. While running it compares each
// commit with what this process signed: our precommit at a height or round
// we did not sign, or for another block, trips the Gate for good (until a
// restart).
//
// An RPC that does not answer, or answers nonsense (another chain, heights
// going back, malformed JSON), is never taken as "no doppelganger": the
// Watch keeps the Gate closed (doppelganger_rpc_down = "refuse") or logs
// every failure at error and lets signing go on ("warn").
//
// It knows CometBFT's RPC JSON and nothing of privval, Raft or thresholds.
package doppel
