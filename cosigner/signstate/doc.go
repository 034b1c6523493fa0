// Package signstate keeps a validator from double signing: the high-water
// mark of each chain (the last height, round and step signed, with its sign
// bytes), the rules that decide what a request against it may get
// (Decide: sign fresh, resend the stored signature, sign a proposal again,
// or refuse as a regression or a conflict), and the durable state file that
// every advance is written to before a signature or share leaves the
// process.
//
// Decide is the one copy of the rules: softsign (SignState.Sign), every
// threshold cosigner (SignState.Admit) and the leader's check against the
// cluster's last signature all call it.
//
// Bound is the one copy of the height bound (max_height_ahead,
// max_height_rate): how far above the mark loaded at start a signer lets
// requests move it, growing with elapsed time, never with requests. The
// threshold share signer, softsign and the Raft state's record check all
// call Bound.Check.
//
// The state file is preallocated with two checksummed, sequence-numbered
// slots rewritten in place and fdatasync'ed; a torn write falls back to the
// previous slot. ParseForeignState reads CometBFT's and TMKMS's state
// files. The package also defines the refusal types a cosigner answers
// with (Refusal, RefusalReason).
//
// It knows nothing of keys, networks or thresholds.
package signstate
