// Package latency measures what a CometBFT node sees of its remote signer,
// and what the signer's processes spend on it: the time from sending a sign
// request to reading the reply, over the real protocol (tcp with
// SecretConnection) driven by CometBFT v0.38.17's own listener endpoint and
// signer client, and the CPU time of every signer process.
//
// Each height sends a proposal, a prevote and a precommit with a vote
// extension, like a validator that proposes every block. The targets are
// cosigner in softsign mode, 2-of-3 and 3-of-5 threshold clusters (real
// `cosigner start` processes on loopback, durable sign state and Raft
// included; the test waits until a cosigner leads and has dialed the node),
// CometBFT's own remote signer with a FilePV as the reference, run in a
// process of its own (this test binary, re-executed), and a 2-of-3 Horcrux
// v3.3.2 cluster (harness.NewHorcruxCluster). Each target runs alone:
// it is started, warmed up for 20 heights, timed back to back and then paced,
// and stopped before the next one starts. CPU time is user plus system time
// from /proc/PID/stat over each timed window.
//
// TestLatencyWAN measures the clusters with a delay added between cosigners
// by the harness's proxies; TestLatencyIdle the CPU of an idle, connected
// 2-of-3 cluster. TestLatencyFailover SIGKILLs the leader of a 2-of-3 cluster
// while the node sends a prevote every 50 ms, times the kill to the next
// signature the node receives, restarts the killed cosigner and repeats.
//
// The measurements are opt-in because they take a while and their figures
// only mean something on an otherwise idle machine:
//
//	COSIGNER_LATENCY=1 go test -count=1 -run Latency -v ./test/latency
//	go test -run '^$' -bench Latency ./test/latency
//
// README.md lists the environment variables (number of signatures, pause,
// targets, WAN delay, idle time, profiles), explains every column and holds
// the figures last measured.
package latency
