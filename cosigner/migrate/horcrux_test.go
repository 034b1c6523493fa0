package migrate

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/edwards25519"

	"github.com/cosigner/cosigner/cosigner/clustertls"
	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/internal/testkit/testhorcrux"
	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/threshold"
)

// export runs ExportHorcrux on every host and writes the public files into
// one directory, as the operator gathers them; it returns their paths.
func export(t *testing.T, c *testhorcrux.Cluster) []string {
	t.Helper()
	dir := filepath.Join(c.Dir, "public")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for i := 1; i <= c.N; i++ {
		e, err := ExportHorcrux(c.Home(i))
		if err != nil {
			t.Fatalf("export host %d: %v", i, err)
		}
		p := filepath.Join(dir, fmt.Sprintf("horcrux-%d.public.json", i))
		c.Write(p, e.JSON)
		paths = append(paths, p)
	}
	return paths
}

// tls issues the cluster's certificates once and returns their directory.
func clusterTLS(t *testing.T, c *testhorcrux.Cluster) string {
	t.Helper()
	out := filepath.Join(c.Dir, "tls")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	if _, err := IssueHorcruxTLS(out, c.N); err != nil {
		t.Fatal(err)
	}
	return out
}

// options returns the options that migrate host i with every public file.
func options(t *testing.T, c *testhorcrux.Cluster, i int, public []string) HorcruxOptions {
	return HorcruxOptions{
		HorcruxHome: c.Home(i),
		Home:        filepath.Join(c.Dir, fmt.Sprintf("cosigner-home-%d", i)),
		Public:      public,
		TLSDir:      share.Dir(clusterTLS(t, c), i),
	}
}

// signWith signs msg with the key shares of ids through FROST and returns
// the aggregate signature.
func signWith(t *testing.T, shares map[int]*threshold.KeyShare, ids []int, msg []byte) []byte {
	t.Helper()
	var nonces []*threshold.Nonce
	var commitments []threshold.Commitment
	for _, id := range ids {
		n, err := threshold.NewNonce(shares[id], nil)
		if err != nil {
			t.Fatal(err)
		}
		nonces = append(nonces, n)
		commitments = append(commitments, n.Commitment())
	}
	group := shares[ids[0]].Group()
	pkg, err := threshold.NewSigningPackage(group, msg, commitments)
	if err != nil {
		t.Fatal(err)
	}
	var sigShares []threshold.SignatureShare
	for k, id := range ids {
		ss, err := threshold.SignShare(shares[id], nonces[k], pkg)
		if err != nil {
			t.Fatal(err)
		}
		sigShares = append(sigShares, ss)
	}
	sig, err := threshold.Aggregate(pkg, sigShares)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestMigrateHorcrux migrates every host of Horcrux clusters dealt by the
// test dealer and checks the homes: the configuration keeps the shape,
// ids, addresses (Raft on the next port) and nodes; every host builds the
// same group; the migrated shares sign together for the validator key
// (checked with crypto/ed25519); and each chain's state starts at the
// higher of Horcrux's two marks.
func TestMigrateHorcrux(t *testing.T) {
	for _, shape := range []struct{ m, n int }{{2, 3}, {3, 5}} {
		t.Run(fmt.Sprintf("%d-of-%d", shape.m, shape.n), func(t *testing.T) {
			c := testhorcrux.New(t, shape.m, shape.n, "kira-1")
			for i := 1; i <= c.N; i++ {
				// Host 1's share state is ahead of the cluster's state; the
				// others have the cluster's state ahead.
				c.WriteState(i, "kira-1", testhorcrux.ClusterState, testhorcrux.State{H: 100, R: 0, Step: privval.StepPrecommit, Block: "A"})
				share := testhorcrux.State{H: 100, R: 0, Step: privval.StepPrevote, Block: "A"}
				if i == 1 {
					share = testhorcrux.State{H: 101, R: 1, Step: privval.StepProposal, Block: "B"}
				}
				c.WriteState(i, "kira-1", testhorcrux.ShareState, share)
			}
			public := export(t, c)
			shares := map[int]*threshold.KeyShare{}
			var groupJSON []byte
			for i := 1; i <= c.N; i++ {
				opts := options(t, c, i, public)
				rep, err := MigrateHorcrux(opts)
				if err != nil {
					t.Fatalf("host %d: %v", i, err)
				}
				if rep.ID != i || rep.M != c.M || rep.N != c.N || !bytes.Equal(rep.PubKey, c.Pub) || rep.KeyChain != "kira-1" {
					t.Errorf("host %d: report says cosigner %d, %d-of-%d, key %X, key chain %s", i, rep.ID, rep.M, rep.N, rep.PubKey, rep.KeyChain)
				}
				cfg, err := config.Load(opts.Home)
				if err != nil {
					t.Fatal(err)
				}
				th := cfg.Threshold
				if cfg.Mode != config.ModeThreshold || th.ID != i || th.Threshold != c.M || th.Shares != c.N {
					t.Errorf("host %d: config is %s, cosigner %d, %d-of-%d", i, cfg.Mode, th.ID, th.Threshold, th.Shares)
				}
				for _, p := range th.Peers {
					wantGRPC, wantRaft := fmt.Sprintf("10.0.0.%d:2222", p.ID), fmt.Sprintf("10.0.0.%d:2223", p.ID)
					if p.Address != wantGRPC || p.RaftAddress != wantRaft {
						t.Errorf("host %d: peer %d at %s / %s, want %s / %s", i, p.ID, p.Address, p.RaftAddress, wantGRPC, wantRaft)
					}
				}
				ch, ok := cfg.Chain("kira-1")
				if !ok || !slices.Equal(ch.Nodes, []string{fmt.Sprintf("tcp://10.0.1.%d:1234", i)}) {
					t.Errorf("host %d: chain kira-1 nodes %v", i, ch)
				}
				ks, err := share.Load(cfg.Path(th.ShareFile), cfg.Path(th.GroupFile))
				if err != nil {
					t.Fatal(err)
				}
				shares[i] = ks
				g, err := os.ReadFile(cfg.Path(th.GroupFile))
				if err != nil {
					t.Fatal(err)
				}
				if groupJSON != nil && !bytes.Equal(g, groupJSON) {
					t.Errorf("host %d wrote another group file than host 1", i)
				}
				groupJSON = g
				if ident, err := clustertls.Load(cfg.Path(th.TLSDir)); err != nil || ident.ID() != i {
					t.Errorf("host %d: cluster TLS: %v", i, err)
				}

				m, err := signstate.ReadMark(signstate.StatePath(cfg.Path(cfg.StateDir), "kira-1"), "kira-1")
				if err != nil {
					t.Fatal(err)
				}
				want := signstate.Mark{Height: 100, Round: 0, Step: privval.StepPrecommit}
				if i == 1 {
					want = signstate.Mark{Height: 101, Round: 1, Step: privval.StepProposal}
				}
				if m.Height != want.Height || m.Round != want.Round || m.Step != want.Step || len(m.SignBytes) == 0 || len(m.Signature) != 0 {
					t.Errorf("host %d: state starts at %d/%d/%d (%d sign bytes, %d signature bytes), want %d/%d/%d with sign bytes, no signature",
						i, m.Height, m.Round, m.Step, len(m.SignBytes), len(m.Signature), want.Height, want.Round, want.Step)
				}
				if rep.Chains[0].Start.Height != want.Height {
					t.Errorf("host %d: report's start %+v", i, rep.Chains[0].Start)
				}
				for _, entry := range []string{"raft"} {
					if _, err := os.Stat(filepath.Join(opts.Home, entry)); err == nil {
						t.Errorf("host %d: home has %s before the first start", i, entry)
					}
				}
			}
			// Any M of the migrated shares sign for the validator key.
			msg := []byte("a vote")
			for first := 1; first+c.M-1 <= c.N; first++ {
				var ids []int
				for id := first; id < first+c.M; id++ {
					ids = append(ids, id)
				}
				if sig := signWith(t, shares, ids, msg); !ed25519.Verify(c.Pub, msg, sig) {
					t.Errorf("cosigners %v: signature does not verify under the validator key", ids)
				}
			}
		})
	}
}

// TestMigrateHorcruxChains migrates a home that signs two chains: with the
// same key, both become [[chain]] tables signed with one chain's share;
// with different keys, one cluster signs each chain with its own key's
// share (or one key's chains migrate alone with ChainIDs).
func TestMigrateHorcruxChains(t *testing.T) {
	t.Run("same key", func(t *testing.T) {
		c := testhorcrux.New(t, 2, 3, "chain-a", "chain-b")
		public := export(t, c)
		opts := options(t, c, 2, public)
		// chainNodes do not say which node is whose: without nodes per
		// chain the migration is refused.
		if _, err := MigrateHorcrux(opts); err == nil || !strings.Contains(err.Error(), "do not say which node runs which") {
			t.Fatalf("migrated two chains from one chainNodes list: %v", err)
		}
		opts.Nodes = map[string][]string{"chain-a": {"tcp://10.0.2.1:26659"}, "chain-b": {"tcp://10.0.2.2:26659"}}
		rep, err := MigrateHorcrux(opts)
		if err != nil {
			t.Fatal(err)
		}
		if rep.KeyChain != "chain-a" || len(rep.Chains) != 2 || rep.Chains[0].OtherDealing || !rep.Chains[1].OtherDealing {
			t.Errorf("report %+v", rep)
		}
		cfg, err := config.Load(opts.Home)
		if err != nil {
			t.Fatal(err)
		}
		for chain, node := range map[string]string{"chain-a": "tcp://10.0.2.1:26659", "chain-b": "tcp://10.0.2.2:26659"} {
			ch, ok := cfg.Chain(chain)
			if !ok || !slices.Equal(ch.Nodes, []string{node}) {
				t.Errorf("chain %s: %+v", chain, ch)
			}
			if _, err := signstate.ReadMark(signstate.StatePath(cfg.Path(cfg.StateDir), chain), chain); err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("different keys", func(t *testing.T) {
		c := testhorcrux.New(t, 2, 3, "chain-a")
		otherSeed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
		otherPub := ed25519.NewKeyFromSeed(otherSeed).Public().(ed25519.PublicKey)
		other := testhorcrux.Deal(t, otherSeed, 2, 3)
		for i := 1; i <= 3; i++ {
			c.WriteShard(i, "chain-z", otherPub, other[i-1], i)
			c.WriteState(i, "chain-z", testhorcrux.ClusterState, testhorcrux.State{})
			c.WriteState(i, "chain-z", testhorcrux.ShareState, testhorcrux.State{})
		}
		public := export(t, c)
		// Every host migrates both keys into one cluster: chain-a's key in
		// [threshold], chain-z's named by its [[chain]]; each share is its
		// Horcrux shard, and any two hosts' shares sign for each key.
		var homes []*config.Config
		for host := 1; host <= 3; host++ {
			opts := options(t, c, host, public)
			opts.Nodes = map[string][]string{"chain-a": {"tcp://10.0.2.1:26659"}, "chain-z": {"tcp://10.0.2.2:26659"}}
			rep, err := MigrateHorcrux(opts)
			if err != nil {
				t.Fatalf("host %d: two keys: %v", host, err)
			}
			if len(rep.Keys) != 2 || !rep.Keys[0].PubKey.Equal(c.Pub) || !rep.Keys[1].PubKey.Equal(otherPub) ||
				!slices.Equal(rep.Keys[1].Chains, []string{"chain-z"}) || rep.Keys[1].Source.ShareFile != "share-chain-z.json" {
				t.Fatalf("host %d: keys %+v", host, rep.Keys)
			}
			cfg, err := config.Load(opts.Home)
			if err != nil {
				t.Fatal(err)
			}
			if a, _ := cfg.Chain("chain-a"); a.GroupFile != "" {
				t.Errorf("chain-a names its own key: %+v", a)
			}
			if z, _ := cfg.Chain("chain-z"); z.GroupFile != "group-chain-z.json" || z.ShareFile != "share-chain-z.json" {
				t.Errorf("chain-z: %+v", z)
			}
			homes = append(homes, cfg)
		}
		for _, chain := range []string{"chain-a", "chain-z"} {
			want := c.Pub
			if chain == "chain-z" {
				want = otherPub
			}
			shares := map[int]*threshold.KeyShare{}
			for i, cfg := range homes {
				ch, _ := cfg.Chain(chain)
				src := cfg.ChainShare(ch)
				ks, err := share.Load(cfg.Path(src.ShareFile), cfg.Path(src.GroupFile))
				if err != nil {
					t.Fatal(err)
				}
				shares[i+1] = ks
			}
			if !bytes.Equal(shares[1].Group().PublicKey(), want) {
				t.Fatalf("%s: group key %X, want %X", chain, shares[1].Group().PublicKey(), want)
			}
			msg := []byte("vote of " + chain)
			sig := signWith(t, shares, []int{2, 3}, msg)
			if !ed25519.Verify(want, msg, sig) {
				t.Errorf("%s: cosigners 2 and 3 do not sign for its key", chain)
			}
		}
		// One key's chains alone still migrate.
		for _, chain := range []string{"chain-a", "chain-z"} {
			opts := options(t, c, 1, public)
			opts.Home += "-" + chain
			opts.ChainIDs = []string{chain}
			rep, err := MigrateHorcrux(opts)
			if err != nil {
				t.Fatalf("%s alone: %v", chain, err)
			}
			want := c.Pub
			if chain == "chain-z" {
				want = otherPub
			}
			if !bytes.Equal(rep.PubKey, want) {
				t.Errorf("%s: key %X, want %X", chain, rep.PubKey, want)
			}
		}
	})
}

// TestMigrateHorcruxRefuses feeds bad Horcrux homes, public files and
// options, and checks each is refused with a message naming the problem,
// leaving no home behind.
func TestMigrateHorcruxRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup changes the cluster before the export; public changes the
		// public files and opts the options of host 1 after it.
		setup  func(c *testhorcrux.Cluster)
		public func(c *testhorcrux.Cluster, public []string) []string
		opts   func(c *testhorcrux.Cluster, o *HorcruxOptions)
		want   string
		is     error
	}{
		{
			name: "shard of another key",
			setup: func(c *testhorcrux.Cluster) {
				seed := bytes.Repeat([]byte{9}, ed25519.SeedSize)
				pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
				c.WriteShard(3, "kira-1", pub, testhorcrux.Deal(t, seed, 2, 3)[2], 3)
			},
			want: "horcrux-3.public.json: chain kira-1 has validator key",
		},
		{
			name: "shard of another dealing under the validator key",
			setup: func(c *testhorcrux.Cluster) {
				c.WriteShard(3, "kira-1", c.Pub, testhorcrux.Deal(t, c.Seed, 2, 3)[2], 3)
			},
			want: "the public share of cosigner 3 (",
		},
		{
			name: "this host's shard is another dealing",
			setup: func(c *testhorcrux.Cluster) {
				c.WriteShard(1, "kira-1", c.Pub, testhorcrux.Deal(t, c.Seed, 2, 3)[0], 1)
			},
			want: "the public share of cosigner 1 (",
		},
		{
			name: "two shards with the same id",
			setup: func(c *testhorcrux.Cluster) {
				c.WriteShard(3, "kira-1", c.Pub, c.Shards["kira-1"][1], 2)
			},
			want: "both carry cosigner id 2",
		},
		{
			name: "this host's public file from another home",
			public: func(c *testhorcrux.Cluster, public []string) []string {
				other := testhorcrux.New(t, 2, 3, "kira-1")
				return append([]string{export(t, other)[0]}, public[1:]...)
			},
			want: "of another key",
		},
		{
			name: "threshold that does not interpolate",
			setup: func(c *testhorcrux.Cluster) {
				c.M = 3 // dealt 2-of-3, config.yaml says 3
				for i := 1; i <= c.N; i++ {
					c.WriteConfig(i, "")
				}
			},
			want: "do not make a 3-of-3 dealing",
		},
		{
			name: "public files of another cluster shape",
			public: func(c *testhorcrux.Cluster, public []string) []string {
				c.M = 3
				c.WriteConfig(1, "")
				return public
			},
			want: "is of a 2-of-3 cluster",
		},
		{
			name:   "missing public file",
			public: func(c *testhorcrux.Cluster, public []string) []string { return public[:2] },
			want:   "no public share file of cosigner(s) 3",
		},
		{
			name: "missing cluster state file",
			setup: func(c *testhorcrux.Cluster) {
				os.Remove(filepath.Join(c.Home(1), "state", "kira-1"+testhorcrux.ClusterState))
			},
			want: "kira-1_priv_validator_state.json",
			is:   ErrHorcruxStateMissing,
		},
		{
			name: "missing share state file",
			setup: func(c *testhorcrux.Cluster) {
				os.Remove(filepath.Join(c.Home(1), "state", "kira-1"+testhorcrux.ShareState))
			},
			want: "kira-1_share_sign_state.json",
			is:   ErrHorcruxStateMissing,
		},
		{
			name: "state of another chain",
			setup: func(c *testhorcrux.Cluster) {
				c.WriteState(1, "other-1", testhorcrux.ClusterState, testhorcrux.State{H: 5, Step: privval.StepPrevote, Block: "A"})
				os.Rename(filepath.Join(c.Home(1), "state", "other-1"+testhorcrux.ClusterState), filepath.Join(c.Home(1), "state", "kira-1"+testhorcrux.ClusterState))
			},
			want: `signbytes are for chain "other-1"`,
		},
		{
			name: "state files conflict at one height/round/step",
			setup: func(c *testhorcrux.Cluster) {
				c.WriteState(1, "kira-1", testhorcrux.ClusterState, testhorcrux.State{H: 7, Step: privval.StepPrecommit, Block: "A"})
				c.WriteState(1, "kira-1", testhorcrux.ShareState, testhorcrux.State{H: 7, Step: privval.StepPrecommit, Block: "B"})
			},
			want: "both mark 7/0/3, for different payloads",
		},
		{
			name: "unknown state field",
			setup: func(c *testhorcrux.Cluster) {
				c.Write(filepath.Join(c.Home(1), "state", "kira-1"+testhorcrux.ClusterState), []byte(`{"height":"1","round":"0","step":0,"lock":true}`))
			},
			want: `unknown field "lock"`,
		},
		{
			name: "home exists",
			opts: func(c *testhorcrux.Cluster, o *HorcruxOptions) { os.MkdirAll(o.Home, 0o700) },
			is:   ErrHomeExists,
			want: "already exists",
		},
		{
			name: "home is the Horcrux home",
			opts: func(c *testhorcrux.Cluster, o *HorcruxOptions) { o.Home = o.HorcruxHome },
			is:   ErrHomeExists,
			want: "already exists",
		},
		{
			name: "not a Horcrux home",
			opts: func(c *testhorcrux.Cluster, o *HorcruxOptions) { o.HorcruxHome = c.Dir },
			is:   ErrNotHorcruxHome,
			want: "config.yaml is missing",
		},
		{
			name: "certificate of another cosigner",
			opts: func(c *testhorcrux.Cluster, o *HorcruxOptions) { o.TLSDir = share.Dir(clusterTLS(t, c), 2) },
			want: "holds the certificate of cosigner 2",
		},
		{
			name: "horcrux running",
			setup: func(c *testhorcrux.Cluster) {
				c.Write(filepath.Join(c.Home(1), horcruxPidFile), fmt.Appendf(nil, "%d\n", os.Getpid()))
			},
			is:   ErrHorcruxRunning,
			want: "stop horcrux",
		},
		{
			name:  "horcrux stopped uncleanly",
			setup: func(c *testhorcrux.Cluster) { c.Write(filepath.Join(c.Home(1), horcruxPidFile), []byte("999999999\n")) },
			want:  "did not stop cleanly",
		},
		{
			name: "single signer home",
			setup: func(c *testhorcrux.Cluster) {
				c.Write(filepath.Join(c.Home(1), horcruxConfigFile), []byte("signMode: single\nchainNodes:\n- privValAddr: tcp://10.0.1.1:1234\n"))
			},
			want: `signMode is "single"`,
		},
		{
			name:  "unknown config key",
			setup: func(c *testhorcrux.Cluster) { c.WriteConfig(1, "raftListen: 0.0.0.0:2222\n") },
			want:  "field raftListen not found",
		},
		{
			name: "node with an ID",
			opts: func(c *testhorcrux.Cluster, o *HorcruxOptions) {
				o.Nodes = map[string][]string{"kira-1": {"tcp://0123456789abcdef0123456789abcdef01234567@10.0.1.1:1234"}}
			},
			want: "cannot verify a node ID",
		},
		{
			name: "chainNodes with a node ID",
			setup: func(c *testhorcrux.Cluster) {
				path := filepath.Join(c.Home(1), horcruxConfigFile)
				data, _ := os.ReadFile(path)
				c.Write(path, bytes.Replace(data, []byte("tcp://10.0.1.1:1234"), []byte("tcp://0123456789abcdef0123456789abcdef01234567@10.0.1.1:1234"), 1))
			},
			want: "config.yaml chainNodes: node address",
		},
		{
			name: "nodes of a chain not migrated",
			opts: func(c *testhorcrux.Cluster, o *HorcruxOptions) {
				o.Nodes = map[string][]string{"kira-2": {"tcp://10.0.1.1:1234"}}
			},
			want: "not migrated",
		},
		{
			name: "raft port taken by a neighbour",
			setup: func(c *testhorcrux.Cluster) {
				c.P2P = []string{"tcp://10.0.0.1:2222", "tcp://10.0.0.1:2223", "tcp://10.0.0.1:2224"}
				for i := 1; i <= c.N; i++ {
					c.WriteConfig(i, "")
				}
			},
			want: "address 10.0.0.1:2223 would be both cosigner 1's Raft and cosigner 2's gRPC",
		},
		{
			name: "chain not in the home",
			opts: func(c *testhorcrux.Cluster, o *HorcruxOptions) { o.ChainIDs = []string{"kira-9"} },
			want: "no shard for chain kira-9",
		},
		{
			name: "non-canonical shard",
			setup: func(c *testhorcrux.Cluster) {
				c.Write(filepath.Join(c.Home(1), "kira-1"+horcruxShardSuffix),
					[]byte(`{"pubKey":"CiAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==","privateShard":"//////////////////////////////////////////8=","id":1}`))
			},
			want: "not a scalar below the group order",
		},
		{
			name: "secp256k1 pubKey",
			setup: func(c *testhorcrux.Cluster) {
				c.Write(filepath.Join(c.Home(1), "kira-1"+horcruxShardSuffix),
					[]byte(`{"pubKey":"EiEC","privateShard":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","id":1}`))
			},
			want: "is not an ed25519 public key",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testhorcrux.New(t, 2, 3, "kira-1")
			var public []string
			if tc.setup != nil {
				tc.setup(c)
			}
			// An export that fails is a refusal too (host 1's own home).
			for i := 1; i <= c.N; i++ {
				e, err := ExportHorcrux(c.Home(i))
				if err != nil {
					if !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
						t.Fatalf("export host %d: %v, want an error containing %q", i, err, tc.want)
					}
					return
				}
				p := filepath.Join(c.Dir, fmt.Sprintf("horcrux-%d.public.json", i))
				c.Write(p, e.JSON)
				public = append(public, p)
			}
			if tc.public != nil {
				public = tc.public(c, public)
			}
			opts := options(t, c, 1, public)
			if tc.opts != nil {
				tc.opts(c, &opts)
			}
			_, statErr := os.Lstat(opts.Home)
			existed := statErr == nil
			_, err := MigrateHorcrux(opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("migrate: %v, want an error containing %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if _, err := os.Lstat(opts.Home); err == nil && !existed {
				t.Error("a refused migration left a home behind")
			}
			leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(opts.Home), ".*migrating-*"))
			if len(leftovers) > 0 {
				t.Errorf("temporary directories left: %v", leftovers)
			}
		})
	}
}

// TestReadHorcruxShard reads both encodings of a shard's public key
// Horcrux accepts.
func TestReadHorcruxShard(t *testing.T) {
	pub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32)).Public().(ed25519.PublicKey)
	secret := testhorcrux.Scalar(5)
	for name, prefix := range map[string][]byte{"protobuf": protoPubKeyPrefix, "amino": aminoPubKeyPrefix} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kira-1"+horcruxShardSuffix)
			data := fmt.Appendf(nil, `{"pubKey":%q,"privateShard":%q,"id":2}`,
				b64(append(slices.Clone(prefix), pub...)), b64(secret.Bytes()))
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := readHorcruxShard(path, "kira-1")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(s.pub, pub) || s.id != 2 || s.secret.Equal(secret) != 1 ||
				s.public.Equal(new(edwards25519.Point).ScalarBaseMult(secret)) != 1 {
				t.Errorf("read %+v", s)
			}
		})
	}
}

// TestExportHorcrux checks the public file and refuses a home holding
// shards of two ids.
func TestExportHorcrux(t *testing.T) {
	c := testhorcrux.New(t, 2, 3, "chain-a", "chain-b")
	e, err := ExportHorcrux(c.Home(2))
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != 2 || e.M != 2 || e.N != 3 || !slices.Equal(e.Chains, []string{"chain-a", "chain-b"}) {
		t.Errorf("export %+v", e)
	}
	path := filepath.Join(c.Dir, "2.json")
	c.Write(path, e.JSON)
	p, err := readHorcruxPublic(path)
	if err != nil {
		t.Fatal(err)
	}
	ch, ok := p.chain("chain-b")
	wantPoint := new(edwards25519.Point).ScalarBaseMult(c.Shards["chain-b"][1])
	if !ok || !bytes.Equal(ch.PubKey, c.Pub) || !bytes.Equal(ch.PublicShare, wantPoint.Bytes()) {
		t.Errorf("chain-b entry %+v", ch)
	}
	if bytes.Contains(e.JSON, c.Shards["chain-a"][1].Bytes()) || strings.Contains(string(e.JSON), b64(c.Shards["chain-a"][1].Bytes())) {
		t.Error("the public file carries the secret share")
	}

	c.WriteShard(2, "chain-b", c.Pub, c.Shards["chain-b"][2], 3)
	if _, err := ExportHorcrux(c.Home(2)); err == nil || !strings.Contains(err.Error(), "one host holds one cosigner id") {
		t.Errorf("exported a home with shards of ids 2 and 3: %v", err)
	}
}

// TestIssueHorcruxTLS issues a cluster's certificates: each directory
// loads as its cosigner's identity under one CA, and an existing output is
// never touched.
func TestIssueHorcruxTLS(t *testing.T) {
	out := filepath.Join(t.TempDir(), "tls")
	dirs, err := IssueHorcruxTLS(out, 3)
	if err != nil {
		t.Fatal(err)
	}
	var ca []byte
	for i, d := range dirs {
		ident, err := clustertls.Load(d)
		if err != nil || ident.ID() != i+1 {
			t.Fatalf("%s: %v", d, err)
		}
		got, err := os.ReadFile(filepath.Join(d, clustertls.CAFile))
		if err != nil {
			t.Fatal(err)
		}
		if ca != nil && !bytes.Equal(got, ca) {
			t.Errorf("%s has another CA", d)
		}
		ca = got
	}
	if _, err := IssueHorcruxTLS(out, 3); !errors.Is(err, share.ErrOutExists) {
		t.Errorf("second issue into %s: %v", out, err)
	}
	if _, err := IssueHorcruxTLS(filepath.Join(t.TempDir(), "x"), 1); err == nil {
		t.Error("issued a one-cosigner cluster")
	}
}

// TestReadHorcruxState reads Horcrux's state files: the initial one, one
// set by `horcrux state set`, and one after a signature.
func TestReadHorcruxState(t *testing.T) {
	c := testhorcrux.New(t, 2, 3, "kira-1")
	path := filepath.Join(c.Home(1), "state", "kira-1"+testhorcrux.ClusterState)
	for _, tc := range []struct {
		st   testhorcrux.State
		want signstate.Mark
	}{
		{testhorcrux.State{}, signstate.Mark{}},
		{testhorcrux.State{H: 1234}, signstate.Mark{Height: 1234}},
		{testhorcrux.State{H: 46, R: 2, Step: privval.StepPrecommit, Block: "A"}, signstate.Mark{Height: 46, Round: 2, Step: privval.StepPrecommit}},
	} {
		c.WriteState(1, "kira-1", testhorcrux.ClusterState, tc.st)
		m, err := readHorcruxState(path, "kira-1")
		if err != nil {
			t.Fatal(err)
		}
		if m.Height != tc.want.Height || m.Round != tc.want.Round || m.Step != tc.want.Step || (tc.st.Step != 0) != (len(m.SignBytes) > 0) {
			t.Errorf("state %+v read as %d/%d/%d with %d sign bytes", tc.st, m.Height, m.Round, m.Step, len(m.SignBytes))
		}
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
