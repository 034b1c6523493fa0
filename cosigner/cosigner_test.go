package cosigner

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cosigner/cosigner/cosigner/admin"
	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/metrics"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/cosigner/softsign"
	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/internal/testkit/teststate"
	"github.com/cosigner/cosigner/privval"
)

const testChain = testkit.Chain

func newTestMetrics(t *testing.T) (*metrics.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, "test")
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// connWatch reports node connection changes on a channel, after the
// tracker has recorded them.
type connWatch struct {
	*admin.Tracker
	changes chan bool
}

func (w connWatch) NodeConnected(chainID, address string, up bool) {
	w.Tracker.NodeConnected(chainID, address, up)
	w.changes <- up
}

func waitConn(t *testing.T, ch <-chan bool, want bool) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("node connected = %v, want %v", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no node connection change to %v", want)
	}
}

func newSoftsignAdmin(t *testing.T) (*softsignBackend, *admin.Tracker) {
	t.Helper()
	m, _ := newTestMetrics(t)
	state := teststate.New(t, signstate.Mark{Height: 41})
	ss := softsign.New(testkit.Log, m, softsign.Options{})
	if err := ss.AddChain(testChain, testkit.Key, state); err != nil {
		t.Fatal(err)
	}
	tr := admin.NewTracker(m)
	tr.ServeNodes(testChain, []string{"tcp://127.0.0.1:26659"}, 41)
	return &softsignBackend{signer: ss, tracker: tr, version: "v-test"}, tr
}

// TestAdminSocket: the socket is 0600, replaces a stale socket, refuses to
// remove anything else, answers status and leadership requests, and is gone
// when the server stops.
func TestAdminSocket(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, admin.SocketName)

	// A stale socket of a killed process: bound, never closed by its owner.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	if _, err := admin.GetStatus(context.Background(), home); !errors.Is(err, admin.ErrUnreachable) {
		t.Fatalf("status from a stale socket: %v, want admin.ErrUnreachable", err)
	}

	backend, tr := newSoftsignAdmin(t)
	srv, err := admin.NewServer(path, backend, testkit.Log)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin socket mode %v, want 0600", fi.Mode().Perm())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	st, err := admin.GetStatus(context.Background(), home)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode != config.ModeSoftsign || st.Version != "v-test" || !st.Quorum || st.Ready {
		t.Errorf("status = %+v, want softsign v-test with quorum, not ready", st)
	}
	if st.Threshold != 1 || st.Shares != 1 || st.DownTolerated != 0 || st.CompromisedTolerated != 0 || st.SharesToSign != 1 {
		t.Errorf("status shape %d-of-%d withstanding %d down, %d compromised, %d to sign; want 1-of-1: 0, 0, 1",
			st.Threshold, st.Shares, st.DownTolerated, st.CompromisedTolerated, st.SharesToSign)
	}
	if !strings.Contains(st.NotReady, "tcp://127.0.0.1:26659") {
		t.Errorf("not_ready = %q, want it to name the node", st.NotReady)
	}
	if len(st.Chains) != 1 || st.Chains[0].Height != 41 || st.Chains[0].Source != "state" {
		t.Errorf("chains = %+v, want %s at 41 from the state", st.Chains, testChain)
	}

	tr.NodeConnected(testChain, "tcp://127.0.0.1:26659", true)
	tr.SignAnswered(privval.SignResult{ChainID: testChain, Step: privval.StepPrevote, Height: 42})
	st, err = admin.GetStatus(context.Background(), home)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ready || len(st.Nodes) != 1 || !st.Nodes[0].Connected {
		t.Errorf("status = %+v, want ready with the node connected", st)
	}
	if c := st.Chains[0]; c.Height != 42 || c.Step != "prevote" || c.Source != "this process" || c.SinceSeconds == nil {
		t.Errorf("chain = %+v, want prevote 42 signed by this process", c)
	}

	if _, err := admin.RequestTransfer(context.Background(), home, 2); err == nil || !strings.Contains(err.Error(), "softsign") {
		t.Errorf("leader transfer in softsign mode: %v, want a refusal naming softsign", err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin socket left behind: %v", err)
	}
	if _, err := admin.GetStatus(context.Background(), home); !errors.Is(err, admin.ErrUnreachable) {
		t.Errorf("status after stop: %v, want admin.ErrUnreachable", err)
	}

	// Never remove a file that is not a socket.
	if err := os.WriteFile(path, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.NewServer(path, backend, testkit.Log); err == nil {
		t.Fatal("admin server replaced a regular file")
	}
	if data, _ := os.ReadFile(path); string(data) != "keep" {
		t.Fatal("regular file in the socket's place was touched")
	}
}

// TestSignMetrics drives a softsign signer through a real NodeClient over a
// unix socket, as a node would, and checks that the sign metrics move: the
// last height rises, duplicates, refusals by reason and missed heights are
// counted, the node shows connected, then not.
func TestSignMetrics(t *testing.T) {
	m, reg := newTestMetrics(t)
	tr := admin.NewTracker(m)
	state := teststate.New(t, signstate.Mark{Height: 9})
	ss := softsign.New(testkit.Log, m, softsign.Options{})
	if err := ss.AddChain(testChain, testkit.Key, state); err != nil {
		t.Fatal(err)
	}

	sock := filepath.Join(t.TempDir(), "pv.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := "unix://" + sock
	nodeConnected := func() float64 {
		return testkit.Value(t, reg, "cosigner_node_connected", testkit.Labels("chain", testChain, "address", addr))
	}
	tr.ServeNodes(testChain, []string{addr}, state.Mark().Height)
	if got := nodeConnected(); got != 0 {
		t.Fatalf("node_connected before dialing = %v, want 0", got)
	}

	watch := connWatch{tr, make(chan bool, 4)}
	cfg := privval.DefaultNodeClientConfig()
	cfg.Observer = watch
	client, err := privval.NewNodeClient(addr, testChain, nil, ss, testkit.Log, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { client.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	waitConn(t, watch.changes, true)
	if got := nodeConnected(); got != 1 {
		t.Fatalf("node_connected = %v, want 1", got)
	}
	r := bufio.NewReader(conn)
	send := func(chainID string, v *privval.Vote) *privval.RemoteSignerError {
		t.Helper()
		if err := privval.WriteMessage(conn, &privval.SignVoteRequest{Vote: v, ChainID: chainID}); err != nil {
			t.Fatal(err)
		}
		res, err := privval.ReadMessage(r)
		if err != nil {
			t.Fatal(err)
		}
		return res.(*privval.SignedVoteResponse).Error
	}

	steps := []struct {
		name    string
		chainID string
		vote    *privval.Vote
		refused bool
	}{
		{"prevote 10", testChain, testkit.WireVote(privval.PrevoteType, 10, "A"), false},
		{"precommit 10", testChain, testkit.WireVote(privval.PrecommitType, 10, "A"), false},
		{"precommit 10 again", testChain, testkit.WireVote(privval.PrecommitType, 10, "A"), false},
		{"prevote 13, after two missed heights", testChain, testkit.WireVote(privval.PrevoteType, 13, "B"), false},
		{"prevote 13 for another block", testChain, testkit.WireVote(privval.PrevoteType, 13, "C"), true},
		{"prevote 12", testChain, testkit.WireVote(privval.PrevoteType, 12, "B"), true},
		{"another chain", "other-chain", testkit.WireVote(privval.PrevoteType, 14, "B"), true},
		{"prevote 14", testChain, testkit.WireVote(privval.PrevoteType, 14, "B"), false},
	}
	for _, s := range steps {
		if e := send(s.chainID, s.vote); (e != nil) != s.refused {
			t.Fatalf("%s: refusal %v, want refused %v", s.name, e, s.refused)
		}
	}
	// The client reports a request after writing its reply, and reads the
	// next request only then: a ping's reply means the last vote is
	// counted.
	if err := privval.WriteMessage(conn, &privval.PingRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := privval.ReadMessage(r); err != nil {
		t.Fatal(err)
	}

	value := func(name string, kv ...string) float64 { return testkit.Value(t, reg, name, testkit.Labels(kv...)) }
	checks := []struct {
		name      string
		got, want float64
	}{
		{"last prevote height", value("cosigner_sign_last_height", "chain", testChain, "type", "prevote"), 14},
		{"last precommit height", value("cosigner_sign_last_height", "chain", testChain, "type", "precommit"), 10},
		{"last prevote round", value("cosigner_sign_last_round", "chain", testChain, "type", "prevote"), 0},
		{"prevotes signed", value("cosigner_sign_signatures_total", "chain", testChain, "type", "prevote", "outcome", "signed"), 3},
		{"precommits signed", value("cosigner_sign_signatures_total", "chain", testChain, "type", "precommit", "outcome", "signed"), 1},
		{"precommit duplicates", value("cosigner_sign_signatures_total", "chain", testChain, "type", "precommit", "outcome", "duplicate"), 1},
		{"prevotes refused", value("cosigner_sign_signatures_total", "chain", testChain, "type", "prevote", "outcome", "refused"), 3},
		{"conflict refusals", value("cosigner_sign_refusals_total", "chain", testChain, "reason", "conflict"), 1},
		{"regression refusals", value("cosigner_sign_refusals_total", "chain", testChain, "reason", "regression"), 1},
		{"chain id refusals", value("cosigner_sign_refusals_total", "chain", testChain, "reason", "chain_id"), 1},
		{"missed heights", value("cosigner_sign_missed_heights_total", "chain", testChain), 2},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if n := testkit.HistogramCount(t, reg, "cosigner_sign_request_duration_seconds", map[string]string{"chain": testChain}); n != uint64(len(steps)) {
		t.Errorf("sign request durations observed: %d, want %d", n, len(steps))
	}
	// prevote 10, precommit 10, prevote 13 and 14 advanced the mark.
	if n := testkit.HistogramCount(t, reg, "cosigner_state_write_duration_seconds", nil); n != 4 {
		t.Errorf("state writes observed: %d, want 4", n)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP cosigner_cluster_quorum_available 1 when enough cosigners are reachable to sign: the leader's view; a follower's is whether it knows a leader.
# TYPE cosigner_cluster_quorum_available gauge
cosigner_cluster_quorum_available 1
# HELP cosigner_cluster_threshold Cosigners needed to sign (M); 1 in softsign mode.
# TYPE cosigner_cluster_threshold gauge
cosigner_cluster_threshold 1
`), "cosigner_cluster_quorum_available", "cosigner_cluster_threshold"); err != nil {
		t.Error(err)
	}
	if a := tr.Activity(); len(a) != 1 || a[0].Height != 14 || a[0].Step != privval.StepPrevote || a[0].SignedAt.IsZero() {
		t.Errorf("activity = %+v, want prevote 14", a)
	}

	ln.Close() // no redial may land
	conn.Close()
	waitConn(t, watch.changes, false)
	if got := nodeConnected(); got != 0 {
		t.Fatalf("node_connected after the node left = %v, want 0", got)
	}
	if down := tr.NodesDown(); down == nil || !strings.Contains(down.Error(), addr) {
		t.Errorf("NodesDown = %v, want it to name %s", down, addr)
	}
}

// TestSoftsignOptions: the config's height bound and per-chain
// sign_raw_bytes reach softsign.
func TestSoftsignOptions(t *testing.T) {
	cfg := config.DefaultConfig()
	cfg.Softsign.MaxHeightAhead, cfg.Softsign.MaxHeightRate = 100, 2
	cfg.Chains = []config.ChainConfig{{ID: "celestia", SignRawBytes: true}, {ID: "kira-1"}}
	got := softsignOptions(cfg)
	if got.MaxHeightAhead != 100 || got.MaxHeightRate != 2 {
		t.Errorf("height bound = %d, %g; want 100, 2", got.MaxHeightAhead, got.MaxHeightRate)
	}
	if !got.SignRawBytes["celestia"] || got.SignRawBytes["kira-1"] {
		t.Errorf("SignRawBytes = %v; want celestia only", got.SignRawBytes)
	}
}
