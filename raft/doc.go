// Package raft wires hashicorp/raft for a cosigner cluster: bolt stores in the
// data directory, a mutual-TLS stream layer, and the FSM that replicates the
// cluster's per-chain sign state.
package raft
