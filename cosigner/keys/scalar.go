package keys

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"filippo.io/edwards25519"

	"github.com/cosigner/cosigner/internal/fsutil"
)

// ScalarKeyType is the JSON type of a key file holding a bare ed25519
// secret scalar s (no RFC 8032 seed): a key reassembled from threshold
// shares, or one that never had a seed (DKG).
const ScalarKeyType = "cosigner/ed25519-scalar-key"

type scalarKeyFile struct {
	Type   string `json:"type"`
	Scalar []byte `json:"scalar"`
	PubKey []byte `json:"pub_key"`
}

// ChainKey is a whole consensus key read from a file: either an RFC 8032
// key (Seed set) or a bare scalar (Scalar set). Public is its public key.
type ChainKey struct {
	Seed   ed25519.PrivateKey
	Scalar *edwards25519.Scalar
	Public ed25519.PublicKey
}

// MarshalScalarKey encodes s as a ScalarKeyType key file. The caller
// clears the returned bytes once written.
func MarshalScalarKey(s *edwards25519.Scalar) []byte {
	pub := new(edwards25519.Point).ScalarBaseMult(s).Bytes()
	out, _ := json.MarshalIndent(scalarKeyFile{Type: ScalarKeyType, Scalar: s.Bytes(), PubKey: pub}, "", "  ")
	return append(out, '\n')
}

// WriteScalarKey writes s to path as a new 0600 ScalarKeyType file,
// refusing (fs.ErrExist) a path that exists.
func WriteScalarKey(path string, s *edwards25519.Scalar) error {
	data := MarshalScalarKey(s)
	defer clear(data)
	return fsutil.WriteNew(path, data)
}

// isScalarKey reports whether data is a ScalarKeyType file.
func isScalarKey(data []byte) bool {
	var probe struct {
		Type string `json:"type"`
	}
	trimmed := bytes.TrimSpace(data)
	return len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &probe) == nil && probe.Type == ScalarKeyType
}

// ParseScalarKey reads a ScalarKeyType file. It refuses a non-canonical or
// zero scalar and a public key that is not s·B.
func ParseScalarKey(data []byte) (*edwards25519.Scalar, ed25519.PublicKey, error) {
	var f scalarKeyFile
	err := json.Unmarshal(bytes.TrimSpace(data), &f)
	defer clear(f.Scalar)
	if err != nil {
		return nil, nil, fmt.Errorf("malformed scalar key JSON: %w", err)
	}
	if f.Type != ScalarKeyType {
		return nil, nil, fmt.Errorf("type is %q: want %q", f.Type, ScalarKeyType)
	}
	s, err := new(edwards25519.Scalar).SetCanonicalBytes(f.Scalar)
	if err != nil {
		return nil, nil, errors.New("scalar is not a canonical 32-byte ed25519 scalar (corrupt key file)")
	}
	if s.Equal(edwards25519.NewScalar()) == 1 {
		return nil, nil, errors.New("scalar is zero (corrupt key file)")
	}
	pub := new(edwards25519.Point).ScalarBaseMult(s).Bytes()
	if !bytes.Equal(pub, f.PubKey) {
		return nil, nil, errors.New("pub_key is not scalar·B (corrupt or edited key file)")
	}
	return s, ed25519.PublicKey(pub), nil
}

// ParseChainKey reads any key ParseKey reads, or a ScalarKeyType file.
func ParseChainKey(data []byte) (*ChainKey, error) {
	if isScalarKey(data) {
		s, pub, err := ParseScalarKey(data)
		if err != nil {
			return nil, err
		}
		return &ChainKey{Scalar: s, Public: pub}, nil
	}
	k, err := ParseKey(data)
	if err != nil {
		return nil, err
	}
	return &ChainKey{Seed: k, Public: k.Public().(ed25519.PublicKey)}, nil
}

// LoadChainKey is LoadKey for a softsign chain's key: it also reads a
// ScalarKeyType file, and refuses the same file modes.
func LoadChainKey(path string) (*ChainKey, error) {
	data, err := fsutil.ReadSecret(path)
	var me *fsutil.ModeError
	switch {
	case errors.As(err, &me):
		return nil, fmt.Errorf("key file %w", err)
	case err != nil:
		return nil, fmt.Errorf("read key: %w", err)
	}
	defer clear(data)
	k, err := ParseChainKey(data)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	return k, nil
}

// LoadImportChainKey is LoadImportKey that also reads a ScalarKeyType file
// (to shard a key 'keys reassemble' wrote).
func LoadImportChainKey(path string) (key *ChainKey, warning error, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read key: %w", err)
	}
	defer clear(data)
	if key, err = ParseChainKey(data); err != nil {
		return nil, nil, fmt.Errorf("key %s: %w", path, err)
	}
	if st, err := os.Stat(path); err == nil {
		if err := fsutil.CheckSecretMode(path, st.Mode()); err != nil {
			warning = fmt.Errorf("key file %w", err)
		}
	}
	return key, warning, nil
}
