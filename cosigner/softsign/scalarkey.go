package softsign

import (
	"context"
	"crypto/ed25519"
	"crypto/sha512"

	"filippo.io/edwards25519"
)

// scalarPrefixDomain separates the nonce prefix of a scalar key from any
// other hash of the scalar.
const scalarPrefixDomain = "cosigner/scalar-key-prefix"

// scalarKey is a ChainKey held in this process as a bare secret scalar s
// (a key with no RFC 8032 seed: reassembled from shares, or from a DKG).
type scalarKey struct {
	s      edwards25519.Scalar
	prefix [32]byte
	pub    [32]byte
}

// ScalarKey returns the secret scalar s as a ChainKey. It signs per RFC
// 8032 with A = s·B: r = SHA-512(prefix || M) mod L, R = r·B,
// k = SHA-512(R || A || M) mod L, S = r + k·s; any ed25519 verifier accepts
// the signatures.
//
// RFC 8032 takes the nonce prefix from the seed's hash; a scalar has no
// seed, so prefix = SHA-512("cosigner/scalar-key-prefix" || s)[32:].
// Deterministic nonces are safe here as in RFC 8032: r is a secret
// pseudo-random function of the message, so the same message always gets
// the same r (and the same signature) and two different messages get
// unrelated r, which is all that keeps s from being solved for; no random
// source can fail or repeat. The domain tag keeps the prefix unrelated to
// any other value derived from s. s is copied.
func ScalarKey(s *edwards25519.Scalar) ChainKey {
	k := &scalarKey{}
	k.s.Set(s)
	h := sha512.New()
	h.Write([]byte(scalarPrefixDomain))
	h.Write(s.Bytes())
	var d [64]byte
	h.Sum(d[:0])
	copy(k.prefix[:], d[32:])
	clear(d[:])
	copy(k.pub[:], new(edwards25519.Point).ScalarBaseMult(s).Bytes())
	return k
}

func (k *scalarKey) Public() ed25519.PublicKey { return append(ed25519.PublicKey(nil), k.pub[:]...) }

func (k *scalarKey) Sign(_ context.Context, msg []byte) ([]byte, error) {
	h := sha512.New()
	h.Write(k.prefix[:])
	h.Write(msg)
	var d [64]byte
	r, err := new(edwards25519.Scalar).SetUniformBytes(h.Sum(d[:0]))
	if err != nil {
		return nil, err
	}
	R := new(edwards25519.Point).ScalarBaseMult(r).Bytes()
	h.Reset()
	h.Write(R)
	h.Write(k.pub[:])
	h.Write(msg)
	c, err := new(edwards25519.Scalar).SetUniformBytes(h.Sum(d[:0]))
	if err != nil {
		return nil, err
	}
	S := new(edwards25519.Scalar).MultiplyAdd(c, &k.s, r)
	sig := make([]byte, 0, ed25519.SignatureSize)
	sig = append(sig, R...)
	return append(sig, S.Bytes()...), nil
}

// Ready is always nil: the key is in memory.
func (*scalarKey) Ready() error { return nil }
