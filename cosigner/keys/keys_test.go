package keys

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/privval"

	"github.com/cosigner/cosigner/internal/fsutil"
)

func TestParseKeyFormats(t *testing.T) {
	pv := privval.NewFilePV(cmted25519.GenPrivKey(), "", "")
	cmtFile, err := cmtjson.MarshalIndent(pv.Key, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	seed := pv.Key.PrivKey.Bytes()[:32]
	want := ed25519.NewKeyFromSeed(seed)

	tests := []struct {
		name string
		data string
	}{
		{"cometbft priv_validator_key.json", string(cmtFile)},
		{"our own rendering", string(MarshalPrivValidatorKey(want))},
		{"node_key.json", string(MarshalNodeKey(want))},
		{"tmkms base64 seed", base64.StdEncoding.EncodeToString(seed) + "\n"},
		{"base64 seed||pub", base64.StdEncoding.EncodeToString(want)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKey([]byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(want) {
				t.Fatal("wrong key")
			}
		})
	}
	// The address we compute is CometBFT's.
	if got := Address(want.Public().(ed25519.PublicKey)); got != pv.Key.Address.String() {
		t.Errorf("Address = %s, CometBFT says %s", got, pv.Key.Address)
	}
}

func TestParseKeyBad(t *testing.T) {
	k1 := ed25519.NewKeyFromSeed(make([]byte, 32))
	other := make([]byte, 32)
	other[0] = 1
	k2 := ed25519.NewKeyFromSeed(other)
	mismatch := string(MarshalPrivValidatorKey(k1))
	mismatch = strings.Replace(mismatch, base64.StdEncoding.EncodeToString(k1[32:]), base64.StdEncoding.EncodeToString(k2[32:]), 1)
	badAddr := strings.Replace(string(MarshalPrivValidatorKey(k1)), Address(k1.Public().(ed25519.PublicKey)), Address(k2.Public().(ed25519.PublicKey)), 1)
	torn := append(append([]byte{}, k1[:32]...), k2[32:]...)
	expanded := sha512.Sum512(other)

	tests := []struct {
		name, data, want string
	}{
		{"empty", "  \n", "empty"},
		{"garbage", "not a key!", "not a priv_validator_key.json"},
		{"short seed", base64.StdEncoding.EncodeToString(make([]byte, 31)), "31 bytes"},
		{"64 bytes torn", base64.StdEncoding.EncodeToString(torn), "does not belong"},
		// TMKMS v0.15's expanded key (SHA-512 of a seed: scalar, prefix)
		// holds no seed: the error points at the command that reads it.
		{"tmkms expanded key", base64.StdEncoding.EncodeToString(expanded[:]), "'cosigner migrate tmkms' reads those"},
		{"bad json", `{"priv_key":`, "malformed key JSON"},
		{"bad base64 value", `{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"!!!!"}}`, "priv_key.value is not base64"},
		{"trailing data", string(MarshalPrivValidatorKey(k1)) + "{}", "malformed key JSON"},
		{"secp256k1", `{"priv_key":{"type":"tendermint/PrivKeySecp256k1","value":"AAAA"}}`, "only"},
		{"pubkey mismatch", mismatch, "pub_key does not match"},
		{"address mismatch", badAddr, "address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKey([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDescribePubKey(t *testing.T) {
	// The all-zero seed's key, rendered by the Cosmos SDK conventions: the
	// amino prefix 1624DE6420 makes legacy bech32 keys start with "zcjduepq".
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	info := DescribePubKey(key.Public().(ed25519.PublicKey), "kira")
	if !strings.HasPrefix(info.Bech32, "kiravalconspub1zcjduepq") {
		t.Errorf("bech32 = %s, want kiravalconspub1zcjduepq...", info.Bech32)
	}
	if !strings.HasPrefix(info.Bech32Addr, "kiravalcons1") {
		t.Errorf("valcons = %s", info.Bech32Addr)
	}
	if !strings.Contains(info.CosmosJSON, info.Base64) {
		t.Errorf("cosmos json %s lacks the key", info.CosmosJSON)
	}
}

// TestLoadKeyModes: a key file cosigner keeps (LoadKey) that group or
// others may access is refused, naming the chmod; a file being imported
// (LoadImportKey) is read whatever its mode, with the same error as a
// warning.
func TestLoadKeyModes(t *testing.T) {
	want := ed25519.NewKeyFromSeed(make([]byte, 32))
	for _, mode := range []os.FileMode{0o600, 0o400, 0o640, 0o644, 0o604} {
		t.Run(mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key.json")
			if err := os.WriteFile(path, MarshalPrivValidatorKey(want), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			open := mode&0o077 != 0
			key, err := LoadKey(path)
			var me *fsutil.ModeError
			if open {
				if !errors.As(err, &me) || key != nil || !strings.Contains(err.Error(), "run 'chmod 600 "+path+"'") {
					t.Fatalf("LoadKey = %v, want a *fsutil.ModeError naming chmod 600 %s", err, path)
				}
			} else if err != nil || !key.Equal(want) {
				t.Fatalf("LoadKey: %v", err)
			}
			key, warning, err := LoadImportKey(path)
			if err != nil || !key.Equal(want) {
				t.Fatalf("LoadImportKey: %v", err)
			}
			if open != (warning != nil) || open && !errors.As(warning, &me) {
				t.Fatalf("LoadImportKey warning = %v for mode %v", warning, mode)
			}
		})
	}
}
