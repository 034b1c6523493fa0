package migrate

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

// This file is a test-only stand-in for Horcrux v3: it deals shards the way
// its dealer does (Shamir shares at x = id of the clamped SHA-512(seed)[:32]
// mod L, one dealing per chain, written little-endian) and writes homes in
// the formats of Horcrux v3.3.2 (config.yaml, {chain}_shard.json, state/).
// It shares no code with the threshold package, so a disagreement between
// the two dealings shows.

// hxCluster is a Horcrux cluster on disk: one home per host under dir.
type hxCluster struct {
	t      *testing.T
	dir    string
	m, n   int
	seed   []byte
	pub    ed25519.PublicKey
	chains []string
	// shards[chain][i] is cosigner i+1's share of that chain's dealing.
	shards map[string][]*edwards25519.Scalar
	// p2p[i] is cosigner i+1's p2pAddr.
	p2p []string
}

// newHxCluster deals an m-of-n Horcrux cluster for chains (one dealing of
// one key per chain, as `horcrux create-ed25519-shards` run per chain does)
// and writes every host's home: config.yaml with cosigner i on
// tcp://10.0.0.i:2222 and one node, its shards, Horcrux's link keys, and
// state files at height 0.
func newHxCluster(t *testing.T, m, n int, chains ...string) *hxCluster {
	t.Helper()
	c := &hxCluster{t: t, dir: t.TempDir(), m: m, n: n, chains: chains, shards: map[string][]*edwards25519.Scalar{}}
	c.seed = make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(c.seed); err != nil {
		t.Fatal(err)
	}
	c.pub = ed25519.NewKeyFromSeed(c.seed).Public().(ed25519.PublicKey)
	for i := 1; i <= n; i++ {
		c.p2p = append(c.p2p, fmt.Sprintf("tcp://10.0.0.%d:2222", i))
	}
	for _, chain := range chains {
		c.shards[chain] = dealHx(t, c.seed, m, n)
	}
	for i := 1; i <= n; i++ {
		if err := os.MkdirAll(filepath.Join(c.home(i), "state"), 0o700); err != nil {
			t.Fatal(err)
		}
		c.writeConfig(i, "")
		for _, chain := range chains {
			c.writeShard(i, chain, c.pub, c.shards[chain][i-1], i)
			c.writeState(i, chain, horcruxPVState, hxState{})
			c.writeState(i, chain, horcruxShareState, hxState{})
		}
		c.write(filepath.Join(c.home(i), "ecies_keys.json"), []byte(`{"eciesKey":"","id":1,"eciesPubs":[]}`))
	}
	return c
}

// dealHx returns n Shamir shares, any m of which recover the clamped
// SHA-512(seed)[:32] mod L.
func dealHx(t *testing.T, seed []byte, m, n int) []*edwards25519.Scalar {
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
		var xb [32]byte
		binary.LittleEndian.PutUint16(xb[:], uint16(i))
		x, _ := edwards25519.NewScalar().SetCanonicalBytes(xb[:])
		acc := edwards25519.NewScalar().Set(coeffs[m-1])
		for j := m - 2; j >= 0; j-- {
			acc.Multiply(acc, x).Add(acc, coeffs[j])
		}
		shares[i-1] = acc
	}
	return shares
}

func (c *hxCluster) home(i int) string { return filepath.Join(c.dir, fmt.Sprintf("horcrux-%d", i)) }

func (c *hxCluster) write(path string, data []byte) {
	c.t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		c.t.Fatal(err)
	}
}

// writeConfig writes host i's config.yaml as `horcrux config init` does;
// extra is appended verbatim.
func (c *hxCluster) writeConfig(i int, extra string) {
	var b strings.Builder
	fmt.Fprintf(&b, "signMode: threshold\nthresholdMode:\n  threshold: %d\n  cosigners:\n", c.m)
	for id, addr := range c.p2p {
		fmt.Fprintf(&b, "  - shardID: %d\n    p2pAddr: %s\n", id+1, addr)
	}
	fmt.Fprintf(&b, "  grpcTimeout: 500ms\n  raftTimeout: 500ms\nchainNodes:\n- privValAddr: tcp://10.0.1.%d:1234\n", i)
	fmt.Fprintf(&b, "debugAddr: \"\"\ngrpcAddr: \"\"\nmaxReadSize: 1048576\n%s", extra)
	c.write(filepath.Join(c.home(i), horcruxConfigFile), []byte(b.String()))
}

// writeShard writes host i's shard of chain as Horcrux's
// WriteCosignerEd25519ShardFile does: pubKey the protobuf PublicKey.
func (c *hxCluster) writeShard(i int, chain string, pub ed25519.PublicKey, s *edwards25519.Scalar, id int) {
	c.t.Helper()
	data, err := json.Marshal(map[string]any{
		"pubKey":       append([]byte{0x0a, 0x20}, pub...),
		"privateShard": s.Bytes(),
		"id":           id,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.write(filepath.Join(c.home(i), chain+horcruxShardSuffix), data)
}

// hxState is a mark to write as a Horcrux state file: nothing signed when
// step is 0, else a vote or proposal for block at h/r.
type hxState struct {
	h     int64
	r     int32
	step  privval.Step
	block string
	// ts is the payload's timestamp offset in seconds.
	ts int
}

// writeState writes a Horcrux state file (CometBFT's JSON codec: int64s
// as strings, HexBytes upper-case hex) of host i for chain.
func (c *hxCluster) writeState(i int, chain, suffix string, st hxState) {
	c.t.Helper()
	var data string
	if st.step == 0 {
		data = fmt.Sprintf("{\n  \"height\": \"%d\",\n  \"round\": \"%d\",\n  \"step\": 0,\n  \"nonce_public\": null\n}", st.h, st.r)
	} else {
		req := testkit.VoteOf(chain, st.h, st.r, st.step, st.block, testkit.T0.Add(time.Duration(st.ts)*time.Second))
		sig := make([]byte, 64)
		data = fmt.Sprintf("{\n  \"height\": \"%d\",\n  \"round\": \"%d\",\n  \"step\": %d,\n  \"nonce_public\": \"\",\n"+
			"  \"signature\": %q,\n  \"signbytes\": %q,\n  \"vote_ext_signature\": \"\"\n}",
			st.h, st.r, st.step, base64.StdEncoding.EncodeToString(sig), strings.ToUpper(hex.EncodeToString(req.SignBytes)))
	}
	c.write(filepath.Join(c.home(i), "state", chain+suffix), []byte(data))
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func scalarFromInt(v uint16) *edwards25519.Scalar {
	var b [32]byte
	binary.LittleEndian.PutUint16(b[:], v)
	s, _ := edwards25519.NewScalar().SetCanonicalBytes(b[:])
	return s
}
