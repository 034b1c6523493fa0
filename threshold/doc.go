// Package threshold implements FROST(Ed25519, SHA-512) as specified by RFC
// 9591, and the dealing of Shamir shares of an ed25519 key with Feldman
// commitments. Its functions are pure: no I/O, no files, no network.
//
// Use it to produce ordinary ed25519 signatures from M of N key shares. Do not
// use it to sign with a whole key: crypto/ed25519 does that.
package threshold
