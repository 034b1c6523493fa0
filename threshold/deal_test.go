package threshold

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"filippo.io/edwards25519"
)

func TestCheckThreshold(t *testing.T) {
	for _, tc := range []struct {
		m, n int
		want string // "" for accepted
	}{
		{2, 2, ""},
		{2, 3, ""},
		{3, 4, ""},
		{3, 5, ""},
		{4, 7, ""},
		{128, 255, ""},
		{1, 1, "at least 2"},
		{1, 3, "at least 2"},
		{0, 3, "at least 2"},
		{2, 4, "disjoint quorums"},
		{3, 6, "disjoint quorums"},
		{3, 7, "disjoint quorums"},
		{127, 254, "disjoint quorums"},
		{4, 3, "cannot exceed"},
		{200, 256, "at most 255"},
	} {
		t.Run(fmt.Sprintf("%d-of-%d", tc.m, tc.n), func(t *testing.T) {
			err := CheckThreshold(tc.m, tc.n)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestDeal(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		t.Fatal(err)
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)

	t.Run("shares", func(t *testing.T) {
		d, err := Deal(seed, 3, 5, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d.Group.PublicKey(), pub) {
			t.Errorf("group key %x, want %x", d.Group.PublicKey(), []byte(pub))
		}
		if d.Group.Threshold() != 3 || d.Group.N() != 5 || len(d.Shares) != 5 {
			t.Fatalf("dealing is %d-of-%d with %d shares", d.Group.Threshold(), d.Group.N(), len(d.Shares))
		}
		for i, s := range d.Shares {
			if s.ID() != uint16(i+1) {
				t.Errorf("share %d has identifier %d", i, s.ID())
			}
			if err := VerifyShare(s, pub); err != nil {
				t.Error(err)
			}
			// Every participant can derive every peer's public share.
			ps, err := d.Group.PublicShare(s.ID())
			if err != nil || ps.Equal(s.PublicShare()) != 1 {
				t.Errorf("public share of %d not derived from the commitments: %v", s.ID(), err)
			}
		}
		// Any 3 shares interpolate to the seed's secret scalar.
		h := sha512.Sum512(seed)
		want, _ := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
		pkg := &SigningPackage{commitments: []Commitment{{id: 2}, {id: 4}, {id: 5}}, lambda: make([]edwards25519.Scalar, 3)}
		pkg.lagrange()
		got := edwards25519.NewScalar()
		for i, c := range pkg.commitments {
			got.MultiplyAdd(&pkg.lambda[i], &d.Shares[c.id-1].secret, got)
		}
		if got.Equal(want) != 1 {
			t.Error("shares 2, 4, 5 do not interpolate to the secret scalar")
		}
		if _, err := d.Group.PublicShare(6); err == nil {
			t.Error("public share of participant 6 of 5")
		}
		if _, err := d.Group.PublicShare(0); err == nil {
			t.Error("public share of participant 0")
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			seed []byte
			m, n int
			want string
		}{
			{"short seed", seed[:31], 2, 3, "seed is 31 bytes"},
			{"64-byte key", append(append([]byte(nil), seed...), pub...), 2, 3, "seed is 64 bytes"},
			{"minority threshold", seed, 2, 4, "disjoint quorums"},
			{"threshold 1", seed, 1, 3, "at least 2"},
			{"too many", seed, 200, 256, "at most 255"},
			{"threshold above N", seed, 4, 3, "cannot exceed"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := Deal(tc.seed, tc.m, tc.n, nil)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %v, want one containing %q", err, tc.want)
				}
			})
		}
	})

	t.Run("randomness failure", func(t *testing.T) {
		_, err := Deal(seed, 2, 3, io.LimitReader(rand.Reader, 10))
		if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			t.Errorf("error %v, want the reader's", err)
		}
	})

	t.Run("VerifyShare rejects", func(t *testing.T) {
		d, err := Deal(seed, 2, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		other := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
		if err := VerifyShare(d.Shares[0], other); err == nil {
			t.Error("share verified against another public key")
		}
		if err := VerifyShare(d.Shares[0], pub[:31]); err == nil {
			t.Error("share verified against a 31-byte key")
		}
		// A secret share off by one fails the Feldman check.
		bad := edwards25519.NewScalar().Add(&d.Shares[1].secret, scalarOne())
		ks, err := NewKeyShare(2, bad, d.Group)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyShare(ks, pub); err == nil || !strings.Contains(err.Error(), "Feldman") {
			t.Errorf("tampered share: %v", err)
		}
		// A share checked against another dealing's commitments fails.
		d2, err := Deal(seed, 2, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		ks, err = NewKeyShare(2, &d.Shares[1].secret, d2.Group)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyShare(ks, pub); err == nil {
			t.Error("share verified against another dealing's commitments")
		}
	})

	t.Run("no secrets printed", func(t *testing.T) {
		d, err := Deal(seed, 2, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		k := d.Shares[0]
		secret := fmt.Sprintf("%x", k.secret.Bytes())
		for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%#v", k), fmt.Sprintf("%+v", k), fmt.Sprint(d.Shares)} {
			if strings.Contains(s, secret) {
				t.Errorf("key share printed with its secret: %s", s)
			}
		}
	})
}

func TestKyberConversion(t *testing.T) {
	for i := range 50 {
		var b [64]byte
		if _, err := rand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		s, _ := edwards25519.NewScalar().SetUniformBytes(b[:])
		if i == 0 {
			s = edwards25519.NewScalar()
		}
		p := new(edwards25519.Point).ScalarBaseMult(s)

		// filippo -> kyber -> filippo
		ks, err := scalarToKyber(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := scalarFromKyber(ks)
		if err != nil || s2.Equal(s) != 1 {
			t.Fatalf("scalar round trip: %v", err)
		}
		kp, err := pointToKyber(p)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			p2, err := pointFromKyber(kp)
			if err != nil || p2.Equal(p) != 1 {
				t.Fatalf("point round trip: %v", err)
			}
		}

		// The two libraries agree on the arithmetic: s·B, and s·t.
		if !suite.Point().Mul(ks, nil).Equal(kp) {
			t.Fatal("kyber's s·B differs from filippo's")
		}
		kt := suite.Scalar().Pick(suite.RandomStream())
		tt, err := scalarFromKyber(kt)
		if err != nil {
			t.Fatal(err)
		}
		prod, err := scalarFromKyber(suite.Scalar().Mul(ks, kt))
		if err != nil || prod.Equal(edwards25519.NewScalar().Multiply(s, tt)) != 1 {
			t.Fatal("kyber's s·t differs from filippo's")
		}

		// kyber -> filippo -> kyber
		kq := suite.Point().Mul(kt, nil)
		q, err := pointFromKyber(kq)
		if err != nil {
			t.Fatal(err)
		}
		kq2, err := pointToKyber(q)
		if err != nil || !kq2.Equal(kq) {
			t.Fatalf("kyber point round trip: %v", err)
		}
		kt2, err := scalarToKyber(tt)
		if err != nil || !kt2.Equal(kt) {
			t.Fatalf("kyber scalar round trip: %v", err)
		}
	}

	// The identity converts to kyber, but not back: DeserializeElement
	// refuses it.
	if _, err := pointFromKyber(suite.Point().Null()); !errors.Is(err, errIdentity) {
		t.Errorf("identity from kyber: %v", err)
	}
}
