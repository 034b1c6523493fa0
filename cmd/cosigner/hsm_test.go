package main

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cosigner/cosigner/internal/testkit"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/hsm"
	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/test/yubihsmsim"
)

// addHSMSection appends an [hsm] section pointing at addr to the home's
// configuration and writes the password file.
func addHSMSection(t *testing.T, home, addr, password string) {
	t.Helper()
	path := filepath.Join(home, "cosigner.toml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, fmt.Sprintf("\n[hsm]\nconnector = %q\nauth_key_id = 1\npassword_file = \"hsm_password\"\n", addr)...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "hsm_password"), []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestHSMKeysCommands(t *testing.T) {
	sim := testkit.Sim(t)
	home := filepath.Join(t.TempDir(), "home")
	mustCLI(t, "init", "--home", home, "--chain-id", "kira-1", "--node", "tcp://127.0.0.1:26659", "--bech32-prefix", "kira")
	addHSMSection(t, home, sim.Addr(), yubihsmsim.DefaultPassword)
	keyFile, pv := cometKey(t)
	pub := ed25519.PublicKey(pv.Key.PubKey.Bytes())
	bech := keys.DescribePubKey(pub, "kira").Bech32

	out := mustCLI(t, "hsm", "keys", "import", "--home", home, "--id", "3", "--label", "kira-1", keyFile)
	if !strings.Contains(out, bech) || !strings.Contains(out, "hsm_key_id = 3") {
		t.Fatalf("import output:\n%s", out)
	}
	if got, ok := sim.PublicKey(3); !ok || !got.Equal(pub) {
		t.Fatal("the simulator does not hold the imported key")
	}
	code, _, errOut := cli(t, "hsm", "keys", "import", "--home", home, "--id", "3", keyFile)
	if code != 1 || !strings.Contains(errOut, "exists") || !strings.Contains(errOut, "hint:") {
		t.Fatalf("import over id 3: exit %d\n%s", code, errOut)
	}
	out = mustCLI(t, "hsm", "keys", "generate", "--home", home, "--id", "4", "--label", "fresh")
	gen, _ := sim.PublicKey(4)
	if !strings.Contains(out, keys.DescribePubKey(gen, "kira").Bech32) {
		t.Fatalf("generate output:\n%s", out)
	}
	out = mustCLI(t, "hsm", "keys", "list", "--home", home)
	for _, want := range []string{"3 ", "kira-1", bech, "4 ", "fresh", "kiravalconspub1"} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}
	code, _, errOut = cli(t, "hsm", "keys", "generate", "--home", home)
	if code != 2 || !strings.Contains(errOut, "--id") {
		t.Fatalf("generate without --id: exit %d %s", code, errOut)
	}

	// A chain signing with the key in the device validates; start refuses
	// clearly when the key object is missing or the device is away.
	cfgPath := filepath.Join(home, "cosigner.toml")
	data, _ := os.ReadFile(cfgPath)
	cfgText := strings.Replace(string(data), `key = "keys/kira-1.json"`, "hsm_key_id = 9", 1)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "state", "init", "--home", home, "--chain-id", "kira-1")
	code, _, errOut = cli(t, "start", "--home", home)
	if code != 1 || !strings.Contains(errOut, "not found") || !strings.Contains(errOut, "hsm keys list") {
		t.Fatalf("start with a missing key object: exit %d\n%s", code, errOut)
	}
	sim.Stop()
	code, _, errOut = cli(t, "start", "--home", home)
	if code != 1 || !strings.Contains(errOut, "not reachable") || !strings.Contains(errOut, "yubihsm-connector") {
		t.Fatalf("start without a device: exit %d\n%s", code, errOut)
	}
	code, _, errOut = cli(t, "hsm", "keys", "list", "--home", home)
	if code != 1 || !strings.Contains(errOut, "not reachable") {
		t.Fatalf("list without a device: exit %d\n%s", code, errOut)
	}
}

func TestHSMWrongPasswordCommand(t *testing.T) {
	sim := testkit.Sim(t)
	home := testHome(t)
	addHSMSection(t, home, sim.Addr(), "not-the-password")
	code, _, errOut := cli(t, "hsm", "keys", "list", "--home", home)
	if code != 1 || !strings.Contains(errOut, "wrong password") || !strings.Contains(errOut, "hsm_password") {
		t.Fatalf("wrong password: exit %d\n%s", code, errOut)
	}
	// No [hsm] section at all.
	code, _, errOut = cli(t, "hsm", "keys", "list", "--home", testHome(t))
	if code != 2 || !strings.Contains(errOut, "[hsm]") {
		t.Fatalf("no [hsm]: exit %d\n%s", code, errOut)
	}
}

func TestHSMShareImportCommand(t *testing.T) {
	sim := testkit.Sim(t)
	keyFile, _ := cometKey(t)
	out := filepath.Join(t.TempDir(), "shards")
	mustCLI(t, "shard", "--key", keyFile, "--threshold", "2", "--shares", "3", "--out", out, "--chain-id", "kira-1", "--node", "tcp://127.0.0.1:26659")
	home := filepath.Join(out, "cosigner-2")
	addHSMSection(t, home, sim.Addr(), yubihsmsim.DefaultPassword)
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := share.Load(cfg.Path(cfg.Threshold.ShareFile), cfg.Path(cfg.Threshold.GroupFile))
	if err != nil {
		t.Fatal(err)
	}

	stdout := mustCLI(t, "hsm", "share", "import", "--home", home, "--id", "200")
	if !strings.Contains(stdout, "object 200") || !strings.Contains(stdout, "cosigner-share-2") {
		t.Fatalf("share import output:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(home, "share.json")); !os.IsNotExist(err) {
		t.Fatalf("share.json still on disk: %v", err)
	}
	cfg, err = config.Load(home)
	if err != nil || cfg.Threshold.ShareHSMObject != 200 {
		t.Fatalf("config after import: share_hsm_object %d, %v", cfg.Threshold.ShareHSMObject, err)
	}
	h, err := hsm.Dial(t.Context(), hsm.Options{Addr: sim.Addr(), AuthKeyID: 1, Password: yubihsmsim.DefaultPassword}, hsmLogger(newRootCmd()))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	got, err := share.LoadFromHSM(t.Context(), h, 200, cfg.Path(cfg.Threshold.GroupFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Bytes()) != string(orig.Bytes()) {
		t.Fatal("the sealed share differs from the original")
	}
	show := mustCLI(t, "keys", "show", "--home", home, "--json")
	if !strings.Contains(show, fmt.Sprintf("%X", []byte(orig.Group().PublicKey()))) && !strings.Contains(strings.ToUpper(show), fmt.Sprintf("%X", []byte(orig.Group().PublicKey()))) {
		t.Fatalf("keys show on the sealed home:\n%s", show)
	}
	code, _, errOut := cli(t, "hsm", "share", "import", "--home", home)
	if code != 2 || !strings.Contains(errOut, "sealed already") {
		t.Fatalf("second import: exit %d\n%s", code, errOut)
	}
}

// TestHSMChainShareImport: 'hsm share import --chain-id' seals the share
// of a chain's own key: the chain's share_file becomes share_hsm_object,
// the file is removed, keys show reads the share from the device; a second
// import and a chain signed with [threshold]'s share are refused.
func TestHSMChainShareImport(t *testing.T) {
	sim := testkit.Sim(t)
	keyA, pvA := cometKey(t)
	keyB, pvB := cometKey(t)
	out := filepath.Join(t.TempDir(), "shards")
	mustCLI(t, "shard", "--key", keyA, "--threshold", "2", "--shares", "3", "--out", out, "--chain-id", "chain-a", "--node", "tcp://127.0.0.1:26659")
	mustCLI(t, "shard", "--key", keyB, "--add-to", out, "--chain-id", "chain-b", "--node", "tcp://127.0.0.1:26669")
	home := filepath.Join(out, "cosigner-2")
	addHSMSection(t, home, sim.Addr(), yubihsmsim.DefaultPassword)

	stdout := mustCLI(t, "hsm", "share", "import", "--home", home, "--chain-id", "chain-b", "--id", "201")
	if !strings.Contains(stdout, "object 201") || !strings.Contains(stdout, "cosigner-share-2-chain-b") {
		t.Fatalf("share import output:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(home, "share-chain-b.json")); !os.IsNotExist(err) {
		t.Fatalf("share-chain-b.json still on disk: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "share.json")); err != nil {
		t.Fatalf("share.json of chain-a: %v", err)
	}
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if ch, _ := cfg.Chain("chain-b"); ch.ShareHSMObject != 201 || ch.ShareFile != "" || ch.GroupFile != "group-chain-b.json" || cfg.Threshold.ShareHSMObject != 0 {
		t.Fatalf("config after import: chain-b %+v, threshold %+v", ch, cfg.Threshold)
	}
	var shown []struct {
		ChainID string `json:"chain_id"`
		Address string `json:"address"`
		Source  string `json:"source"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "keys", "show", "--home", home, "--json")), &shown); err != nil {
		t.Fatal(err)
	}
	if len(shown) != 2 || shown[0].Address != pvA.Key.Address.String() || shown[1].Address != pvB.Key.Address.String() ||
		!strings.Contains(shown[1].Source, "share_hsm_object 201") {
		t.Fatalf("keys show: %+v", shown)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--chain-id", "chain-b"}, "sealed already"},
		{[]string{"--chain-id", "chain-a"}, "run without --chain-id"},
		{[]string{"--chain-id", "chain-c"}, "not in"},
	} {
		code, _, errOut := cli(t, append([]string{"hsm", "share", "import", "--home", home}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("import %v: exit %d, want 2 with %q\n%s", tc.args, code, tc.want, errOut)
		}
	}
}
