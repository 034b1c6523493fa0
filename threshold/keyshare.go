package threshold

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"

	"filippo.io/edwards25519"
)

// MaxParticipants is the largest N this package deals to. Identifiers are
// 1..N, and every encoding stores N and M in one byte.
const MaxParticipants = 255

// CheckThreshold reports whether M-of-N is a threshold we sign with: 2 <= M
// <= N <= 255 and M > N/2. The last rule makes any two quorums of M
// participants share at least one member, whose high-water mark refuses the
// second of two conflicting requests; with M <= N/2 two disjoint quorums
// could sign two different blocks at the same height. The shared members
// protect only while they are honest: see Tolerance for how many may be
// compromised (2M - N - 1, none for 2-of-3 and 3-of-5).
func CheckThreshold(m, n int) error {
	switch {
	case n > MaxParticipants:
		return fmt.Errorf("%d participants: at most %d are supported", n, MaxParticipants)
	case m < 2:
		return fmt.Errorf("threshold %d: at least 2 shares must be required to sign (use a single key, softsign, for 1)", m)
	case n < m:
		return fmt.Errorf("threshold %d of %d participants: the threshold cannot exceed the number of participants", m, n)
	case 2*m <= n:
		return fmt.Errorf("threshold %d of %d participants: two disjoint quorums of %d could sign conflicting blocks; the threshold must be more than half, at least %d", m, n, m, n/2+1)
	}
	return nil
}

// GroupKey is the public half of a dealing, the same for every participant:
// the number of participants N and the Feldman commitments C_0..C_{M-1} to
// the coefficients of the secret polynomial f (RFC 9591, Appendix C.2), so
// that C_0 = f(0)·B is the group public key and participant i's public share
// is PK_i = f(i)·B = Σ_j i^j·C_j.
//
// A GroupKey is immutable and safe for concurrent use.
type GroupKey struct {
	n           int
	commitments []*edwards25519.Point
	pub         [ElementSize]byte // encoding of commitments[0]

	sharesOnce sync.Once
	shares     []*edwards25519.Point // PK_i at index i-1, derived lazily
}

// NewGroupKey returns the group key of n participants with the given Feldman
// commitments; their number is the threshold M. It checks the threshold with
// CheckThreshold and rejects nil, identity and small-order commitments. The
// points are copied.
func NewGroupKey(n int, commitments []*edwards25519.Point) (*GroupKey, error) {
	if err := CheckThreshold(len(commitments), n); err != nil {
		return nil, fmt.Errorf("group key: %w", err)
	}
	g := &GroupKey{n: n, commitments: make([]*edwards25519.Point, len(commitments))}
	for j, c := range commitments {
		if c == nil {
			return nil, fmt.Errorf("group key: commitment %d is missing", j)
		}
		if err := checkElement(c); err != nil {
			return nil, fmt.Errorf("group key: commitment %d: %w", j, err)
		}
		g.commitments[j] = new(edwards25519.Point).Set(c)
	}
	copy(g.pub[:], g.commitments[0].Bytes())
	return g, nil
}

// N returns the number of participants; their identifiers are 1..N.
func (g *GroupKey) N() int { return g.n }

// Threshold returns M, the number of signature shares a signature needs.
func (g *GroupKey) Threshold() int { return len(g.commitments) }

// PublicKey returns the group public key as an ed25519 public key.
func (g *GroupKey) PublicKey() ed25519.PublicKey {
	return ed25519.PublicKey(append([]byte(nil), g.pub[:]...))
}

// Commitments returns copies of the Feldman commitments C_0..C_{M-1}.
func (g *GroupKey) Commitments() []*edwards25519.Point {
	out := make([]*edwards25519.Point, len(g.commitments))
	for j, c := range g.commitments {
		out[j] = new(edwards25519.Point).Set(c)
	}
	return out
}

// PublicShare returns a copy of PK_id = Σ_j id^j·C_j, the public key of
// participant id's secret share, derived from the commitments alone. It
// returns an error if id is not in 1..N.
func (g *GroupKey) PublicShare(id uint16) (*edwards25519.Point, error) {
	p, err := g.publicShare(id)
	if err != nil {
		return nil, err
	}
	return new(edwards25519.Point).Set(p), nil
}

func (g *GroupKey) publicShare(id uint16) (*edwards25519.Point, error) {
	if id == 0 || int(id) > g.n {
		return nil, fmt.Errorf("participant %d is not one of 1..%d", id, g.n)
	}
	g.sharesOnce.Do(func() {
		g.shares = make([]*edwards25519.Point, g.n)
		for i := range g.shares {
			g.shares[i] = evalCommitments(g.commitments, uint16(i+1))
		}
	})
	return g.shares[id-1], nil
}

// Equal reports whether g and h have the same N and commitments.
func (g *GroupKey) Equal(h *GroupKey) bool {
	if g.n != h.n || len(g.commitments) != len(h.commitments) {
		return false
	}
	for j := range g.commitments {
		if g.commitments[j].Equal(h.commitments[j]) != 1 {
			return false
		}
	}
	return true
}

// evalCommitments returns Σ_j x^j·C_j by Horner's rule, multiplying by the
// small public integer x with double-and-add. It is variable-time: the
// commitments and x are public.
func evalCommitments(c []*edwards25519.Point, x uint16) *edwards25519.Point {
	acc := new(edwards25519.Point).Set(c[len(c)-1])
	for j := len(c) - 2; j >= 0; j-- {
		mulSmall(acc, x)
		acc.Add(acc, c[j])
	}
	return acc
}

// mulSmall sets p = x·p, in variable time.
func mulSmall(p *edwards25519.Point, x uint16) {
	base := new(edwards25519.Point).Set(p)
	p.Set(edwards25519.NewIdentityPoint())
	for bit := 15; bit >= 0; bit-- {
		p.Add(p, p)
		if x>>bit&1 == 1 {
			p.Add(p, base)
		}
	}
}

// KeyShare is one participant's share of the group secret: its identifier i,
// the secret share s_i = f(i), its public share PK_i = s_i·B, and the group
// key. It is the sk_i of RFC 9591, Section 5.
//
// A KeyShare is immutable and safe for concurrent use. Its String and
// GoString methods never print the secret.
type KeyShare struct {
	id     uint16
	secret edwards25519.Scalar
	public edwards25519.Point
	group  *GroupKey
}

// NewKeyShare returns participant id's key share with secret share secret in
// group. It rejects an identifier outside 1..N and a zero secret; it does not
// check the share against the commitments (VerifyShare does). The secret is
// copied.
func NewKeyShare(id uint16, secret *edwards25519.Scalar, group *GroupKey) (*KeyShare, error) {
	if group == nil || secret == nil {
		return nil, errors.New("key share: group key or secret is missing")
	}
	if id == 0 || int(id) > group.n {
		return nil, fmt.Errorf("key share: participant %d is not one of 1..%d", id, group.n)
	}
	if secret.Equal(edwards25519.NewScalar()) == 1 {
		return nil, errors.New("key share: secret share is zero")
	}
	k := &KeyShare{id: id, group: group}
	k.secret.Set(secret)
	k.public.ScalarBaseMult(&k.secret)
	return k, nil
}

// ID returns the participant's identifier, in 1..N.
func (k *KeyShare) ID() uint16 { return k.id }

// Group returns the group key the share belongs to.
func (k *KeyShare) Group() *GroupKey { return k.group }

// PublicShare returns a copy of PK_i = s_i·B.
func (k *KeyShare) PublicShare() *edwards25519.Point {
	return new(edwards25519.Point).Set(&k.public)
}

// String describes the share without its secret.
func (k *KeyShare) String() string {
	return fmt.Sprintf("threshold.KeyShare{ID: %d, M: %d, N: %d, PublicKey: %x}",
		k.id, k.group.Threshold(), k.group.n, k.group.pub)
}

// GoString is String, so that %#v does not print the secret either.
func (k *KeyShare) GoString() string { return k.String() }

// VerifyShare checks a key share before it is used: that the group public
// key, the Feldman commitment C_0, is publicKey (the validator's ed25519
// consensus key), and that the secret share matches the commitments (RFC
// 9591, Appendix C.2, vss_verify): s_i·B == Σ_j i^j·C_j.
func VerifyShare(share *KeyShare, publicKey ed25519.PublicKey) error {
	if share == nil {
		return errors.New("verify key share: key share is missing")
	}
	if len(publicKey) != ed25519.PublicKeySize {
		return fmt.Errorf("verify key share: public key is %d bytes, want %d", len(publicKey), ed25519.PublicKeySize)
	}
	if string(share.group.pub[:]) != string(publicKey) {
		return fmt.Errorf("verify key share %d: the share's group public key %x is not %x", share.id, share.group.pub, []byte(publicKey))
	}
	want, err := share.group.publicShare(share.id)
	if err != nil {
		return fmt.Errorf("verify key share: %w", err)
	}
	if share.public.Equal(want) != 1 {
		return fmt.Errorf("verify key share %d: the secret share does not match the Feldman commitments", share.id)
	}
	return nil
}
