// Package threshold implements FROST(Ed25519, SHA-512) as specified by RFC
// 9591, and the dealing of Shamir shares of an ed25519 key with Feldman
// commitments. Its functions are pure: no I/O, no files, no network.
//
// Use it to produce ordinary ed25519 signatures from M of N key shares. Do not
// use it to sign with a whole key: crypto/ed25519 does that.
//
// # Dealing
//
// Deal splits the secret scalar of an ed25519 seed (SHA-512(seed)[:32],
// clamped, reduced mod L, as RFC 8032 derives it) into N shares with
// identifiers 1..N, any M of which sign. It refuses M <= N/2: two disjoint
// quorums could then sign conflicting blocks. Even with M > N/2 two quorums
// share only 2M - N participants, so 2M - N - 1 may be compromised without
// a double sign (Tolerance). Each KeyShare carries the
// GroupKey, the Feldman commitments from which anyone derives every
// participant's public share; VerifyShare checks a share against them and
// against the validator's public key. For shares dealt without commitments
// (Horcrux's), GroupKeyFromPublicShares rebuilds the GroupKey from the
// validator's public key and the participants' public shares, refusing a
// set that does not lie on one polynomial.
//
// # Signing
//
// A signature takes two rounds (RFC 9591, Section 5):
//
//  1. Each participant makes a Nonce with NewNonce and publishes its
//     Commitment.
//  2. The coordinator chooses at least M commitments, sorted by identifier,
//     and sends them with the message. Each participant builds a
//     SigningPackage from the message and the list and calls SignShare,
//     which consumes the nonce. The coordinator builds its own
//     SigningPackage, may check each SignatureShare with
//     VerifySignatureShare, and calls Aggregate, which returns the 64-byte
//     signature after verifying it, or an error naming the participants
//     whose shares are invalid (Culprits).
//
// Each message needs its own nonces: to sign a precommit and its vote
// extension in one round, use two nonces, two packages, and SignShares.
//
// A Nonce signs once: SignShare zeroes it, and a second use returns
// ErrNonceUsed. Nonces cannot be encoded, so they never reach a disk.
//
// # Encodings
//
// KeyShare, GroupKey, Commitment and SignatureShare have stable binary
// encodings (Bytes and Decode functions, encoding.BinaryMarshaler) and base64
// text forms (encoding.TextMarshaler, so they embed in JSON). Decoders reject
// wrong lengths, identifier 0, non-canonical scalars and points, the identity
// and points outside the prime-order subgroup.
//
// A Commitment made by NewNonce also knows its eighths, D_i/8 and E_i/8
// (Commitment.Eighths). CommitmentFromEighths decodes a commitment from them
// as D_i = [8](D_i/8), which is in the prime-order subgroup whatever the
// sender sent (the group has order 8·L), at the cost of three doublings a
// point instead of DecodeCommitment's multiplication by L-1.
//
// Arithmetic on secrets (key shares, nonces) is constant-time; checks that
// see only public values (commitments, public shares, signature shares) use
// variable-time multi-scalar multiplication.
package threshold
