// Package latency measures what a CometBFT node sees of its remote signer:
// the time from sending a sign request to reading the reply, per request,
// over the real protocol (tcp with SecretConnection) driven by CometBFT
// v0.38.17's own listener endpoint and signer client.
//
// Each height sends a proposal, a prevote and a precommit with a vote
// extension, like a validator that proposes every block. Targets run side by
// side in one run: cosigner in softsign mode (its durable sign state
// included) and CometBFT's own remote signer with a FilePV as the reference.
//
// The measurements are opt-in because they take a while and their figures
// only mean something on an otherwise idle machine:
//
//	COSIGNER_LATENCY=1 go test -run TestLatency -v ./test/latency
//	go test -run '^$' -bench Latency ./test/latency
//
// COSIGNER_LATENCY_HEIGHTS sets the number of measured heights (default 300).
package latency
