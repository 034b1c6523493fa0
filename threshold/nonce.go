package threshold

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// ErrNonceUsed is returned when a Nonce that has already produced a signature
// share, or has been destroyed, is asked to sign again. Signing twice with one
// nonce reveals the secret share.
var ErrNonceUsed = errors.New("threshold: nonce already used")

// Commitment is a participant's public commitment to one pair of nonces (RFC
// 9591, Section 5.1): its identifier i, the hiding nonce commitment D_i =
// d_i·B and the binding nonce commitment E_i = e_i·B.
//
// Commitments are made by NewNonce or decoded by DecodeCommitment or
// CommitmentFromEighths, so every Commitment other than the zero value holds
// two valid elements of the prime-order group. A Commitment is a value: copying it is cheap and safe.
type Commitment struct {
	id      uint16
	hiding  *edwards25519.Point // shared, never modified
	binding *edwards25519.Point
	enc     [2 * ElementSize]byte // D_i || E_i
	// eighths is D_i/8 || E_i/8 (the points whose multiple by the cofactor
	// 8 are D_i and E_i), when known: made by NewNonce or decoded by
	// CommitmentFromEighths. See Eighths.
	eighths    [2 * ElementSize]byte
	hasEighths bool
}

// ID returns the identifier of the participant that holds the nonces.
func (c Commitment) ID() uint16 { return c.id }

// Hiding returns a copy of D_i.
func (c Commitment) Hiding() *edwards25519.Point {
	return new(edwards25519.Point).Set(c.hiding)
}

// Binding returns a copy of E_i.
func (c Commitment) Binding() *edwards25519.Point {
	return new(edwards25519.Point).Set(c.binding)
}

// Equal reports whether c and d are the same commitment.
func (c Commitment) Equal(d Commitment) bool {
	return c.id == d.id && c.enc == d.enc
}

// SortCommitments sorts a commitment list by identifier, the order
// NewSigningPackage requires.
func SortCommitments(list []Commitment) {
	slices.SortFunc(list, func(a, b Commitment) int { return cmp.Compare(a.id, b.id) })
}

func (c Commitment) valid() bool {
	return c.id != 0 && c.hiding != nil && c.binding != nil
}

// Nonce is one participant's pair of secret nonces (d_i, e_i) for one
// signature share, with their Commitment (RFC 9591, Section 5.1).
//
// A Nonce signs at most once: SignShare zeroes d_i and e_i as it computes the
// share, and any later use returns ErrNonceUsed. Nonces cannot be encoded;
// they live in memory only and die with the process. A Nonce is safe for
// concurrent use; of two concurrent SignShare calls at most one succeeds.
type Nonce struct {
	commitment Commitment

	mu      sync.Mutex
	used    bool
	hiding  edwards25519.Scalar
	binding edwards25519.Scalar
}

// NewNonce draws a fresh pair of nonces for share and commits to them (RFC
// 9591, Section 5.1, commit). Each nonce is nonce_generate(s_i) of Section
// 4.1: H3(32 bytes from random || SerializeScalar(s_i)), so a weak random
// source alone does not reveal or repeat nonces. The hiding nonce takes the
// first 32 bytes from random, the binding nonce the next 32. A nil random
// means crypto/rand.Reader; tests inject fixed bytes to replay RFC vectors.
func NewNonce(share *KeyShare, random io.Reader) (*Nonce, error) {
	if share == nil {
		return nil, errors.New("generate nonce: key share is missing")
	}
	if random == nil {
		random = rand.Reader
	}
	n := &Nonce{}
	if err := nonceGenerate(&n.hiding, &share.secret, random); err != nil {
		return nil, err
	}
	if err := nonceGenerate(&n.binding, &share.secret, random); err != nil {
		n.hiding.Set(edwards25519.NewScalar())
		return nil, err
	}
	// D_i = [8]([d_i/8]B) = [d_i]B, and likewise E_i: the eighths cost
	// three doublings and two encodings more and let a receiver skip the
	// prime-order check (CommitmentFromEighths). They reveal nothing D_i
	// does not: D_i/8 = [1/8 mod L]D_i, the one eighth of prime order.
	k := edwards25519.NewScalar()
	d8 := new(edwards25519.Point).ScalarBaseMult(k.Multiply(&n.hiding, inverseOfEight()))
	e8 := new(edwards25519.Point).ScalarBaseMult(k.Multiply(&n.binding, inverseOfEight()))
	k.Set(edwards25519.NewScalar())
	d := new(edwards25519.Point).MultByCofactor(d8)
	e := new(edwards25519.Point).MultByCofactor(e8)
	n.commitment = Commitment{id: share.id, hiding: d, binding: e, hasEighths: true}
	encodePoints([][]byte{n.commitment.enc[:ElementSize], n.commitment.enc[ElementSize:],
		n.commitment.eighths[:ElementSize], n.commitment.eighths[ElementSize:]}, d, e, d8, e8)
	return n, nil
}

const maxEncodePoints = 4

var (
	inverseOfEightOnce sync.Once
	inverseOfEightVal  *edwards25519.Scalar
)

// inverseOfEight returns 1/8 mod L.
func inverseOfEight() *edwards25519.Scalar {
	inverseOfEightOnce.Do(func() {
		inverseOfEightVal = edwards25519.NewScalar().Invert(identifierScalar(8))
	})
	return inverseOfEightVal
}

// Eighths returns the encodings of D_i/8 and E_i/8, the points P and Q with
// [8]P = D_i and [8]Q = E_i that NewNonce drew D_i and E_i from, and whether
// they are known (false for a commitment decoded by DecodeCommitment). A
// receiver that gets them decodes the commitment with
// CommitmentFromEighths, which needs no prime-order check.
func (c Commitment) Eighths() (hiding, binding []byte, ok bool) {
	if !c.hasEighths {
		return nil, nil, false
	}
	return append([]byte(nil), c.eighths[:ElementSize]...), append([]byte(nil), c.eighths[ElementSize:]...), true
}

// CommitmentFromEighths decodes participant id's commitment from the
// encodings of D_i/8 and E_i/8 (Commitment.Eighths): D_i = [8](D_i/8), E_i
// = [8](E_i/8).
//
// RFC 9591, Section 6.1, requires D_i and E_i to be in the prime-order
// subgroup. The curve's group is cyclic of order 8·L, so multiplying any
// of its points by the cofactor 8 lands in the subgroup of order L (the
// multiples of 8): D_i and E_i are in it by construction, whatever the
// sender sent, and the check DecodeCommitment makes (a multiplication by
// L-1, about 253 doublings a point) is three doublings here. A sender gains
// nothing from a torsion component in D_i/8: it is cleared, and D_i, not
// D_i/8, is what the binding factors hash and the signature uses. Each
// input must still be a canonical encoding of a curve point, and D_i and
// E_i must not be the identity (an input of small order).
func CommitmentFromEighths(id uint16, hiding, binding []byte) (Commitment, error) {
	if id == 0 {
		return Commitment{}, fmt.Errorf("decode commitment: %w", errZeroIdentifier)
	}
	c := Commitment{id: id, hasEighths: true}
	var pts [2]*edwards25519.Point
	for i, b := range [][]byte{hiding, binding} {
		name := [2]string{"hiding", "binding"}[i]
		if len(b) != ElementSize {
			return Commitment{}, fmt.Errorf("decode commitment of participant %d: %s/8: point is %d bytes, want %d", id, name, len(b), ElementSize)
		}
		p, err := new(edwards25519.Point).SetBytes(b)
		if err != nil {
			return Commitment{}, fmt.Errorf("decode commitment of participant %d: %s/8: point %x: %w", id, name, b, err)
		}
		if !canonicalElement(p, b) {
			return Commitment{}, fmt.Errorf("decode commitment of participant %d: %s/8: point %x: %w", id, name, b, errNonCanonical)
		}
		pts[i] = p.MultByCofactor(p)
		if pts[i].Equal(edwards25519.NewIdentityPoint()) == 1 {
			return Commitment{}, fmt.Errorf("decode commitment of participant %d: %s/8: point %x has small order: %w", id, name, b, errIdentity)
		}
		copy(c.eighths[i*ElementSize:], b)
	}
	c.hiding, c.binding = pts[0], pts[1]
	encodePoints([][]byte{c.enc[:ElementSize], c.enc[ElementSize:]}, c.hiding, c.binding)
	return c, nil
}

// nonceGenerate sets k = H3(random_bytes || SerializeScalar(secret)) (RFC
// 9591, Section 4.1).
func nonceGenerate(k, secret *edwards25519.Scalar, random io.Reader) error {
	var buf [2 * ScalarSize]byte
	defer clear(buf[:])
	if _, err := io.ReadFull(random, buf[:ScalarSize]); err != nil {
		return fmt.Errorf("generate nonce: read randomness: %w", err)
	}
	enc := secret.Bytes()
	copy(buf[ScalarSize:], enc)
	clear(enc)
	k.Set(h3(buf[:]))
	return nil
}

// encodePoints writes pts[i].Bytes() into out[i] (ElementSize bytes each)
// with one field inversion for all of them instead of one each
// (Montgomery's trick: with P_k = Z_0·…·Z_k, 1/Z_k = P_{k-1}/P_k). Each
// encoding is as Point.Bytes writes it, RFC 8032, Section 5.1.2: y = Y/Z
// reduced, with the sign bit set to the parity of x = X/Z. Z is never 0
// for a point, so neither is the product. The points are public
// commitments; the encoding takes variable time like Bytes.
// TestEncodePointsMatchesBytes holds it to Bytes. It takes at most
// maxEncodePoints points: its callers encode a commitment's two points and
// their eighths.
func encodePoints(out [][]byte, pts ...*edwards25519.Point) {
	if len(pts) > maxEncodePoints {
		panic("threshold: encodePoints of more than 4 points")
	}
	var xs, ys, zs [maxEncodePoints]*field.Element
	var prefix [maxEncodePoints]field.Element
	for i, p := range pts {
		xs[i], ys[i], zs[i], _ = p.ExtendedCoordinates()
		if i == 0 {
			prefix[0].Set(zs[0])
		} else {
			prefix[i].Multiply(&prefix[i-1], zs[i])
		}
	}
	inv := new(field.Element).Invert(&prefix[len(pts)-1]) // 1/(Z_0·…·Z_n-1)
	zInv := new(field.Element)
	for i := len(pts) - 1; i >= 0; i-- {
		if i == 0 {
			zInv.Set(inv)
		} else {
			zInv.Multiply(inv, &prefix[i-1]) // 1/Z_i
			inv.Multiply(inv, zs[i])         // 1/(Z_0·…·Z_i-1)
		}
		x := xs[i].Multiply(xs[i], zInv)
		y := ys[i].Multiply(ys[i], zInv)
		copy(out[i], y.Bytes())
		out[i][ElementSize-1] |= byte(x.IsNegative() << 7)
	}
}

// Commitment returns the nonce's public commitment, to publish to the
// coordinator.
func (n *Nonce) Commitment() Commitment { return n.commitment }

// ID returns the identifier of the participant the nonce belongs to.
func (n *Nonce) ID() uint16 { return n.commitment.id }

// Used reports whether the nonce has signed or been destroyed.
func (n *Nonce) Used() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.used
}

// Destroy zeroes the nonce without signing, for a nonce that will never be
// used (its commitment expired, the process is shutting down). Later use
// returns ErrNonceUsed.
func (n *Nonce) Destroy() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.zero()
}

// zero clears the secret nonces and marks the nonce used; n.mu is held.
func (n *Nonce) zero() {
	n.hiding.Set(edwards25519.NewScalar())
	n.binding.Set(edwards25519.NewScalar())
	n.used = true
}

// String describes the nonce without its secrets.
func (n *Nonce) String() string {
	return fmt.Sprintf("threshold.Nonce{ID: %d, Commitment: %x, Used: %t}", n.commitment.id, n.commitment.enc, n.Used())
}

// GoString is String, so that %#v does not print the secrets either.
func (n *Nonce) GoString() string { return n.String() }
