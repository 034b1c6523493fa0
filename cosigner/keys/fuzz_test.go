package keys

import (
	"bytes"
	"encoding/base64"
	"testing"

	"filippo.io/edwards25519"

	"github.com/cosigner/cosigner/internal/testkit"
)

// FuzzParseKey: key files never panic the parser; an accepted key
// round-trips through our priv_validator_key.json rendering.
func FuzzParseKey(f *testing.F) {
	f.Add(MarshalPrivValidatorKey(testkit.Key))
	f.Add(MarshalNodeKey(testkit.Key))
	f.Add([]byte(base64.StdEncoding.EncodeToString(testkit.Key.Seed())))
	f.Add([]byte(base64.StdEncoding.EncodeToString(testkit.Key)))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := ParseKey(data)
		if err != nil {
			return
		}
		again, err := ParseKey(MarshalPrivValidatorKey(key))
		if err != nil || !again.Equal(key) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzParseChainKey: chain key files (seed or scalar) never panic the
// parser; an accepted scalar key round-trips and its public key is s·B.
func FuzzParseChainKey(f *testing.F) {
	f.Add(MarshalPrivValidatorKey(testkit.Key))
	var one [32]byte
	one[0] = 1
	s, _ := edwards25519.NewScalar().SetCanonicalBytes(one[:])
	f.Add(MarshalScalarKey(s))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseChainKey(data)
		if err != nil || k.Scalar == nil {
			return
		}
		again, err := ParseChainKey(MarshalScalarKey(k.Scalar))
		if err != nil || again.Scalar.Equal(k.Scalar) != 1 || !again.Public.Equal(k.Public) {
			t.Fatalf("round trip: %v", err)
		}
		if !bytes.Equal(k.Public, new(edwards25519.Point).ScalarBaseMult(k.Scalar).Bytes()) {
			t.Fatal("accepted a public key that is not s·B")
		}
	})
}
