package keys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/edwards25519"
)

func testScalar(t *testing.T) *edwards25519.Scalar {
	t.Helper()
	var b [64]byte
	rand.Read(b[:])
	s, _ := new(edwards25519.Scalar).SetUniformBytes(b[:])
	return s
}

func TestScalarKeyFileRoundTrip(t *testing.T) {
	s := testScalar(t)
	path := filepath.Join(t.TempDir(), "key.json")
	if err := WriteScalarKey(path, s); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	if err := WriteScalarKey(path, s); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write: %v, want ErrExist", err)
	}
	k, err := LoadChainKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if k.Seed != nil || k.Scalar.Equal(s) != 1 {
		t.Fatal("loaded scalar differs")
	}
	if !bytes.Equal(k.Public, new(edwards25519.Point).ScalarBaseMult(s).Bytes()) {
		t.Fatal("public key is not s·B")
	}
	// A seed key still loads, as a seed.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	seedPath := filepath.Join(t.TempDir(), "pv.json")
	os.WriteFile(seedPath, MarshalPrivValidatorKey(priv), 0o600)
	sk, err := LoadChainKey(seedPath)
	if err != nil || !bytes.Equal(sk.Seed, priv) || sk.Scalar != nil {
		t.Fatalf("seed key: %v", err)
	}
}

func TestParseScalarKeyRefuses(t *testing.T) {
	good := MarshalScalarKey(testScalar(t))
	other := MarshalScalarKey(testScalar(t))
	var nonCanonical [32]byte
	for i := range nonCanonical {
		nonCanonical[i] = 0xff
	}
	swapPub := strings.Replace(string(good), jsonField(good, "pub_key"), jsonField(other, "pub_key"), 1)
	tests := []struct {
		name, data, want string
	}{
		{"wrong public key", swapPub, "pub_key is not scalar·B"},
		{"non-canonical scalar", strings.Replace(string(good), jsonField(good, "scalar"), `"scalar": "`+b64(nonCanonical[:])+`"`, 1), "not a canonical"},
		{"zero scalar", strings.Replace(string(good), jsonField(good, "scalar"), `"scalar": "`+b64(make([]byte, 32))+`"`, 1), "zero"},
		{"short scalar", strings.Replace(string(good), jsonField(good, "scalar"), `"scalar": "AAAA"`, 1), "not a canonical"},
		{"malformed", `{"type": "cosigner/ed25519-scalar-key", "scalar": 3}`, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseChainKey([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func jsonField(data []byte, name string) string {
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, `"`+name+`"`) {
			return strings.TrimSuffix(strings.TrimSpace(line), ",")
		}
	}
	return ""
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
