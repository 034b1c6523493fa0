package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ReadyFunc reports why this cosigner cannot take part in signing now, or
// nil when it can. It must be safe for concurrent use and quick.
type ReadyFunc func() error

// OpsServer serves Prometheus metrics and health checks over HTTP:
//
//   - /metrics: the gatherer's metrics;
//   - /healthz: 200 while the process runs;
//   - /readyz: 200 when ready says so, else 503 with its reason on one line.
//
// It binds when created, so that a taken address stops a start before
// anything signs, and serves until Run's context ends.
type OpsServer struct {
	lis net.Listener
	srv *http.Server
	log *slog.Logger
}

// NewOpsServer listens on addr (host:port) for the endpoints above.
func NewOpsServer(addr string, g prometheus.Gatherer, ready ReadyFunc, log *slog.Logger) (*OpsServer, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen = %q: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return &OpsServer{lis: lis, log: log, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}, nil
}

// Addr returns the address the server listens on.
func (s *OpsServer) Addr() string { return s.lis.Addr().String() }

// Close releases the listener of a server that will not Run.
func (s *OpsServer) Close() { s.lis.Close() }

// Run serves until ctx ends, then shuts the server down.
func (s *OpsServer) Run(ctx context.Context) error {
	return serveHTTP(ctx, s.srv, s.lis, s.log, "metrics")
}

// serveHTTP runs srv on lis until ctx ends, then gives open requests a
// second to finish.
func serveHTTP(ctx context.Context, srv *http.Server, lis net.Listener, log *slog.Logger, name string) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	log.Info("serving "+name, "address", lis.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("%s server: %w", name, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s server: %w", name, err)
	}
	return nil
}
