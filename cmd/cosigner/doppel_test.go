package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/doppel"
	"github.com/cosigner/cosigner/cosigner/share"
)

// TestInitRPC: init --rpc writes the chain's rpc with the watch on at its
// default; a bad --rpc is a usage error naming it; without --rpc the watch
// is off.
func TestInitRPC(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	mustCLI(t, "init", "--home", home, "--chain-id", "kira-1", "--node", "tcp://127.0.0.1:26659", "--rpc", "http://127.0.0.1:26657")
	cfg, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	ch := cfg.Chains[0]
	if len(ch.RPC) != 1 || ch.RPC[0] != "http://127.0.0.1:26657" || ch.Watch() != config.DefaultDoppelgangerWatch || ch.RPCDown() != config.RPCDownRefuse {
		t.Fatalf("init --rpc wrote rpc %v, watch %d, rpc_down %q", ch.RPC, ch.Watch(), ch.RPCDown())
	}

	code, _, errOut := cli(t, "init", "--home", filepath.Join(t.TempDir(), "h"), "--chain-id", "kira-1", "--node", "tcp://127.0.0.1:26659", "--rpc", "tcp://127.0.0.1:26657")
	if code != 2 || !strings.Contains(errOut, `rpc address "tcp://127.0.0.1:26657": want http://host:port`) {
		t.Fatalf("init --rpc tcp://...: exit %d, %s", code, errOut)
	}

	home = filepath.Join(t.TempDir(), "h")
	mustCLI(t, "init", "--home", home, "--chain-id", "kira-1", "--node", "tcp://127.0.0.1:26659")
	cfg, err = config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Chains[0].Watch() != 0 {
		t.Fatalf("init without --rpc: watch %d, want off", cfg.Chains[0].Watch())
	}
}

// TestStateImportSuggestsWatch: state import, the step of a migration,
// suggests the doppelganger watch when the chain has none, and says
// nothing when it is on.
func TestStateImportSuggestsWatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		rpc  []string
		note bool
	}{
		{"watch off", nil, true},
		{"watch on", []string{"--rpc", "http://127.0.0.1:26657"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "h")
			mustCLI(t, append([]string{"init", "--home", home, "--chain-id", "kira-1", "--node", "tcp://127.0.0.1:26659"}, tc.rpc...)...)
			pvState := filepath.Join(t.TempDir(), "priv_validator_state.json")
			if err := os.WriteFile(pvState, []byte(`{"height": "10", "round": 0, "step": 3}`), 0o600); err != nil {
				t.Fatal(err)
			}
			out := mustCLI(t, "state", "import", "--home", home, "--chain-id", "kira-1", pvState)
			if got := strings.Contains(out, "doppelganger watch is off for kira-1"); got != tc.note {
				t.Fatalf("note shown = %v, want %v:\n%s", got, tc.note, out)
			}
		})
	}
}

// TestShardRPC: shard --rpc writes every cosigner's chain with the watch
// on; --rpc without --chain-id and a bad address are usage errors.
func TestShardRPC(t *testing.T) {
	keyFile, _ := cometKey(t)
	shards := filepath.Join(t.TempDir(), "shards")
	mustCLI(t, "shard", "--key", keyFile, "--threshold", "2", "--shares", "3", "--out", shards,
		"--chain-id", "c-1", "--node", "tcp://127.0.0.1:1", "--rpc", "http://127.0.0.1:26657")
	for i := 1; i <= 3; i++ {
		cfg, err := config.Load(share.Dir(shards, i))
		if err != nil {
			t.Fatal(err)
		}
		if ch := cfg.Chains[0]; len(ch.RPC) != 1 || ch.Watch() != config.DefaultDoppelgangerWatch {
			t.Fatalf("cosigner %d: rpc %v, watch %d", i, ch.RPC, ch.Watch())
		}
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no chain id", []string{"--rpc", "http://127.0.0.1:26657"}, "--rpc needs --chain-id"},
		{"bad address", []string{"--chain-id", "c-1", "--node", "tcp://127.0.0.1:1", "--rpc", "127.0.0.1:26657"}, `rpc address "127.0.0.1:26657"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"shard", "--key", keyFile, "--threshold", "2", "--shares", "3", "--out", filepath.Join(t.TempDir(), "s")}, tc.args...)
			code, _, errOut := cli(t, args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, %s; want 2 and %q", code, errOut, tc.want)
			}
		})
	}
}

// TestRunHintDoppelganger: a doppelganger found at start exits 2 (so
// systemd's RestartPreventExitStatus=2 leaves it to the operator) with a
// hint saying what to look for; other run errors pass through.
func TestRunHintDoppelganger(t *testing.T) {
	det := &doppel.DetectedError{ChainID: "kira-1", Height: 10, Why: "carries our validator's precommit, which this cosigner did not sign"}
	err := runHint(fmt.Errorf("run: %w", det))
	var u usageError
	var h hintError
	if !errors.As(err, &u) || !errors.As(err, &h) || !strings.Contains(h.hint, "stop it, then start cosigner again") {
		t.Fatalf("runHint(DetectedError) = %#v, want a usage error with a hint", err)
	}
	other := errors.New("disk full")
	if got := runHint(other); got != other {
		t.Fatalf("runHint(other) = %v, want it unchanged", got)
	}
}
