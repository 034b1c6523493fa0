package main

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/internal/testkit/testhorcrux"
	"github.com/cosigner/cosigner/privval"
)

// horcruxCLI exports every host's public file and issues the cluster TLS
// with the CLI, as an operator does, and returns the --public flags and
// the TLS directory.
func horcruxCLI(t *testing.T, c *testhorcrux.Cluster) (public []string, tlsDir string) {
	t.Helper()
	for i := 1; i <= c.N; i++ {
		out := filepath.Join(c.Dir, fmt.Sprintf("horcrux-%d.public.json", i))
		stdout := mustCLI(t, "migrate", "horcrux", "export", "--horcrux-home", c.Home(i), "--out", out)
		if !strings.Contains(stdout, fmt.Sprintf("of a %d-of-%d cluster", c.M, c.N)) {
			t.Errorf("export host %d said:\n%s", i, stdout)
		}
		public = append(public, "--public", out)
	}
	tlsDir = filepath.Join(c.Dir, "cluster-tls")
	mustCLI(t, "migrate", "horcrux", "tls", "--out", tlsDir, "--shares", fmt.Sprint(c.N))
	return public, tlsDir
}

func migrateArgs(c *testhorcrux.Cluster, i int, public []string, tlsDir string, extra ...string) []string {
	args := []string{"migrate", "horcrux", "--horcrux-home", c.Home(i), "--home", filepath.Join(c.Dir, fmt.Sprintf("cosigner-%d", i)),
		"--tls", filepath.Join(tlsDir, fmt.Sprintf("cosigner-%d", i))}
	return append(append(args, public...), extra...)
}

// TestMigrateHorcruxCLI migrates a 2-of-3 Horcrux cluster through the CLI:
// every host prints the same group fingerprint and the marks it imported,
// and the migrated homes answer `state show` and `keys show`.
func TestMigrateHorcruxCLI(t *testing.T) {
	c := testhorcrux.New(t, 2, 3, "kira-1")
	for i := 1; i <= 3; i++ {
		c.WriteState(i, "kira-1", testhorcrux.ClusterState, testhorcrux.State{H: 200, Step: privval.StepPrecommit, Block: "A"})
		c.WriteState(i, "kira-1", testhorcrux.ShareState, testhorcrux.State{H: 201, R: 2, Step: privval.StepPrevote, Block: "B"})
	}
	public, tlsDir := horcruxCLI(t, c)
	fingerprint := regexp.MustCompile(`group fingerprint ([0-9A-F]{16})`)
	var first string
	for i := 1; i <= 3; i++ {
		out := mustCLI(t, migrateArgs(c, i, public, tlsDir, "--bech32-prefix", "kira")...)
		for _, want := range []string{
			fmt.Sprintf("cosigner %d of a 2-of-3 cluster", i),
			"kira-1: cluster 200/0/3 (precommit), this cosigner's share 201/2/2 (prevote) -> signs only above 201/2/2 (prevote)",
			fmt.Sprintf("gRPC 10.0.0.%d:2222  Raft 10.0.0.%d:2223  (this host)", i, i),
			"kiravalconspub1",
			"ecies_keys.json: Horcrux's link keys",
			"turn the doppelganger watch on",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("host %d: output lacks %q:\n%s", i, want, out)
			}
		}
		m := fingerprint.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("host %d: no fingerprint in:\n%s", i, out)
		}
		if first != "" && m[1] != first {
			t.Errorf("host %d: fingerprint %s, host 1 printed %s", i, m[1], first)
		}
		first = m[1]
		home := filepath.Join(c.Dir, fmt.Sprintf("cosigner-%d", i))
		if st := mustCLI(t, "state", "show", "--home", home); !strings.Contains(st, "last signed 201/2/2 (prevote of block 42") {
			t.Errorf("host %d: state show: %s", i, st)
		}
		if keys := mustCLI(t, "keys", "show", "--home", home, "--json"); !strings.Contains(keys, fmt.Sprintf("%X", []byte(c.Pub))) {
			t.Errorf("host %d: keys show does not show the validator key %X:\n%s", i, c.Pub, keys)
		}
	}
	// export never overwrites its output.
	out := filepath.Join(c.Dir, "horcrux-1.public.json")
	code, _, errOut := cli(t, "migrate", "horcrux", "export", "--horcrux-home", c.Home(1), "--out", out)
	if code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("export over an existing file: exit %d\n%s", code, errOut)
	}
}

// TestMigrateHorcruxCLIRefuses checks the CLI's exit status and message
// for bad inputs and flags, each with what to do.
func TestMigrateHorcruxCLIRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(c *testhorcrux.Cluster) // before the export
		after func(c *testhorcrux.Cluster, public []string, tlsDir string) []string
		code  int
		want  []string
	}{
		{
			name: "shard of another key",
			setup: func(c *testhorcrux.Cluster) {
				seed := make([]byte, 32)
				c.WriteShard(3, "kira-1", pubOf(seed), testhorcrux.Deal(t, seed, 2, 3)[2], 3)
			},
			code: 1, want: []string{"horcrux-3.public.json: chain kira-1 has validator key", "the files are of another key"},
		},
		{
			name: "shard of another dealing",
			setup: func(c *testhorcrux.Cluster) {
				c.WriteShard(2, "kira-1", c.Pub, testhorcrux.Deal(t, c.Seed, 2, 3)[1], 2)
			},
			code: 1, want: []string{"the public share of cosigner 2 (", "horcrux-2.public.json", "not a share of this dealing"},
		},
		{
			name:  "two shards with the same id",
			setup: func(c *testhorcrux.Cluster) { c.WriteShard(3, "kira-1", c.Pub, c.Shards["kira-1"][0], 1) },
			code:  1, want: []string{"both carry cosigner id 1", "each id may sign on one host only"},
		},
		{
			name: "missing state file",
			setup: func(c *testhorcrux.Cluster) {
				os.Remove(filepath.Join(c.Home(1), "state", "kira-1"+testhorcrux.ShareState))
			},
			code: 1, want: []string{"kira-1_share_sign_state.json", "hint:", "state set CHAIN HEIGHT"},
		},
		{
			name: "home exists",
			after: func(c *testhorcrux.Cluster, public []string, tlsDir string) []string {
				args := migrateArgs(c, 1, public, tlsDir)
				os.MkdirAll(filepath.Join(c.Dir, "cosigner-1"), 0o700)
				return args
			},
			code: 1, want: []string{"already exists", "hint: migrate never overwrites"},
		},
		{
			name: "Horcrux home is not one",
			after: func(c *testhorcrux.Cluster, public []string, tlsDir string) []string {
				return append(migrateArgs(c, 1, public, tlsDir), "--horcrux-home", c.Dir)
			},
			code: 1, want: []string{"not a Horcrux home", "hint: give --horcrux-home"},
		},
		{
			name: "horcrux still running",
			after: func(c *testhorcrux.Cluster, public []string, tlsDir string) []string {
				c.Write(filepath.Join(c.Home(1), testhorcrux.PidFile), fmt.Appendf(nil, "%d\n", os.Getpid()))
				return migrateArgs(c, 1, public, tlsDir)
			},
			code: 1, want: []string{"horcrux is running", "hint: stop horcrux on every host"},
		},
		{
			name: "second key dealt apart on each host",
			setup: func(c *testhorcrux.Cluster) {
				seed := make([]byte, 32)
				seed[0] = 1
				for i := 1; i <= 3; i++ {
					c.WriteShard(i, "other-1", pubOf(seed), testhorcrux.Deal(t, seed, 2, 3)[i-1], i)
				}
			},
			after: func(c *testhorcrux.Cluster, public []string, tlsDir string) []string {
				return migrateArgs(c, 1, public, tlsDir, "--node", "kira-1=tcp://10.0.1.1:26659", "--node", "other-1=tcp://10.0.1.2:26659")
			},
			code: 1, want: []string{"public shares of chain other-1 do not make a 2-of-3 dealing"},
		},
		{
			name: "no public files",
			after: func(c *testhorcrux.Cluster, public []string, tlsDir string) []string {
				return migrateArgs(c, 1, nil, tlsDir)
			},
			code: 2, want: []string{"required flag(s) --public not set"},
		},
		{
			name: "node with an ID",
			after: func(c *testhorcrux.Cluster, public []string, tlsDir string) []string {
				return migrateArgs(c, 1, public, tlsDir, "--node", "kira-1=tcp://0123456789abcdef0123456789abcdef01234567@10.0.1.1:1234")
			},
			code: 2, want: []string{"cannot verify a node ID"},
		},
		{
			name: "malformed --raft-peer",
			after: func(c *testhorcrux.Cluster, public []string, tlsDir string) []string {
				return migrateArgs(c, 1, public, tlsDir, "--raft-peer", "10.0.0.1:7001")
			},
			code: 2, want: []string{"want ID=host:port"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testhorcrux.New(t, 2, 3, "kira-1")
			if tc.setup != nil {
				tc.setup(c)
			}
			public, tlsDir := horcruxCLI(t, c)
			args := migrateArgs(c, 1, public, tlsDir)
			if tc.after != nil {
				args = tc.after(c, public, tlsDir)
			}
			code, out, errOut := cli(t, args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// TestMigrateHorcruxCLITwoKeys: a Horcrux cluster signing two chains with
// different keys migrates into one cosigner cluster; every host prints both
// keys with the same fingerprints, and keys show names each chain's key.
func TestMigrateHorcruxCLITwoKeys(t *testing.T) {
	c := testhorcrux.New(t, 2, 3, "kira-1")
	seed := make([]byte, 32)
	seed[0] = 1
	dealt := testhorcrux.Deal(t, seed, 2, 3)
	for i := 1; i <= 3; i++ {
		c.WriteShard(i, "other-1", pubOf(seed), dealt[i-1], i)
		c.WriteState(i, "other-1", testhorcrux.ClusterState, testhorcrux.State{})
		c.WriteState(i, "other-1", testhorcrux.ShareState, testhorcrux.State{})
	}
	public, tlsDir := horcruxCLI(t, c)
	fingerprint := regexp.MustCompile(`group fingerprint ([0-9A-F]{16})`)
	var first []string
	for i := 1; i <= 3; i++ {
		out := mustCLI(t, migrateArgs(c, i, public, tlsDir, "--node", "kira-1=tcp://10.0.1.1:26659", "--node", "other-1=tcp://10.0.1.2:26659")...)
		var fps []string
		for _, m := range fingerprint.FindAllStringSubmatch(out, -1) {
			fps = append(fps, m[1])
		}
		if len(fps) != 2 || !strings.Contains(out, "key 2 of 2, signs other-1") || !strings.Contains(out, keysAddress(pubOf(seed))) {
			t.Fatalf("host %d:\n%s", i, out)
		}
		if first == nil {
			first = fps
		} else if strings.Join(fps, ",") != strings.Join(first, ",") {
			t.Errorf("host %d fingerprints %v, host 1 %v", i, fps, first)
		}
		show := mustCLI(t, "keys", "show", "--home", filepath.Join(c.Dir, fmt.Sprintf("cosigner-%d", i)))
		if !strings.Contains(show, "chain:       other-1\nkey:         group_file \"group-other-1.json\"") ||
			!strings.Contains(show, keysAddress(c.Pub)) || !strings.Contains(show, keysAddress(pubOf(seed))) {
			t.Errorf("host %d keys show:\n%s", i, show)
		}
	}
}

func keysAddress(pub ed25519.PublicKey) string { return keys.Address(pub) }

func pubOf(seed []byte) ed25519.PublicKey {
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
}
