package raft

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/cosigner/cosigner/internal/fsutil"
)

// Errors callers branch on; check them with errors.Is.
var (
	// ErrNotLeader: the operation needs the leader and this node is not it.
	// The error wrapping it names the leader this node knows of.
	ErrNotLeader = errors.New("not the raft leader")
	// ErrLeadershipLost: leadership was lost while a proposal was in
	// flight; the record may or may not have been committed.
	ErrLeadershipLost = errors.New("raft leadership lost during the operation")
	// ErrShutdown: the node has been shut down.
	ErrShutdown = errors.New("raft node shut down")
)

// logCacheSize is how many recent log entries are kept in memory in front of
// the bolt store, so replication to a follower that is slightly behind does
// not read from disk.
const logCacheSize = 512

// Options are a Node's dependencies.
type Options struct {
	// ServerTLS configures accepted Raft connections: TLS 1.3, a client
	// certificate of the cluster required and verified (cosigner's
	// ClusterTLS.ServerTLSConfig).
	ServerTLS *tls.Config
	// ClientTLS returns the configuration for dialing member peerID; it must
	// check that the server is that member (cosigner's
	// ClusterTLS.ClientTLSConfig). Called from raft's goroutines.
	ClientTLS func(peerID int) *tls.Config
	// Listener, if set, is used instead of listening on
	// Config.BindAddress; the Node owns it and closes it at Shutdown.
	Listener net.Listener
	// Logger receives Node and hashicorp/raft logs; nil discards them.
	Logger *slog.Logger
	// CheckRecord, if set, vets every replicated record before the FSM
	// stores it (FSMOptions.Check): the cosigner passes its height bound.
	CheckRecord RecordCheck
}

// Leadership is a node's view of who leads the cluster.
type Leadership struct {
	// IsLeader reports whether this node is the leader.
	IsLeader bool
	// LeaderID is the leader's cosigner id, 0 if none is known (an election
	// is under way or this node is cut off).
	LeaderID int
	// LeaderAddress is the leader's Raft address, empty if none is known.
	LeaderAddress string
	// Term is the Raft term of this view.
	Term uint64
}

// Role is a node's Raft role.
type Role int

// Roles, as hashicorp/raft has them.
const (
	RoleFollower Role = iota + 1
	RoleCandidate
	RoleLeader
	RoleShutdown
)

func (r Role) String() string {
	switch r {
	case RoleFollower:
		return "follower"
	case RoleCandidate:
		return "candidate"
	case RoleLeader:
		return "leader"
	case RoleShutdown:
		return "shutdown"
	}
	return "Role(" + strconv.Itoa(int(r)) + ")"
}

// View is a node's Raft state, for health reports.
type View struct {
	Role          Role
	Term          uint64
	LeaderID      int // 0 if none is known
	LastIndex     uint64
	AppliedIndex  uint64
	LastContact   time.Time // last contact with the leader; zero on the leader
	LeaderAddress string
}

// Node is one member of the cosigner cluster's Raft group, replicating the
// sign-state FSM over a mutual-TLS stream layer, with its log and snapshots
// in Config.DataDir.
//
// NewNode starts Raft: the node takes part in elections and replication from
// then on. Run delivers leadership changes and shuts the node down when its
// context ends; Shutdown may also be called directly. All methods are safe
// for concurrent use.
type Node struct {
	cfg    Config
	logger *slog.Logger
	fsm    *FSM
	raft   *hraft.Raft
	store  *raftboltdb.BoltStore

	leadership chan Leadership // capacity 1, latest wins; written by Run only

	mu       sync.Mutex
	shutdown bool           // set once Shutdown starts
	waiters  sync.WaitGroup // goroutines waiting on raft futures

	shutdownOnce sync.Once
	shutdownErr  error
	shutdownCh   chan struct{} // closed when Shutdown has finished
	runOnce      sync.Once
}

// NewNode validates cfg, opens (or creates) the stores in cfg.DataDir,
// bootstraps the static membership if the data dir holds no Raft state yet,
// and starts Raft. The FSM already holds the state of the latest snapshot on
// return; log entries after it are applied once a leader confirms them.
func NewNode(cfg Config, opts Options) (n *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.ServerTLS == nil || opts.ClientTLS == nil {
		return nil, errors.New("raft node: Options.ServerTLS and Options.ClientTLS are required")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("raft_id", cfg.ID)

	var closers []func() error
	defer func() {
		if err != nil {
			for _, c := range slices.Backward(closers) {
				c()
			}
		}
	}()

	if err := fsutil.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("raft node: create data dir: %w", err)
	}
	dbPath := filepath.Join(cfg.DataDir, "raft.db")
	store, err := raftboltdb.New(raftboltdb.Options{
		Path: dbPath,
		// bolt waits forever for the file lock by default; another process
		// on the same data dir should fail the start, not hang it.
		BoltOptions: &bbolt.Options{Timeout: time.Second},
	})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("raft node: %s is locked by another process; is another cosigner using data dir %s?", dbPath, cfg.DataDir)
		}
		return nil, fmt.Errorf("raft node: open %s: %w", dbPath, err)
	}
	closers = append(closers, store.Close)
	logs, err := hraft.NewLogCache(logCacheSize, store)
	if err != nil {
		return nil, fmt.Errorf("raft node: %w", err)
	}

	hlog := newHCLogger(logger, "raft")
	snaps, err := hraft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, hlog.Named("snapshot"))
	if err != nil {
		return nil, fmt.Errorf("raft node: open snapshot store in %s: %w", cfg.DataDir, err)
	}

	ln := opts.Listener
	if ln == nil {
		bind := cfg.BindAddress
		if bind == "" {
			bind, _ = cfg.peerAddress(cfg.ID)
		}
		if ln, err = net.Listen("tcp", bind); err != nil {
			return nil, fmt.Errorf("raft node: listen: %w", err)
		}
	}
	self, _ := cfg.peerAddress(cfg.ID)
	stream, err := NewStreamLayer(StreamConfig{
		Listener:  ln,
		Advertise: self,
		ServerTLS: opts.ServerTLS,
		ClientTLS: func(address string) (*tls.Config, error) {
			id, ok := cfg.peerByAddress(address)
			if !ok {
				return nil, fmt.Errorf("address %s is not a cluster member's", address)
			}
			return opts.ClientTLS(id), nil
		},
		HandshakeTimeout: cfg.IOTimeout,
		Logger:           logger,
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("raft node: %w", err)
	}
	transport := newMemberTransport(stream, cfg.ID, cfg.Peers, hraft.NetworkTransportConfig{
		MaxPool: 3,
		Timeout: cfg.IOTimeout,
		Logger:  hlog.Named("transport"),
	}, logger)
	closers = append(closers, transport.Close)
	transport.heartbeatEvery = min(cfg.HeartbeatTimeout/3, cfg.LeaderLeaseTimeout/2)

	hc := hraft.DefaultConfig()
	hc.LocalID = serverID(cfg.ID)
	hc.HeartbeatTimeout = cfg.HeartbeatTimeout
	hc.ElectionTimeout = cfg.ElectionTimeout
	hc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	hc.CommitTimeout = cfg.CommitTimeout
	hc.SnapshotThreshold = cfg.SnapshotThreshold
	hc.SnapshotInterval = cfg.SnapshotInterval
	hc.Logger = hlog
	if err := hraft.ValidateConfig(hc); err != nil {
		return nil, fmt.Errorf("raft node: %w", err)
	}

	membership := hraft.Configuration{}
	for _, p := range cfg.Peers {
		membership.Servers = append(membership.Servers, hraft.Server{
			Suffrage: hraft.Voter,
			ID:       serverID(p.ID),
			Address:  hraft.ServerAddress(p.Address),
		})
	}
	existing, err := hraft.HasExistingState(logs, store, snaps)
	if err != nil {
		return nil, fmt.Errorf("raft node: read state in %s: %w", cfg.DataDir, err)
	}
	if !existing {
		// Every member bootstraps with the same membership; Raft treats
		// identical bootstraps as one.
		if err := hraft.BootstrapCluster(hc, logs, store, snaps, transport, membership); err != nil {
			return nil, fmt.Errorf("raft node: bootstrap %s: %w", cfg.DataDir, err)
		}
		logger.Info("raft bootstrapped", "data_dir", cfg.DataDir, "peers", len(cfg.Peers))
	}

	fsm := NewFSM(FSMOptions{Check: opts.CheckRecord, Logger: logger})
	r, err := hraft.NewRaft(hc, fsm, logs, store, snaps, transport)
	if err != nil {
		return nil, fmt.Errorf("raft node: start: %w", err)
	}
	n = &Node{
		cfg:        cfg,
		logger:     logger,
		fsm:        fsm,
		raft:       r,
		store:      store,
		leadership: make(chan Leadership, 1),
		shutdownCh: make(chan struct{}),
	}
	if existing {
		n.checkMembership(membership)
	}
	return n, nil
}

// checkMembership warns if the membership stored in the data dir differs
// from the configured one: membership changes are not supported yet, and
// the stored one wins.
func (n *Node) checkMembership(want hraft.Configuration) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		n.logger.Warn("raft membership unreadable", "err", err)
		return
	}
	got := f.Configuration().Servers
	key := func(s hraft.Server) string { return string(s.ID) + "@" + string(s.Address) }
	a := make([]string, 0, len(got))
	for _, s := range got {
		a = append(a, key(s))
	}
	b := make([]string, 0, len(want.Servers))
	for _, s := range want.Servers {
		b = append(b, key(s))
	}
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) {
		n.logger.Warn("raft membership in data dir differs from config; using the data dir's",
			"data_dir", n.cfg.DataDir, "stored", a, "configured", b)
	}
}

func serverID(id int) hraft.ServerID { return hraft.ServerID(strconv.Itoa(id)) }

func parseServerID(id hraft.ServerID) int {
	n, err := strconv.Atoi(string(id))
	if err != nil {
		return 0
	}
	return n
}

// Run delivers leadership changes on LeadershipChanges until ctx ends or
// the node is shut down, then shuts the node down and returns Shutdown's
// error. Call it once.
func (n *Node) Run(ctx context.Context) error {
	first := false
	n.runOnce.Do(func() { first = true })
	if !first {
		return errors.New("raft node: Run called twice")
	}
	defer close(n.leadership)

	// Raft reports leadership changes as observations. The observer does not
	// block Raft: a full buffer drops an observation, but then earlier ones
	// are still queued, and handling each of them reads the current state
	// afterwards, so the last change is always published. LeaderCh is a
	// second, lossless-in-effect source for this node's own leadership.
	obsCh := make(chan hraft.Observation, 64)
	obs := hraft.NewObserver(obsCh, false, func(o *hraft.Observation) bool {
		switch o.Data.(type) {
		case hraft.LeaderObservation, hraft.RaftState:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)

	var last Leadership
	publish := func() {
		l := n.currentLeadership()
		if l == last {
			return
		}
		if l.IsLeader != last.IsLeader || l.LeaderID != last.LeaderID {
			n.logger.Info(LogLeadership, "leader", l.LeaderID, "is_leader", l.IsLeader, "term", l.Term)
		}
		last = l
		select { // drop an unread older view: the newest one wins
		case <-n.leadership:
		default:
		}
		n.leadership <- l // cannot block: capacity 1, Run is the only sender
	}
	publish()
	leaderCh := n.raft.LeaderCh()
	for {
		select {
		case <-ctx.Done():
			return n.Shutdown()
		case <-n.shutdownCh:
			return n.shutdownErr
		case <-obsCh:
			publish()
		case <-leaderCh:
			publish()
		}
	}
}

// LeadershipChanges returns the channel on which Run delivers this node's
// leadership view whenever it changes (IsLeader, LeaderID or Term). The
// first value is the view when Run starts.
//
// Contract: the channel holds at most one value and the newest view replaces
// an unread older one, so a slow receiver never delays Raft and always ends
// up with the current view, but may miss intermediate ones (for example a
// leadership lost and regained). Receivers that must act on every change,
// such as the leader dialing and closing chain nodes, should treat each
// value as "the view is now this", not as an edge. The channel is closed
// when Run returns. There is one channel per Node: use one receiver.
func (n *Node) LeadershipChanges() <-chan Leadership { return n.leadership }

func (n *Node) currentLeadership() Leadership {
	addr, id := n.raft.LeaderWithID()
	return Leadership{
		IsLeader:      n.raft.State() == hraft.Leader,
		LeaderID:      parseServerID(id),
		LeaderAddress: string(addr),
		Term:          n.raft.CurrentTerm(),
	}
}

// IsLeader reports whether this node currently believes it is the leader.
// A leader cut off from the others keeps believing so for up to
// LeaderLeaseTimeout; use VerifyLeader where that matters.
func (n *Node) IsLeader() bool { return n.raft.State() == hraft.Leader }

// Leader returns the leader this node knows of: its cosigner id and Raft
// address, or 0 and "" if none is known.
func (n *Node) Leader() (id int, address string) {
	addr, sid := n.raft.LeaderWithID()
	return parseServerID(sid), string(addr)
}

// ID returns this node's cosigner id.
func (n *Node) ID() int { return n.cfg.ID }

// View returns this node's Raft state for health reports.
func (n *Node) View() View {
	addr, id := n.raft.LeaderWithID()
	v := View{
		Term:          n.raft.CurrentTerm(),
		LeaderID:      parseServerID(id),
		LeaderAddress: string(addr),
		LastIndex:     n.raft.LastIndex(),
		AppliedIndex:  n.raft.AppliedIndex(),
	}
	switch n.raft.State() {
	case hraft.Follower:
		v.Role = RoleFollower
		v.LastContact = n.raft.LastContact()
	case hraft.Candidate:
		v.Role = RoleCandidate
	case hraft.Leader:
		v.Role = RoleLeader
	default:
		v.Role = RoleShutdown
	}
	return v
}

// Last returns a copy of the cluster's last record for chainID as this
// node's FSM has it, and false if there is none. On a follower it may lag
// the leader by a commit.
func (n *Node) Last(chainID string) (Record, bool) { return n.fsm.Last(chainID) }

// FSM returns the node's state machine, for reads and change notification.
func (n *Node) FSM() *FSM { return n.fsm }

// Propose replicates rec through Raft and returns once a quorum has stored it
// and this node's FSM has applied it (or ignored it as not newer than the
// stored record, which is not an error). It must be called on the leader;
// elsewhere it returns ErrNotLeader. If ctx ends first it returns ctx.Err()
// and the record may still be committed.
func (n *Node) Propose(ctx context.Context, rec Record) error {
	if err := rec.validate(); err != nil {
		return fmt.Errorf("raft propose: %w", err)
	}
	data, err := encodeRecord(rec)
	if err != nil {
		return fmt.Errorf("raft propose: %w", err)
	}
	if !n.IsLeader() {
		return n.notLeader("raft propose")
	}
	timeout, err := timeoutOf(ctx)
	if err != nil {
		return fmt.Errorf("raft propose: %w", err)
	}
	f := n.raft.Apply(data, timeout)
	if err := n.wait(ctx, f); err != nil {
		return n.mapError("raft propose", err)
	}
	if err, ok := f.Response().(error); ok {
		return fmt.Errorf("raft propose: %w", err)
	}
	return nil
}

// VerifyLeader confirms with a quorum that this node is still the leader.
func (n *Node) VerifyLeader(ctx context.Context) error {
	if err := n.wait(ctx, n.raft.VerifyLeader()); err != nil {
		return n.mapError("raft verify leader", err)
	}
	return nil
}

// TransferLeadership hands leadership to member id, or to the most
// up-to-date follower if id is 0, and returns when the transfer has
// completed or failed. It must be called on the leader.
func (n *Node) TransferLeadership(ctx context.Context, id int) error {
	if !n.IsLeader() {
		return n.notLeader("raft transfer leadership")
	}
	var f hraft.Future
	if id == 0 {
		f = n.raft.LeadershipTransfer()
	} else {
		if id == n.cfg.ID {
			return fmt.Errorf("raft transfer leadership: cosigner %d is already the leader", id)
		}
		addr, ok := n.cfg.peerAddress(id)
		if !ok {
			return fmt.Errorf("raft transfer leadership: cosigner %d is not a cluster member", id)
		}
		f = n.raft.LeadershipTransferToServer(serverID(id), hraft.ServerAddress(addr))
	}
	if err := n.wait(ctx, f); err != nil {
		return n.mapError("raft transfer leadership", err)
	}
	return nil
}

// Snapshot takes a snapshot of the FSM now and compacts the log.
func (n *Node) Snapshot(ctx context.Context) error {
	if err := n.wait(ctx, n.raft.Snapshot()); err != nil {
		return n.mapError("raft snapshot", err)
	}
	return nil
}

func (n *Node) notLeader(op string) error {
	id, addr := n.Leader()
	if id == 0 {
		return fmt.Errorf("%s: %w (no leader known)", op, ErrNotLeader)
	}
	return fmt.Errorf("%s: %w (leader is cosigner %d at %s)", op, ErrNotLeader, id, addr)
}

func (n *Node) mapError(op string, err error) error {
	switch {
	case errors.Is(err, hraft.ErrNotLeader):
		return n.notLeader(op)
	case errors.Is(err, hraft.ErrLeadershipLost):
		return fmt.Errorf("%s: %w", op, ErrLeadershipLost)
	case errors.Is(err, hraft.ErrRaftShutdown):
		return fmt.Errorf("%s: %w", op, ErrShutdown)
	case errors.Is(err, hraft.ErrEnqueueTimeout):
		return fmt.Errorf("%s: %w", op, context.DeadlineExceeded)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// timeoutOf turns ctx's deadline into a raft enqueue timeout (0: none).
func timeoutOf(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	dl, ok := ctx.Deadline()
	if !ok {
		return 0, nil
	}
	d := time.Until(dl)
	if d <= 0 {
		return 0, context.DeadlineExceeded
	}
	return d, nil
}

// wait waits for a raft future or the end of ctx. hashicorp/raft futures
// cannot be selected on, so a goroutine waits for it; raft resolves every
// future at the latest at shutdown, and Shutdown waits for these goroutines.
func (n *Node) wait(ctx context.Context, f hraft.Future) error {
	n.mu.Lock()
	if n.shutdown {
		n.mu.Unlock()
		return hraft.ErrRaftShutdown
	}
	n.waiters.Add(1)
	n.mu.Unlock()

	done := make(chan error, 1)
	go func() {
		defer n.waiters.Done()
		done <- f.Error()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown stops Raft, closes the transport, listener and stores, and waits
// for the node's goroutines. It does not hand leadership over first: call
// TransferLeadership for a graceful stop. It is idempotent and returns the
// first call's result.
func (n *Node) Shutdown() error {
	n.shutdownOnce.Do(func() {
		n.mu.Lock()
		n.shutdown = true
		n.mu.Unlock()
		var errs []error
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
		n.waiters.Wait()
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: close store: %w", err))
		}
		n.shutdownErr = errors.Join(errs...)
		close(n.shutdownCh)
	})
	<-n.shutdownCh
	return n.shutdownErr
}
