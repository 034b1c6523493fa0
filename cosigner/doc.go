// Package cosigner is one cosigner process, wired in one place for both
// modes: New loads the configuration's keys or share, sign states and, if
// any, the YubiHSM2 session, binds the metrics endpoint and the admin
// socket, and returns a Cosigner whose Run serves until its context ends.
//
//   - Softsign mode: softsign.Signer with each chain's whole key (in
//     memory or in the device) and one privval client per node.
//   - Threshold mode: a cluster.Cosigner (share signer, Raft, gRPC service,
//     and the coordinator and node clients while it leads).
//
// The jobs live in the packages below it (config, keys, signstate,
// softsign, share, cluster, clustertls, hsm, metrics, admin); this package
// only composes them. It knows nothing of the wire formats of CometBFT.
package cosigner
