package migrate

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/cosigner/softsign"
	"github.com/cosigner/cosigner/privval"
)

// kiraTOML is KIRA's sekin layout (tmkms/tmkms.toml.example), with paths
// relative to the file's directory.
const kiraTOML = `
[[chain]]
id = "testnet-1"
key_format = { type = "bech32", account_key_prefix = "kirapub", consensus_key_prefix = "kiravalconspub" }
state_file = "state/testnet-1-consensus.json"

[[providers.softsign]]
chain_ids = ["testnet-1"]
key_type = "consensus"
path = "secrets/priv_validator_key.json"

[[validator]]
chain_id = "testnet-1"
addr = "tcp://f88883b673fc69d7869cab098de3bafc2ff76eb8@sekai.local:26659"
secret_key = "secrets/kms-identity.key"
protocol_version = "v0.38"
reconnect = true
`

// TMKMS's state after a precommit for a block (consensus::State as serde
// writes it: height and round as strings, steps from 0).
const tmkmsPrecommit = `{"height":"57","round":"1","step":2,"block_id":{"hash":"8A3F6B2C1D0E9F8A7B6C5D4E3F2A1B0C9D8E7F6A5B4C3D2E1F0A9B8C7D6E5F4A","part_set_header":{"total":1,"hash":"0F1E2D3C4B5A69788796A5B4C3D2E1F00F1E2D3C4B5A69788796A5B4C3D2E1F0"}}}`

var (
	testSeed     = bytes.Repeat([]byte{7}, 32)
	testIDSeed   = bytes.Repeat([]byte{9}, 32)
	testKey      = ed25519.NewKeyFromSeed(testSeed)
	testPub      = testKey.Public().(ed25519.PublicKey)
	testIdentity = ed25519.NewKeyFromSeed(testIDSeed)
)

func b64bytes(b []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(b)) }

// layout writes tmkms.toml and its files (paths relative to its directory,
// nil content: not written) and returns the tmkms.toml path.
func layout(t *testing.T, toml string, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	all := map[string][]byte{
		"tmkms.toml":                      []byte(toml),
		"secrets/priv_validator_key.json": b64bytes(testSeed), // what 'tmkms softsign import' writes
		"secrets/kms-identity.key":        b64bytes(testIDSeed),
		"state/testnet-1-consensus.json":  []byte(tmkmsPrecommit),
	}
	for k, v := range files {
		all[k] = v
	}
	for name, data := range all {
		if data == nil {
			continue
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "tmkms.toml")
}

func TestTMKMSKiraLayout(t *testing.T) {
	src := layout(t, kiraTOML, nil)
	m, err := ReadTMKMS(src, TMKMSOptions{MetricsListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(t.TempDir(), "cosigner")
	if err := m.Write(home); err != nil {
		t.Fatal(err)
	}

	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Chains) != 1 {
		t.Fatalf("chains = %+v", cfg.Chains)
	}
	ch := cfg.Chains[0]
	if ch.ID != "testnet-1" || ch.Bech32Prefix != "kira" || !slices.Equal(ch.Nodes, []string{"tcp://sekai.local:26659"}) || cfg.HSM.Enabled() {
		t.Errorf("chain = %+v, hsm %+v", ch, cfg.HSM)
	}
	key, err := keys.LoadKey(cfg.Path(ch.Key))
	if err != nil || !key.Equal(testKey) {
		t.Errorf("key file: %v (same key: %t)", err, key.Equal(testKey))
	}
	id, err := keys.LoadKey(cfg.Path(cfg.IdentityKey))
	if err != nil || !id.Equal(testIdentity) {
		t.Errorf("identity: %v (imported: %t)", err, id.Equal(testIdentity))
	}
	if m.IdentityNodeID != privval.NodeID(testIdentity.Public().(ed25519.PublicKey)) {
		t.Errorf("node id %s", m.IdentityNodeID)
	}
	// TMKMS's precommit (step 2) is cosigner's step 3, kept without sign
	// bytes: that exact step is refused, never re-signed.
	mark, err := signstate.ReadMark(signstate.StatePath(cfg.Path(cfg.StateDir), "testnet-1"), "testnet-1")
	if err != nil {
		t.Fatal(err)
	}
	if mark.Height != 57 || mark.Round != 1 || mark.Step != privval.StepPrecommit || len(mark.SignBytes) != 0 {
		t.Errorf("mark = %+v", mark)
	}
	for _, p := range []string{"cosigner.toml", "identity_key.json", "keys/testnet-1.json", "state/testnet-1.json"} {
		if st, err := os.Stat(filepath.Join(home, p)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", p, st.Mode(), err)
		}
	}
	for _, d := range []string{".", "keys", "state"} {
		if st, err := os.Stat(filepath.Join(home, d)); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v", d, st.Mode(), err)
		}
	}
	if !hasNote(m, "dropped the node ID f88883b673fc69d7869cab098de3bafc2ff76eb8") {
		t.Errorf("notes %q do not say the node ID was dropped", m.Notes)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(home), ".cosigner.migrate-*")); len(left) != 0 {
		t.Errorf("temporary directories left: %v", left)
	}

	// The same migration again refuses the home it made, and leaves it.
	if err := m.Write(home); !errors.Is(err, ErrHomeExists) {
		t.Fatalf("second write: %v", err)
	}
	if key2, err := keys.LoadKey(cfg.Path(ch.Key)); err != nil || !key2.Equal(testKey) {
		t.Fatal("the refused write changed the home")
	}
	// An existing empty directory is fine (a mount point, say).
	empty := t.TempDir()
	if err := m.Write(empty); err != nil {
		t.Fatalf("write into an empty directory: %v", err)
	}
	if _, err := config.Load(empty); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(empty, ".migrate-*")); len(left) != 0 {
		t.Errorf("temporary directories left: %v", left)
	}
}

func hasNote(m *TMKMSMigration, s string) bool {
	for _, n := range m.Notes {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// TestTMKMSSteps checks that TMKMS's steps, numbered from 0, import as
// cosigner's (CometBFT's) from 1.
func TestTMKMSSteps(t *testing.T) {
	for _, tc := range []struct {
		state string
		want  signstate.Mark
	}{
		{`{"height":"10","round":"0","step":0,"block_id":null}`, signstate.Mark{Height: 10, Step: privval.StepProposal}},
		{`{"height":"10","round":"2","step":1,"block_id":null}`, signstate.Mark{Height: 10, Round: 2, Step: privval.StepPrevote}},
		{`{"height":"11","round":"0","step":2,"block_id":{"hash":"AB","part_set_header":{"total":1,"hash":"CD"}}}`, signstate.Mark{Height: 11, Step: privval.StepPrecommit}},
		// The initial state TMKMS writes for a new state file.
		{`{"height":"0","round":"0","step":0,"block_id":null}`, signstate.Mark{}},
	} {
		src := layout(t, kiraTOML, map[string][]byte{"state/testnet-1-consensus.json": []byte(tc.state)})
		m, err := ReadTMKMS(src, TMKMSOptions{})
		if err != nil {
			t.Fatalf("%s: %v", tc.state, err)
		}
		got := m.Chains[0].Mark
		if got.Height != tc.want.Height || got.Round != tc.want.Round || got.Step != tc.want.Step || m.Chains[0].StateKind != "TMKMS" {
			t.Errorf("%s: mark %+v (%s), want %+v", tc.state, got, m.Chains[0].StateKind, tc.want)
		}
	}
}

func TestTMKMSKeyFormats(t *testing.T) {
	// CometBFT's priv_validator_key.json, with key_format = "json".
	jsonTOML := strings.Replace(kiraTOML, `key_type = "consensus"`, "key_type = \"consensus\"\nkey_format = \"json\"", 1)
	src := layout(t, jsonTOML, map[string][]byte{"secrets/priv_validator_key.json": keys.MarshalPrivValidatorKey(testKey)})
	m, err := ReadTMKMS(src, TMKMSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Chains[0].PubKey.Equal(testPub) {
		t.Error("json key: wrong key")
	}
	// A base64 seed with the trailing newline an editor adds.
	src = layout(t, kiraTOML, map[string][]byte{"secrets/priv_validator_key.json": append(b64bytes(testSeed), '\n')})
	if m, err := ReadTMKMS(src, TMKMSOptions{}); err != nil || !m.Chains[0].PubKey.Equal(testPub) {
		t.Errorf("seed with newline: %v", err)
	}
}

// TestTMKMSExpandedKeys: the key forms without a seed that cosigner does
// not import (a YubiHSM2 export, 64 bytes that are also CometBFT's
// seed||public key, other lengths) are refused, naming the validator key
// TMKMS signs with when it reads them. TestTMKMSExpandedKeyImports has the
// 64-byte expanded key, which imports.
func TestTMKMSExpandedKeys(t *testing.T) {
	h := sha512.Sum512(testSeed)
	addr := keys.Address(testPub)
	yubi := slices.Clone(h[:32])
	slices.Reverse(yubi)
	yubi = append(append(yubi, h[32:]...), testPub...)
	corrupt := slices.Clone(yubi)
	corrupt[95] ^= 1
	seedPub := append(slices.Clone(testSeed), testPub...)
	seedPubTMKMS, _ := expandedPublicKey(testSeed)
	for _, tc := range []struct {
		name string
		raw  []byte
		want []string
	}{
		{"yubihsm export", yubi, []string{"YubiHSM2 ed25519 export", addr, "hsm_key_id"}},
		{"corrupt export", corrupt, []string{"not a YubiHSM2 ed25519 export", "corrupt"}},
		{"seed||pub", seedPub, []string{keys.Address(seedPubTMKMS), "seed||public key layout of validator " + addr, "unclear"}},
		{"wrong length", make([]byte, 40), []string{"holds 40 bytes", "32 (an ed25519 seed), 64", "96"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := layout(t, kiraTOML, map[string][]byte{"secrets/priv_validator_key.json": b64bytes(tc.raw)})
			_, err := ReadTMKMS(src, TMKMSOptions{})
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestTMKMSExpandedKeyImports: TMKMS v0.15's 64-byte expanded key (the
// scalar half of SHA-512 of the seed, then the prefix) becomes a
// cosigner/ed25519-scalar-key file of the same validator key, with a note,
// and that file signs for the validator.
func TestTMKMSExpandedKeyImports(t *testing.T) {
	h := sha512.Sum512(testSeed) // the scalar (unclamped: dalek clamps), then the prefix
	src := layout(t, kiraTOML, map[string][]byte{"secrets/priv_validator_key.json": b64bytes(h[:])})
	m, err := ReadTMKMS(src, TMKMSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Chains[0].PubKey.Equal(testPub) {
		t.Fatalf("expanded key migrated as %X, want %X", m.Chains[0].PubKey, testPub)
	}
	if !slices.ContainsFunc(m.Notes, func(n string) bool { return strings.Contains(n, "64-byte expanded key") }) {
		t.Errorf("no note of the expanded key: %q", m.Notes)
	}
	home := filepath.Join(t.TempDir(), "cosigner")
	if err := m.Write(home); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	key, err := keys.LoadChainKey(cfg.Path(cfg.Chains[0].Key))
	if err != nil || key.Scalar == nil || !key.Public.Equal(testPub) {
		t.Fatalf("key file: %v %+v", err, key)
	}
	msg := []byte("a vote")
	sig, err := softsign.ScalarKey(key.Scalar).Sign(context.Background(), msg)
	if err != nil || !ed25519.Verify(testPub, msg, sig) {
		t.Error("the imported scalar key does not sign for the validator")
	}
}

func TestTMKMSYubiHSM(t *testing.T) {
	toml := strings.Replace(kiraTOML, `[[providers.softsign]]
chain_ids = ["testnet-1"]
key_type = "consensus"
path = "secrets/priv_validator_key.json"`, `[[providers.yubihsm]]
adapter = { type = "http", addr = "tcp://127.0.0.1:12345" }
auth = { key = 2, password_file = "secrets/hsm-password" }
keys = [{ chain_ids = ["testnet-1"], key = 7 }, { chain_ids = ["testnet-1"], key = 8, type = "account" }]
serial_number = "0123456789"`, 1)
	src := layout(t, toml, map[string][]byte{"secrets/hsm-password": []byte("s3cret pass\n")})
	m, err := ReadTMKMS(src, TMKMSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(t.TempDir(), "home")
	if err := m.Write(home); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if h := cfg.HSM; h.Connector != "127.0.0.1:12345" || h.AuthKeyID != 2 || cfg.Chains[0].HSMKeyID != 7 || cfg.Chains[0].Key != "" {
		t.Errorf("hsm %+v, chain %+v", h, cfg.Chains[0])
	}
	opts, err := cfg.HSMOptions() // reads the copied password file (0600 checked)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Password != "s3cret pass" {
		t.Errorf("password %q", opts.Password)
	}
	if _, err := os.Stat(filepath.Join(home, "keys", "testnet-1.json")); !os.IsNotExist(err) {
		t.Error("a key file was written for a key that stays in the device")
	}
	if !hasNote(m, "account (secp256k1) key: not migrated") || !hasNote(m, "serial_number") {
		t.Errorf("notes: %q", m.Notes)
	}

	// A password in tmkms.toml itself moves to the 0600 file, with a note.
	inline := strings.Replace(toml, `password_file = "secrets/hsm-password"`, `password = "inline pw"`, 1)
	m, err = ReadTMKMS(layout(t, inline, nil), TMKMSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.hsmPassword != "inline pw" || !hasNote(m, "the password was written in tmkms.toml") {
		t.Errorf("inline password %q, notes %q", m.hsmPassword, m.Notes)
	}
	for _, n := range m.Notes {
		if strings.Contains(n, "inline pw") {
			t.Errorf("a note prints the password: %s", n)
		}
	}
}

func TestTMKMSPathMapAndHeights(t *testing.T) {
	abs := strings.NewReplacer(`"state/`, `"/tmkms/state/`, `"secrets/`, `"/tmkms/secrets/`).Replace(kiraTOML)
	src := layout(t, abs, nil)
	dir := filepath.Dir(src)
	if _, err := ReadTMKMS(src, TMKMSOptions{}); err == nil || !strings.Contains(err.Error(), "--path-map") {
		t.Fatalf("container paths without --path-map: %v", err)
	}
	pm, err := ParsePathMapping("/tmkms=" + dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadTMKMS(src, TMKMSOptions{PathMap: []PathMapping{pm}})
	if err != nil {
		t.Fatal(err)
	}
	if m.IdentityFrom != filepath.Join(dir, "secrets/kms-identity.key") || m.Chains[0].Mark.Height != 57 {
		t.Errorf("identity from %s, mark %+v", m.IdentityFrom, m.Chains[0].Mark)
	}
	// "/tmkmsX" is not under "/tmkms".
	if q, ok := pm.apply("/tmkmsX/a"); ok {
		t.Errorf("mapped /tmkmsX/a to %s", q)
	}

	// A missing state file needs --height; a --height above the state
	// wins, one below it does not.
	src = layout(t, kiraTOML, map[string][]byte{"state/testnet-1-consensus.json": nil})
	if _, err := ReadTMKMS(src, TMKMSOptions{}); err == nil || !strings.Contains(err.Error(), "--height testnet-1=N") {
		t.Fatalf("missing state: %v", err)
	}
	m, err = ReadTMKMS(src, TMKMSOptions{Heights: map[string]int64{"testnet-1": 900}})
	if err != nil || m.Chains[0].Mark.Height != 900 || m.Chains[0].Mark.Step != 0 || m.Chains[0].StateKind != "height" {
		t.Fatalf("missing state with --height: %v %+v", err, m)
	}
	src = layout(t, kiraTOML, nil)
	for h, want := range map[int64]int64{10: 57, 100: 100} {
		m, err = ReadTMKMS(src, TMKMSOptions{Heights: map[string]int64{"testnet-1": h}})
		if err != nil || m.Chains[0].Mark.Height != want {
			t.Errorf("--height %d over state 57: %v, mark %+v", h, err, m.Chains[0].Mark)
		}
	}
}

func TestTMKMSIdentity(t *testing.T) {
	for name, tc := range map[string]struct {
		file []byte
		toml string
		note string
	}{
		"64 bytes":        {b64bytes(make([]byte, 64)), kiraTOML, "holds 64 bytes, not a 32-byte ed25519 seed"},
		"missing":         {nil, kiraTOML, "no such file"},
		"no secret_key":   {nil, strings.Replace(kiraTOML, `secret_key = "secrets/kms-identity.key"`, "", 1), "no [[validator]] names a secret_key"},
		"not base64 text": {[]byte("not a key"), kiraTOML, "is not base64"},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := ReadTMKMS(layout(t, tc.toml, map[string][]byte{"secrets/kms-identity.key": tc.file}), TMKMSOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if m.IdentityFrom != "" || m.identity == nil || m.identity.Equal(testIdentity) || !hasNote(m, tc.note) || !hasNote(m, "fresh SecretConnection identity") {
				t.Errorf("identity from %q, notes %q", m.IdentityFrom, m.Notes)
			}
		})
	}
}

// TestTMKMSSeveralChains: one softsign key for two chains, each with its
// nodes; a [[chain]] without a [[validator]] is left out with a note.
func TestTMKMSSeveralChains(t *testing.T) {
	toml := `
[[chain]]
id = "kira-1"
key_format = { type = "bech32", account_key_prefix = "kirapub", consensus_key_prefix = "kiravalconspub" }
state_file = "state/kira-1.json"
sign_extensions = true

[[chain]]
id = "cosmoshub-4"
key_format = { type = "hex" }
state_file = "state/hub.json"

[[chain]]
id = "idle-1"
key_format = { type = "cosmos-json" }

[[providers.softsign]]
chain_ids = ["kira-1", "cosmoshub-4", "idle-1"]
path = "secrets/priv_validator_key.json"

[[validator]]
chain_id = "kira-1"
addr = "tcp://10.8.0.1:26659"
max_height = "5000000"

[[validator]]
chain_id = "kira-1"
addr = "tcp://10.8.0.3:26659"
reconnect = false

[[validator]]
chain_id = "cosmoshub-4"
addr = "unix:///run/hub/privval.sock"
`
	src := layout(t, toml, map[string][]byte{
		"state/kira-1.json": []byte(`{"height":"100","round":"0","step":1,"block_id":null}`),
		"state/hub.json":    []byte(`{"height":"200","round":"3","step":0,"block_id":null}`),
	})
	m, err := ReadTMKMS(src, TMKMSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(t.TempDir(), "h")
	if err := m.Write(home); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Chains) != 2 || cfg.Chains[0].Bech32Prefix != "kira" || cfg.Chains[1].Bech32Prefix != config.DefaultBech32Prefix ||
		!slices.Equal(cfg.Chains[0].Nodes, []string{"tcp://10.8.0.1:26659", "tcp://10.8.0.3:26659"}) ||
		!slices.Equal(cfg.Chains[1].Nodes, []string{"unix:///run/hub/privval.sock"}) {
		t.Fatalf("chains %+v", cfg.Chains)
	}
	for _, c := range []struct {
		id string
		h  int64
		r  int32
		s  privval.Step
	}{{"kira-1", 100, 0, privval.StepPrevote}, {"cosmoshub-4", 200, 3, privval.StepProposal}} {
		mk, err := signstate.ReadMark(signstate.StatePath(cfg.Path(cfg.StateDir), c.id), c.id)
		if err != nil || mk.Height != c.h || mk.Round != c.r || mk.Step != c.s {
			t.Errorf("%s: %+v %v", c.id, mk, err)
		}
		if k, err := keys.LoadKey(cfg.Path(filepath.Join("keys", c.id+".json"))); err != nil || !k.Equal(testKey) {
			t.Errorf("%s key: %v", c.id, err)
		}
	}
	for _, n := range []string{`"idle-1" has no [[validator]]`, "sign_extensions = true", "max_height", "reconnect = false", "no [[validator]] names a secret_key"} {
		if !hasNote(m, n) {
			t.Errorf("no note about %q in %q", n, m.Notes)
		}
	}
}

// TestTMKMSBadInputs: each bad tmkms.toml or file is refused by ReadTMKMS
// with a message naming the problem; nothing is written.
func TestTMKMSBadInputs(t *testing.T) {
	softsign := `[[providers.softsign]]
chain_ids = ["testnet-1"]
key_type = "consensus"
path = "secrets/priv_validator_key.json"`
	edit := func(old, new string) string {
		if !strings.Contains(kiraTOML, old) {
			t.Fatalf("kiraTOML lacks %q", old)
		}
		return strings.Replace(kiraTOML, old, new, 1)
	}
	tests := []struct {
		name  string
		toml  string
		files map[string][]byte
		opts  TMKMSOptions
		want  string
	}{
		{"unknown softsign key_format", edit(`key_type = "consensus"`, "key_type = \"consensus\"\nkey_format = \"hex\""), nil, TMKMSOptions{},
			`key_format = "hex" is unknown: TMKMS allows "base64" (the default) and "json"`},
		{"unknown chain key_format", edit(`type = "bech32", account_key_prefix = "kirapub", consensus_key_prefix = "kiravalconspub"`, `type = "bech33"`), nil, TMKMSOptions{},
			`key_format type "bech33" is unknown`},
		{"no chain key_format", edit(`key_format = { type = "bech32", account_key_prefix = "kirapub", consensus_key_prefix = "kiravalconspub" }`, ""), nil, TMKMSOptions{},
			`has no key_format`},
		{"json file read as base64", kiraTOML, map[string][]byte{"secrets/priv_validator_key.json": keys.MarshalPrivValidatorKey(testKey)}, TMKMSOptions{},
			`set key_format = "json"`},
		{"base64 file read as json", edit(`key_type = "consensus"`, "key_format = \"json\""), nil, TMKMSOptions{},
			`key_format = "json" but the file is not JSON`},
		{"not base64", kiraTOML, map[string][]byte{"secrets/priv_validator_key.json": []byte("%%%")}, TMKMSOptions{},
			"is not base64"},
		{"state of another shape", kiraTOML, map[string][]byte{"state/testnet-1-consensus.json": []byte(`{"last_height":"57"}`)}, TMKMSOptions{},
			"is not a TMKMS state file (want height, round and step fields)"},
		{"state step out of range", kiraTOML, map[string][]byte{"state/testnet-1-consensus.json": []byte(`{"height":"57","round":"0","step":3,"block_id":null}`)}, TMKMSOptions{},
			"TMKMS step 3 is not 0 (propose), 1 (prevote) or 2 (precommit)"},
		{"state not JSON", kiraTOML, map[string][]byte{"state/testnet-1-consensus.json": []byte("height=57")}, TMKMSOptions{},
			"malformed state JSON"},
		{"missing state", kiraTOML, map[string][]byte{"state/testnet-1-consensus.json": nil}, TMKMSOptions{},
			"is missing, so what TMKMS signed is unknown"},
		{"missing key", kiraTOML, map[string][]byte{"secrets/priv_validator_key.json": nil}, TMKMSOptions{},
			"no such file or directory (if tmkms.toml names paths inside a container"},
		{"validator without chain", edit(`chain_id = "testnet-1"
addr`, `chain_id = "testnet-2"
addr`), nil, TMKMSOptions{},
			`has chain_id "testnet-2", which has no [[chain]]`},
		{"provider for a chain without [[chain]]", edit(`chain_ids = ["testnet-1"]`, `chain_ids = ["testnet-1", "other-1"]`), nil, TMKMSOptions{},
			`lists chain "other-1", which has no [[chain]]`},
		{"two providers for one chain", kiraTOML + `
[[providers.yubihsm]]
adapter = { type = "http", addr = "tcp://127.0.0.1:12345" }
auth = { key = 1, password = "x" }
keys = [{ chain_ids = ["testnet-1"], key = 1 }]
`, nil, TMKMSOptions{}, `chain "testnet-1" has two consensus keys, in [[providers.softsign]] 1`},
		{"two softsign keys for one chain", kiraTOML + "\n" + softsign + "\n", nil, TMKMSOptions{}, "has two consensus keys"},
		{"no key for a chain", edit(softsign, ""), nil, TMKMSOptions{}, `[[chain]] "testnet-1" has no consensus key`},
		{"unknown key", kiraTOML + "\n[metrics]\nlisten = \"x\"\n", nil, TMKMSOptions{}, "unknown key(s) metrics"},
		{"misspelt key", edit("secret_key", "secret_keys"), nil, TMKMSOptions{}, "unknown key(s) validator.secret_keys"},
		{"duplicate chain", kiraTOML + "\n[[chain]]\nid = \"testnet-1\"\nkey_format = { type = \"hex\" }\n", nil, TMKMSOptions{}, `[[chain]] "testnet-1" appears twice`},
		{"bad chain id", edit(`id = "testnet-1"`, `id = "test net"`), nil, TMKMSOptions{}, `chain id "test net" is not allowed`},
		{"bad addr", edit("tcp://f88883b673fc69d7869cab098de3bafc2ff76eb8@sekai.local:26659", "sekai.local:26659"), nil, TMKMSOptions{},
			`want tcp://[id@]host:port or unix:///path`},
		{"relative unix socket", edit("tcp://f88883b673fc69d7869cab098de3bafc2ff76eb8@sekai.local:26659", "unix://run/x.sock"), nil, TMKMSOptions{},
			"want unix:///absolute/path"},
		{"ledger", kiraTOML + "\n[[providers.ledgertm]]\nchain_ids = [\"testnet-1\"]\n", nil, TMKMSOptions{}, "cannot sign with a Ledger"},
		{"usb yubihsm", edit(softsign, `[[providers.yubihsm]]
adapter = { type = "usb" }
auth = { key = 1, password = "x" }
keys = [{ chain_ids = ["testnet-1"], key = 1 }]`), nil, TMKMSOptions{}, "run yubihsm-connector"},
		{"yubihsm without password", edit(softsign, `[[providers.yubihsm]]
adapter = { type = "http", addr = "tcp://127.0.0.1:12345" }
auth = { key = 1 }
keys = [{ chain_ids = ["testnet-1"], key = 1 }]`), nil, TMKMSOptions{}, "neither password_file nor password"},
		{"height for an unknown chain", kiraTOML, nil, TMKMSOptions{Heights: map[string]int64{"other-1": 5}}, `--height names chain "other-1"`},
		{"nothing to migrate", edit(`[[validator]]
chain_id = "testnet-1"
addr = "tcp://f88883b673fc69d7869cab098de3bafc2ff76eb8@sekai.local:26659"
secret_key = "secrets/kms-identity.key"
protocol_version = "v0.38"
reconnect = true`, ""), nil, TMKMSOptions{}, "nothing to migrate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := layout(t, tt.toml, tt.files)
			m, err := ReadTMKMS(src, tt.opts)
			if err == nil {
				t.Fatalf("accepted: %+v", m)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error does not say %q:\n%v", tt.want, err)
			}
			if !strings.Contains(err.Error(), src) {
				t.Errorf("error does not name %s:\n%v", src, err)
			}
		})
	}
}
