package signstate

import "fmt"

// RefusalReason says why a cosigner released nothing. The values are those
// of the cluster protocol's RefusalReason.
type RefusalReason int

// Refusal reasons.
const (
	RefusedRegression        RefusalReason = 1
	RefusedConflict          RefusalReason = 2
	RefusedTooFarAhead       RefusalReason = 3
	RefusedUnknownCommitment RefusalReason = 4
	RefusedNotLeader         RefusalReason = 5
	RefusedInvalidRequest    RefusalReason = 6
	RefusedUnavailable       RefusalReason = 7
	RefusedUnknownChain      RefusalReason = 8
	// RefusedEpochMismatch: the caller holds a share of another epoch
	// (another resharing) than the refusing cosigner.
	RefusedEpochMismatch RefusalReason = 9
)

var refusalNames = map[RefusalReason]string{
	RefusedRegression: "regression", RefusedConflict: "conflict", RefusedTooFarAhead: "too far ahead",
	RefusedUnknownCommitment: "unknown commitment", RefusedNotLeader: "not leader",
	RefusedInvalidRequest: "invalid request", RefusedUnavailable: "unavailable", RefusedUnknownChain: "unknown chain",
	RefusedEpochMismatch: "epoch mismatch",
}

func (r RefusalReason) String() string {
	if s, ok := refusalNames[r]; ok {
		return s
	}
	return fmt.Sprintf("reason %d", int(r))
}

// Refusal is the error of a cosigner that released no share.
type Refusal struct {
	Signer int
	Reason RefusalReason
	Err    error
	// Last is the refusing cosigner's high-water mark when it reported
	// one (with a regression, conflict or too-far-ahead refusal): height,
	// round and step only, never the sign bytes. Nil otherwise.
	Last *Mark
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("cosigner %d refused (%s): %v", r.Signer, r.Reason, r.Err)
}

func (r *Refusal) Unwrap() error { return r.Err }

// Final reports whether retrying elsewhere cannot help: the request itself is
// refused by the sign-state rules, not this cosigner's circumstances. A
// cosigner that finds the height too far ahead counts its Bound from its
// own mark and clock, which may be behind the others' (a state initialised
// at an old height), so the leader routes around it instead.
func (r *Refusal) Final() bool {
	return r.Reason == RefusedRegression || r.Reason == RefusedConflict
}
