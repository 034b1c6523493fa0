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
// and, once the signer has admitted a height above Anchor since it started
// (First, at FirstAt; see Admit), also at most
//
//	First + Ahead + ⌊Rate × (now − FirstAt)⌋.
//
// Anchor and Since are fixed when the signer starts: the mark loaded from
// disk and the time it was recorded (SignState.Bound). Counting from when
// the mark was recorded, not from the start of the process, lets a signer
// that was down for a week sign the chain's current height at once: the
// chain cannot have made more than Rate heights per second of the downtime.
// That first jump (the catch-up) then becomes the second anchor, so the
// downtime's allowance is used once: a second jump as large is refused.
// Neither anchor moves with later requests, so asking again and again near
// the limit cannot ratchet it up; it grows only with elapsed time, at Rate
// heights per second, which must be at least the fastest rate the chain
// makes blocks at (Ahead absorbs bursts).
//
// What the bound cannot do: with Rate above the chain's real rate, a
// persistent caller can keep the mark up to Ahead + (Rate − chain rate) ×
// uptime above the chain; the first caller after a start can take the
// whole downtime's allowance; and each start grants Ahead once more. Rate
// close to the chain's block rate keeps all three small.
//
// A Bound with Ahead ≤ 0 is off: it allows every height. Bound is a value:
// Check reads it, Admit returns the next one; a caller shared between
// goroutines guards it with its own lock.
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
	// First is the first height admitted above Anchor, at FirstAt; a zero
	// FirstAt: none yet.
	First   int64
	FirstAt time.Time
}

// Off reports whether b allows every height.
func (b Bound) Off() bool { return b.Ahead <= 0 }

// Limit returns the highest height b allows at now (math.MaxInt64 when
// off). A now before an anchor's time counts as that time: a clock set
// back never lowers the limit, and a clock set forward raises it only by
// Rate per second it jumped.
func (b Bound) Limit(now time.Time) int64 {
	limit, _ := b.limit(now)
	return limit
}

// limit returns the limit at now and whether the second anchor (First)
// is the one that sets it.
func (b Bound) limit(now time.Time) (int64, bool) {
	if b.Off() {
		return math.MaxInt64, false
	}
	limit := b.from(b.Anchor, b.Since, now)
	if !b.FirstAt.IsZero() {
		if l := b.from(b.First, b.FirstAt, now); l < limit {
			return l, true
		}
	}
	return limit, false
}

// from is the limit counted from height h recorded at time at.
func (b Bound) from(h int64, at, now time.Time) int64 {
	limit := addSat(h, b.Ahead)
	if grow := b.Rate * elapsed(at, now).Seconds(); grow > 0 {
		if grow >= math.MaxInt64 {
			return math.MaxInt64
		}
		limit = addSat(limit, int64(grow))
	}
	return limit
}

func elapsed(at, now time.Time) time.Duration { return max(now.Sub(at), 0) }

// Check returns nil if height is within b at now, else an error wrapping
// ErrTooFarAhead that says how the limit came about. Heights at or below
// the anchor always pass: refusing regressions is Decide's job.
func (b Bound) Check(height int64, now time.Time) error {
	limit, first := b.limit(now)
	if height <= limit {
		return nil
	}
	from, at, what := b.Anchor, b.Since, "the mark loaded at start"
	if first {
		from, at, what = b.First, b.FirstAt, "the first height signed since start"
	}
	e := elapsed(at, now)
	return fmt.Errorf("%w: %d is above %d, the highest allowed now: %s, %d, recorded %s ago, plus max_height_ahead %d, plus max_height_rate %g heights/s for those %.0f s",
		ErrTooFarAhead, height, limit, what, from, e.Round(time.Second), b.Ahead, b.Rate, e.Seconds())
}

// Admit returns b after the signer admitted height at now: the first
// height above Anchor becomes First, the anchor of the catch-up. Later
// heights, and heights at or below Anchor (a resent vote, the next step at
// the mark's height), change nothing.
func (b Bound) Admit(height int64, now time.Time) Bound {
	if b.FirstAt.IsZero() && height > b.Anchor {
		b.First, b.FirstAt = height, now
	}
	return b
}

// addSat returns a + b for non-negative b, saturating at math.MaxInt64.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
