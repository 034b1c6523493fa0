package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/privval"
)

// cli runs the command in-process and returns its exit status and output.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := cli(t, args...)
	if code != 0 {
		t.Fatalf("cosigner %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// cometKey writes a CometBFT priv_validator_key.json made by CometBFT itself.
func cometKey(t *testing.T) (string, *privval.FilePV) {
	t.Helper()
	pv := privval.NewFilePV(cmted25519.GenPrivKey(), "", "")
	data, err := cmtjson.MarshalIndent(pv.Key, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "priv_validator_key.json")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, pv
}

func TestSoftsignSetupFlow(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	keyFile, pv := cometKey(t)

	mustCLI(t, "init", "--home", home, "--chain-id", "kira-1", "--node", "tcp://127.0.0.1:26659", "--bech32-prefix", "kira")
	for _, p := range []string{"cosigner.toml", "identity_key.json", "keys", "state"} {
		st, err := os.Stat(filepath.Join(home, p))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if st.IsDir() {
			want = 0o700
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", p, st.Mode().Perm(), want)
		}
	}

	out := mustCLI(t, "keys", "import", "--home", home, keyFile)
	if !strings.Contains(out, pv.Key.Address.String()) {
		t.Errorf("import output lacks the address %s:\n%s", pv.Key.Address, out)
	}
	// Importing again without --force is refused and keeps the key.
	code, _, errOut := cli(t, "keys", "import", "--home", home, keyFile)
	if code == 0 || !strings.Contains(errOut, "already exists") || !strings.Contains(errOut, "hint:") {
		t.Errorf("second import: exit %d, %s", code, errOut)
	}

	// --force replaces it with another key.
	otherKey, otherPV := cometKey(t)
	out = mustCLI(t, "keys", "import", "--home", home, "--force", otherKey)
	if !strings.Contains(out, otherPV.Key.Address.String()) {
		t.Fatalf("forced import: %s", out)
	}
	mustCLI(t, "keys", "import", "--home", home, "--force", keyFile)
	if st, err := os.Stat(filepath.Join(home, "keys", "kira-1.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file after --force: %v %v", st.Mode(), err)
	}

	out = mustCLI(t, "keys", "show", "--home", home, "--json")
	var info struct {
		ChainID string `json:"chain_id"`
		Address string `json:"address"`
		Base64  string `json:"base64"`
		Bech32  string `json:"bech32"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("keys show --json: %v\n%s", err, out)
	}
	if info.Address != pv.Key.Address.String() || info.ChainID != "kira-1" || !strings.HasPrefix(info.Bech32, "kiravalconspub1") {
		t.Errorf("keys show = %+v", info)
	}

	// start refuses without a state file, naming it and what to do.
	code, _, errOut = cli(t, "start", "--home", home)
	if code != 2 || !strings.Contains(errOut, filepath.Join(home, "state", "kira-1.json")) || !strings.Contains(errOut, "cosigner state init") {
		t.Errorf("start without state: exit %d\n%s", code, errOut)
	}

	mustCLI(t, "state", "init", "--home", home, "--chain-id", "kira-1", "--height", "1234")
	code, _, errOut = cli(t, "state", "init", "--home", home, "--chain-id", "kira-1", "--height", "1")
	if code == 0 || !strings.Contains(errOut, "already exists") {
		t.Errorf("second state init: exit %d %s", code, errOut)
	}
	out = mustCLI(t, "state", "show", "--home", home, "--json")
	var st struct {
		Height string `json:"height"`
		Step   int    `json:"step"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Height != "1234" || st.Step != 0 {
		t.Errorf("state show = %s (%v)", out, err)
	}

	// A TMKMS state replaces it only with --force.
	tmkms := filepath.Join(t.TempDir(), "kira-1-consensus.json")
	os.WriteFile(tmkms, []byte(`{"height":"2000","round":"1","step":2,"block_id":null}`), 0o600)
	if code, _, _ := cli(t, "state", "import", "--home", home, tmkms); code == 0 {
		t.Error("state import over an existing state without --force succeeded")
	}
	out = mustCLI(t, "state", "import", "--home", home, "--force", tmkms)
	if !strings.Contains(out, "TMKMS") || !strings.Contains(out, "2000/1/3") {
		t.Errorf("state import output: %s", out)
	}
}

func TestExitCodes(t *testing.T) {
	home := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown flag", []string{"init", "--nope"}, 2, "unknown flag"},
		{"missing required flag", []string{"init", "--home", home}, 2, "required flag"},
		{"bad node address", []string{"init", "--home", home, "--chain-id", "a", "--node", "http://x:1"}, 2, "want tcp://host:port"},
		// TMKMS's tcp://ID@host:port: CometBFT's listener changes its key at
		// every start, so the ID cannot be checked.
		{"node id in init", []string{"init", "--home", home, "--chain-id", "a", "--node", "tcp://f88883b673fc69d7869cab098de3bafc2ff76eb8@10.0.0.2:26659"}, 2,
			`cosigner cannot verify a node ID: CometBFT's privval listener makes a new SecretConnection key at every start, so the node's ID changes at every restart; write "tcp://10.0.0.2:26659"`},
		{"node id in shard", []string{"shard", "--key", "k", "--threshold", "2", "--shares", "3", "--out", filepath.Join(home, "shards"), "--chain-id", "a", "--node", "tcp://abc@10.0.0.2:26659"}, 2,
			`write "tcp://10.0.0.2:26659" and protect the link with a firewall or WireGuard`},
		{"no config", []string{"keys", "show", "--home", filepath.Join(home, "none")}, 2, "cosigner init"},
		{"extra args", []string{"state", "show", "--home", home, "x"}, 2, "accepts 0 arg"},
		{"state show without state", []string{"state", "show", "--home", testHome(t)}, 2, "cosigner state init"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := cli(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d (want %d), stderr:\n%s", code, tt.code, errOut)
			}
		})
	}
}

func TestBadKeyAndConfigFiles(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	mustCLI(t, "init", "--home", home, "--chain-id", "c-1", "--node", "unix:///tmp/x.sock")
	bad := filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad, []byte("this is not a key"), 0o600)
	code, _, errOut := cli(t, "keys", "import", "--home", home, bad)
	if code == 0 || !strings.Contains(errOut, bad) || !strings.Contains(errOut, "hint:") {
		t.Errorf("bad key import: exit %d %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(home, "keys", "c-1.json")); !os.IsNotExist(err) {
		t.Error("a bad key import left a key file")
	}
	// An unknown key in the config names the key.
	cfg := filepath.Join(home, "cosigner.toml")
	data, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append(data, []byte("\nlog_levle = \"debug\"\n")...), 0o600)
	code, _, errOut = cli(t, "keys", "show", "--home", home)
	if code != 2 || !strings.Contains(errOut, "log_levle") {
		t.Errorf("unknown config key: exit %d %s", code, errOut)
	}
	// init never overwrites an existing home.
	code, _, errOut = cli(t, "init", "--home", home, "--chain-id", "c-1", "--node", "unix:///tmp/x.sock")
	if code != 2 || !strings.Contains(errOut, "already exists") {
		t.Errorf("init over a home: exit %d %s", code, errOut)
	}
}

func TestShardCommand(t *testing.T) {
	keyFile, pv := cometKey(t)
	out := filepath.Join(t.TempDir(), "shards")

	code, _, errOut := cli(t, "shard", "--key", keyFile, "--threshold", "2", "--shares", "4", "--out", out)
	if code != 2 || !strings.Contains(errOut, "more than half") {
		t.Fatalf("2-of-4: exit %d %s", code, errOut)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("refused shard created the output directory")
	}

	stdout := mustCLI(t, "shard", "--key", keyFile, "--threshold", "2", "--shares", "3", "--out", out,
		"--chain-id", "kira-1", "--node", "tcp://127.0.0.1:26659", "--bech32-prefix", "kira")
	if !strings.Contains(stdout, pv.Key.Address.String()) {
		t.Errorf("shard output lacks the validator address:\n%s", stdout)
	}
	keyJSON, _ := os.ReadFile(keyFile)
	var parsed struct {
		PrivKey struct{ Value string } `json:"priv_key"`
	}
	json.Unmarshal(keyJSON, &parsed)
	if strings.Contains(stdout, parsed.PrivKey.Value[:16]) {
		t.Error("shard printed the private key")
	}

	// keys show on every share directory gives the validator's key.
	for i := 1; i <= 3; i++ {
		show := mustCLI(t, "keys", "show", "--home", filepath.Join(out, fmt.Sprintf("cosigner-%d", i)), "--json")
		var info struct {
			Address string `json:"address"`
			Bech32  string `json:"bech32"`
		}
		if err := json.Unmarshal([]byte(show), &info); err != nil {
			t.Fatal(err)
		}
		if info.Address != pv.Key.Address.String() || !strings.HasPrefix(info.Bech32, "kiravalconspub1") {
			t.Errorf("cosigner-%d keys show = %+v", i, info)
		}
	}

	code, _, errOut = cli(t, "shard", "--key", keyFile, "--threshold", "2", "--shares", "3", "--out", out)
	if code == 0 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("shard over an existing output: exit %d %s", code, errOut)
	}
	code, _, errOut = cli(t, "shard", "--threshold", "2", "--shares", "3")
	if code != 2 || !strings.Contains(errOut, "--key") {
		t.Fatalf("missing flags: exit %d %s", code, errOut)
	}
}

// testHome is an initialised home without key or state.
func testHome(t *testing.T) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	mustCLI(t, "init", "--home", home, "--chain-id", "c-1", "--node", "tcp://127.0.0.1:1")
	return home
}
