package signstate

import (
	"errors"
	"math"
	"os"
	"testing"
	"time"

	"github.com/cosigner/cosigner/internal/testkit"
)

// TestBound is every case of the one copy of the height bound.
func TestBound(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	def := Bound{Anchor: 1000, Since: t0, Ahead: 100, Rate: 10}
	// caught signed the chain's height after a week down; grabbed had a
	// caller take the whole allowance at once.
	caught := def.Admit(1000+int64(week/time.Second), t0.Add(week))
	grabbed := def.Admit(1100, t0)
	tests := []struct {
		name   string
		b      Bound
		height int64
		now    time.Time
		ok     bool
	}{
		{"off allows anything", Bound{Anchor: 5, Since: t0}, math.MaxInt64, t0, true},
		{"negative ahead is off", Bound{Anchor: 5, Since: t0, Ahead: -1}, 1 << 40, t0, true},
		{"below the anchor passes (regressions are Decide's)", def, 3, t0, true},
		{"at the anchor", def, 1000, t0, true},
		{"at anchor + ahead", def, 1100, t0, true},
		{"one above anchor + ahead", def, 1101, t0, false},
		{"a second later: rate 10 more", def, 1110, t0.Add(time.Second), true},
		{"a second later, one above", def, 1111, t0.Add(time.Second), false},
		{"partial seconds round down", def, 1105, t0.Add(550 * time.Millisecond), true},
		{"partial seconds round down, one above", def, 1106, t0.Add(550 * time.Millisecond), false},
		{"clock before Since: no growth, no shrink", def, 1100, t0.Add(-time.Hour), true},
		{"clock before Since, one above", def, 1101, t0.Add(-time.Hour), false},
		{"a week of 1 s blocks after a week down", def, 1000 + int64(week/time.Second), t0.Add(week), true},
		{"a week down is no licence for more than the rate", def, 1000 + 100 + 10*int64(week/time.Second) + 1, t0.Add(week), false},
		{"rate 0 never grows", Bound{Anchor: 1000, Since: t0, Ahead: 100}, 1101, t0.Add(week), false},
		{"slow rate: 0.5/s for 3 s is 1", Bound{Anchor: 1000, Since: t0, Ahead: 100, Rate: 0.5}, 1101, t0.Add(3 * time.Second), true},
		{"slow rate: one above", Bound{Anchor: 1000, Since: t0, Ahead: 100, Rate: 0.5}, 1102, t0.Add(3 * time.Second), false},
		{"after a catch-up: first + ahead", caught, caught.First + 100, caught.FirstAt, true},
		{"after a catch-up: one above first + ahead", caught, caught.First + 101, caught.FirstAt, false},
		{"after a catch-up: grows from there", caught, caught.First + 110, caught.FirstAt.Add(time.Second), true},
		{"after a catch-up: one above", caught, caught.First + 111, caught.FirstAt.Add(time.Second), false},
		{"first at the limit: the mark's anchor still binds", grabbed, 1100, t0, true},
		{"first at the limit: no second allowance", grabbed, 1101, t0, false},
		{"first at the limit: only the rate later", grabbed, 1110, t0.Add(time.Second), true},
		{"first at the limit: one above later", grabbed, 1111, t0.Add(time.Second), false},
		{"anchor + ahead saturates", Bound{Anchor: math.MaxInt64 - 5, Since: t0, Ahead: 100}, math.MaxInt64, t0, true},
		{"growth saturates", Bound{Anchor: 1, Since: time.Unix(0, 0), Ahead: 1, Rate: 1e18}, math.MaxInt64, t0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.b.Check(tt.height, tt.now)
			if tt.ok && err != nil {
				t.Fatalf("Check(%d) = %v, want nil (limit %d)", tt.height, err, tt.b.Limit(tt.now))
			}
			if !tt.ok && !errors.Is(err, ErrTooFarAhead) {
				t.Fatalf("Check(%d) = %v, want ErrTooFarAhead (limit %d)", tt.height, err, tt.b.Limit(tt.now))
			}
			if lim := tt.b.Limit(tt.now); (tt.height <= lim) != tt.ok {
				t.Fatalf("Limit = %d disagrees with Check for %d", lim, tt.height)
			}
		})
	}
}

// TestBoundDoesNotRatchet: the allowance is granted once from the anchor.
// A caller who asks for (limit − 1) again and again, as fast as it likes,
// gets the first, then nothing more until time passes.
func TestBoundDoesNotRatchet(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := Bound{Anchor: 1, Since: t0, Ahead: 100, Rate: 10}
	mark := int64(1)
	for range 50 {
		h := mark + b.Ahead - 1
		if b.Check(h, t0) == nil {
			mark = h
			b = b.Admit(h, t0)
		}
	}
	if mark != 100 {
		t.Fatalf("50 jumps of ahead−1 moved the mark to %d, want 100 (the first jump only)", mark)
	}
}

func TestSignStateBoundAnchor(t *testing.T) {
	dir := t.TempDir()
	path := StatePath(dir, testkit.Chain)
	if err := WriteMark(path, testkit.Chain, Mark{Height: 42}, false); err != nil {
		t.Fatal(err)
	}
	weekAgo := time.Now().Add(-7 * 24 * time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, weekAgo, weekAgo); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSignState(path, testkit.Chain)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := s.Bound(100, 10)
	if b.Anchor != 42 || !b.Since.Equal(weekAgo) || b.Ahead != 100 || b.Rate != 10 {
		t.Fatalf("Bound = %+v, want anchor 42 since %v", b, weekAgo)
	}

	// The anchor stays where it was loaded while the mark moves.
	if err := s.Admit(vote(60, 0, 2, "A", time.Now())); err != nil {
		t.Fatal(err)
	}
	if b := s.Bound(100, 10); b.Anchor != 42 || !b.Since.Equal(weekAgo) {
		t.Fatalf("Bound after an advance = %+v, want the load-time anchor", b)
	}

	// A modification time in the future counts from the load.
	if err := os.Chtimes(path, weekAgo, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	s2, err := LoadSignState(path, testkit.Chain)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if b := s2.Bound(100, 10); b.Anchor != 60 || b.Since.Before(before) || b.Since.After(time.Now()) {
		t.Fatalf("Bound of a file from the future = %+v, want anchor 60 since the load", b)
	}
}

func TestBoundAdmit(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := Bound{Anchor: 50, Since: t0, Ahead: 100, Rate: 10}
	if got := b.Admit(50, t0.Add(time.Second)); !got.FirstAt.IsZero() {
		t.Fatalf("a height at the anchor became the first: %+v", got)
	}
	if got := b.Admit(20, t0.Add(time.Second)); !got.FirstAt.IsZero() {
		t.Fatalf("a height below the anchor became the first: %+v", got)
	}
	b = b.Admit(51, t0.Add(2*time.Second))
	if b.First != 51 || !b.FirstAt.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("after the first height above the anchor: %+v", b)
	}
	if got := b.Admit(140, t0.Add(3*time.Second)); got != b {
		t.Fatalf("a later height moved the first: %+v", got)
	}
}

// TestBoundCatchUpOnce: after a week down, the chain's current height is
// signed at once, the next heights follow, and the week's allowance is not
// there a second time.
func TestBoundCatchUpOnce(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := Bound{Anchor: 1, Since: t0, Ahead: 10000, Rate: 10}
	now := t0.Add(7 * 24 * time.Hour)
	h := 1 + int64(7*24*time.Hour/time.Second) // a block a second
	if err := b.Check(h, now); err != nil {
		t.Fatalf("the chain's height after a week down: %v", err)
	}
	b = b.Admit(h, now)
	for range 100 {
		now, h = now.Add(time.Second), h+1
		if err := b.Check(h, now); err != nil {
			t.Fatalf("height %d: %v", h, err)
		}
		b = b.Admit(h, now)
	}
	if err := b.Check(2*h, now); !errors.Is(err, ErrTooFarAhead) {
		t.Fatalf("a second week-sized jump: %v, want ErrTooFarAhead", err)
	}
	if lim := b.Limit(now); lim != b.First+10000+10*100 {
		t.Fatalf("limit = %d, want first %d + 10000 + 10/s × 100 s", lim, b.First)
	}
}
