package softsign

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"testing"

	"filippo.io/edwards25519"
)

func randomScalar(t *testing.T) *edwards25519.Scalar {
	t.Helper()
	var b [64]byte
	rand.Read(b[:])
	s, err := new(edwards25519.Scalar).SetUniformBytes(b[:])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScalarKeySignsVerifiably(t *testing.T) {
	ctx := context.Background()
	for range 8 {
		k := ScalarKey(randomScalar(t))
		for i := range 64 {
			msg := make([]byte, i*7)
			rand.Read(msg)
			sig, err := k.Sign(ctx, msg)
			if err != nil {
				t.Fatal(err)
			}
			if !ed25519.Verify(k.Public(), msg, sig) {
				t.Fatalf("signature of a %d-byte message does not verify", len(msg))
			}
			again, _ := k.Sign(ctx, msg)
			if !bytes.Equal(sig, again) {
				t.Fatal("signing the same message twice gave two signatures")
			}
			msg = append(msg, 1)
			if other, _ := k.Sign(ctx, msg); bytes.Equal(other[:32], sig[:32]) {
				t.Fatal("two messages got the same nonce R")
			}
		}
	}
}

// A seed key's scalar signs for the seed's public key (signatures differ:
// the prefix is not the seed's).
func TestScalarKeyOfSeedKey(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	h := sha512.Sum512(priv.Seed())
	s, err := new(edwards25519.Scalar).SetBytesWithClamping(h[:32])
	if err != nil {
		t.Fatal(err)
	}
	k := ScalarKey(s)
	if !bytes.Equal(k.Public(), pub) {
		t.Fatalf("public %x, want %x", k.Public(), pub)
	}
	sig, _ := k.Sign(context.Background(), []byte("vote"))
	if !ed25519.Verify(pub, []byte("vote"), sig) {
		t.Fatal("does not verify")
	}
}
