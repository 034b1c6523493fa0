// Package testhorcrux writes Horcrux v3 cluster homes for tests, a
// stand-in for Horcrux itself where running it is too heavy: it deals
// shards the way Horcrux's dealer does (Shamir shares at x = id of the
// clamped SHA-512(seed)[:32] mod L, one dealing per chain, written as
// 32-byte little-endian scalars) and writes each host's home in the
// formats of Horcrux v3.3.2: config.yaml, {chain-id}_shard.json and the
// two state files under state/.
//
// It shares no code with the threshold package, so a disagreement between
// the two dealings shows. The end-to-end tests run the real Horcrux.
package testhorcrux

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/edwards25519"

	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/privval"
)

// File names of a Horcrux v3 home.
const (
	ConfigFile   = "config.yaml"
	PidFile      = "horcrux.pid"
	ShardSuffix  = "_shard.json"
	ClusterState = "_priv_validator_state.json" // state/{chain}ClusterState
	ShareState   = "_share_sign_state.json"     // state/{chain}ShareState
)

// Cluster is a Horcrux cluster on disk: one home per host under Dir.
type Cluster struct {
	Dir    string
	M, N   int
	Seed   []byte
	Pub    ed25519.PublicKey
	Chains []string
	// Shards[chain][i] is cosigner i+1's share of that chain's dealing.
	Shards map[string][]*edwards25519.Scalar
	// P2P[i] is cosigner i+1's p2pAddr, written by WriteConfig.
	P2P []string

	t testing.TB
}

// New deals an m-of-n Horcrux cluster for chains (one dealing of one key
// per chain, as `horcrux create-ed25519-shards` run per chain does) and
// writes every host's home: config.yaml with cosigner i on
// tcp://10.0.0.i:2222 and node tcp://10.0.1.i:1234, its shards, a
// placeholder of Horcrux's link keys, and both state files at height 0.
func New(t testing.TB, m, n int, chains ...string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Dir: t.TempDir(), M: m, N: n, Chains: chains, Shards: map[string][]*edwards25519.Scalar{}}
	c.Seed = make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(c.Seed); err != nil {
		t.Fatal(err)
	}
	c.Pub = ed25519.NewKeyFromSeed(c.Seed).Public().(ed25519.PublicKey)
	for i := 1; i <= n; i++ {
		c.P2P = append(c.P2P, fmt.Sprintf("tcp://10.0.0.%d:2222", i))
	}
	for _, chain := range chains {
		c.Shards[chain] = Deal(t, c.Seed, m, n)
	}
	for i := 1; i <= n; i++ {
		if err := os.MkdirAll(filepath.Join(c.Home(i), "state"), 0o700); err != nil {
			t.Fatal(err)
		}
		c.WriteConfig(i, "")
		for _, chain := range chains {
			c.WriteShard(i, chain, c.Pub, c.Shards[chain][i-1], i)
			c.WriteState(i, chain, ClusterState, State{})
			c.WriteState(i, chain, ShareState, State{})
		}
		c.Write(filepath.Join(c.Home(i), "ecies_keys.json"), []byte(`{"eciesKey":"","id":1,"eciesPubs":[]}`))
	}
	return c
}

// Deal returns n Shamir shares, any m of which recover the clamped
// SHA-512(seed)[:32] mod L, with random coefficients.
func Deal(t testing.TB, seed []byte, m, n int) []*edwards25519.Scalar {
	t.Helper()
	h := sha512.Sum512(seed)
	secret, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	if err != nil {
		t.Fatal(err)
	}
	coeffs := []*edwards25519.Scalar{secret}
	for range m - 1 {
		var r [64]byte
		if _, err := rand.Read(r[:]); err != nil {
			t.Fatal(err)
		}
		c, err := edwards25519.NewScalar().SetUniformBytes(r[:])
		if err != nil {
			t.Fatal(err)
		}
		coeffs = append(coeffs, c)
	}
	shares := make([]*edwards25519.Scalar, n)
	for i := 1; i <= n; i++ {
		x := Scalar(uint16(i))
		acc := edwards25519.NewScalar().Set(coeffs[m-1])
		for j := m - 2; j >= 0; j-- {
			acc.Multiply(acc, x).Add(acc, coeffs[j])
		}
		shares[i-1] = acc
	}
	return shares
}

// Scalar returns the small integer v as a scalar.
func Scalar(v uint16) *edwards25519.Scalar {
	var b [32]byte
	binary.LittleEndian.PutUint16(b[:], v)
	s, err := edwards25519.NewScalar().SetCanonicalBytes(b[:])
	if err != nil {
		panic(err)
	}
	return s
}

// Home is host i's Horcrux home.
func (c *Cluster) Home(i int) string { return filepath.Join(c.Dir, fmt.Sprintf("horcrux-%d", i)) }

// Write writes a file 0600, failing the test on error.
func (c *Cluster) Write(path string, data []byte) {
	c.t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		c.t.Fatal(err)
	}
}

// WriteConfig writes host i's config.yaml as `horcrux config init` does,
// with c.M, c.P2P and one node; extra is appended verbatim.
func (c *Cluster) WriteConfig(i int, extra string) {
	c.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "signMode: threshold\nthresholdMode:\n  threshold: %d\n  cosigners:\n", c.M)
	for id, addr := range c.P2P {
		fmt.Fprintf(&b, "  - shardID: %d\n    p2pAddr: %s\n", id+1, addr)
	}
	fmt.Fprintf(&b, "  grpcTimeout: 500ms\n  raftTimeout: 500ms\nchainNodes:\n- privValAddr: tcp://10.0.1.%d:1234\n", i)
	fmt.Fprintf(&b, "debugAddr: \"\"\ngrpcAddr: \"\"\nmaxReadSize: 1048576\n%s", extra)
	c.Write(filepath.Join(c.Home(i), ConfigFile), []byte(b.String()))
}

// WriteShard writes host i's shard of chain as Horcrux's
// WriteCosignerEd25519ShardFile does (pubKey the protobuf PublicKey).
func (c *Cluster) WriteShard(i int, chain string, pub ed25519.PublicKey, s *edwards25519.Scalar, id int) {
	c.t.Helper()
	data, err := json.Marshal(map[string]any{
		"pubKey":       append([]byte{0x0a, 0x20}, pub...),
		"privateShard": s.Bytes(),
		"id":           id,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.Write(filepath.Join(c.Home(i), chain+ShardSuffix), data)
}

// State is a mark to write as a Horcrux state file: nothing signed when
// Step is 0, else a vote or proposal for Block at H/R, timestamped
// testkit.T0 + TS seconds.
type State struct {
	H     int64
	R     int32
	Step  privval.Step
	Block string
	TS    int
}

// WriteState writes state/{chain}{suffix} of host i (suffix ClusterState
// or ShareState) as Horcrux writes it with CometBFT's JSON codec: int64s
// as strings, sign bytes as upper-case hex, a 64-byte signature.
func (c *Cluster) WriteState(i int, chain, suffix string, st State) {
	c.t.Helper()
	var data string
	if st.Step == 0 {
		data = fmt.Sprintf("{\n  \"height\": \"%d\",\n  \"round\": \"%d\",\n  \"step\": 0,\n  \"nonce_public\": null\n}", st.H, st.R)
	} else {
		req := testkit.VoteOf(chain, st.H, st.R, st.Step, st.Block, testkit.T0.Add(time.Duration(st.TS)*time.Second))
		data = fmt.Sprintf("{\n  \"height\": \"%d\",\n  \"round\": \"%d\",\n  \"step\": %d,\n  \"nonce_public\": \"\",\n"+
			"  \"signature\": %q,\n  \"signbytes\": %q,\n  \"vote_ext_signature\": \"\"\n}",
			st.H, st.R, st.Step, base64.StdEncoding.EncodeToString(make([]byte, 64)), strings.ToUpper(hex.EncodeToString(req.SignBytes)))
	}
	c.Write(filepath.Join(c.Home(i), "state", chain+suffix), []byte(data))
}
