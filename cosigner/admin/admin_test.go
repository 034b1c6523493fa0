package admin

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/privval"
)

// runServer runs a component until the test ends.
func runServer(t *testing.T, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("server: %v", err)
		}
	})
}

func newSoftsignAdmin(t *testing.T) (*SoftsignAdmin, *Metrics) {
	t.Helper()
	m, _ := newTestMetrics(t)
	state, _ := newTestState(t, Mark{Height: 41})
	ss := NewSoftsign(discard)
	ss.SetMetrics(m)
	if err := ss.AddChain(testChain, testKey, state); err != nil {
		t.Fatal(err)
	}
	m.ServeNodes(testChain, []string{"tcp://127.0.0.1:26659"}, 41)
	return NewSoftsignAdmin(ss, m, "v-test"), m
}

// TestAdminSocket: the socket is 0600, replaces a stale socket, refuses to
// remove anything else, answers status and leadership requests, and is gone
// when the server stops.
func TestAdminSocket(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, AdminSocketName)

	// A stale socket of a killed process: bound, never closed by its owner.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	if _, err := AdminStatus(context.Background(), home); !errors.Is(err, ErrAdminUnreachable) {
		t.Fatalf("status from a stale socket: %v, want ErrAdminUnreachable", err)
	}

	admin, m := newSoftsignAdmin(t)
	srv, err := NewAdminServer(path, admin, discard)
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

	st, err := AdminStatus(context.Background(), home)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode != ModeSoftsign || st.Version != "v-test" || !st.Quorum || st.Ready {
		t.Errorf("status = %+v, want softsign v-test with quorum, not ready", st)
	}
	if !strings.Contains(st.NotReady, "tcp://127.0.0.1:26659") {
		t.Errorf("not_ready = %q, want it to name the node", st.NotReady)
	}
	if len(st.Chains) != 1 || st.Chains[0].Height != 41 || st.Chains[0].Source != "state" {
		t.Errorf("chains = %+v, want %s at 41 from the state", st.Chains, testChain)
	}

	m.NodeConnected(testChain, "tcp://127.0.0.1:26659", true)
	m.SignAnswered(privval.SignResult{ChainID: testChain, Step: privval.StepPrevote, Height: 42})
	st, err = AdminStatus(context.Background(), home)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ready || len(st.Nodes) != 1 || !st.Nodes[0].Connected {
		t.Errorf("status = %+v, want ready with the node connected", st)
	}
	if c := st.Chains[0]; c.Height != 42 || c.Step != "prevote" || c.Source != "this process" || c.SinceSeconds == nil {
		t.Errorf("chain = %+v, want prevote 42 signed by this process", c)
	}

	if _, err := AdminTransferLeadership(context.Background(), home, 2); err == nil || !strings.Contains(err.Error(), "softsign") {
		t.Errorf("leader transfer in softsign mode: %v, want a refusal naming softsign", err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin socket left behind: %v", err)
	}
	if _, err := AdminStatus(context.Background(), home); !errors.Is(err, ErrAdminUnreachable) {
		t.Errorf("status after stop: %v, want ErrAdminUnreachable", err)
	}

	// Never remove a file that is not a socket.
	if err := os.WriteFile(path, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewAdminServer(path, admin, discard); err == nil {
		t.Fatal("admin server replaced a regular file")
	}
	if data, _ := os.ReadFile(path); string(data) != "keep" {
		t.Fatal("regular file in the socket's place was touched")
	}
}

// TestOpsServer: /healthz always, /readyz following the ready function,
// /metrics with the cosigner families.
func TestOpsServer(t *testing.T) {
	_, reg := newTestMetrics(t)
	notReady := errors.New("no quorum: 1 of 3 cosigners reachable, 2 needed")
	ready := make(chan error, 1)
	ready <- notReady
	readyFn := func() error {
		err := <-ready
		ready <- err
		return err
	}
	srv, err := NewOpsServer("127.0.0.1:0", reg, readyFn, discard)
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, srv.Run)

	get := func(path string) (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get("http://" + srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d, want 200", code)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || body != "not ready: "+notReady.Error()+"\n" {
		t.Errorf("/readyz: %d %q, want 503 with the reason on one line", code, body)
	}
	<-ready
	ready <- nil
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz when ready: %d, want 200", code)
	}
	code, body := get("/metrics")
	if code != http.StatusOK || !strings.Contains(body, `cosigner_build_info{version="test"} 1`) {
		t.Errorf("/metrics: %d, build info missing:\n%s", code, body)
	}

	// A taken address stops a start, naming the key.
	if _, err := NewOpsServer(srv.Addr(), reg, readyFn, discard); err == nil || !strings.Contains(err.Error(), "metrics.listen") {
		t.Errorf("second server on %s: %v, want an error naming metrics.listen", srv.Addr(), err)
	}
}
