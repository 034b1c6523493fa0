package raft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// waitTimeout bounds every wait in these tests. Elections take well under a
// second with the default timeouts; the margin is for loaded CI machines.
const waitTimeout = 20 * time.Second

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// testCluster runs real Raft nodes on loopback TCP with mutual TLS and bolt
// stores in temporary directories.
type testCluster struct {
	t     testing.TB
	ids   []identity // ids[i] is member i+1
	cfgs  []Config
	nodes []*Node // nil while stopped
	stops []func() error
	views []Leadership // the latest view each node delivered
	check RecordCheck  // every node's Options.CheckRecord
}

func newTestCluster(t testing.TB, n int) *testCluster {
	t.Helper()
	return newCheckedTestCluster(t, n, nil)
}

// newCheckedTestCluster is newTestCluster with check as every node's
// Options.CheckRecord.
func newCheckedTestCluster(t testing.TB, n int, check RecordCheck) *testCluster {
	t.Helper()
	return newWrappedTestCluster(t, n, check, nil)
}

// newWrappedTestCluster is newCheckedTestCluster with member i's first
// listener replaced by wrap(i, listener) when wrap is not nil.
func newWrappedTestCluster(t testing.TB, n int, check RecordCheck, wrap func(int, net.Listener) net.Listener) *testCluster {
	t.Helper()
	ca := newTestCA(t)
	c := &testCluster{t: t, check: check}
	var lns []net.Listener
	var peers []Peer
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if wrap != nil {
			ln = wrap(i, ln)
		}
		lns = append(lns, ln)
		peers = append(peers, Peer{ID: i + 1, Address: ln.Addr().String()})
	}
	dir := t.TempDir()
	for i := range n {
		cfg := DefaultConfig()
		cfg.ID = i + 1
		cfg.DataDir = filepath.Join(dir, fmt.Sprintf("node-%d", i+1))
		cfg.Peers = peers
		c.cfgs = append(c.cfgs, cfg)
		c.ids = append(c.ids, ca.identity(t, i+1))
	}
	c.nodes = make([]*Node, n)
	c.stops = make([]func() error, n)
	c.views = make([]Leadership, n)
	for i := range n {
		c.start(i, lns[i])
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			if c.nodes[i] != nil {
				c.stop(i)
			}
		}
	})
	return c
}

// start starts member index i, on ln or else on its configured address.
func (c *testCluster) start(i int, ln net.Listener) {
	c.t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", c.cfgs[i].Peers[i].Address); err != nil {
			c.t.Fatal(err)
		}
	}
	n, err := NewNode(c.cfgs[i], Options{
		ServerTLS:   c.ids[i].serverTLS(),
		ClientTLS:   c.ids[i].clientTLS,
		Listener:    ln,
		Logger:      testLogger().With("node", i+1),
		CheckRecord: c.check,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	c.nodes[i] = n
	c.views[i] = Leadership{}
	c.stops[i] = func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(waitTimeout):
			return errors.New("Run did not return after its context ended")
		}
	}
}

// stop shuts member index i down as a crash would look to the others: no
// leadership transfer.
func (c *testCluster) stop(i int) {
	c.t.Helper()
	changes := c.nodes[i].LeadershipChanges()
	if err := c.stops[i](); err != nil {
		c.t.Errorf("stop node %d: %v", i+1, err)
	}
	c.nodes[i] = nil
	// Run closes the channel when it returns; at most one view is left.
	select {
	case _, ok := <-changes:
		if ok {
			if _, ok := <-changes; ok {
				c.t.Errorf("node %d: leadership channel holds two views", i+1)
			}
		}
	default:
		c.t.Errorf("node %d: leadership channel not closed after Run returned", i+1)
	}
}

// waitViews waits, reading the nodes' leadership channels, until cond holds
// for the latest views of the running nodes.
func (c *testCluster) waitViews(desc string, cond func() bool) {
	c.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for !cond() {
		cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(deadline.C)}}
		var index []int
		for i, n := range c.nodes {
			if n != nil {
				cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(n.LeadershipChanges())})
				index = append(index, i)
			}
		}
		chosen, v, ok := reflect.Select(cases)
		if chosen == 0 {
			c.t.Fatalf("timed out after %v waiting for %s; views: %+v", waitTimeout, desc, c.views)
		}
		if !ok {
			c.t.Fatalf("node %d stopped delivering leadership views", index[chosen-1]+1)
		}
		c.views[index[chosen-1]] = v.Interface().(Leadership)
	}
}

// waitLeader waits until one running node leads and all running nodes agree
// on it, and returns its index.
func (c *testCluster) waitLeader() int {
	c.t.Helper()
	leader := -1
	c.waitViews("an agreed leader", func() bool {
		leader = -1
		for i, n := range c.nodes {
			if n != nil && c.views[i].IsLeader {
				leader = i
			}
		}
		if leader < 0 {
			return false
		}
		for i, n := range c.nodes {
			if n != nil && c.views[i].LeaderID != leader+1 {
				return false
			}
		}
		return true
	})
	return leader
}

// waitRecord waits until node n's FSM holds a record for chain at or above
// height h.
func waitRecord(t testing.TB, n *Node, chain string, h int64) Record {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		changed := n.FSM().Changed()
		if r, ok := n.Last(chain); ok && r.Height >= h {
			return r
		}
		select {
		case <-changed:
		case <-deadline.C:
			r, ok := n.Last(chain)
			t.Fatalf("timed out waiting for node %d to apply %s height %d; it has %+v (%v)", n.ID(), chain, h, r, ok)
		}
	}
}

func propose(t testing.TB, n *Node, r Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := n.Propose(ctx, r); err != nil {
		t.Fatalf("propose on node %d: %v", n.ID(), err)
	}
}

func TestNodeClusterFailover(t *testing.T) {
	c := newTestCluster(t, 3)

	leader := c.waitLeader()
	ln := c.nodes[leader]
	if id, addr := ln.Leader(); id != leader+1 || addr != c.cfgs[leader].Peers[leader].Address {
		t.Errorf("Leader() = %d, %q; want %d, %q", id, addr, leader+1, c.cfgs[leader].Peers[leader].Address)
	}
	if !ln.IsLeader() || ln.View().Role != RoleLeader {
		t.Errorf("leader reports IsLeader %v, role %v", ln.IsLeader(), ln.View().Role)
	}

	// Propose replicates to every FSM.
	for h := int64(1); h <= 5; h++ {
		propose(t, ln, rec("chain-a", h, 0, 3, fmt.Sprintf("sig-%d", h)))
	}
	propose(t, ln, rec("chain-a", 4, 0, 3, "stale")) // ignored, not an error
	for _, n := range c.nodes {
		r := waitRecord(t, n, "chain-a", 5)
		if string(r.Signature) != "sig-5" {
			t.Errorf("node %d has signature %q, want sig-5", n.ID(), r.Signature)
		}
	}

	// A follower refuses to propose and names the leader.
	follower := c.nodes[(leader+1)%3]
	err := follower.Propose(context.Background(), rec("chain-a", 6, 0, 1, "x"))
	if !errors.Is(err, ErrNotLeader) {
		t.Errorf("Propose on a follower: err = %v, want ErrNotLeader", err)
	}
	if follower.IsLeader() {
		t.Error("follower reports IsLeader")
	}
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if err := ln.Propose(expired, rec("chain-a", 7, 0, 1, "x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Propose with an expired context: err = %v, want DeadlineExceeded", err)
	}

	// Kill the leader: another one is elected and has the state.
	killed := time.Now()
	c.stop(leader)
	next := c.waitLeader()
	t.Logf("failover: node %d leads %v after node %d stopped", next+1, time.Since(killed).Round(time.Millisecond), leader+1)
	if next == leader {
		t.Fatal("the stopped node is still the leader")
	}
	nl := c.nodes[next]
	if r := waitRecord(t, nl, "chain-a", 5); string(r.Signature) != "sig-5" {
		t.Errorf("new leader has %q, want sig-5", r.Signature)
	}
	propose(t, nl, rec("chain-a", 6, 0, 1, "sig-6"))
	for _, n := range c.nodes {
		if n != nil {
			waitRecord(t, n, "chain-a", 6)
		}
	}

	// The old leader comes back as a follower and catches up.
	c.start(leader, nil)
	c.waitLeader()
	if r := waitRecord(t, c.nodes[leader], "chain-a", 6); string(r.Signature) != "sig-6" {
		t.Errorf("restarted node has %q, want sig-6", r.Signature)
	}
}

func TestNodeRestartRecoversFromDisk(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.waitLeader()
	propose(t, c.nodes[leader], rec("chain-a", 10, 0, 2, "in-snapshot"))
	propose(t, c.nodes[leader], rec("chain-b", 3, 1, 1, "b-in-snapshot"))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, n := range c.nodes {
		waitRecord(t, n, "chain-b", 3)
		if err := n.Snapshot(ctx); err != nil {
			t.Fatalf("snapshot on node %d: %v", n.ID(), err)
		}
	}
	// These are only in the bolt log, after the snapshot.
	propose(t, c.nodes[leader], rec("chain-a", 11, 0, 1, "in-log"))
	for _, n := range c.nodes {
		waitRecord(t, n, "chain-a", 11)
	}

	for i := range c.nodes {
		c.stop(i)
	}
	for i := range c.nodes {
		snaps, err := filepath.Glob(filepath.Join(c.cfgs[i].DataDir, "snapshots", "*", "state.bin"))
		if err != nil || len(snaps) == 0 {
			t.Fatalf("node %d: no snapshot on disk (%v)", i+1, err)
		}
	}

	for i := range c.nodes {
		c.start(i, nil)
		// NewNode restores the latest snapshot before it returns, before
		// any contact with the others.
		r, ok := c.nodes[i].Last("chain-b")
		if !ok || string(r.Signature) != "b-in-snapshot" {
			t.Errorf("node %d right after restart: chain-b = %+v, %v; want the snapshot's record", i+1, r, ok)
		}
	}
	leader = c.waitLeader()
	for _, n := range c.nodes {
		if r := waitRecord(t, n, "chain-a", 11); string(r.Signature) != "in-log" {
			t.Errorf("node %d after restart: chain-a signature %q, want in-log", n.ID(), r.Signature)
		}
	}
	// The cluster goes on from the recovered state.
	propose(t, c.nodes[leader], rec("chain-a", 12, 0, 1, "after"))
	for _, n := range c.nodes {
		waitRecord(t, n, "chain-a", 12)
	}
}

func TestNodeLeadershipTransfer(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.waitLeader()
	target := (leader + 1) % 3

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.nodes[target].TransferLeadership(ctx, leader+1); !errors.Is(err, ErrNotLeader) {
		t.Errorf("transfer from a follower: err = %v, want ErrNotLeader", err)
	}
	if err := c.nodes[leader].TransferLeadership(ctx, 99); err == nil {
		t.Error("transfer to a non-member succeeded")
	}
	if err := c.nodes[leader].TransferLeadership(ctx, target+1); err != nil {
		t.Fatalf("transfer to %d: %v", target+1, err)
	}
	c.waitViews(fmt.Sprintf("node %d to lead", target+1), func() bool {
		for i, n := range c.nodes {
			if n != nil && c.views[i].LeaderID != target+1 {
				return false
			}
		}
		return c.views[target].IsLeader
	})
	if got := c.waitLeader(); got != target {
		t.Fatalf("leader is %d, want %d", got+1, target+1)
	}
	propose(t, c.nodes[target], rec("chain-a", 1, 0, 1, "after-transfer"))
	for _, n := range c.nodes {
		waitRecord(t, n, "chain-a", 1)
	}
}

func TestNodeDataDirLocked(t *testing.T) {
	c := newTestCluster(t, 1)
	c.waitLeader()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewNode(c.cfgs[0], Options{ServerTLS: c.ids[0].serverTLS(), ClientTLS: c.ids[0].clientTLS, Listener: ln})
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second node on the same data dir: err = %v, want a lock error", err)
	}
}

// BenchmarkNodePropose measures one replicated, fsynced sign-state update on
// a 3-node cluster over loopback TLS, as the leader sees it.
func BenchmarkNodePropose(b *testing.B) {
	c := newTestCluster(b, 3)
	leader := c.nodes[c.waitLeader()]
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := leader.Propose(ctx, rec("bench", int64(i+1), 0, 3, "sig")); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNodeCheckRecord: a record the nodes' check refuses is committed but
// stored by no FSM; the records after it are.
func TestNodeCheckRecord(t *testing.T) {
	c := newCheckedTestCluster(t, 3, func(r Record) error {
		if r.Height > 1000 {
			return fmt.Errorf("height %d is above 1000", r.Height)
		}
		return nil
	})
	ln := c.nodes[c.waitLeader()]
	propose(t, ln, rec("chain-a", 10, 0, 3, "sig-10"))
	propose(t, ln, rec("chain-a", 5000, 0, 3, "far")) // committed, not stored
	propose(t, ln, rec("chain-a", 11, 0, 1, "sig-11"))
	for _, n := range c.nodes {
		// Had any node stored 5000, it would ignore 11 as not newer.
		if r := waitRecord(t, n, "chain-a", 11); r.Height != 11 || string(r.Signature) != "sig-11" {
			t.Errorf("node %d has %d %q, want 11 sig-11", n.ID(), r.Height, r.Signature)
		}
	}
}

// readCounter counts the reads that return data on the connections its
// listener accepts.
type readCounter struct {
	net.Listener
	reads *atomic.Int64
}

func (l readCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countedConn{c, l.reads}, nil
}

type countedConn struct {
	net.Conn
	reads *atomic.Int64
}

func (c countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.reads.Add(1)
	}
	return n, err
}

// TestNodeIdleTraffic: an idle cluster's leader sends each follower its
// heartbeats, at most one per heartbeatEvery (hashicorp/raft alone sends
// one every HeartbeatTimeout/10 to /5: 17-33 a second), and, every
// CommitTimeout to twice that, an AppendEntries with the commit index
// (with the old 20 ms CommitTimeout, 25-50 a second). Each is a TLS record
// the follower reads. Reads on a follower's accepted connections over an
// idle window count them (one read per record, or fewer when records
// arrive together): about 25 in 2 s with the heartbeats paced, about 50
// without.
func TestNodeIdleTraffic(t *testing.T) {
	reads := make([]*atomic.Int64, 3)
	c := newWrappedTestCluster(t, 3, nil, func(i int, ln net.Listener) net.Listener {
		reads[i] = new(atomic.Int64)
		return readCounter{ln, reads[i]}
	})
	leader := c.waitLeader()
	// Settle: the followers learn the leader and pipelining starts.
	propose(t, c.nodes[leader], rec("idle", 1, 0, 3, "sig"))
	for _, n := range c.nodes {
		waitRecord(t, n, "idle", 1)
	}
	cfg := DefaultConfig()
	window := 2 * time.Second
	before := make([]int64, 3)
	for i := range reads {
		before[i] = reads[i].Load()
	}
	start := time.Now()
	<-time.After(window) // the idle window being measured, not a synchronisation
	elapsed := time.Since(start)
	// The most the paced heartbeats and the commit-index sends can be,
	// one more of each for the window's ends, and four to spare.
	every := min(cfg.HeartbeatTimeout/3, cfg.LeaderLeaseTimeout/2)
	heartbeats := elapsed.Seconds()/every.Seconds() + 1
	commits := elapsed.Seconds()/cfg.CommitTimeout.Seconds() + 1
	limit := int64(heartbeats + commits + 4)
	for i := range c.nodes {
		if i == leader {
			continue
		}
		got := reads[i].Load() - before[i]
		t.Logf("follower %d: %d reads in %v idle (limit %d)", i+1, got, elapsed.Round(time.Millisecond), limit)
		if got > limit {
			t.Errorf("follower %d read %d records in %v of an idle cluster, want at most %d (heartbeats every %v, commit index every %v)",
				i+1, got, elapsed.Round(time.Millisecond), limit, every, cfg.CommitTimeout)
		}
	}
}
