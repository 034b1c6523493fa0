package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/admin"
	"github.com/cosigner/cosigner/cosigner/config"
)

// TestStatusCommand runs a softsign cosigner in-process and asks it with
// 'status' and 'leader transfer' over its admin socket; once it has
// stopped, status exits 1 with a hint to start it.
func TestStatusCommand(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	keyFile, _ := cometKey(t)
	mustCLI(t, "init", "--home", home, "--chain-id", "kira-1", "--node", "tcp://127.0.0.1:1")
	cfg, err := os.ReadFile(filepath.Join(home, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), `listen = "127.0.0.1:26680"`) {
		t.Errorf("init wrote no loopback metrics default:\n%s", cfg)
	}
	// A free port for this test.
	cfgPath := filepath.Join(home, config.FileName)
	// And a height bound that grows a height per 1000 s, to see it in
	// status: mark 7 + 100.
	edited := strings.Replace(string(cfg), "127.0.0.1:26680", "127.0.0.1:0", 1)
	edited = strings.Replace(edited, "max_height_ahead = 0\nmax_height_rate = 10", "max_height_ahead = 100\nmax_height_rate = 0.001", 1)
	if err := os.WriteFile(cfgPath, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "keys", "import", "--home", home, keyFile)
	mustCLI(t, "state", "init", "--home", home, "--chain-id", "kira-1", "--height", "7")

	code, _, errOut := cli(t, "status", "--home", home)
	if code != 1 || !strings.Contains(errOut, "hint: start it with 'cosigner start --home") {
		t.Fatalf("status of a stopped cosigner: exit %d, %s", code, errOut)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- start(ctx, home, io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("start: %v", err)
		}
	}()
	waitAdmin(t, home, done)

	out := mustCLI(t, "status", "--home", home)
	for _, want := range []string{"softsign", "kira-1: last signed 7/0/none", "tcp://127.0.0.1:1: not connected",
		"    signs up to height 107 now (max_height_ahead, max_height_rate)\n",
		// A whole key is a cluster of one: nothing may be down or
		// compromised, and its one share signs.
		"what a 1-of-1 cluster withstands:",
		"cosigners that may be down, signing goes on:        0\n",
		"cosigners that may be compromised, no double sign:  0  (one compromised cosigner can double sign)\n",
		"shares an attacker needs to sign on its own:        1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	raw := mustCLI(t, "status", "--home", home, "--json")
	var st admin.Status
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != "softsign" || !st.Quorum || st.Ready || len(st.Chains) != 1 || st.Chains[0].Height != 7 ||
		st.Chains[0].MaxHeight == nil || *st.Chains[0].MaxHeight != 107 {
		t.Errorf("status --json = %+v", st)
	}
	for _, want := range []string{`"down_tolerated": 0,`, `"compromised_tolerated": 0,`, `"shares_to_sign": 1,`} {
		if !strings.Contains(raw, want) {
			t.Errorf("status --json lacks %s:\n%s", want, raw)
		}
	}
	code, _, errOut = cli(t, "leader", "transfer", "2", "--home", home)
	if code != 1 || !strings.Contains(errOut, "softsign mode") {
		t.Errorf("leader transfer in softsign mode: exit %d, %s", code, errOut)
	}
	if code, _, _ := cli(t, "leader", "transfer", "x", "--home", home); code != 2 {
		t.Errorf("leader transfer x: exit %d, want 2", code)
	}
}

// waitAdmin waits for the admin socket of the cosigner starting in home.
func waitAdmin(t *testing.T, home string, done <-chan error) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := admin.GetStatus(context.Background(), home); err == nil {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("start returned early: %v", err)
		case <-deadline:
			t.Fatal("admin socket did not come up")
		case <-tick.C:
		}
	}
}
