package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// freeAddrs returns n loopback addresses that were free a moment ago.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

type cliResult struct {
	code        int
	out, errOut string
}

// dkgAll runs 'cosigner dkg' in every home at once.
func dkgAll(t *testing.T, homes []string, args ...string) []cliResult {
	t.Helper()
	res := make([]cliResult, len(homes))
	var wg sync.WaitGroup
	for i, h := range homes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out, errOut := cli(t, append([]string{"dkg", "--home", h, "--timeout", "30s"}, args...)...)
			res[i] = cliResult{code, out, errOut}
		}()
	}
	wg.Wait()
	return res
}

func hexLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "hex:") {
			return l
		}
	}
	return ""
}

func TestDKGCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "homes")
	args := []string{"shard", "--no-key", "--threshold", "2", "--shares", "3", "--out", out,
		"--chain-id", "kira-1", "--node", "tcp://127.0.0.1:26659", "--bech32-prefix", "kira"}
	for _, a := range freeAddrs(t, 3) {
		args = append(args, "--peer", a)
	}
	stdout := mustCLI(t, args...)
	if !strings.Contains(stdout, "without any key") || !strings.Contains(stdout, "cosigner dkg") {
		t.Errorf("shard --no-key output:\n%s", stdout)
	}
	var homes []string
	for i := 1; i <= 3; i++ {
		homes = append(homes, filepath.Join(out, fmt.Sprintf("cosigner-%d", i)))
	}
	if code, _, errOut := cli(t, "keys", "show", "--home", homes[0]); code == 0 {
		t.Fatalf("keys show on a home without a key succeeded:\n%s", errOut)
	}

	res := dkgAll(t, homes)
	for i, r := range res {
		if r.code != 0 {
			t.Fatalf("dkg on cosigner %d: exit %d\n%s%s", i+1, r.code, r.out, r.errOut)
		}
		for _, form := range []string{"hex:", "base64:", "cosmos-json:", "bech32:      kiravalconspub1", "address:", "valcons:     kiravalcons1"} {
			if !strings.Contains(r.out, form) {
				t.Errorf("dkg on cosigner %d does not print %q:\n%s", i+1, form, r.out)
			}
		}
		if hexLine(r.out) != hexLine(res[0].out) {
			t.Fatalf("cosigners 1 and %d printed different keys:\n%s\n%s", i+1, res[0].out, r.out)
		}
		show := mustCLI(t, "keys", "show", "--home", homes[i])
		if hexLine(show) != hexLine(r.out) {
			t.Fatalf("keys show on cosigner %d: %s, dkg printed %s", i+1, hexLine(show), hexLine(r.out))
		}
	}

	// A home with a share: refused before any network, share kept.
	before, _ := os.ReadFile(filepath.Join(homes[0], "share.json"))
	code, _, errOut := cli(t, "dkg", "--home", homes[0], "--timeout", "1s")
	if code != 1 || !strings.Contains(errOut, "already in place") || !strings.Contains(errOut, "--force") {
		t.Fatalf("dkg over a share: exit %d\n%s", code, errOut)
	}
	after, _ := os.ReadFile(filepath.Join(homes[0], "share.json"))
	if string(before) != string(after) {
		t.Fatal("a refused dkg changed the share")
	}

	// --force on every host: a new key replaces the old one.
	res2 := dkgAll(t, homes, "--force")
	for i, r := range res2 {
		if r.code != 0 {
			t.Fatalf("dkg --force on cosigner %d: exit %d\n%s%s", i+1, r.code, r.out, r.errOut)
		}
	}
	if hexLine(res2[0].out) == hexLine(res[0].out) {
		t.Fatal("dkg --force kept the old key")
	}
	if show := mustCLI(t, "keys", "show", "--home", homes[2]); hexLine(show) != hexLine(res2[0].out) {
		t.Fatalf("after --force, keys show gives %s, dkg printed %s", hexLine(show), hexLine(res2[0].out))
	}
}

func TestDKGCommandRefusals(t *testing.T) {
	dir := t.TempDir()
	soft := filepath.Join(dir, "soft")
	mustCLI(t, "init", "--home", soft, "--chain-id", "kira-1", "--node", "tcp://127.0.0.1:26659")
	homes := filepath.Join(dir, "homes")
	mustCLI(t, "shard", "--no-key", "--threshold", "2", "--shares", "3", "--out", homes, "--peer", "127.0.0.1:1", "--peer", "127.0.0.1:11", "--peer", "127.0.0.1:21")
	home1 := filepath.Join(homes, "cosigner-1")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"softsign home", []string{"dkg", "--home", soft}, 2, "threshold cluster"},
		{"zero timeout", []string{"dkg", "--home", home1, "--timeout", "0s"}, 2, "--timeout"},
		{"no home", []string{"dkg", "--home", filepath.Join(dir, "nothing")}, 2, "hint"},
		{"no-key with key", []string{"shard", "--no-key", "--key", "k.json", "--threshold", "2", "--shares", "3", "--out", filepath.Join(dir, "x")}, 2, "takes no --key"},
		{"no-key without threshold", []string{"shard", "--no-key", "--shares", "3", "--out", filepath.Join(dir, "y")}, 2, "--threshold"},
		{"no-key over existing", []string{"shard", "--no-key", "--threshold", "2", "--shares", "3", "--out", homes}, 1, "never overwrites"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := cli(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, tc.code, tc.want, errOut)
			}
		})
	}
}
