// Package test holds cosigner's end-to-end tests against real CometBFT nodes
// built from the Go module proxy, and the latency harness.
//
// The tests build ./cmd/cosigner once (TestMain) and run it as a process,
// exactly as an operator would: `cosigner init`, `keys import`, `state
// init|import|show`, `start`. CometBFT nodes are the real binaries of each
// supported version, on loopback, with the validator key moved out of the
// node into cosigner:
//
//   - TestSoftsignChains: a single-validator chain on v0.34.33, v0.37.15,
//     v0.38.17 (vote extensions from height 2) and v1.0.1 over tcp://, and
//     v0.38.17 over unix://, signs at least 20 blocks; every commit's
//     precommit is verified against the key, and no block holds evidence.
//   - TestSoftsignRestart: cosigner is SIGKILLed right after a prevote and
//     restarted; the chain goes on and nothing is signed twice.
//   - TestSoftsignTestnet: cosigner signs for one of four validators, is
//     stopped while the other three carry on, and comes back.
//   - TestMigrateFromFilePV: a chain moves from CometBFT's own FilePV remote
//     signer to cosigner through `cosigner state import`.
//   - TestMigrateFromHorcrux: a 2-of-3 Horcrux v3.3.2 cluster (built from
//     the Go module proxy, set up with Horcrux's own commands) signs a
//     v0.38.17 chain, is stopped, and its homes become cosigner homes with
//     `cosigner migrate horcrux`; cosigner signs on with the same shares,
//     every commit verified, nothing released below Horcrux's marks.
//   - TestMigrateFromTMKMS: a tmkms.toml and files in TMKMS's formats
//     (the consensus key as a seed, and as a 64-byte expanded key) migrate
//     with `cosigner migrate tmkms`, and the home signs on above TMKMS's
//     state.
//   - TestClusterTwoKeys: one 2-of-3 cluster signs two v0.38.17 chains with
//     different validator keys (`shard`, then `shard --add-to`), every
//     commit verified for its own key, across a leader kill; adding a chain
//     or key the homes have, or to another shape, changes no file.
//   - TestBadRequests, TestBadFrames, TestStartRefusesBadState: a fake node
//     built from CometBFT's privval client, and a raw unix socket, send what
//     must never be signed or parsed; a missing or corrupt state file stops
//     the start.
//   - TestHSMSoftsign, TestHSMSoftsignOutage, TestHSMSealedShare: a v0.38.17
//     chain signed by a key held in the YubiHSM2 simulator (package
//     yubihsmsim, run inside the test process) across a connector restart;
//     one of four validators through a longer outage; and a 2-of-3 cluster
//     in which one cosigner's share is sealed in the simulator.
//
// Run them with
//
//	go test ./test/...            # about a minute once node binaries are cached
//	go test -short ./test/...     # skips everything that runs a process
//
// Node binaries are cached in $COSIGNER_TEST_CACHE (default
// $HOME/.cache/cosigner-test) as cometbft-<version>/cometbft, and Horcrux
// as horcrux-v3.3.2/horcrux, built on first use (see package harness;
// Horcrux takes about two minutes the first time). $COSIGNER_BIN runs the tests against a
// prebuilt cosigner binary instead of building ./cmd/cosigner.
//
// The latency harness lives in ./latency.
package test
