package threshold

import (
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// This file holds the ciphersuite of RFC 9591, Section 6.1,
// FROST(Ed25519, SHA-512): the group is edwards25519 with base point B of
// prime order L = 2^252 + 27742317777372353535851937790883648493, scalars are
// integers mod L encoded in 32 bytes little-endian, elements are encoded as in
// RFC 8032, Section 5.1.2, and the hash is SHA-512.

// contextString is the ciphersuite's domain separator (RFC 9591, Section 6.1).
// It prefixes the inputs of H1, H3, H4 and H5, but not H2, so that the
// challenge is the one RFC 8032 computes and signatures verify as ordinary
// ed25519 signatures.
const contextString = "FROST-ED25519-SHA512-v1"

const (
	// ScalarSize is the size of an encoded scalar.
	ScalarSize = 32
	// ElementSize is the size of an encoded group element.
	ElementSize = 32
	// SignatureSize is the size of an aggregate signature, R || z.
	SignatureSize = 64
)

var (
	errIdentity       = errors.New("point is the identity element")
	errNonCanonical   = errors.New("non-canonical encoding")
	errNotPrimeOrder  = errors.New("point is not in the prime-order subgroup")
	errZeroIdentifier = errors.New("identifier 0 is not allowed")
)

// minusOne is L-1, the scalar -1 mod L.
var minusOne = edwards25519.NewScalar().Negate(scalarOne())

func scalarOne() *edwards25519.Scalar {
	var b [ScalarSize]byte
	b[0] = 1
	s, err := edwards25519.NewScalar().SetCanonicalBytes(b[:])
	if err != nil {
		panic("threshold: encoding of 1 rejected: " + err.Error())
	}
	return s
}

// identifierScalar returns the identifier id as a scalar. Its encoding is
// SerializeScalar(id) of RFC 9591, Section 6.1: 32 bytes, little-endian.
func identifierScalar(id uint16) *edwards25519.Scalar {
	var b [ScalarSize]byte
	binary.LittleEndian.PutUint16(b[:], id)
	s, err := edwards25519.NewScalar().SetCanonicalBytes(b[:])
	if err != nil {
		panic("threshold: encoding of a small identifier rejected: " + err.Error())
	}
	return s
}

// decodeScalar is DeserializeScalar of RFC 9591, Section 6.1: it rejects an
// encoding that is not 32 bytes or not reduced mod L.
func decodeScalar(b []byte) (*edwards25519.Scalar, error) {
	if len(b) != ScalarSize {
		return nil, fmt.Errorf("scalar is %d bytes, want %d", len(b), ScalarSize)
	}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(b)
	if err != nil {
		// The bytes may be a secret: never quote them.
		return nil, fmt.Errorf("scalar: %w", errNonCanonical)
	}
	return s, nil
}

// decodeElement is DeserializeElement of RFC 9591, Section 6.1: it decodes as
// RFC 8032, Section 5.1.3, and rejects a non-canonical encoding (one that does
// not re-encode to the same bytes), the identity element, and a point outside
// the prime-order subgroup.
func decodeElement(b []byte) (*edwards25519.Point, error) {
	if len(b) != ElementSize {
		return nil, fmt.Errorf("point is %d bytes, want %d", len(b), ElementSize)
	}
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		return nil, fmt.Errorf("point %x: %w", b, err)
	}
	// SetBytes accepts y >= p and x = 0 with the sign bit set; RFC 8032
	// rejects both, and so do we, so that every element has one encoding.
	if !canonicalElement(p, b) {
		return nil, fmt.Errorf("point %x: %w", b, errNonCanonical)
	}
	if err := checkElement(p); err != nil {
		return nil, fmt.Errorf("point %x: %w", b, err)
	}
	return p, nil
}

// canonicalElement reports whether b, which SetBytes decoded to p, is the
// encoding p.Bytes() returns, without the field inversion Bytes costs.
// SetBytes reads y mod p from the low 255 bits and picks the x whose parity
// is the sign bit, except that x = 0 has no odd twin; Bytes writes y reduced
// and x's parity. So the two agree exactly when the low 255 bits are y < p
// (a field element's Bytes is its reduced encoding, no inversion) and not x
// = 0 with the sign bit set (p's X is 0 exactly when x = X/Z is: Z is never
// 0). TestCanonicalElementMatchesBytes holds it to p.Bytes().
func canonicalElement(p *edwards25519.Point, b []byte) bool {
	var y [ElementSize]byte
	copy(y[:], b)
	y[ElementSize-1] &= 0x7f
	fe, err := new(field.Element).SetBytes(y[:])
	if err != nil || string(fe.Bytes()) != string(y[:]) {
		return false
	}
	if b[ElementSize-1]&0x80 != 0 {
		x, _, _, _ := p.ExtendedCoordinates()
		if x.Equal(new(field.Element)) == 1 {
			return false
		}
	}
	return true
}

// checkElement rejects the identity and points with a small-order component.
//
// A point P is in the subgroup of order L exactly when [L]P is the identity.
// L is not a canonical scalar, so we check the equivalent [L-1]P == -P. For
// P = P' + T with T of order 2, 4 or 8, [L-1]P = -P' + [4]T (L = 5 mod 8),
// which differs from -P = -P' - T because [5]T is not the identity.
// The computation is variable-time: it only ever sees public points.
func checkElement(p *edwards25519.Point) error {
	if p.Equal(edwards25519.NewIdentityPoint()) == 1 {
		return errIdentity
	}
	q := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(minusOne, p, edwards25519.NewScalar())
	if q.Add(q, p).Equal(edwards25519.NewIdentityPoint()) != 1 {
		return errNotPrimeOrder
	}
	return nil
}

// hashToScalar returns SHA-512(parts...) reduced mod L, read as a 64-byte
// little-endian integer: the scalar form of H1, H2 and H3 in RFC 9591,
// Section 6.1.
func hashToScalar(parts ...[]byte) *edwards25519.Scalar {
	h := sha512.New()
	for _, p := range parts {
		h.Write(p)
	}
	var digest [sha512.Size]byte
	s, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
	if err != nil {
		panic("threshold: SHA-512 output rejected: " + err.Error())
	}
	return s
}

// h1 is the binding-factor hash: H("FROST-ED25519-SHA512-v1" || "rho" || m).
func h1(m []byte) *edwards25519.Scalar {
	return hashToScalar([]byte(contextString+"rho"), m)
}

// h2 is the challenge hash. Unlike the others it has no prefix: it is
// SHA-512(m) reduced mod L, exactly the k of RFC 8032, Section 5.1.7.
func h2(m ...[]byte) *edwards25519.Scalar {
	return hashToScalar(m...)
}

// h3 is the nonce hash: H("FROST-ED25519-SHA512-v1" || "nonce" || m).
func h3(m ...[]byte) *edwards25519.Scalar {
	return hashToScalar(append([][]byte{[]byte(contextString + "nonce")}, m...)...)
}

// h4 is the message hash: SHA-512("FROST-ED25519-SHA512-v1" || "msg" || m),
// not reduced.
func h4(m []byte) [sha512.Size]byte {
	h := sha512.New()
	h.Write([]byte(contextString + "msg"))
	h.Write(m)
	var out [sha512.Size]byte
	h.Sum(out[:0])
	return out
}

// h5 is the commitment-list hash: SHA-512("FROST-ED25519-SHA512-v1" || "com"
// || m), not reduced.
func h5(m []byte) [sha512.Size]byte {
	h := sha512.New()
	h.Write([]byte(contextString + "com"))
	h.Write(m)
	var out [sha512.Size]byte
	h.Sum(out[:0])
	return out
}
