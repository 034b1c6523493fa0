// Package cluster is threshold mode: one cosigner of an M-of-N cluster.
//
//   - ShareSigner holds the key share, the nonce pool and the per-chain
//     marks; it checks every request from its sign bytes, records its mark
//     durably, and only then releases its signature shares.
//   - Keyring holds one ShareSigner (and nonce pool) per validator key,
//     for a cluster that signs several chains with different keys; each
//     chain is signed by one key, and requests name the key they are for.
//   - Service serves the Cosigner gRPC protocol to the leader in this
//     cosigner's own Raft view; GRPCPeer is the leader's client of it.
//   - Coordinator, on the leader, answers the node: it checks the request
//     against the cluster's last signature, gathers M shares in one round
//     trip against pre-published nonce commitments (kept per key),
//     aggregates and verifies one ed25519 signature with the chain's key,
//     and replicates the record through Raft.
//   - Cosigner (New, Run) wires them with the Raft node and, while it
//     leads, the privval clients of the chain's nodes.
//
// It knows the privval Signer interface, not the wire formats of CometBFT.
package cluster
