package latency

import (
	"crypto/ed25519"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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
// the test. Adding a signer setup to the comparison is one such function
// and one line in targets.
type target struct {
	name  string
	start func(tb testing.TB, addr string) started
}

// started is a running target: its public key and, for cosigner, its
// `cosigner start` processes, whose "signed ..." lines say how long each
// request took inside the process.
type started struct {
	pub   ed25519.PublicKey
	procs func() []*harness.Process // nil for a signer in the test process
}

var targets = []target{
	{"cosigner-softsign", startSoftsign},
	{"cometbft-filepv", startFilePV},
	{"cosigner-2of3", func(tb testing.TB, addr string) started { return startThreshold(tb, addr, 2, 3) }},
	{"cosigner-3of5", func(tb testing.TB, addr string) started { return startThreshold(tb, addr, 3, 5) }},
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
// $COSIGNER_CPUPROFILE is set.
func TestMain(m *testing.M) {
	flag.Parse()
	var dir string
	wanted := os.Getenv("COSIGNER_LATENCY") != "" || flagSet("test.bench")
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
	if wanted && profileDir() != "" {
		var err error
		if stopProfile, err = profileSelf(profileDir()); err != nil {
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
		msg := cosignerErr.Error()
		for _, missing := range []string{"no Go files", "is not a main package", "directory not found", "cannot find package"} {
			if strings.Contains(msg, missing) {
				tb.Skipf("the cosigner CLI has not landed yet: %v", cosignerErr)
			}
		}
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

// startFilePV runs CometBFT v0.38.17's own remote signer with a FilePV.
func startFilePV(tb testing.TB, addr string) started {
	return started{pub: harness.StartReferenceSigner(tb, addr, chainID, "").PubKey}
}

// Stats summarises one target's request latencies.
type Stats struct {
	Target              string
	N                   int
	P50, P90, P99, Max  time.Duration
	SignaturesPerSecond float64
}

func (s Stats) String() string {
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64) }
	return fmt.Sprintf("%-20s n=%-5d p50=%sms p90=%sms p99=%sms max=%sms %.0f sig/s",
		s.Target, s.N, ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max), s.SignaturesPerSecond)
}

// fakeNode is the node's side: CometBFT v0.38.17's listener endpoint and
// signer client on a loopback tcp port.
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
	name      string
	pub       ed25519.PublicKey
	valAddr   []byte
	client    *cmtprivval.SignerClient
	procs     func() []*harness.Process
	lat       []time.Duration
	busy      time.Duration // sum of measured request->reply times
	votes     []*cmtproto.Vote
	proposals []*cmtproto.Proposal
}

// connect starts tgt against a fresh fake node and waits until it serves
// its public key.
func connect(tb testing.TB, tgt target) *session {
	tb.Helper()
	addr, client := fakeNode(tb)
	st := tgt.start(tb, addr)
	pub := st.pub
	if err := client.WaitForConnection(30 * time.Second); err != nil {
		tb.Fatalf("%s did not connect: %v", tgt.name, err)
	}
	got, err := client.GetPubKey()
	if err != nil {
		tb.Fatalf("%s: pubkey: %v", tgt.name, err)
	}
	if !slices.Equal(got.Bytes(), pub) {
		tb.Fatalf("%s: pubkey %X, want %X", tgt.name, got.Bytes(), []byte(pub))
	}
	return &session{name: tgt.name, pub: pub, valAddr: cmted25519.PubKey(pub).Address(), client: client, procs: st.procs}
}

// signHeight sends height h's proposal, prevote and precommit with an
// extension, timing each request as the node sees it when measured.
func (s *session) signHeight(tb testing.TB, h int64, measured bool) {
	tb.Helper()
	bid := cmtproto.BlockID{
		Hash:          hash(h, 1),
		PartSetHeader: cmtproto.PartSetHeader{Total: 1, Hash: hash(h, 2)},
	}
	record := func(d time.Duration) {
		if measured {
			s.lat = append(s.lat, d)
			s.busy += d
		}
	}
	p := &cmtproto.Proposal{Type: cmtproto.ProposalType, Height: h, Round: 0, PolRound: -1, BlockID: bid, Timestamp: time.Now().UTC()}
	t0 := time.Now()
	if err := s.client.SignProposal(chainID, p); err != nil {
		tb.Fatalf("%s: proposal %d: %v", s.name, h, err)
	}
	record(time.Since(t0))
	if measured {
		s.proposals = append(s.proposals, p)
	}
	for _, typ := range []cmtproto.SignedMsgType{cmtproto.PrevoteType, cmtproto.PrecommitType} {
		v := &cmtproto.Vote{Type: typ, Height: h, Round: 0, BlockID: bid, Timestamp: time.Now().UTC(), ValidatorAddress: s.valAddr}
		if typ == cmtproto.PrecommitType {
			v.Extension = []byte("latency")
		}
		t0 := time.Now()
		if err := s.client.SignVote(chainID, v); err != nil {
			tb.Fatalf("%s: %v %d: %v", s.name, typ, h, err)
		}
		record(time.Since(t0))
		if measured {
			s.votes = append(s.votes, v)
		}
	}
}

// verify checks every measured signature with crypto/ed25519.
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

const warmup = 5

// run signs heights heights (after a few unmeasured warm-up heights) on
// every session, interleaved height by height so that load from elsewhere
// on the machine falls on all targets alike, then verifies every signature.
func run(tb testing.TB, sessions []*session, heights int) []Stats {
	tb.Helper()
	for h := int64(1); h <= int64(warmup+heights); h++ {
		if h == warmup+1 {
			if b, ok := tb.(*testing.B); ok {
				b.ResetTimer() // ns/op: one height, without the signer's start-up
			}
		}
		for _, s := range sessions {
			s.signHeight(tb, h, h > warmup)
		}
	}
	var stats []Stats
	for _, s := range sessions {
		s.verify(tb)
		stats = append(stats, summarise(s.name, s.lat, s.busy))
	}
	return stats
}

// inside summarises how long the measured requests took inside the
// target's `cosigner start` processes, from request read to reply written
// (the latency= of their "signed ..." lines); false for a target without
// processes. The difference from what the node sees is the transport:
// SecretConnection and the scheduling of both ends.
func (s *session) inside() (Stats, bool) {
	if s.procs == nil {
		return Stats{}, false
	}
	var lat []time.Duration
	var sum time.Duration
	for _, p := range s.procs() {
		for _, line := range p.Lines() {
			rec, ok := harness.ParseSignRecord(line)
			if !ok || rec.Height <= warmup {
				continue
			}
			d, err := time.ParseDuration(harness.ParseSlogText(line)["latency"])
			if err != nil {
				continue
			}
			lat = append(lat, d)
			sum += d
		}
	}
	return summarise(s.name, lat, sum), true
}

// summarise computes percentiles; signatures per second is what one
// connection sustains back to back: the count over the summed latencies.
func summarise(name string, lat []time.Duration, elapsed time.Duration) Stats {
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		i := int(p*float64(len(lat))+0.5) - 1
		return lat[max(0, min(i, len(lat)-1))]
	}
	s := Stats{Target: name, N: len(lat), P50: q(0.50), P90: q(0.90), P99: q(0.99)}
	if len(lat) > 0 {
		s.Max = lat[len(lat)-1]
		s.SignaturesPerSecond = float64(len(lat)) / elapsed.Seconds()
	}
	return s
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

func heightsFromEnv(tb testing.TB) int {
	s := os.Getenv("COSIGNER_LATENCY_HEIGHTS")
	if s == "" {
		return 300
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		tb.Fatalf("COSIGNER_LATENCY_HEIGHTS=%q: want a positive integer", s)
	}
	return n
}

// TestLatency connects every target, then measures them interleaved and
// logs a table.
func TestLatency(t *testing.T) {
	if os.Getenv("COSIGNER_LATENCY") == "" {
		t.Skip("set COSIGNER_LATENCY=1 to measure signer latency")
	}
	heights := heightsFromEnv(t)
	var sessions []*session
	for _, tgt := range selectedTargets(t) {
		sessions = append(sessions, connect(t, tgt))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "request->reply as the node sees it, %d heights x (proposal, prevote, precommit+extension), targets interleaved:\n", heights)
	for _, s := range run(t, sessions, heights) {
		fmt.Fprintln(&b, s)
	}
	fmt.Fprintln(&b, "the same requests inside the signer process, request read -> reply ready (its log's latency=):")
	for _, s := range sessions {
		if in, ok := s.inside(); ok {
			fmt.Fprintln(&b, in)
		}
	}
	t.Log(b.String())
}

// BenchmarkLatency runs each target alone for b.N heights and reports the
// percentiles as custom metrics.
func BenchmarkLatency(b *testing.B) {
	for _, tgt := range selectedTargets(b) {
		b.Run(tgt.name, func(b *testing.B) {
			s := run(b, []*session{connect(b, tgt)}, b.N)[0]
			b.ReportMetric(float64(s.P50)/1e6, "p50-ms")
			b.ReportMetric(float64(s.P90)/1e6, "p90-ms")
			b.ReportMetric(float64(s.P99)/1e6, "p99-ms")
			b.ReportMetric(float64(s.Max)/1e6, "max-ms")
			b.ReportMetric(s.SignaturesPerSecond, "sig/s")
		})
	}
}
