package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cosigner/cosigner/internal/testkit"

	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/test/yubihsmsim"
)

// sekinTOML is KIRA's sekin tmkms.toml: paths inside the TMKMS container,
// mounted from ./tmkms.
const sekinTOML = `[[chain]]
id = "testnet-1"
key_format = { type = "bech32", account_key_prefix = "kirapub", consensus_key_prefix = "kiravalconspub" }
state_file = "/tmkms/state/testnet-1-consensus.json"

[[providers.softsign]]
chain_ids = ["testnet-1"]
key_type = "consensus"
path = "/tmkms/secrets/priv_validator_key.json"

[[validator]]
chain_id = "testnet-1"
addr = "tcp://f88883b673fc69d7869cab098de3bafc2ff76eb8@sekai.local:26659"
secret_key = "/tmkms/secrets/kms-identity.key"
protocol_version = "v0.38"
reconnect = true
`

// sekinLayout writes sekin's tmkms/ directory: tmkms.toml, the consensus
// key as 'tmkms softsign import' writes it (base64 seed, despite the
// name), the identity as 'tmkms init' writes it, and a state file.
func sekinLayout(t *testing.T, toml string) (dir string, key ed25519.PrivateKey, secrets []string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "tmkms")
	seed := make([]byte, 32)
	idSeed := make([]byte, 32)
	rand.Read(seed)
	rand.Read(idSeed)
	files := map[string]string{
		"tmkms.toml":                      toml,
		"secrets/priv_validator_key.json": base64.StdEncoding.EncodeToString(seed),
		"secrets/kms-identity.key":        base64.StdEncoding.EncodeToString(idSeed),
		"state/testnet-1-consensus.json":  `{"height":"57","round":"1","step":2,"block_id":{"hash":"8A3F6B2C1D0E9F8A7B6C5D4E3F2A1B0C9D8E7F6A5B4C3D2E1F0A9B8C7D6E5F4A","part_set_header":{"total":1,"hash":"0F1E2D3C4B5A69788796A5B4C3D2E1F00F1E2D3C4B5A69788796A5B4C3D2E1F0"}}}`,
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	key = ed25519.NewKeyFromSeed(seed)
	secrets = []string{files["secrets/priv_validator_key.json"], files["secrets/kms-identity.key"],
		base64.StdEncoding.EncodeToString(key), base64.StdEncoding.EncodeToString(ed25519.NewKeyFromSeed(idSeed))}
	return dir, key, secrets
}

func TestMigrateTMKMSCommand(t *testing.T) {
	dir, key, secrets := sekinLayout(t, sekinTOML)
	home := filepath.Join(t.TempDir(), "cosigner")
	src := filepath.Join(dir, "tmkms.toml")
	addr := keys.Address(key.Public().(ed25519.PublicKey))

	// Container paths are missing on the host: refused, nothing written.
	code, _, errOut := cli(t, "migrate", "tmkms", "--home", home, src)
	if code != 2 || !strings.Contains(errOut, "--path-map") || !strings.Contains(errOut, "nothing was written") {
		t.Fatalf("without --path-map: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Fatal("a refused migration created the home")
	}

	out := mustCLI(t, "migrate", "tmkms", "--home", home, "--path-map", "/tmkms="+dir, src)
	for _, want := range []string{
		"chain testnet-1", addr, "kiravalconspub1", "tcp://sekai.local:26659",
		"dropped the node ID f88883b673fc69d7869cab098de3bafc2ff76eb8",
		"last signed 57/1/3 (precommit)", "imported " + filepath.Join(dir, "secrets/kms-identity.key"),
		"stop TMKMS and keep it stopped", "refuses to sign at or below the state", "cosigner start --home " + home,
		"turn the doppelganger watch on", "rpc = [",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, s := range secrets {
		if strings.Contains(out, s) || strings.Contains(out, s[:20]) {
			t.Errorf("output prints a secret")
		}
	}

	// The home works with the other commands.
	show := mustCLI(t, "keys", "show", "--home", home)
	if !strings.Contains(show, addr) || !strings.Contains(show, "kiravalconspub1") {
		t.Errorf("keys show:\n%s", show)
	}
	state := mustCLI(t, "state", "show", "--home", home)
	if !strings.Contains(state, "57/1/3") {
		t.Errorf("state show: %s", state)
	}

	// The KIRA walkthrough's second step: the migrated key shards into a
	// cluster with the same validator key.
	shards := filepath.Join(t.TempDir(), "shards")
	mustCLI(t, "shard", "--key", filepath.Join(home, "keys", "testnet-1.json"), "--threshold", "2", "--shares", "3",
		"--out", shards, "--chain-id", "testnet-1", "--node", "tcp://10.8.0.1:26659", "--bech32-prefix", "kira")
	if show := mustCLI(t, "keys", "show", "--home", filepath.Join(shards, "cosigner-2")); !strings.Contains(show, addr) {
		t.Errorf("shard of the migrated key, keys show:\n%s", show)
	}

	// Again: the home exists, exit 2 with a hint, and it is unchanged.
	before, _ := os.ReadFile(filepath.Join(home, "keys", "testnet-1.json"))
	code, _, errOut = cli(t, "migrate", "tmkms", "--home", home, "--path-map", "/tmkms="+dir, src)
	if code != 2 || !strings.Contains(errOut, "already exists") || !strings.Contains(errOut, "hint: a migration never writes over a cosigner home") {
		t.Fatalf("over an existing home: exit %d\n%s", code, errOut)
	}
	if after, _ := os.ReadFile(filepath.Join(home, "keys", "testnet-1.json")); string(after) != string(before) {
		t.Fatal("a refused migration changed the key file")
	}
}

func TestMigrateTMKMSBadInputs(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(dir string)
		flags []string
		want  string
	}{
		{"unknown key_format", func(dir string) {
			editFile(t, filepath.Join(dir, "tmkms.toml"), `key_type = "consensus"`, "key_type = \"consensus\"\nkey_format = \"raw\"")
		}, nil, `key_format = "raw" is unknown`},
		{"key of the wrong length", func(dir string) {
			writeFile(t, filepath.Join(dir, "secrets/priv_validator_key.json"), base64.StdEncoding.EncodeToString(make([]byte, 33)))
		}, nil, "holds 33 bytes"},
		{"state of another shape", func(dir string) {
			writeFile(t, filepath.Join(dir, "state/testnet-1-consensus.json"), `{"height":57}`)
		}, nil, "is not a TMKMS state file"},
		{"validator without chain", func(dir string) {
			editFile(t, filepath.Join(dir, "tmkms.toml"), "chain_id = \"testnet-1\"\naddr", "chain_id = \"testnet-9\"\naddr")
		}, nil, `chain_id "testnet-9", which has no [[chain]]`},
		{"two providers for one chain", func(dir string) {
			editFile(t, filepath.Join(dir, "tmkms.toml"), "[[validator]]", `[[providers.yubihsm]]
adapter = { type = "http", addr = "tcp://127.0.0.1:12345" }
auth = { key = 1, password = "password" }
keys = [{ chain_ids = ["testnet-1"], key = 1 }]

[[validator]]`)
		}, nil, "has two consensus keys"},
		{"bad --height", nil, []string{"--height", "testnet-1"}, "want CHAIN=N"},
		{"bad --path-map", nil, []string{"--path-map", "/tmkms"}, "want FROM=TO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _, _ := sekinLayout(t, sekinTOML)
			if tt.edit != nil {
				tt.edit(dir)
			}
			home := filepath.Join(t.TempDir(), "cosigner")
			args := append([]string{"migrate", "tmkms", "--home", home, "--path-map", "/tmkms=" + dir}, tt.flags...)
			code, out, errOut := cli(t, append(args, filepath.Join(dir, "tmkms.toml"))...)
			if code != 2 || !strings.Contains(errOut, tt.want) || !strings.Contains(errOut, "hint:") {
				t.Fatalf("exit %d (want 2), stderr lacks %q:\n%s%s", code, tt.want, out, errOut)
			}
			if _, err := os.Stat(home); !os.IsNotExist(err) {
				t.Error("a refused migration created the home")
			}
		})
	}
}

func TestMigrateTMKMSHelp(t *testing.T) {
	out := mustCLI(t, "migrate", "tmkms", "--help")
	for _, want := range []string{"Examples:", "cosigner migrate tmkms --home", "--path-map", "--height", "keep it stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

// TestMigrateTMKMSYubiHSM migrates a chain whose key TMKMS keeps in a
// YubiHSM2 (here the simulator): the migrated home reaches the device with
// the copied password and sees the key object tmkms.toml names.
func TestMigrateTMKMSYubiHSM(t *testing.T) {
	sim := testkit.Sim(t)
	// The key object TMKMS would have made with 'tmkms yubihsm keys import -i 7'.
	setup := filepath.Join(t.TempDir(), "setup")
	mustCLI(t, "init", "--home", setup, "--chain-id", "testnet-1", "--node", "tcp://127.0.0.1:26659")
	addHSMSection(t, setup, sim.Addr(), yubihsmsim.DefaultPassword)
	keyFile, pv := cometKey(t)
	mustCLI(t, "hsm", "keys", "import", "--home", setup, "--id", "7", keyFile)
	bech := keys.DescribePubKey(ed25519.PublicKey(pv.Key.PubKey.Bytes()), "kira").Bech32
	// TMKMS's own authentication key, with a password worth looking for.
	const password = "tmkms-auth-Zq81x"
	const allCaps = 1<<47 - 1
	if err := sim.PutAuthKey(2, "tmkms", password, 0xffff, allCaps, allCaps); err != nil {
		t.Fatal(err)
	}

	toml := strings.Replace(sekinTOML, `[[providers.softsign]]
chain_ids = ["testnet-1"]
key_type = "consensus"
path = "/tmkms/secrets/priv_validator_key.json"`, `[[providers.yubihsm]]
adapter = { type = "http", addr = "tcp://`+sim.Addr()+`" }
auth = { key = 2, password_file = "/tmkms/secrets/hsm-password" }
keys = [{ chain_ids = ["testnet-1"], key = 7 }]`, 1)
	dir, _, _ := sekinLayout(t, toml)
	writeFile(t, filepath.Join(dir, "secrets/hsm-password"), password+"\n")
	home := filepath.Join(t.TempDir(), "cosigner")
	out := mustCLI(t, "migrate", "tmkms", "--home", home, "--path-map", "/tmkms="+dir, filepath.Join(dir, "tmkms.toml"))
	if !strings.Contains(out, "YubiHSM2 key object 7") || strings.Contains(out, password) {
		t.Errorf("output:\n%s", out)
	}
	cfg, err := os.ReadFile(filepath.Join(home, "cosigner.toml"))
	if err != nil || !strings.Contains(string(cfg), "hsm_key_id = 7") || !strings.Contains(string(cfg), "auth_key_id = 2") || strings.Contains(string(cfg), password) {
		t.Fatalf("cosigner.toml (%v):\n%s", err, cfg)
	}
	list := mustCLI(t, "hsm", "keys", "list", "--home", home)
	if !strings.Contains(list, "7 ") || !strings.Contains(list, bech) {
		t.Fatalf("hsm keys list on the migrated home:\n%s", list)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s lacks %q", path, old)
	}
	writeFile(t, path, strings.Replace(string(data), old, new, 1))
}
