package latency

import (
	"crypto/ed25519"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/libs/log"
	cmtprivval "github.com/cometbft/cometbft/privval"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"github.com/cometbft/cometbft/types"

	"github.com/cosigner/cosigner/test/harness"
)

const chainID = "latency-1"

// A target starts a signer for chainID that dials the fake node at addr
// (tcp://host:port, SecretConnection). It stops the signer at the end of
// the (sub)test that started it. Adding a signer setup to the comparison is
// one such function and one line in targets.
type target struct {
	name  string
	start func(tb testing.TB, addr string) started
	// m and n are a cosigner cluster's M and N (TestLatencyWAN measures
	// those), 0 for a single signer and for Horcrux.
	m, n int
	// warmupFailures is how many failed requests the warm-up tolerates
	// (logged), 0 for cosigner and FilePV; the timed requests tolerate
	// none.
	warmupFailures int
}

// started is a running target: its public key, its signer processes (whose
// CPU time is measured, and whose "signed ..." lines say how long each
// request took inside a cosigner) and, for a threshold target, its
// cluster.
type started struct {
	pub     ed25519.PublicKey
	procs   func() []*harness.Process
	cluster *harness.Cluster        // nil unless a cosigner cluster
	horcrux *harness.HorcruxCluster // nil unless Horcrux
}

// refTarget is the target the others are compared with.
const refTarget = "cometbft-filepv"

var targets = []target{
	{name: "cosigner-softsign", start: startSoftsign},
	{name: refTarget, start: startFilePV},
	clusterTarget(2, 3, 0),
	clusterTarget(3, 5, 0),
	{name: horcruxTargetName, start: startHorcrux, warmupFailures: horcruxWarmupFailures},
}

// selectedTargets returns the targets named in $COSIGNER_LATENCY_TARGETS
// (comma-separated), or all of them.
func selectedTargets(tb testing.TB) []target {
	tb.Helper()
	env := os.Getenv("COSIGNER_LATENCY_TARGETS")
	if env == "" {
		return targets
	}
	var sel []target
	for _, name := range strings.Split(env, ",") {
		i := slices.IndexFunc(targets, func(t target) bool { return t.name == strings.TrimSpace(name) })
		if i < 0 {
			var names []string
			for _, t := range targets {
				names = append(names, t.name)
			}
			tb.Fatalf("COSIGNER_LATENCY_TARGETS: unknown target %q; known: %s", name, strings.Join(names, ", "))
		}
		sel = append(sel, targets[i])
	}
	return sel
}

var (
	cosignerBin string
	cosignerErr error
)

// TestMain builds ./cmd/cosigner once (or uses $COSIGNER_BIN) when a
// measurement is requested, with the profiling hook when
// $COSIGNER_CPUPROFILE is set. As the reference signer's process (see
// refsigner_test.go) it builds nothing.
func TestMain(m *testing.M) {
	flag.Parse()
	var dir string
	wanted := (os.Getenv("COSIGNER_LATENCY") != "" || flagSet("test.bench")) && !refSignerChild()
	switch {
	case !wanted:
	case os.Getenv("COSIGNER_BIN") != "" && profileDir() == "":
		cosignerBin = os.Getenv("COSIGNER_BIN")
	default:
		var err error
		if dir, err = os.MkdirTemp("", "cosigner-latency-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if profileDir() != "" {
			cosignerBin, cosignerErr = buildProfiledCosigner(dir)
		} else {
			cosignerBin, cosignerErr = harness.BuildCosigner(dir)
		}
	}
	stopProfile := func() {}
	if profileDir() != "" && (wanted || refSignerChild()) {
		name := "latency-test.pprof"
		if refSignerChild() {
			name = fmt.Sprintf("cometbft-filepv-%d.pprof", os.Getpid())
		}
		var err error
		if stopProfile, err = profileSelf(filepath.Join(profileDir(), name)); err != nil {
			fmt.Fprintln(os.Stderr, "cpuprofile:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	stopProfile()
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

func flagSet(name string) bool {
	f := flag.Lookup(name)
	return f != nil && f.Value.String() != ""
}

func requireCosigner(tb testing.TB) string {
	tb.Helper()
	if cosignerBin == "" && cosignerErr == nil {
		tb.Skip("set COSIGNER_LATENCY=1 or run with -bench")
	}
	if cosignerErr != nil {
		tb.Fatalf("build cosigner: %v", cosignerErr)
	}
	return cosignerBin
}

// startSoftsign runs `cosigner start` in softsign mode with a fresh key and
// a durable sign state.
func startSoftsign(tb testing.TB, addr string) started {
	bin := requireCosigner(tb)
	keyFile := filepath.Join(tb.TempDir(), "priv_validator_key.json")
	pub, err := harness.WriteNewValidatorKey(keyFile)
	if err != nil {
		tb.Fatal(err)
	}
	c := harness.NewCosigner(tb, bin, chainID, addr)
	c.MustRun("keys", "import", "--home", c.Home, "--chain-id", chainID, keyFile)
	c.MustRun("state", "init", "--home", c.Home, "--chain-id", chainID)
	c.Start()
	procs := func() []*harness.Process { return []*harness.Process{c.Current()} }
	flushProfilesAtEnd(tb, "softsign", procs)
	return started{pub: pub, procs: procs}
}

// fakeNode is the node's side: CometBFT v0.38.17's listener endpoint and
// signer client on a loopback tcp port. It stops when the test ends.
func fakeNode(tb testing.TB) (addr string, client *cmtprivval.SignerClient) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	endpoint := cmtprivval.NewSignerListenerEndpoint(log.NewNopLogger(),
		cmtprivval.NewTCPListener(ln, cmted25519.GenPrivKey()))
	client, err = cmtprivval.NewSignerClient(endpoint, chainID)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = endpoint.Stop() })
	return "tcp://" + ln.Addr().String(), client
}

// session is one target connected to its own fake node.
type session struct {
	name    string
	pub     ed25519.PublicKey
	valAddr []byte
	client  *cmtprivval.SignerClient
	started
	// next is the index of the next request: each height h sends a
	// proposal, a prevote and a precommit with an extension, requests
	// 3(h-1), 3(h-1)+1 and 3(h-1)+2.
	next           int
	warmupFailures int
	votes          []*cmtproto.Vote
	proposals      []*cmtproto.Proposal
}

// requestsPerHeight is a proposal, a prevote and a precommit.
const requestsPerHeight = 3

// connect starts tgt against a fresh fake node and waits until it serves
// its public key.
func connect(tb testing.TB, tgt target) *session {
	tb.Helper()
	addr, client := fakeNode(tb)
	st := tgt.start(tb, addr)
	if err := client.WaitForConnection(30 * time.Second); err != nil {
		tb.Fatalf("%s did not connect: %v", tgt.name, err)
	}
	got, err := client.GetPubKey()
	if err != nil {
		tb.Fatalf("%s: pubkey: %v", tgt.name, err)
	}
	if !slices.Equal(got.Bytes(), st.pub) {
		tb.Fatalf("%s: pubkey %X, want %X", tgt.name, got.Bytes(), []byte(st.pub))
	}
	return &session{name: tgt.name, pub: st.pub, valAddr: cmted25519.PubKey(st.pub).Address(), client: client, started: st,
		warmupFailures: tgt.warmupFailures}
}

// height returns the height of the next request.
func (s *session) height() int64 { return int64(s.next/requestsPerHeight) + 1 }

// sign sends the next request (the proposal, prevote or precommit with an
// extension of the current height) and returns how long the node waited
// for the reply.
func (s *session) sign(tb testing.TB) time.Duration {
	tb.Helper()
	d, err := s.trySign()
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// trySign is sign, returning the signer's error; the next request is the
// next one either way.
func (s *session) trySign() (time.Duration, error) {
	h := s.height()
	kind := s.next % requestsPerHeight
	s.next++
	bid := cmtproto.BlockID{
		Hash:          hash(h, 1),
		PartSetHeader: cmtproto.PartSetHeader{Total: 1, Hash: hash(h, 2)},
	}
	if kind == 0 {
		p := &cmtproto.Proposal{Type: cmtproto.ProposalType, Height: h, Round: 0, PolRound: -1, BlockID: bid, Timestamp: time.Now().UTC()}
		// As CometBFT's consensus does, keep the request and take only
		// the signature and the timestamp from the reply: the client
		// overwrites the proposal with the reply's, in which Horcrux sets
		// nothing else.
		req := *p
		t0 := time.Now()
		if err := s.client.SignProposal(chainID, &req); err != nil {
			return 0, fmt.Errorf("%s: proposal %d: %w", s.name, h, err)
		}
		d := time.Since(t0)
		p.Signature, p.Timestamp = req.Signature, req.Timestamp
		s.proposals = append(s.proposals, p)
		return d, nil
	}
	typ := cmtproto.PrevoteType
	if kind == 2 {
		typ = cmtproto.PrecommitType
	}
	v := &cmtproto.Vote{Type: typ, Height: h, Round: 0, BlockID: bid, Timestamp: time.Now().UTC(), ValidatorAddress: s.valAddr}
	if typ == cmtproto.PrecommitType {
		v.Extension = []byte("latency")
	}
	req := *v // as for the proposal
	t0 := time.Now()
	if err := s.client.SignVote(chainID, &req); err != nil {
		return 0, fmt.Errorf("%s: %v %d: %w", s.name, typ, h, err)
	}
	d := time.Since(t0)
	v.Signature, v.ExtensionSignature, v.Timestamp = req.Signature, req.ExtensionSignature, req.Timestamp
	s.votes = append(s.votes, v)
	return d, nil
}

// warmupHeights are signed, untimed, before a target is measured: the
// connection is up, the nonce pools have been drawn on and refilled, and
// Raft has replicated a few records.
const warmupHeights = 20

// warmUp signs warmupHeights heights, failing at the first failed request
// beyond the target's warmupFailures.
func (s *session) warmUp(tb testing.TB) {
	tb.Helper()
	failed := 0
	for range warmupHeights * requestsPerHeight {
		if _, err := s.trySign(); err != nil {
			if failed++; failed > s.warmupFailures {
				tb.Fatalf("warm-up: %v", err)
			}
			tb.Logf("warm-up: %v (failure %d of the %d tolerated)", err, failed, s.warmupFailures)
		}
	}
}

// verify checks every signature of the session with crypto/ed25519.
func (s *session) verify(tb testing.TB) {
	tb.Helper()
	for _, p := range s.proposals {
		if !ed25519.Verify(s.pub, types.ProposalSignBytes(chainID, p), p.Signature) {
			tb.Fatalf("%s: proposal %d: signature does not verify", s.name, p.Height)
		}
	}
	for _, v := range s.votes {
		if !ed25519.Verify(s.pub, types.VoteSignBytes(chainID, v), v.Signature) {
			tb.Fatalf("%s: %v %d: signature does not verify", s.name, v.Type, v.Height)
		}
		if v.Type == cmtproto.PrecommitType && !ed25519.Verify(s.pub, types.VoteExtensionSignBytes(chainID, v), v.ExtensionSignature) {
			tb.Fatalf("%s: precommit %d: extension signature does not verify", s.name, v.Height)
		}
	}
}

// hash returns 32 bytes that differ per height and tag.
func hash(h int64, tag byte) []byte {
	b := make([]byte, 32)
	b[0] = tag
	for i := range 8 {
		b[1+i] = byte(h >> (8 * i))
	}
	return b
}

// measureTarget starts tgt alone, warms it up, measures it in every mode
// of cfg, verifies every signature and stops it (when tb ends, which the
// caller makes a subtest per target).
func measureTarget(tb testing.TB, tgt target, cfg config) []measurement {
	tb.Helper()
	s := connect(tb, tgt)
	s.warmUp(tb)
	var ms []measurement
	for _, md := range cfg.modes {
		ms = append(ms, measure(tb, s, md, cfg.signatures))
	}
	s.verify(tb)
	return ms
}

// TestLatency measures every selected target alone, one after the other,
// in each mode, and logs the tables of report.go.
func TestLatency(t *testing.T) {
	if os.Getenv("COSIGNER_LATENCY") == "" {
		t.Skip("set COSIGNER_LATENCY=1 to measure signer latency")
	}
	cfg := configFromEnv(t)
	var ms []measurement
	for _, tgt := range selectedTargets(t) {
		if !t.Run(tgt.name, func(t *testing.T) { ms = append(ms, measureTarget(t, tgt, cfg)...) }) {
			t.FailNow()
		}
	}
	t.Logf("each target alone, %d signatures per mode after %d warm-up heights, a proposal, a prevote and a precommit+extension per height:\n%s",
		cfg.signatures, warmupHeights, report(ms))
}

// BenchmarkLatency runs each target alone for b.N heights back to back and
// reports the percentiles and CPU per signature as custom metrics.
func BenchmarkLatency(b *testing.B) {
	for _, tgt := range selectedTargets(b) {
		b.Run(tgt.name, func(b *testing.B) {
			s := connect(b, tgt)
			s.warmUp(b)
			b.ResetTimer() // ns/op: one height, without the signer's start-up
			m := measure(b, s, backToBack, b.N*requestsPerHeight)
			b.StopTimer()
			s.verify(b)
			st := m.stats()
			b.ReportMetric(float64(st.P50)/1e6, "p50-ms")
			b.ReportMetric(float64(st.P90)/1e6, "p90-ms")
			b.ReportMetric(float64(st.P99)/1e6, "p99-ms")
			b.ReportMetric(float64(st.Max)/1e6, "max-ms")
			b.ReportMetric(m.cpuPerSignature().Seconds()*1e3, "cpu-ms/sig")
		})
	}
}
