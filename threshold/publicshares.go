package threshold

import (
	"crypto/ed25519"
	"fmt"
	"slices"
	"strings"

	"filippo.io/edwards25519"
)

// PublicShare is participant ID's public share PK_i = s_i·B: public, and
// what a participant can show of its share without revealing it.
type PublicShare struct {
	ID    uint16
	Point *edwards25519.Point
}

// PublicShareError reports public shares that do not lie, with the group
// public key, on one polynomial of degree M-1. Odd names the participants
// whose shares disagree with the polynomial the public key and the other
// shares define; it is empty when no M of the shares interpolate to the
// public key at all (shares of another key, or of several dealings).
type PublicShareError struct {
	Odd []uint16
	// M and Given are the threshold and the number of shares checked.
	M, Given int
}

func (e *PublicShareError) Error() string {
	if len(e.Odd) == 0 {
		return fmt.Sprintf("public shares: no %d of the %d public shares interpolate to the public key: they are shares of another key, or of different dealings", e.M, e.Given)
	}
	ids := make([]string, len(e.Odd))
	for i, id := range e.Odd {
		ids[i] = fmt.Sprint(id)
	}
	return fmt.Sprintf("public shares: the public share of participant(s) %s does not lie on the polynomial the public key and the other shares define", strings.Join(ids, ", "))
}

// maxInterpolationSubsets bounds the search for the odd shares out of an
// inconsistent set: C(N, M-1) candidate polynomials, 1716 for 7-of-13.
// Beyond it GroupKeyFromPublicShares still refuses the set, without naming
// the odd shares.
const maxInterpolationSubsets = 2000

// GroupKeyFromPublicShares returns the group key of n participants with
// threshold m whose public key is publicKey and whose participants hold the
// given public shares: the group a dealing made, rebuilt from what its
// participants can publish, for shares dealt without Feldman commitments
// (such as Horcrux's).
//
// The secret polynomial f of degree m-1 is fixed by f(0), whose image is
// the public key, and any m-1 shares. Its coefficient commitments
// C_j = a_j·B follow by Lagrange interpolation in the exponent: with
// x_0 = 0, P_0 = publicKey and (x_k, P_k) the chosen shares,
// C_j = Σ_k [x^j]ℓ_k(x) · P_k, where ℓ_k is the Lagrange basis polynomial
// of x_k over x_0..x_{m-1} (RFC 9591, Section 4.2, applied to points).
// Every given share is then checked against the commitments (the Feldman
// check of VerifyShare, PK_i == Σ_j i^j·C_j), so the set is accepted only
// if any m of the shares interpolate to publicKey.
//
// It needs at least m shares, so that at least one is checked against the
// polynomial the others define; identifiers must be distinct and in 1..n,
// points valid (not the identity, in the prime-order subgroup), and m-of-n
// a threshold CheckThreshold accepts. An inconsistent set is a
// *PublicShareError naming the odd shares where it can. The result equals
// (GroupKey.Equal) the group key of the dealing the shares came from.
func GroupKeyFromPublicShares(publicKey ed25519.PublicKey, m, n int, shares []PublicShare) (*GroupKey, error) {
	if err := CheckThreshold(m, n); err != nil {
		return nil, fmt.Errorf("group key from public shares: %w", err)
	}
	pub, err := decodeElement(publicKey)
	if err != nil {
		return nil, fmt.Errorf("group key from public shares: public key: %w", err)
	}
	if len(shares) < m {
		return nil, fmt.Errorf("group key from public shares: %d public shares for a threshold of %d: at least %d are needed, so that one is checked against the others", len(shares), m, m)
	}
	sorted := slices.Clone(shares)
	slices.SortFunc(sorted, func(a, b PublicShare) int { return int(a.ID) - int(b.ID) })
	for i, s := range sorted {
		switch {
		case s.ID == 0 || int(s.ID) > n:
			return nil, fmt.Errorf("group key from public shares: participant %d is not one of 1..%d", s.ID, n)
		case i > 0 && sorted[i-1].ID == s.ID:
			return nil, fmt.Errorf("group key from public shares: participant %d has two public shares", s.ID)
		case s.Point == nil:
			return nil, fmt.Errorf("group key from public shares: the public share of participant %d is missing", s.ID)
		}
		if err := checkElement(s.Point); err != nil {
			return nil, fmt.Errorf("group key from public shares: participant %d: %w", s.ID, err)
		}
	}

	// The first m-1 shares are the basis of the common case, a consistent
	// set; only an inconsistent one pays for the search.
	var best []uint16 // participants on the best polynomial found
	var bestGroup *GroupKey
	ambiguous := false
	tried := 0
	for basis := range combinations(len(sorted), m-1) {
		if tried++; tried > maxInterpolationSubsets {
			return nil, &PublicShareError{M: m, Given: len(sorted)}
		}
		g, err := interpolateGroup(pub, n, sorted, basis)
		if err != nil {
			continue // a degenerate polynomial (an identity coefficient): not this basis
		}
		var on []uint16
		for _, s := range sorted {
			if p, _ := g.publicShare(s.ID); p.Equal(s.Point) == 1 {
				on = append(on, s.ID)
			}
		}
		if len(on) == len(sorted) {
			return g, nil
		}
		switch {
		case len(on) > len(best):
			best, bestGroup, ambiguous = on, g, false
		case len(on) == len(best) && !g.Equal(bestGroup):
			ambiguous = true
		}
	}
	// The basis shares always lie on their own polynomial: it is confirmed
	// only if at least one more share does, m in all.
	if len(best) < m || ambiguous {
		return nil, &PublicShareError{M: m, Given: len(sorted)}
	}
	var odd []uint16
	for _, s := range sorted {
		if !slices.Contains(best, s.ID) {
			odd = append(odd, s.ID)
		}
	}
	return nil, &PublicShareError{Odd: odd, M: m, Given: len(sorted)}
}

// interpolateGroup returns the group of the polynomial through (0, pub) and
// the shares at the given indices of shares.
func interpolateGroup(pub *edwards25519.Point, n int, shares []PublicShare, basis []int) (*GroupKey, error) {
	m := len(basis) + 1
	xs := make([]*edwards25519.Scalar, m)
	points := make([]*edwards25519.Point, m)
	xs[0], points[0] = edwards25519.NewScalar(), pub
	for k, i := range basis {
		xs[k+1], points[k+1] = identifierScalar(shares[i].ID), shares[i].Point
	}
	// coef[k][j] is the coefficient of x^j in ℓ_k(x).
	coef := make([][]*edwards25519.Scalar, m)
	for k := range m {
		poly := []*edwards25519.Scalar{scalarOne()} // Π_{l≠k} (x - x_l), lowest degree first
		denom := scalarOne()                        // Π_{l≠k} (x_k - x_l)
		for l := range m {
			if l == k {
				continue
			}
			next := make([]*edwards25519.Scalar, len(poly)+1)
			for j := range next {
				next[j] = edwards25519.NewScalar()
			}
			negX := edwards25519.NewScalar().Negate(xs[l])
			for j, c := range poly {
				next[j+1].Add(next[j+1], c)                                      // x · c x^j
				next[j].Add(next[j], edwards25519.NewScalar().Multiply(negX, c)) // -x_l · c x^j
			}
			poly = next
			denom.Multiply(denom, edwards25519.NewScalar().Subtract(xs[k], xs[l]))
		}
		// The x_k are distinct integers below L, so denom is not zero.
		inv := edwards25519.NewScalar().Invert(denom)
		for _, c := range poly {
			c.Multiply(c, inv)
		}
		coef[k] = poly
	}
	commitments := make([]*edwards25519.Point, m)
	for j := range m {
		column := make([]*edwards25519.Scalar, m)
		for k := range m {
			column[k] = coef[k][j]
		}
		commitments[j] = new(edwards25519.Point).VarTimeMultiScalarMult(column, points)
	}
	return NewGroupKey(n, commitments)
}

// combinations yields every k-subset of 0..n-1 as increasing indices, in
// lexicographic order. The slice is reused between iterations.
func combinations(n, k int) func(yield func([]int) bool) {
	return func(yield func([]int) bool) {
		if k < 0 || k > n {
			return
		}
		idx := make([]int, k)
		for i := range idx {
			idx[i] = i
		}
		for {
			if !yield(idx) {
				return
			}
			// Advance the rightmost index that can move, reset those after it.
			i := k - 1
			for i >= 0 && idx[i] == n-k+i {
				i--
			}
			if i < 0 {
				return
			}
			idx[i]++
			for j := i + 1; j < k; j++ {
				idx[j] = idx[j-1] + 1
			}
		}
	}
}

var _ error = (*PublicShareError)(nil)
