package raft

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/cosigner/cosigner/internal/certid"
)

// Peer is one member of the cluster.
type Peer struct {
	// ID is the cosigner id, 1..65535, the same as in its cluster
	// certificate. It is the Raft server id (in decimal).
	ID int
	// Address is the host:port at which the other members reach this
	// member's Raft stream layer.
	Address string
}

// Config configures a Node. Build it from DefaultConfig and check it with
// Validate; NewNode validates it again.
type Config struct {
	// ID is this node's cosigner id; it must appear in Peers.
	ID int
	// BindAddress is the host:port to listen on, for example "0.0.0.0:7100".
	// Empty means the address of this node's entry in Peers. Ignored when a
	// listener is passed to NewNode.
	BindAddress string
	// DataDir holds the Raft log and stable store (raft.db) and the
	// snapshots (snapshots/). Created 0700 if missing. One node per DataDir.
	DataDir string
	// Peers is the static membership, this node included. On first start
	// the cluster is bootstrapped with it; later starts take membership from
	// the data dir and only warn if it differs.
	Peers []Peer

	// HeartbeatTimeout is how long a follower goes without hearing from the
	// leader before it starts an election (randomised up to twice as long).
	// It bounds failover time from below.
	HeartbeatTimeout time.Duration
	// ElectionTimeout is how long a candidate waits for votes before it
	// starts another election (randomised up to twice as long). At least
	// HeartbeatTimeout.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without hearing
	// from a quorum; after it the leader steps down, so a partitioned leader
	// stops acting as one. At most HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is how long the leader waits without new entries before
	// it sends followers the commit index anyway (randomised up to twice as
	// long); it bounds how stale a follower's FSM is in a quiet cluster.
	// Each such send is an AppendEntries RPC to every follower, on top of
	// the heartbeats (one per member every HeartbeatTimeout/3 or
	// LeaderLeaseTimeout/2, whichever is shorter: see the transport's
	// paceHeartbeat), so it is most of what an idle leader spends if set
	// short.
	CommitTimeout time.Duration
	// IOTimeout bounds each dial, TLS handshake and RPC write of the stream
	// layer and transport.
	IOTimeout time.Duration

	// SnapshotRetain is how many snapshots to keep on disk.
	SnapshotRetain int
	// SnapshotThreshold is how many log entries since the last snapshot
	// trigger a new one (checked every SnapshotInterval).
	SnapshotThreshold uint64
	// SnapshotInterval is how often Raft checks whether to snapshot.
	SnapshotInterval time.Duration
}

// DefaultConfig returns the defaults, tuned for cosigners on one LAN or a
// WireGuard mesh with round trips under 10 ms. ID, DataDir and Peers must be
// filled in.
//
// The timeouts aim at failover well under a second: a follower notices a dead
// leader after 300-600 ms and usually wins the election in one round trip.
// Going much lower risks spurious elections on busy 2-core hosts, where GC
// pauses and fsyncs of tens of milliseconds happen; every election costs a
// leader change in the middle of a height.
//
// CommitTimeout is long because nothing waits on it: the leader sends each
// new record at once (the commit index of the one before rides along), a
// new leader applies every entry in its log once its first entry of the
// term commits, whatever it had applied as a follower, and a follower
// decides nothing from its FSM (`cosigner status` shows it). What a
// short one costs is an AppendEntries to every follower every 20-40 ms of
// an idle cluster; at 250 ms the heartbeats alone remain: hashicorp/raft
// sends about 22 a second per follower (every HeartbeatTimeout/10 to /5),
// which the transport holds to 10 (every 100 ms, a third of
// HeartbeatTimeout, so a follower still hears from the leader three times
// before it would start an election).
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   300 * time.Millisecond,
		ElectionTimeout:    300 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      250 * time.Millisecond,
		IOTimeout:          2 * time.Second,
		SnapshotRetain:     2,
		// Sign-state entries are small and the FSM holds only the last
		// record per chain, so snapshots are tiny; snapshot often to keep
		// the log, and restart replay, short.
		SnapshotThreshold: 1024,
		SnapshotInterval:  30 * time.Second,
	}
}

// Limits checked by Validate. The lower bounds of the timeouts are hashicorp
// raft's own; the upper bounds catch a unit mistake (seconds for
// milliseconds) that would make failover take minutes.
const (
	minTimeout       = 5 * time.Millisecond
	maxTimeout       = time.Minute
	minCommitTimeout = time.Millisecond
	maxPeerID        = certid.MaxID
)

// Validate checks every field and the rules between them. Errors name the
// field, the value and what is allowed.
func (c Config) Validate() error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("raft config: "+format, args...))
	}

	if c.ID < 1 || c.ID > maxPeerID {
		fail("ID %d out of range 1..%d", c.ID, maxPeerID)
	}
	if c.BindAddress != "" {
		if err := checkHostPort(c.BindAddress, true); err != nil {
			fail("BindAddress %q: %v", c.BindAddress, err)
		}
	}
	if c.DataDir == "" {
		fail("DataDir is empty; set it to a directory for the Raft log and snapshots")
	}

	if len(c.Peers) == 0 {
		fail("Peers is empty; list every cluster member, this node included")
	}
	ids := make(map[int]bool)
	addrs := make(map[string]int)
	for i, p := range c.Peers {
		if p.ID < 1 || p.ID > maxPeerID {
			fail("Peers[%d].ID %d out of range 1..%d", i, p.ID, maxPeerID)
		} else if ids[p.ID] {
			fail("Peers[%d].ID %d appears twice", i, p.ID)
		}
		ids[p.ID] = true
		if err := checkHostPort(p.Address, false); err != nil {
			fail("Peers[%d].Address %q: %v", i, p.Address, err)
		} else if other, ok := addrs[p.Address]; ok {
			fail("Peers[%d].Address %q is also the address of peer %d", i, p.Address, other)
		}
		addrs[p.Address] = p.ID
	}
	if c.ID >= 1 && len(c.Peers) > 0 && !ids[c.ID] {
		fail("ID %d is not in Peers; add this node's own entry", c.ID)
	}

	checkTimeout := func(name string, d, min time.Duration) {
		if d < min || d > maxTimeout {
			fail("%s %v out of range %v..%v", name, d, min, maxTimeout)
		}
	}
	checkTimeout("HeartbeatTimeout", c.HeartbeatTimeout, minTimeout)
	checkTimeout("ElectionTimeout", c.ElectionTimeout, minTimeout)
	checkTimeout("LeaderLeaseTimeout", c.LeaderLeaseTimeout, minTimeout)
	checkTimeout("CommitTimeout", c.CommitTimeout, minCommitTimeout)
	checkTimeout("IOTimeout", c.IOTimeout, minTimeout)
	checkTimeout("SnapshotInterval", c.SnapshotInterval, minTimeout)
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		fail("LeaderLeaseTimeout %v is above HeartbeatTimeout %v; it must not be", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		fail("ElectionTimeout %v is below HeartbeatTimeout %v; it must not be", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	if c.SnapshotRetain < 1 {
		fail("SnapshotRetain %d is below 1", c.SnapshotRetain)
	}
	if c.SnapshotThreshold < 1 {
		fail("SnapshotThreshold %d is below 1", c.SnapshotThreshold)
	}
	return errors.Join(errs...)
}

// checkHostPort checks a host:port; port 0 (any free port) only if
// allowZero.
func checkHostPort(s string, allowZero bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" && !allowZero {
		return errors.New("no host; others must be able to dial it")
	}
	lo := 1
	if allowZero {
		lo = 0
	}
	if n, err := strconv.Atoi(port); err != nil || n < lo || n > 65535 {
		return fmt.Errorf("port %q is not a number %d..65535", port, lo)
	}
	return nil
}

// peerAddress returns the address of peer id.
func (c Config) peerAddress(id int) (string, bool) {
	for _, p := range c.Peers {
		if p.ID == id {
			return p.Address, true
		}
	}
	return "", false
}

// peerByAddress returns the id of the peer at address.
func (c Config) peerByAddress(address string) (int, bool) {
	for _, p := range c.Peers {
		if p.Address == address {
			return p.ID, true
		}
	}
	return 0, false
}
