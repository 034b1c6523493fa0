package threshold

import (
	"fmt"
	"math/bits"
	"testing"
)

func TestTolerance(t *testing.T) {
	for _, tc := range []struct {
		m, n                      int
		down, compromised, toSign int
	}{
		{1, 1, 0, 0, 1}, // softsign: the whole key
		{2, 2, 0, 1, 2},
		{2, 3, 1, 0, 2},
		{3, 3, 0, 2, 3},
		{3, 4, 1, 1, 3},
		{3, 5, 2, 0, 3},
		{4, 5, 1, 2, 4},
		{4, 6, 2, 1, 4},
		{4, 7, 3, 0, 4},
		{5, 7, 2, 2, 5},
		{128, 255, 127, 0, 128},
		{2, 4, 2, -1, 2}, // refused by CheckThreshold: disjoint quorums
	} {
		t.Run(fmt.Sprintf("%d-of-%d", tc.m, tc.n), func(t *testing.T) {
			down, compromised, toSign := Tolerance(tc.m, tc.n)
			if down != tc.down || compromised != tc.compromised || toSign != tc.toSign {
				t.Errorf("Tolerance = %d, %d, %d; want %d, %d, %d", down, compromised, toSign, tc.down, tc.compromised, tc.toSign)
			}
		})
	}
}

// TestToleranceExhaustive checks the compromised figure against every
// attack on clusters of up to 7: f compromised cosigners double sign when
// two quorums exist whose honest members are disjoint (an honest cosigner's
// mark lets it contribute to one of two conflicting requests only).
func TestToleranceExhaustive(t *testing.T) {
	for n := 1; n <= 7; n++ {
		for m := 1; m <= n; m++ {
			_, compromised, _ := Tolerance(m, n)
			most := -1 // the largest f no attack succeeds with
			for f := 0; f <= n; f++ {
				if doubleSigns(m, n, f) {
					break
				}
				most = f
			}
			if compromised != most && !(compromised < 0 && most < 0) {
				t.Errorf("%d-of-%d: Tolerance says %d compromised, exhaustive search %d", m, n, compromised, most)
			}
		}
	}
}

// doubleSigns reports whether f compromised cosigners (ids 0..f-1; the
// rules are symmetric) can have two conflicting signatures made in an
// M-of-N cluster.
func doubleSigns(m, n, f int) bool {
	bad := uint(1)<<f - 1
	for q1 := uint(0); q1 < 1<<n; q1++ {
		if bits.OnesCount(q1) != m {
			continue
		}
		for q2 := uint(0); q2 < 1<<n; q2++ {
			if bits.OnesCount(q2) == m && q1&q2&^bad == 0 {
				return true
			}
		}
	}
	return false
}
