// Package harness runs real CometBFT nodes and real cosigner processes for
// cosigner's end-to-end tests and latency harness.
//
// It builds CometBFT node binaries from the Go module proxy into a cache
// shared by test binaries ($COSIGNER_TEST_CACHE, default
// $HOME/.cache/cosigner-test, laid out as cometbft-<version>/cometbft, and
// Horcrux v3.3.2 as horcrux-v3.3.2/horcrux for the migration test), sets
// up single-validator chains on loopback whose validator key has been moved
// out of the node and into the signer under test, starts and stops processes
// with their output captured, and checks the chain's view over RPC: heights,
// our precommit signature in each commit (verified with crypto/ed25519 over
// canonical sign bytes rebuilt with CometBFT v0.38.17's types), and the
// absence of evidence.
//
// Every process started through this package is stopped by a t.Cleanup of
// the test that started it. Waits poll only a node's RPC, with a deadline;
// everything else waits on channels fed by the processes' output.
//
// The package is for tests only; nothing in cosigner imports it.
package harness
