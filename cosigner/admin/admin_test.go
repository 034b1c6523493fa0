package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cosigner/cosigner/cosigner/metrics"
	"github.com/cosigner/cosigner/internal/testkit"
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

// TestOpsServer: /healthz always, /readyz following the ready function,
// /metrics with the cosigner families.
func TestOpsServer(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg, "test"); err != nil {
		t.Fatal(err)
	}
	notReady := errors.New("no quorum: 1 of 3 cosigners reachable, 2 needed")
	ready := make(chan error, 1)
	ready <- notReady
	readyFn := func() error {
		err := <-ready
		ready <- err
		return err
	}
	srv, err := NewOpsServer("127.0.0.1:0", reg, readyFn, testkit.Log)
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
	if _, err := NewOpsServer(srv.Addr(), reg, readyFn, testkit.Log); err == nil || !strings.Contains(err.Error(), "metrics.listen") {
		t.Errorf("second server on %s: %v, want an error naming metrics.listen", srv.Addr(), err)
	}
}

func TestStatusSetShape(t *testing.T) {
	for _, tc := range []struct {
		m, n                      int
		down, compromised, toSign int
	}{
		{1, 1, 0, 0, 1},
		{2, 3, 1, 0, 2},
		{3, 4, 1, 1, 3},
		{5, 7, 2, 2, 5},
	} {
		var st Status
		st.SetShape(tc.m, tc.n)
		if st.Threshold != tc.m || st.Shares != tc.n || st.DownTolerated != tc.down || st.CompromisedTolerated != tc.compromised || st.SharesToSign != tc.toSign {
			t.Errorf("SetShape(%d, %d) = %+v, want %d down, %d compromised, %d to sign", tc.m, tc.n, st, tc.down, tc.compromised, tc.toSign)
		}
	}
}
