// Package raft wires hashicorp/raft for a cosigner cluster: bolt stores in the
// data directory, a mutual-TLS stream layer, and the FSM that replicates the
// cluster's per-chain sign state.
//
// Use it from the cosigner's threshold mode: NewNode with a Config (static
// membership, LAN-tuned timeouts from DefaultConfig) and the cluster's TLS
// configurations, then Run under the process's run group. The leader calls
// Propose after each signature it released, off the signing hot path; a new
// leader answers duplicates from Last; the privval side watches
// LeadershipChanges to dial the chain nodes only while this node leads.
//
// What the package does not do: it knows nothing of signing, and it is not
// what keeps a cosigner from double signing. Raft's view of the last signed
// state is advisory (a cache that lets a new leader serve duplicates); the
// safety rules live in each cosigner's own durable high-water mark, which
// holds even with two leaders during a partition. A cache a hostile or
// buggy leader could fill with a record far above the chain would still
// block the next leader's duplicate check, so Options.CheckRecord lets the
// cosigner hold every record to its own height bound before the FSM stores
// it (a refused record is logged and left out on that replica).
//
// Layout on disk, under Config.DataDir (0700): raft.db (bolt: the Raft log
// and stable store) and snapshots/ (hashicorp's file snapshot store, JSON
// snapshots of the FSM).
//
// Peers are identified by their cosigner id, used as the Raft server id in
// decimal. The stream layer dials a member with the client TLS configuration
// for that member's id, which must check the id in the server's certificate;
// accepted connections must present a cluster client certificate that names
// another member (CN "cosigner-<id>" and URI SAN "cosigner://<id>"), and
// every RPC on such a connection must name that member as its sender, by
// server id and address: one member cannot vote, lead or call an election in
// another's name. Other RPCs get an error and never reach Raft. raft does
// not import cosigner: the configurations are passed in (cosigner's
// ClusterTLS.ServerTLSConfig and ClusterTLS.ClientTLSConfig).
package raft

// LogLeadership is the message a Node logs (at info, with leader, is_leader
// and term) whenever the leader it knows changes.
const LogLeadership = "raft leadership"
