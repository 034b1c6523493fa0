package threshold

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"

	"filippo.io/edwards25519"
	"go.dedis.ch/kyber/v3"
	kybered "go.dedis.ch/kyber/v3/group/edwards25519"
	"go.dedis.ch/kyber/v3/share"
)

// Dealing is the output of Deal: the group key and one key share per
// participant, Shares[i] for identifier i+1.
type Dealing struct {
	Group  *GroupKey
	Shares []*KeyShare
}

// suite is kyber's edwards25519 group: the same curve, base point and
// encodings as filippo.io/edwards25519.
var suite = kybered.NewBlakeSHA256Ed25519()

// Deal splits the ed25519 key with the given 32-byte seed into n Shamir
// shares, any m of which sign (RFC 9591, Appendix C, with the Feldman
// commitments of Appendix C.2).
//
// The shared secret is the scalar RFC 8032, Section 5.1.5 derives from the
// seed: SHA-512(seed)[:32], clamped, reduced mod L, so the group public key is
// the seed's ed25519 public key. The polynomial's other m-1 coefficients are
// drawn from random (crypto/rand.Reader if nil) through kyber's share
// package; participant i (kyber's index i-1) receives f(i).
//
// Deal refuses thresholds that CheckThreshold refuses, and checks every
// share with VerifyShare before returning.
func Deal(seed []byte, m, n int, random io.Reader) (*Dealing, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("deal: seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	if err := CheckThreshold(m, n); err != nil {
		return nil, fmt.Errorf("deal: %w", err)
	}
	if random == nil {
		random = rand.Reader
	}

	h := sha512.Sum512(seed)
	defer clear(h[:])
	secret, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	if err != nil {
		return nil, fmt.Errorf("deal: %w", err)
	}
	defer secret.Set(edwards25519.NewScalar())
	return dealScalar(secret, m, n, random)
}

// DealScalar is Deal for a key given as its secret scalar (a key with no
// RFC 8032 seed, such as one rebuilt by Reassemble): the group public key
// is secret·B. It refuses a zero secret.
func DealScalar(secret *edwards25519.Scalar, m, n int, random io.Reader) (*Dealing, error) {
	if secret == nil || secret.Equal(edwards25519.NewScalar()) == 1 {
		return nil, errors.New("deal: the secret scalar is missing or zero")
	}
	if err := CheckThreshold(m, n); err != nil {
		return nil, fmt.Errorf("deal: %w", err)
	}
	if random == nil {
		random = rand.Reader
	}
	return dealScalar(secret, m, n, random)
}

func dealScalar(secret *edwards25519.Scalar, m, n int, random io.Reader) (*Dealing, error) {
	ks, err := scalarToKyber(secret)
	if err != nil {
		return nil, fmt.Errorf("deal: %w", err)
	}

	stream := &readerStream{r: random}
	poly := share.NewPriPoly(suite, m, ks, stream)
	defer func() {
		for _, c := range poly.Coefficients() {
			c.Zero()
		}
	}()
	if stream.err != nil {
		return nil, fmt.Errorf("deal: read randomness: %w", stream.err)
	}

	_, kcommits := poly.Commit(suite.Point().Base()).Info()
	commits := make([]*edwards25519.Point, len(kcommits))
	for j, kc := range kcommits {
		if commits[j], err = pointFromKyber(kc); err != nil {
			return nil, fmt.Errorf("deal: commitment %d: %w", j, err)
		}
	}
	group, err := NewGroupKey(n, commits)
	if err != nil {
		return nil, fmt.Errorf("deal: %w", err)
	}
	pub := ed25519.PublicKey(new(edwards25519.Point).ScalarBaseMult(secret).Bytes())

	d := &Dealing{Group: group, Shares: make([]*KeyShare, n)}
	for _, ps := range poly.Shares(n) {
		s, err := scalarFromKyber(ps.V)
		ps.V.Zero()
		if err != nil {
			return nil, fmt.Errorf("deal: share %d: %w", ps.I+1, err)
		}
		ks, err := NewKeyShare(uint16(ps.I+1), s, group)
		s.Set(edwards25519.NewScalar())
		if err != nil {
			return nil, fmt.Errorf("deal: %w", err)
		}
		if err := VerifyShare(ks, pub); err != nil {
			return nil, fmt.Errorf("deal: %w", err)
		}
		d.Shares[ps.I] = ks
	}
	return d, nil
}

// readerStream is the cipher.Stream kyber draws coefficients from: it XORs
// bytes read from r, and remembers the first read error instead of
// panicking as kyber's own random.New does. After an error the stream is
// not random; Deal discards its output.
type readerStream struct {
	r   io.Reader
	err error
}

func (s *readerStream) XORKeyStream(dst, src []byte) {
	buf := make([]byte, len(src))
	if _, err := io.ReadFull(s.r, buf); err != nil {
		if s.err == nil {
			s.err = err
		}
		// kyber's Pick loops until it draws a non-zero scalar below L:
		// give it one (0x0101…01 < L) so that Deal can return the error.
		for i := range buf {
			buf[i] = 1
		}
	}
	for i := range src {
		dst[i] = src[i] ^ buf[i]
	}
	clear(buf)
}

// scalarToKyber converts through the canonical 32-byte little-endian
// encoding, which both libraries share.
func scalarToKyber(s *edwards25519.Scalar) (kyber.Scalar, error) {
	k := suite.Scalar()
	b := s.Bytes()
	defer clear(b)
	if err := k.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("convert scalar to kyber: %w", err)
	}
	return k, nil
}

// scalarFromKyber converts through the canonical encoding and rejects a
// non-canonical one.
func scalarFromKyber(k kyber.Scalar) (*edwards25519.Scalar, error) {
	b, err := k.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("convert scalar from kyber: %w", err)
	}
	defer clear(b)
	s, err := decodeScalar(b)
	if err != nil {
		return nil, fmt.Errorf("convert scalar from kyber: %w", err)
	}
	return s, nil
}

// pointToKyber converts through the RFC 8032 encoding.
func pointToKyber(p *edwards25519.Point) (kyber.Point, error) {
	k := suite.Point()
	if err := k.UnmarshalBinary(p.Bytes()); err != nil {
		return nil, fmt.Errorf("convert point to kyber: %w", err)
	}
	return k, nil
}

// pointFromKyber converts through the RFC 8032 encoding, with the checks of
// DeserializeElement.
func pointFromKyber(k kyber.Point) (*edwards25519.Point, error) {
	b, err := k.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("convert point from kyber: %w", err)
	}
	p, err := decodeElement(b)
	if err != nil {
		return nil, fmt.Errorf("convert point from kyber: %w", err)
	}
	return p, nil
}
