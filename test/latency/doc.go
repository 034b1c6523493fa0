// Package latency measures what a CometBFT node sees of its remote signer:
// the time from sending a sign request to reading the reply, per request,
// over the real protocol (tcp with SecretConnection) driven by CometBFT
// v0.38.17's own listener endpoint and signer client.
//
// Each height sends a proposal, a prevote and a precommit with a vote
// extension, like a validator that proposes every block. Targets run side by
// side in one run, interleaved height by height: cosigner in softsign mode,
// 2-of-3 and 3-of-5 threshold clusters (real `cosigner start` processes on
// loopback, durable sign state and Raft included; the test waits until a
// cosigner leads and has dialed the node), and CometBFT's own remote signer
// with a FilePV as the reference.
//
// TestLatencyFailover measures failover instead: it SIGKILLs the leader of a
// 2-of-3 cluster while the node sends a prevote every 50 ms, times the kill
// to the next signature the node receives, restarts the killed cosigner and
// repeats.
//
// The measurements are opt-in because they take a while and their figures
// only mean something on an otherwise idle machine:
//
//	COSIGNER_LATENCY=1 go test -run 'TestLatency$' -v ./test/latency
//	COSIGNER_LATENCY=1 go test -run TestLatencyFailover -v ./test/latency
//	go test -run '^$' -bench Latency ./test/latency
//
// COSIGNER_LATENCY_HEIGHTS sets the number of measured heights (default
// 300), COSIGNER_LATENCY_TARGETS a comma-separated subset of the targets,
// COSIGNER_FAILOVER_TRIALS the number of failover trials (default 20).
// COSIGNER_CPUPROFILE=DIR writes CPU profiles of the test process and of
// every `cosigner start` into DIR (COSIGNER_TRACE=1 adds execution traces);
// see profile_test.go. README.md holds the figures last measured.
package latency
