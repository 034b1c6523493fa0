package signstate

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrTooFarAhead: the request's height is above what the signer's Bound
// allows now. Nothing was signed and the mark did not move.
var ErrTooFarAhead = errors.New("height too far ahead")

// Bound limits how far up a signer lets its mark be moved, so that whoever
// may send it requests (a leader in a cosigner's Raft view, a stolen
// cluster certificate, a buggy node) cannot burn future heights: a mark
// above the chain makes the validator sign nothing until the chain catches
// up or an operator resets the state. At time now it allows heights up to
//
//	Anchor + Ahead + ⌊Rate × (now − Since)⌋
//
// Anchor and Since are fixed when the signer starts: the mark loaded from
// disk and the time it was recorded (SignState.Bound). They do not move
// with the requests the signer admits, so the allowance Ahead is granted
// once, not again above every new mark: repeated requests near the limit
// cannot ratchet it up. After that the limit grows only with elapsed time,
// at Rate heights per second, which must be at least the fastest rate the
// chain produces blocks at (plus the Ahead allowance absorbing bursts).
//
// Counting from the time the mark was recorded, not from the start of the
// process, is what lets a signer that was down for a week sign the chain's
// current height at once: the chain cannot have made more than Rate heights
// per second of the downtime. A request far beyond that is no catch-up.
//
// What the bound cannot do: a signer whose Rate is above the chain's real
// rate lets a persistent caller keep the mark up to Ahead + (Rate − chain
// rate) × uptime above the chain; and each start grants Ahead once more.
// Rate close to the chain's block rate keeps that small.
//
// A Bound with Ahead ≤ 0 is off: it allows every height. Bound is a value;
// its methods are safe for concurrent use.
type Bound struct {
	// Anchor is the height the allowance counts from.
	Anchor int64
	// Since is when Anchor was recorded.
	Since time.Time
	// Ahead is how far above Anchor the limit is at Since
	// (max_height_ahead); 0 turns the bound off.
	Ahead int64
	// Rate is how many heights per second the limit grows by after Since
	// (max_height_rate); 0: it does not grow.
	Rate float64
}

// Off reports whether b allows every height.
func (b Bound) Off() bool { return b.Ahead <= 0 }

// Limit returns the highest height b allows at now (math.MaxInt64 when
// off). A now before Since counts as Since: a clock set back never lowers
// the limit below Anchor + Ahead, and a clock set forward raises it only
// by Rate per second it jumped.
func (b Bound) Limit(now time.Time) int64 {
	if b.Off() {
		return math.MaxInt64
	}
	limit := addSat(b.Anchor, b.Ahead)
	if grow := b.Rate * b.elapsed(now).Seconds(); grow > 0 {
		if grow >= math.MaxInt64 {
			return math.MaxInt64
		}
		limit = addSat(limit, int64(grow))
	}
	return limit
}

func (b Bound) elapsed(now time.Time) time.Duration {
	return max(now.Sub(b.Since), 0)
}

// Check returns nil if height is within b at now, else an error wrapping
// ErrTooFarAhead that says how the limit came about. Heights at or below
// the anchor always pass: refusing regressions is Decide's job.
func (b Bound) Check(height int64, now time.Time) error {
	limit := b.Limit(now)
	if height <= limit {
		return nil
	}
	e := b.elapsed(now)
	return fmt.Errorf("%w: %d is above %d, the highest allowed now: the mark %d recorded %s ago, plus max_height_ahead %d, plus max_height_rate %g heights/s for those %.0f s",
		ErrTooFarAhead, height, limit, b.Anchor, e.Round(time.Second), b.Ahead, b.Rate, e.Seconds())
}

// addSat returns a + b for non-negative b, saturating at math.MaxInt64.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
