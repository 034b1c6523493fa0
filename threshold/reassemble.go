package threshold

import (
	"errors"
	"fmt"

	"filippo.io/edwards25519"
)

// Reassemble interpolates the group's secret scalar s = f(0) from at least
// M key shares of one group (Lagrange at 0). Every share is checked against
// the group's Feldman commitments first (a tampered one is refused by its
// identifier), and the result against the group public
// key: s·B == C_0. This puts the whole key in one place; it is meant only
// for emergency recovery off-line.
func Reassemble(shares []*KeyShare) (*edwards25519.Scalar, error) {
	if len(shares) == 0 {
		return nil, errors.New("reassemble: no key shares")
	}
	group := shares[0].group
	if len(shares) < group.Threshold() {
		return nil, fmt.Errorf("reassemble: %d key shares, the group needs %d (its threshold M)", len(shares), group.Threshold())
	}
	seen := map[uint16]bool{}
	for _, sh := range shares {
		if sh == nil {
			return nil, errors.New("reassemble: a key share is missing")
		}
		if !sh.group.Equal(group) {
			return nil, fmt.Errorf("reassemble: key share %d belongs to another group than key share %d (another key or another sharding)", sh.id, shares[0].id)
		}
		if seen[sh.id] {
			return nil, fmt.Errorf("reassemble: key share %d given twice", sh.id)
		}
		seen[sh.id] = true
		if err := VerifyShare(sh, group.PublicKey()); err != nil {
			return nil, fmt.Errorf("reassemble: key share %d is tampered or corrupt: %w", sh.id, err)
		}
	}
	secret := edwards25519.NewScalar()
	for _, sh := range shares {
		num, den := scalarOne(), scalarOne()
		xi := identifierScalar(sh.id)
		for _, other := range shares {
			if other.id == sh.id {
				continue
			}
			xj := identifierScalar(other.id)
			num.Multiply(num, xj)
			den.Multiply(den, new(edwards25519.Scalar).Subtract(xj, xi))
		}
		lambda := num.Multiply(num, den.Invert(den))
		secret.MultiplyAdd(lambda, &sh.secret, secret)
	}
	if new(edwards25519.Point).ScalarBaseMult(secret).Equal(group.commitments[0]) != 1 {
		return nil, errors.New("reassemble: the interpolated key is not the group public key (inconsistent shares)")
	}
	return secret, nil
}
