package keys

import (
	"encoding/base64"
	"testing"

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
