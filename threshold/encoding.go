package threshold

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"filippo.io/edwards25519"
)

// The encodings below are what key files and the cosigner RPCs carry. They
// are stable: a change needs a new version byte. Identifiers are 2 bytes,
// big-endian; scalars and points use the ciphersuite's 32-byte encodings
// (RFC 9591, Section 6.1). Text forms are standard base64 of the binary
// forms, so the types embed in JSON as strings.
//
// Every decoder rejects a wrong length, identifier 0, a non-canonical scalar
// or point, the identity, and a point outside the prime-order subgroup, and
// leaves its receiver unchanged on error. What decodes re-encodes to the same
// bytes.

const (
	// CommitmentSize is the size of an encoded Commitment:
	// id (2) || D_i (32) || E_i (32).
	CommitmentSize = 2 + 2*ElementSize
	// SignatureShareSize is the size of an encoded SignatureShare:
	// id (2) || z_i (32).
	SignatureShareSize = 2 + ScalarSize

	groupKeyVersion = 1
	keyShareVersion = 1
	groupHeaderSize = 3 // version, N, M
	keyShareHeader  = 1 + 2 + ScalarSize
)

func decodeID(b []byte) (uint16, error) {
	id := binary.BigEndian.Uint16(b)
	if id == 0 {
		return 0, errZeroIdentifier
	}
	return id, nil
}

// Bytes returns the encoding id || D_i || E_i, CommitmentSize bytes.
func (c Commitment) Bytes() []byte {
	out := make([]byte, CommitmentSize)
	binary.BigEndian.PutUint16(out, c.id)
	copy(out[2:], c.enc[:])
	return out
}

// DecodeCommitment decodes a Commitment encoded by Commitment.Bytes.
func DecodeCommitment(b []byte) (Commitment, error) {
	if len(b) != CommitmentSize {
		return Commitment{}, fmt.Errorf("decode commitment: %d bytes, want %d", len(b), CommitmentSize)
	}
	id, err := decodeID(b)
	if err != nil {
		return Commitment{}, fmt.Errorf("decode commitment: %w", err)
	}
	d, err := decodeElement(b[2 : 2+ElementSize])
	if err != nil {
		return Commitment{}, fmt.Errorf("decode commitment of participant %d: hiding: %w", id, err)
	}
	e, err := decodeElement(b[2+ElementSize:])
	if err != nil {
		return Commitment{}, fmt.Errorf("decode commitment of participant %d: binding: %w", id, err)
	}
	c := Commitment{id: id, hiding: d, binding: e}
	copy(c.enc[:], b[2:])
	return c, nil
}

// MarshalBinary returns c.Bytes().
func (c Commitment) MarshalBinary() ([]byte, error) {
	if !c.valid() {
		return nil, errors.New("encode commitment: empty commitment")
	}
	return c.Bytes(), nil
}

// UnmarshalBinary sets c to DecodeCommitment(b).
func (c *Commitment) UnmarshalBinary(b []byte) error {
	d, err := DecodeCommitment(b)
	if err != nil {
		return err
	}
	*c = d
	return nil
}

// MarshalText returns the base64 of c.Bytes().
func (c Commitment) MarshalText() ([]byte, error) {
	b, err := c.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return base64Encode(b), nil
}

// UnmarshalText decodes the form MarshalText returns.
func (c *Commitment) UnmarshalText(text []byte) error {
	b, err := base64Decode(text)
	if err != nil {
		return fmt.Errorf("decode commitment: %w", err)
	}
	return c.UnmarshalBinary(b)
}

// Bytes returns the encoding id || z_i, SignatureShareSize bytes.
func (s SignatureShare) Bytes() []byte {
	out := make([]byte, SignatureShareSize)
	binary.BigEndian.PutUint16(out, s.ID)
	copy(out[2:], s.Z.Bytes())
	return out
}

// DecodeSignatureShare decodes a SignatureShare encoded by
// SignatureShare.Bytes.
func DecodeSignatureShare(b []byte) (SignatureShare, error) {
	if len(b) != SignatureShareSize {
		return SignatureShare{}, fmt.Errorf("decode signature share: %d bytes, want %d", len(b), SignatureShareSize)
	}
	id, err := decodeID(b)
	if err != nil {
		return SignatureShare{}, fmt.Errorf("decode signature share: %w", err)
	}
	z, err := decodeScalar(b[2:])
	if err != nil {
		return SignatureShare{}, fmt.Errorf("decode signature share of participant %d: %w", id, err)
	}
	s := SignatureShare{ID: id}
	s.Z.Set(z)
	return s, nil
}

// MarshalBinary returns s.Bytes().
func (s SignatureShare) MarshalBinary() ([]byte, error) {
	if s.ID == 0 {
		return nil, fmt.Errorf("encode signature share: %w", errZeroIdentifier)
	}
	return s.Bytes(), nil
}

// UnmarshalBinary sets s to DecodeSignatureShare(b).
func (s *SignatureShare) UnmarshalBinary(b []byte) error {
	d, err := DecodeSignatureShare(b)
	if err != nil {
		return err
	}
	*s = d
	return nil
}

// MarshalText returns the base64 of s.Bytes().
func (s SignatureShare) MarshalText() ([]byte, error) {
	b, err := s.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return base64Encode(b), nil
}

// UnmarshalText decodes the form MarshalText returns.
func (s *SignatureShare) UnmarshalText(text []byte) error {
	b, err := base64Decode(text)
	if err != nil {
		return fmt.Errorf("decode signature share: %w", err)
	}
	return s.UnmarshalBinary(b)
}

// Bytes returns the encoding of the group key:
// version (1) || N (1) || M (1) || C_0 || … || C_{M-1} (32 each).
func (g *GroupKey) Bytes() []byte {
	out := make([]byte, groupHeaderSize, groupHeaderSize+ElementSize*len(g.commitments))
	out[0], out[1], out[2] = groupKeyVersion, byte(g.n), byte(len(g.commitments))
	for _, c := range g.commitments {
		out = append(out, c.Bytes()...)
	}
	return out
}

// DecodeGroupKey decodes a group key encoded by GroupKey.Bytes. It applies
// the checks of NewGroupKey, CheckThreshold included.
func DecodeGroupKey(b []byte) (*GroupKey, error) {
	g, err := decodeGroupKey(b)
	if err != nil {
		return nil, fmt.Errorf("decode group key: %w", err)
	}
	return g, nil
}

func decodeGroupKey(b []byte) (*GroupKey, error) {
	if len(b) < groupHeaderSize {
		return nil, fmt.Errorf("%d bytes, want at least %d", len(b), groupHeaderSize)
	}
	if b[0] != groupKeyVersion {
		return nil, fmt.Errorf("unknown version %d, want %d", b[0], groupKeyVersion)
	}
	n, m := int(b[1]), int(b[2])
	if err := CheckThreshold(m, n); err != nil {
		return nil, err
	}
	if want := groupHeaderSize + m*ElementSize; len(b) != want {
		return nil, fmt.Errorf("%d bytes for %d commitments, want %d", len(b), m, want)
	}
	commits := make([]*edwards25519.Point, m)
	for j := range commits {
		var err error
		off := groupHeaderSize + j*ElementSize
		if commits[j], err = decodeElement(b[off : off+ElementSize]); err != nil {
			return nil, fmt.Errorf("commitment %d: %w", j, err)
		}
	}
	return NewGroupKey(n, commits)
}

// MarshalBinary returns g.Bytes().
func (g *GroupKey) MarshalBinary() ([]byte, error) { return g.Bytes(), nil }

// UnmarshalBinary sets g to DecodeGroupKey(b).
func (g *GroupKey) UnmarshalBinary(b []byte) error {
	d, err := DecodeGroupKey(b)
	if err != nil {
		return err
	}
	g.n, g.commitments, g.pub = d.n, d.commitments, d.pub
	g.sharesOnce, g.shares = sync.Once{}, nil
	return nil
}

// MarshalText returns the base64 of g.Bytes().
func (g *GroupKey) MarshalText() ([]byte, error) { return base64Encode(g.Bytes()), nil }

// UnmarshalText decodes the form MarshalText returns.
func (g *GroupKey) UnmarshalText(text []byte) error {
	b, err := base64Decode(text)
	if err != nil {
		return fmt.Errorf("decode group key: %w", err)
	}
	return g.UnmarshalBinary(b)
}

// Bytes returns the encoding of the key share, secret included:
// version (1) || id (2) || s_i (32) || the group key's Bytes.
func (k *KeyShare) Bytes() []byte {
	g := k.group.Bytes()
	out := make([]byte, keyShareHeader, keyShareHeader+len(g))
	out[0] = keyShareVersion
	binary.BigEndian.PutUint16(out[1:], k.id)
	secret := k.secret.Bytes()
	copy(out[3:], secret)
	clear(secret)
	return append(out, g...)
}

// DecodeKeyShare decodes a key share encoded by KeyShare.Bytes. It applies
// the checks of DecodeGroupKey and NewKeyShare; it does not call
// VerifyShare, which needs the expected public key.
func DecodeKeyShare(b []byte) (*KeyShare, error) {
	if len(b) < keyShareHeader {
		return nil, fmt.Errorf("decode key share: %d bytes, want at least %d", len(b), keyShareHeader)
	}
	if b[0] != keyShareVersion {
		return nil, fmt.Errorf("decode key share: unknown version %d, want %d", b[0], keyShareVersion)
	}
	id, err := decodeID(b[1:])
	if err != nil {
		return nil, fmt.Errorf("decode key share: %w", err)
	}
	secret, err := decodeScalar(b[3:keyShareHeader])
	if err != nil {
		return nil, fmt.Errorf("decode key share %d: secret: %w", id, err)
	}
	defer secret.Set(edwards25519.NewScalar())
	g, err := decodeGroupKey(b[keyShareHeader:])
	if err != nil {
		return nil, fmt.Errorf("decode key share %d: group key: %w", id, err)
	}
	k, err := NewKeyShare(id, secret, g)
	if err != nil {
		return nil, fmt.Errorf("decode %w", err)
	}
	return k, nil
}

// MarshalBinary returns k.Bytes().
func (k *KeyShare) MarshalBinary() ([]byte, error) { return k.Bytes(), nil }

// UnmarshalBinary sets k to DecodeKeyShare(b).
func (k *KeyShare) UnmarshalBinary(b []byte) error {
	d, err := DecodeKeyShare(b)
	if err != nil {
		return err
	}
	k.id, k.group = d.id, d.group
	k.secret.Set(&d.secret)
	k.public.Set(&d.public)
	d.secret.Set(edwards25519.NewScalar())
	return nil
}

// MarshalText returns the base64 of k.Bytes(). It contains the secret.
func (k *KeyShare) MarshalText() ([]byte, error) {
	b := k.Bytes()
	defer clear(b)
	return base64Encode(b), nil
}

// UnmarshalText decodes the form MarshalText returns.
func (k *KeyShare) UnmarshalText(text []byte) error {
	b, err := base64Decode(text)
	if err != nil {
		return errors.New("decode key share: malformed base64")
	}
	defer clear(b)
	return k.UnmarshalBinary(b)
}

func base64Encode(b []byte) []byte {
	out := make([]byte, base64.StdEncoding.EncodedLen(len(b)))
	base64.StdEncoding.Encode(out, b)
	return out
}

func base64Decode(text []byte) ([]byte, error) {
	// Strict: reject non-zero padding bits so that the text form is
	// canonical too.
	out := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Strict().Decode(out, text)
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}
