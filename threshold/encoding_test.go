package threshold

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"

	"filippo.io/edwards25519"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// smallOrder are encodings of points of order 1, 2, 4 and 8.
var smallOrder = []string{
	"0100000000000000000000000000000000000000000000000000000000000000",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0000000000000000000000000000000000000000000000000000000000000080",
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
}

func TestDecodeElement(t *testing.T) {
	b := edwards25519.NewGeneratorPoint().Bytes()
	if _, err := decodeElement(b); err != nil {
		t.Fatalf("base point: %v", err)
	}

	for _, s := range smallOrder {
		enc := mustHex(t, s)
		p, err := new(edwards25519.Point).SetBytes(enc)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) != 1 {
			t.Fatalf("%s is not of small order", s)
		}
		if _, err := decodeElement(enc); !errors.Is(err, errIdentity) && !errors.Is(err, errNotPrimeOrder) {
			t.Errorf("small-order point %s: %v", s, err)
		}
		// B + T has a torsion component: refused.
		mixed := new(edwards25519.Point).Add(edwards25519.NewGeneratorPoint(), p)
		if _, err := decodeElement(mixed.Bytes()); s != smallOrder[0] && !errors.Is(err, errNotPrimeOrder) {
			t.Errorf("B + %s: %v", s, err)
		}
	}

	for name, s := range map[string]string{
		"identity with sign bit": "0100000000000000000000000000000000000000000000000000000000000080",
		"y = p + 1":              "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"y = -1 with sign bit":   "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	} {
		if _, err := decodeElement(mustHex(t, s)); !errors.Is(err, errNonCanonical) {
			t.Errorf("%s: %v, want non-canonical", name, err)
		}
	}
	if _, err := decodeElement(b[:31]); err == nil {
		t.Error("31-byte point accepted")
	}
	notOnCurve := mustHex(t, "0200000000000000000000000000000000000000000000000000000000000000")
	if _, err := decodeElement(notOnCurve); err == nil {
		t.Error("y = 2 accepted")
	}
}

func TestDecodeScalar(t *testing.T) {
	for name, s := range map[string]string{
		"L":         "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010",
		"L + 1":     "eed3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010",
		"2^256 - 1": "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	} {
		if _, err := decodeScalar(mustHex(t, s)); !errors.Is(err, errNonCanonical) {
			t.Errorf("%s: %v, want non-canonical", name, err)
		}
	}
	if _, err := decodeScalar(mustHex(t, "ecd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")); err != nil {
		t.Errorf("L - 1: %v", err)
	}
}

// vectorEncodings returns encodings of each type built from the RFC 9591
// vectors: the fuzzers' seeds.
func vectorEncodings(t testing.TB) (keyShares, groupKeys, commitments, sigShares [][]byte) {
	v := loadVectors(t)
	group, shares := vectorGroup(t, v)
	groupKeys = append(groupKeys, group.Bytes())
	var list []Commitment
	nonces := map[uint16]*Nonce{}
	for _, out := range v.RoundOne.Outputs {
		n, err := NewNonce(shares[out.ID], bytes.NewReader(append(append([]byte(nil), out.HidingRandomness...), out.BindingRandomness...)))
		if err != nil {
			t.Fatal(err)
		}
		nonces[out.ID] = n
		list = append(list, n.Commitment())
		commitments = append(commitments, n.Commitment().Bytes())
	}
	for id := uint16(1); id <= 3; id++ {
		keyShares = append(keyShares, shares[id].Bytes())
	}
	pkg, err := NewSigningPackage(group, v.Inputs.Message, list)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		s, err := SignShare(shares[c.ID()], nonces[c.ID()], pkg)
		if err != nil {
			t.Fatal(err)
		}
		sigShares = append(sigShares, s.Bytes())
	}
	return
}

func TestEncodingVectors(t *testing.T) {
	keyShares, groupKeys, commitments, sigShares := vectorEncodings(t)
	v := loadVectors(t)

	// Pin the formats.
	wantCommitment := "0001" + hex.EncodeToString(v.RoundOne.Outputs[0].HidingCommitment) + hex.EncodeToString(v.RoundOne.Outputs[0].BindingCommitment)
	if got := hex.EncodeToString(commitments[0]); got != wantCommitment {
		t.Errorf("commitment encoding %s, want %s", got, wantCommitment)
	}
	wantSigShare := "0003" + hex.EncodeToString(v.RoundTwo.Outputs[1].SigShare)
	if got := hex.EncodeToString(sigShares[1]); got != wantSigShare {
		t.Errorf("signature share encoding %s, want %s", got, wantSigShare)
	}
	wantGroup := "010302" + hex.EncodeToString(v.Inputs.GroupPublicKey)
	if got := hex.EncodeToString(groupKeys[0]); !strings.HasPrefix(got, wantGroup) || len(groupKeys[0]) != 3+64 {
		t.Errorf("group key encoding %s, want %s…", got, wantGroup)
	}
	wantKeyShare := "010002" + hex.EncodeToString(v.Inputs.Shares[1].Share) + hex.EncodeToString(groupKeys[0])
	if got := hex.EncodeToString(keyShares[1]); got != wantKeyShare {
		t.Errorf("key share encoding %s, want %s", got, wantKeyShare)
	}

	for _, b := range keyShares {
		k, err := DecodeKeyShare(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyShare(k, ed25519.PublicKey(v.Inputs.GroupPublicKey)); err != nil {
			t.Error(err)
		}
		if !bytes.Equal(k.Bytes(), b) {
			t.Error("key share does not round trip")
		}
	}
	for _, b := range groupKeys {
		g, err := DecodeGroupKey(b)
		if err != nil || !bytes.Equal(g.Bytes(), b) {
			t.Errorf("group key round trip: %v", err)
		}
	}
	for _, b := range commitments {
		c, err := DecodeCommitment(b)
		if err != nil || !bytes.Equal(c.Bytes(), b) {
			t.Errorf("commitment round trip: %v", err)
		}
	}
	for _, b := range sigShares {
		s, err := DecodeSignatureShare(b)
		if err != nil || !bytes.Equal(s.Bytes(), b) {
			t.Errorf("signature share round trip: %v", err)
		}
	}
}

func TestEncodingJSON(t *testing.T) {
	keyShares, groupKeys, commitments, sigShares := vectorEncodings(t)
	k, _ := DecodeKeyShare(keyShares[0])
	g, _ := DecodeGroupKey(groupKeys[0])
	c, _ := DecodeCommitment(commitments[0])
	s, _ := DecodeSignatureShare(sigShares[0])

	type doc struct {
		KeyShare   *KeyShare
		Group      *GroupKey
		Commitment Commitment
		Share      SignatureShare
	}
	in := doc{k, g, c, s}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out doc
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.KeyShare.Bytes(), k.Bytes()) || !out.Group.Equal(g) || !out.Commitment.Equal(c) || !bytes.Equal(out.Share.Bytes(), s.Bytes()) {
		t.Errorf("JSON round trip changed the values: %s", data)
	}

	var bad doc
	if err := json.Unmarshal([]byte(`{"Commitment": "AAAA"}`), &bad); err == nil {
		t.Error("a 3-byte commitment decoded from JSON")
	}
	if err := json.Unmarshal([]byte(`{"Share": "not base64"}`), &bad); err == nil {
		t.Error("bad base64 decoded")
	}
	if _, err := (Commitment{}).MarshalText(); err == nil {
		t.Error("the zero Commitment encoded")
	}
	if _, err := (SignatureShare{}).MarshalText(); err == nil {
		t.Error("a signature share with identifier 0 encoded")
	}
}

func TestDecodeRejects(t *testing.T) {
	keyShares, groupKeys, commitments, sigShares := vectorEncodings(t)
	ks, gk, cm, ss := keyShares[0], groupKeys[0], commitments[0], sigShares[0]
	identity := mustHex(t, smallOrder[0])
	order8 := mustHex(t, smallOrder[4])
	nonCanonicalScalar := mustHex(t, "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
	with := func(b []byte, off int, patch []byte) []byte {
		out := bytes.Clone(b)
		copy(out[off:], patch)
		return out
	}

	for _, tc := range []struct {
		name   string
		decode func([]byte) error
		in     []byte
	}{
		{"commitment short", decodeCommitmentErr, cm[:65]},
		{"commitment long", decodeCommitmentErr, append(bytes.Clone(cm), 0)},
		{"commitment id 0", decodeCommitmentErr, with(cm, 0, []byte{0, 0})},
		{"commitment identity hiding", decodeCommitmentErr, with(cm, 2, identity)},
		{"commitment small-order binding", decodeCommitmentErr, with(cm, 34, order8)},
		{"signature share short", decodeSigShareErr, ss[:33]},
		{"signature share id 0", decodeSigShareErr, with(ss, 0, []byte{0, 0})},
		{"signature share non-canonical", decodeSigShareErr, with(ss, 2, nonCanonicalScalar)},
		{"group key empty", decodeGroupKeyErr, nil},
		{"group key version", decodeGroupKeyErr, with(gk, 0, []byte{2})},
		{"group key threshold 1", decodeGroupKeyErr, append([]byte{1, 3, 1}, gk[3:35]...)},
		{"group key minority", decodeGroupKeyErr, with(gk, 1, []byte{4})},
		{"group key truncated", decodeGroupKeyErr, gk[:len(gk)-1]},
		{"group key identity", decodeGroupKeyErr, with(gk, 35, identity)},
		{"key share version", decodeKeyShareErr, with(ks, 0, []byte{0})},
		{"key share id 0", decodeKeyShareErr, with(ks, 1, []byte{0, 0})},
		{"key share id beyond N", decodeKeyShareErr, with(ks, 1, []byte{0, 4})},
		{"key share non-canonical secret", decodeKeyShareErr, with(ks, 3, nonCanonicalScalar)},
		{"key share zero secret", decodeKeyShareErr, with(ks, 3, make([]byte, 32))},
		{"key share short", decodeKeyShareErr, ks[:34]},
		{"key share bad group", decodeKeyShareErr, with(ks, 35+3, order8)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.decode(tc.in); err == nil {
				t.Errorf("%x decoded", tc.in)
			}
		})
	}

	t.Run("error does not quote the secret", func(t *testing.T) {
		secret := bytes.Repeat([]byte{0xff}, 32)
		_, err := DecodeKeyShare(with(ks, 3, secret))
		if err == nil || strings.Contains(err.Error(), hex.EncodeToString(secret)) {
			t.Errorf("error %v", err)
		}
	})

	t.Run("receiver unchanged on error", func(t *testing.T) {
		c, _ := DecodeCommitment(cm)
		before := c
		if err := c.UnmarshalBinary(cm[:10]); err == nil || !c.Equal(before) {
			t.Error("failed UnmarshalBinary changed the commitment")
		}
	})
}

func decodeCommitmentErr(b []byte) error { _, err := DecodeCommitment(b); return err }
func decodeSigShareErr(b []byte) error   { _, err := DecodeSignatureShare(b); return err }
func decodeGroupKeyErr(b []byte) error   { _, err := DecodeGroupKey(b); return err }
func decodeKeyShareErr(b []byte) error   { _, err := DecodeKeyShare(b); return err }

func FuzzDecodeKeyShare(f *testing.F) {
	keyShares, _, _, _ := vectorEncodings(f)
	for _, b := range keyShares {
		f.Add(b)
		f.Add(b[:len(b)-1])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := DecodeKeyShare(b)
		if err != nil {
			return
		}
		if !bytes.Equal(k.Bytes(), b) {
			t.Errorf("%x re-encodes to %x", b, k.Bytes())
		}
		text, err := k.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var k2 KeyShare
		if err := k2.UnmarshalText(text); err != nil || !bytes.Equal(k2.Bytes(), b) {
			t.Errorf("text round trip: %v", err)
		}
	})
}

func FuzzDecodeGroupKey(f *testing.F) {
	_, groupKeys, _, _ := vectorEncodings(f)
	for _, b := range groupKeys {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := DecodeGroupKey(b)
		if err != nil {
			return
		}
		if !bytes.Equal(g.Bytes(), b) {
			t.Errorf("%x re-encodes to %x", b, g.Bytes())
		}
	})
}

func FuzzDecodeCommitment(f *testing.F) {
	_, _, commitments, _ := vectorEncodings(f)
	for _, b := range commitments {
		f.Add(b)
	}
	for _, s := range smallOrder {
		f.Add(append(append([]byte{0, 1}, mustHex(f, s)...), commitments[0][34:]...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommitment(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Bytes(), b) {
			t.Errorf("%x re-encodes to %x", b, c.Bytes())
		}
		if !bytes.Equal(c.Hiding().Bytes(), b[2:34]) || !bytes.Equal(c.Binding().Bytes(), b[34:]) {
			t.Error("decoded points differ from their encodings")
		}
	})
}

func FuzzCommitmentFromEighths(f *testing.F) {
	_, seed := cometKey(f)
	d, err := Deal(seed, 2, 3, nil)
	if err != nil {
		f.Fatal(err)
	}
	n, err := NewNonce(d.Shares[0], nil)
	if err != nil {
		f.Fatal(err)
	}
	h8, b8, _ := n.Commitment().Eighths()
	f.Add(uint16(1), h8, b8)
	for _, s := range smallOrder {
		f.Add(uint16(1), mustHex(f, s), b8)
	}
	f.Fuzz(func(t *testing.T, id uint16, h, b []byte) {
		c, err := CommitmentFromEighths(id, h, b)
		if err != nil {
			return
		}
		// The result is a commitment DecodeCommitment accepts, prime-order
		// checks included, and it keeps the eighths it came from.
		again, err := DecodeCommitment(c.Bytes())
		if err != nil || !again.Equal(c) {
			t.Fatalf("CommitmentFromEighths(%d, %x, %x) = %x, which DecodeCommitment refuses: %v", id, h, b, c.Bytes(), err)
		}
		gh, gb, ok := c.Eighths()
		if !ok || !bytes.Equal(gh, h) || !bytes.Equal(gb, b) {
			t.Fatal("eighths not kept")
		}
	})
}

func FuzzDecodeSignatureShare(f *testing.F) {
	_, _, _, sigShares := vectorEncodings(f)
	for _, b := range sigShares {
		f.Add(b)
	}
	f.Add(append([]byte{0, 1}, mustHex(f, "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")...))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSignatureShare(b)
		if err != nil {
			return
		}
		if !bytes.Equal(s.Bytes(), b) {
			t.Errorf("%x re-encodes to %x", b, s.Bytes())
		}
	})
}

// TestCanonicalElementMatchesBytes holds decodeElement's canonical check to
// its definition, p.Bytes() == b, on every encoding SetBytes accepts among:
// y in 0..40, p-40..p-1 and all 19 non-canonical y in p..2^255-1, each with
// both sign bits, the small-order points, and random bytes.
func TestCanonicalElementMatchesBytes(t *testing.T) {
	var encs [][]byte
	le := func(v *big.Int) []byte {
		b := make([]byte, ElementSize)
		v.FillBytes(b)
		slices.Reverse(b)
		return b
	}
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	for k := int64(0); k <= 40; k++ {
		encs = append(encs, le(big.NewInt(k)), le(new(big.Int).Sub(p, big.NewInt(k+1))))
	}
	for k := int64(0); k < 19; k++ {
		encs = append(encs, le(new(big.Int).Add(p, big.NewInt(k))))
	}
	for _, b := range slices.Clone(encs) {
		signed := slices.Clone(b)
		signed[ElementSize-1] |= 0x80
		encs = append(encs, signed)
	}
	for _, s := range smallOrder {
		encs = append(encs, mustHex(t, s))
	}
	for range 4000 {
		b := make([]byte, ElementSize)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		encs = append(encs, b)
	}
	decoded, rejected := 0, 0
	for _, b := range encs {
		pt, err := new(edwards25519.Point).SetBytes(b)
		if err != nil {
			continue
		}
		decoded++
		want := string(pt.Bytes()) == string(b)
		if !want {
			rejected++
		}
		if got := canonicalElement(pt, b); got != want {
			t.Errorf("%x: canonicalElement %t, Bytes round trip %t", b, got, want)
		}
	}
	// Some of the edge encodings are on the curve and not canonical (y = p
	// + 1 is y = 1, the identity; y = 1 and y = p - 1 with the sign bit).
	if decoded < 2000 || rejected < 3 {
		t.Fatalf("only %d encodings decoded, %d of them non-canonical: the test checks too little", decoded, rejected)
	}
}

// TestEncodePointsMatchesBytes holds encodePoints, the encoding of several
// points with one field inversion, to Point.Bytes: for random points (with
// Z not 1, as a scalar multiplication leaves them), the base point, the
// identity and the small-order points, one to four at a time.
func TestEncodePointsMatchesBytes(t *testing.T) {
	points := []*edwards25519.Point{edwards25519.NewGeneratorPoint(), edwards25519.NewIdentityPoint()}
	for _, s := range smallOrder {
		p, err := new(edwards25519.Point).SetBytes(mustHex(t, s))
		if err != nil {
			t.Fatal(err)
		}
		// Adding B moves Z off 1, then the torsion point back onto it.
		q := new(edwards25519.Point).Add(p, edwards25519.NewGeneratorPoint())
		points = append(points, p, q.Subtract(q, edwards25519.NewGeneratorPoint()))
	}
	for range 200 {
		var seed [64]byte
		if _, err := rand.Read(seed[:]); err != nil {
			t.Fatal(err)
		}
		k, err := edwards25519.NewScalar().SetUniformBytes(seed[:])
		if err != nil {
			t.Fatal(err)
		}
		points = append(points, new(edwards25519.Point).ScalarBaseMult(k))
	}
	for i := range points {
		n := 1 + i%maxEncodePoints
		pts := make([]*edwards25519.Point, n)
		out := make([][]byte, n)
		for j := range pts {
			pts[j] = points[(i*7+j*3)%len(points)]
			out[j] = make([]byte, ElementSize)
		}
		encodePoints(out, pts...)
		for j, p := range pts {
			if !bytes.Equal(out[j], p.Bytes()) {
				t.Fatalf("encodePoints, point %d of %d: %x, Bytes %x", j, n, out[j], p.Bytes())
			}
		}
	}
}

// TestCommitmentFromEighths checks the cofactor-cleared decoding: a
// commitment NewNonce made decodes from its eighths to the same commitment
// (D_i = [8](D_i/8)); adding a small-order point to an eighth changes
// nothing (the torsion is cleared); a small-order eighth, a non-canonical,
// short or off-curve encoding and identifier 0 are refused.
func TestCommitmentFromEighths(t *testing.T) {
	_, seed := cometKey(t)
	d, err := Deal(seed, 2, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewNonce(d.Shares[1], nil)
	if err != nil {
		t.Fatal(err)
	}
	c := n.Commitment()
	h8, b8, ok := c.Eighths()
	if !ok {
		t.Fatal("NewNonce's commitment has no eighths")
	}
	for i, pair := range [][2][]byte{{h8, c.enc[:ElementSize]}, {b8, c.enc[ElementSize:]}} {
		p, err := new(edwards25519.Point).SetBytes(pair[0])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(new(edwards25519.Point).MultByCofactor(p).Bytes(), pair[1]) {
			t.Fatalf("point %d: [8](eighth) is not the commitment's point", i)
		}
	}
	got, err := CommitmentFromEighths(2, h8, b8)
	if err != nil || !got.Equal(c) {
		t.Fatalf("CommitmentFromEighths: %v, %v; want %x", got.Bytes(), err, c.Bytes())
	}
	if gh, gb, ok := got.Eighths(); !ok || !bytes.Equal(gh, h8) || !bytes.Equal(gb, b8) {
		t.Fatal("decoded commitment lost its eighths")
	}
	if _, _, ok := mustDecodeCommitment(t, c.Bytes()).Eighths(); ok {
		t.Fatal("DecodeCommitment's commitment claims eighths")
	}
	// A torsion component in an eighth is cleared: the same D_i, E_i.
	for _, s := range smallOrder {
		tor, err := new(edwards25519.Point).SetBytes(mustHex(t, s))
		if err != nil {
			t.Fatal(err)
		}
		p, _ := new(edwards25519.Point).SetBytes(h8)
		moved := new(edwards25519.Point).Add(p, tor).Bytes()
		if got, err := CommitmentFromEighths(2, moved, b8); err != nil || !got.Equal(c) {
			t.Errorf("eighth + small-order %s: %v, equal %t", s, err, got.Equal(c))
		}
		// A small-order eighth makes the identity: refused.
		if _, err := CommitmentFromEighths(2, h8, mustHex(t, s)); !errors.Is(err, errIdentity) {
			t.Errorf("small-order eighth %s: %v, want the identity refused", s, err)
		}
	}
	for name, tc := range map[string]struct {
		id   uint16
		h, b []byte
	}{
		"id 0":                         {0, h8, b8},
		"short":                        {2, h8[:31], b8},
		"not on the curve":             {2, h8, mustHex(t, "0200000000000000000000000000000000000000000000000000000000000000")},
		"non-canonical (y = p + 1)":    {2, mustHex(t, "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), b8},
		"non-canonical (-1 with sign)": {2, h8, mustHex(t, "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")},
	} {
		if _, err := CommitmentFromEighths(tc.id, tc.h, tc.b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func mustDecodeCommitment(t *testing.T, b []byte) Commitment {
	t.Helper()
	c, err := DecodeCommitment(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
