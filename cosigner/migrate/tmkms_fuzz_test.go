package migrate

import (
	"crypto/ed25519"
	"testing"

	"github.com/cosigner/cosigner/cosigner/keys"
)

// FuzzParseTMKMSConfig: any input decodes or fails, without a panic, and
// what decodes has every chain's key_format checked without one either.
func FuzzParseTMKMSConfig(f *testing.F) {
	f.Add([]byte(kiraTOML))
	f.Add([]byte("[[chain]]\nid = \"a\"\nkey_format = { type = \"hex\" }\n[[providers.yubihsm]]\nadapter = { type = \"http\", addr = \"tcp://h:1\" }\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseTMKMSConfig(data)
		if err != nil {
			return
		}
		for _, ch := range c.Chain {
			_, _ = ch.KeyFormat.bech32Prefix(ch.ID)
		}
	})
}

// FuzzParseTMKMSSoftsignKey: a key decodes to a seed key or a scalar key
// whose stored form parses back to the same key, or fails without a panic.
func FuzzParseTMKMSSoftsignKey(f *testing.F) {
	f.Add(b64bytes(testSeed), "")
	f.Add(b64bytes(make([]byte, 64)), "base64")
	f.Add(b64bytes(make([]byte, 96)), "base64")
	f.Add(keys.MarshalPrivValidatorKey(testKey), "json")
	f.Fuzz(func(t *testing.T, data []byte, format string) {
		key, err := parseTMKMSSoftsignKey(data, "key", format, "kira")
		if err != nil {
			return
		}
		stored := keys.MarshalScalarKey
		if key.Seed != nil {
			if len(key.Seed) != ed25519.PrivateKeySize || key.Scalar != nil {
				t.Fatalf("a seed key with %d bytes and a scalar", len(key.Seed))
			}
			back, err := keys.ParseKey(keys.MarshalPrivValidatorKey(key.Seed))
			if err != nil || !back.Equal(key.Seed) || !key.Public.Equal(back.Public()) {
				t.Fatalf("seed key does not round-trip: %v", err)
			}
			return
		}
		back, err := keys.ParseChainKey(stored(key.Scalar))
		if err != nil || back.Scalar.Equal(key.Scalar) != 1 || !back.Public.Equal(key.Public) {
			t.Fatalf("scalar key does not round-trip: %v", err)
		}
	})
}
