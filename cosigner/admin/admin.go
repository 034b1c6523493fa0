// Package admin is how operators and monitoring reach a running cosigner:
// the admin socket (<home>/admin.sock) behind `cosigner status` and
// `cosigner leader transfer`, the Status it reports, the HTTP server of
// /metrics, /healthz and /readyz, and the Tracker of node connections and
// last signatures that status and readiness read.
//
// It knows nothing of how a cosigner signs: each mode implements Backend.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/threshold"
)

// SocketName is the admin socket's file name in a cosigner home.
const SocketName = "admin.sock"

// Status is a running cosigner's report for `cosigner status`, as JSON.
type Status struct {
	Mode    string `json:"mode"`
	Version string `json:"version"`
	// ID is the cosigner id (threshold mode).
	ID int `json:"id,omitempty"`
	// Role is leader, follower or candidate (threshold), or softsign.
	Role     string `json:"role"`
	LeaderID int    `json:"leader_id,omitempty"`
	Term     uint64 `json:"term,omitempty"`
	// Threshold of Shares cosigners sign; 1 of 1 in softsign mode.
	Threshold int  `json:"threshold"`
	Shares    int  `json:"shares"`
	Quorum    bool `json:"quorum"`
	Ready     bool `json:"ready"`
	// Epoch and Group are the generation of the share (threshold mode):
	// its number and the first hex digits of its group's commitment hash.
	Epoch uint64 `json:"epoch,omitempty"`
	Group string `json:"group,omitempty"`
	// DownTolerated, CompromisedTolerated and SharesToSign are what this
	// shape withstands (threshold.Tolerance): cosigners that may be down
	// while signing goes on, cosigners that may be compromised without a
	// double sign, and the shares an attacker needs to sign on its own.
	// Set them with SetShape.
	DownTolerated        int `json:"down_tolerated"`
	CompromisedTolerated int `json:"compromised_tolerated"`
	SharesToSign         int `json:"shares_to_sign"`
	// NotReady says why Ready is false.
	NotReady string `json:"not_ready,omitempty"`
	// PeersView says whose view Peers is: "leader" (the coordinator's,
	// from its share RPCs and probes) or "ping" (this follower's pings).
	PeersView string       `json:"peers_view,omitempty"`
	Peers     []PeerReport `json:"peers,omitempty"`
	// NoncePool is the number of this cosigner's own unused nonces.
	NoncePool int           `json:"nonce_pool"`
	Chains    []ChainReport `json:"chains"`
	// Nodes are the node connections of this process (the leader's, or
	// softsign's); empty on a follower.
	Nodes []NodeReport `json:"nodes"`
}

// SetShape records an m-of-n cluster (1 of 1 for softsign) and what it
// withstands.
func (s *Status) SetShape(m, n int) {
	s.Threshold, s.Shares = m, n
	s.DownTolerated, s.CompromisedTolerated, s.SharesToSign = threshold.Tolerance(m, n)
}

// PeerReport is one cosigner in a Status.
type PeerReport struct {
	ID        int    `json:"id"`
	Address   string `json:"address"`
	Self      bool   `json:"self,omitempty"`
	Reachable bool   `json:"reachable"`
	// RTTMillis is the network round trip (a ping); ShareRTTMillis the
	// leader's smoothed share RPC round trip, durable write included.
	RTTMillis      float64 `json:"rtt_ms"`
	ShareRTTMillis float64 `json:"share_rtt_ms,omitempty"`
	// Commitments is how many of its nonce commitments the leader holds.
	Commitments int    `json:"commitments"`
	Role        string `json:"role,omitempty"`
	Error       string `json:"error,omitempty"`
}

// ChainReport is the last signature of one chain in a Status.
type ChainReport struct {
	ID     string `json:"id"`
	Height int64  `json:"height"`
	Round  int32  `json:"round"`
	Step   string `json:"step"`
	// SignedAt is when this process signed it, or, from the cluster's
	// record, the vote's own timestamp; nil if unknown.
	SignedAt     *time.Time `json:"signed_at,omitempty"`
	SinceSeconds *float64   `json:"since_seconds,omitempty"`
	// Source is "this process", "cluster" (the Raft record) or "state"
	// (the high-water mark on disk).
	Source string `json:"source"`
	// Address (hex) and PubKey (bech32) name the validator key that signs
	// the chain.
	Address string `json:"address,omitempty"`
	PubKey  string `json:"pubkey,omitempty"`
	// MaxHeight is the highest height this process signs (a share of, in
	// a cluster) now, by max_height_ahead and max_height_rate; nil when
	// that bound is off. It grows by max_height_rate a second.
	MaxHeight *int64 `json:"max_height,omitempty"`
}

// NodeReport is one node connection in a Status.
type NodeReport struct {
	Chain     string `json:"chain"`
	Address   string `json:"address"`
	Connected bool   `json:"connected"`
}

// Backend is what the admin socket serves. Implementations must be
// safe for concurrent use.
type Backend interface {
	// Status reports the cosigner's state; it may take up to a second
	// or so to ping peers.
	Status(ctx context.Context) Status
	// TransferLeadership hands leadership to cosigner id and returns the
	// leader afterwards.
	TransferLeadership(ctx context.Context, id int) (int, error)
}

// Millis renders d in milliseconds, with microsecond precision.
func Millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// NewChainReport describes the last signature of a chain; source is "this
// process", "cluster" or "state".
func NewChainReport(id string, h int64, r int32, s privval.Step, at time.Time, source string) ChainReport {
	cr := ChainReport{ID: id, Height: h, Round: r, Step: s.String(), Source: source}
	if s == 0 {
		cr.Step = "none"
	}
	if !at.IsZero() {
		since := time.Since(at).Seconds()
		cr.SignedAt, cr.SinceSeconds = &at, &since
	}
	return cr
}

// Server serves an Backend as JSON over HTTP on a unix socket
// that only the cosigner's user may open (0600, in the 0700 home):
//
//   - GET /status: a Status;
//   - POST /leader/transfer?id=N: {"leader_id": L}, or {"error": "..."}
//     with status 409.
type Server struct {
	path string
	lis  net.Listener
	srv  *http.Server
	log  *slog.Logger
}

// NewServer listens on the unix socket path, removing a socket left
// there by a process that died (the caller holds the home's lock, so no
// live cosigner owns it). It refuses to remove anything but a socket.
func NewServer(path string, b Backend, log *slog.Logger) (*Server, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("admin socket %s: a file that is not a socket is in the way", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale admin socket: %w", err)
		}
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		lis.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Status(r.Context()))
	})
	mux.HandleFunc("POST /leader/transfer", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.URL.Query().Get("id"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("id %q is not a cosigner id", r.URL.Query().Get("id"))})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		leader, err := b.TransferLeadership(ctx, id)
		if err != nil {
			log.Warn("leadership transfer refused", "target", id, "err", err)
			writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "leader_id": leader})
			return
		}
		log.Info("leadership transferred", "target", id, "leader", leader)
		writeJSON(w, http.StatusOK, map[string]int{"leader_id": leader})
	})
	return &Server{path: path, lis: lis, log: log, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}, nil
}

// Close releases the socket of a server that will not Run.
func (s *Server) Close() {
	s.lis.Close()
	os.Remove(s.path)
}

// Run serves until ctx ends, then removes the socket.
func (s *Server) Run(ctx context.Context) error {
	defer os.Remove(s.path)
	return serveHTTP(ctx, s.srv, s.lis, s.log, "admin socket")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away
}

// ErrUnreachable: no cosigner answers on the admin socket.
var ErrUnreachable = errors.New("no cosigner is running there")

func adminClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

func adminCall(ctx context.Context, path, method, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://cosigner"+url, nil)
	if err != nil {
		return err
	}
	c := adminClient(path)
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		// No socket, or a socket nobody listens on (a killed process).
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("admin socket %s: %w", path, ErrUnreachable)
		}
		return fmt.Errorf("admin socket %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("admin socket %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("admin socket %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("admin socket %s: bad reply: %w", path, err)
	}
	return nil
}

// GetStatus asks the cosigner whose home is home for its Status.
func GetStatus(ctx context.Context, home string) (Status, error) {
	var st Status
	err := adminCall(ctx, filepath.Join(home, SocketName), http.MethodGet, "/status", &st)
	return st, err
}

// RequestTransfer asks the cosigner whose home is home to hand
// leadership to cosigner id, and returns the leader afterwards.
func RequestTransfer(ctx context.Context, home string, id int) (int, error) {
	var out struct {
		LeaderID int `json:"leader_id"`
	}
	err := adminCall(ctx, filepath.Join(home, SocketName), http.MethodPost, "/leader/transfer?id="+strconv.Itoa(id), &out)
	return out.LeaderID, err
}
