// Package migrate turns the files of the signers operators run today into
// cosigner homes: it reads their formats (from the sources of the versions
// named in each file) and writes a home that starts where the old signer
// stopped, with the same keys or shares and a sign state above everything
// the old signer signed.
//
// Horcrux v3 (horcrux*.go): a threshold cluster keeps its shards. Each host
// exports its public share (ExportHorcrux), one host issues the cluster's
// mutual-TLS certificates (IssueHorcruxTLS), and each host builds its home
// from its own Horcrux home and every cosigner's public share
// (MigrateHorcrux), which proves the shares belong together before any of
// them signs.
//
// TMKMS (tmkms*.go): a tmkms.toml with its softsign or YubiHSM2 keys,
// identity and state files becomes a softsign home (MigrateTMKMS).
//
// It knows the formats it reads and cosigner's own files, nothing of
// signing.
package migrate
