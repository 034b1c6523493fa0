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
// Commitments are made by NewNonce or decoded by DecodeCommitment, so every
// Commitment other than the zero value holds two valid elements of the
// prime-order group. A Commitment is a value: copying it is cheap and safe.
type Commitment struct {
	id      uint16
	hiding  *edwards25519.Point // shared, never modified
	binding *edwards25519.Point
	enc     [2 * ElementSize]byte // D_i || E_i
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
	d := new(edwards25519.Point).ScalarBaseMult(&n.hiding)
	e := new(edwards25519.Point).ScalarBaseMult(&n.binding)
	n.commitment = newCommitment(share.id, d, e)
	return n, nil
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

func newCommitment(id uint16, d, e *edwards25519.Point) Commitment {
	c := Commitment{id: id, hiding: d, binding: e}
	encodePair(&c.enc, d, e)
	return c
}

// encodePair sets enc to d.Bytes() || e.Bytes() with one field inversion
// instead of two (Montgomery's trick: 1/Z_d = Z_e/(Z_d·Z_e) and 1/Z_e =
// Z_d/(Z_d·Z_e)). Each half is as Point.Bytes writes it, RFC 8032, Section
// 5.1.2: y = Y/Z reduced, with the sign bit set to the parity of x = X/Z.
// Z is never 0 for a point, so neither is the product. The points are
// public commitments; the encoding takes variable time like Bytes.
// TestEncodePairMatchesBytes holds it to Bytes.
func encodePair(enc *[2 * ElementSize]byte, d, e *edwards25519.Point) {
	xd, yd, zd, _ := d.ExtendedCoordinates()
	xe, ye, ze, _ := e.ExtendedCoordinates()
	inv := new(field.Element).Multiply(zd, ze)
	inv.Invert(inv)
	zdInv := new(field.Element).Multiply(inv, ze)
	zeInv := inv.Multiply(inv, zd)
	encodeAffine(enc[:ElementSize], xd, yd, zdInv)
	encodeAffine(enc[ElementSize:], xe, ye, zeInv)
}

// encodeAffine writes the encoding of the point (X/Z, Y/Z) into out, given
// zInv = 1/Z.
func encodeAffine(out []byte, x, y, zInv *field.Element) {
	x.Multiply(x, zInv)
	y.Multiply(y, zInv)
	copy(out, y.Bytes())
	out[ElementSize-1] |= byte(x.IsNegative() << 7)
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
