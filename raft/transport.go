package raft

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
)

// memberTransport is the hraft.Transport a Node gives Raft. It makes sure
// that every RPC Raft receives names as its sender the member whose
// certificate the connection presented: a member cannot vote, lead, send
// TimeoutNow or install a snapshot in another member's name.
//
// hashicorp's NetworkTransport decodes RPCs but does not say which
// connection an RPC came from. So incoming connections are sorted by the
// cosigner id in the client's certificate, and each member's connections are
// served by a NetworkTransport of their own: whatever comes out of that
// transport's consumer channel, or its heartbeat handler, came from that
// member. An RPC whose header ID names another member is answered with an
// error, logged at warn, and never delivered. Addresses in an RPC (the
// header's Addr, the deprecated Leader and Candidate fields) are the
// sender's own spelling of where it listens, and members legitimately
// reach each other at different addresses (NAT, WireGuard, per-link
// proxies); so they are not checked but replaced by the address this node
// knows the member by, before Raft sees them. Raft keys some bookkeeping
// by address (the candidate it voted for in a term, the leader's address):
// after the rewrite, only the certificate decides who that is. Connections from ids outside the membership, this node's
// own included, are closed at once.
//
// Outgoing RPCs go through the embedded NetworkTransport, whose stream
// dials through the TLS stream layer and never accepts.
type memberTransport struct {
	*hraft.NetworkTransport // outgoing RPCs

	stream   *StreamLayer
	members  map[int]*member // the other members, by cosigner id
	consumer chan hraft.RPC  // checked RPCs, for Raft
	logger   *slog.Logger

	// heartbeatEvery is the least time between two heartbeats to one
	// member (see paceHeartbeat); 0: as hashicorp/raft sends them.
	heartbeatEvery time.Duration
	hbMu           sync.Mutex
	hbLast         map[hraft.ServerID]time.Time // the last heartbeat sent to each member

	closed    chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup // route and the forward goroutines
}

var (
	_ hraft.Transport   = (*memberTransport)(nil)
	_ hraft.WithClose   = (*memberTransport)(nil)
	_ hraft.WithPreVote = (*memberTransport)(nil)
)

// member is one other member as the transport knows it: the server id and
// address its RPCs must name, and the NetworkTransport serving its
// connections.
type member struct {
	peer  int // cosigner id
	id    hraft.ServerID
	addr  string
	in    *memberStream
	trans *hraft.NetworkTransport
}

// newMemberTransport serves Raft over stream for member self of peers. nc
// configures every NetworkTransport; its Stream is ignored. The transport
// owns stream and closes it on Close.
func newMemberTransport(stream *StreamLayer, self int, peers []Peer, nc hraft.NetworkTransportConfig, logger *slog.Logger) *memberTransport {
	t := &memberTransport{
		stream:   stream,
		members:  make(map[int]*member),
		consumer: make(chan hraft.RPC),
		logger:   logger,
		hbLast:   make(map[hraft.ServerID]time.Time),
		closed:   make(chan struct{}),
	}
	nc.Stream = &memberStream{layer: stream, closed: make(chan struct{})}
	t.NetworkTransport = hraft.NewNetworkTransportWithConfig(&nc)
	for _, p := range peers {
		if p.ID == self {
			continue
		}
		m := &member{
			peer: p.ID,
			id:   serverID(p.ID),
			addr: p.Address,
			in:   &memberStream{layer: stream, conns: make(chan net.Conn), closed: make(chan struct{})},
		}
		nc.Stream = m.in
		m.trans = hraft.NewNetworkTransportWithConfig(&nc)
		t.members[p.ID] = m
	}
	t.wg.Add(1 + len(t.members))
	go t.route()
	for _, m := range t.members {
		go t.forward(m)
	}
	return t
}

// route hands each accepted connection to its member's NetworkTransport.
func (t *memberTransport) route() {
	defer t.wg.Done()
	for {
		c, err := t.stream.acceptPeer()
		if err != nil {
			return // the stream layer is closed
		}
		m, ok := t.members[c.id]
		if !ok {
			t.logger.Warn("raft connection refused: certificate names no other member", "peer", c.id, "remote", c.RemoteAddr().String())
			c.Close()
			continue
		}
		select {
		case m.in.conns <- c:
		case <-t.closed:
			c.Close()
			return
		}
	}
}

// forward delivers member m's RPCs to Raft once checked.
func (t *memberTransport) forward(m *member) {
	defer t.wg.Done()
	for {
		select {
		case rpc := <-m.trans.Consumer():
			if !t.admit(m, rpc) {
				continue
			}
			select {
			case t.consumer <- rpc:
			case <-t.closed:
				rpc.Respond(nil, hraft.ErrTransportShutdown)
				return
			}
		case <-t.closed:
			return
		}
	}
}

// admit reports whether rpc, received from member m, names m as its sender.
// If not, it answers rpc with an error.
func (t *memberTransport) admit(m *member, rpc hraft.RPC) bool {
	s, err := senderOf(rpc.Command)
	if err == nil {
		err = s.is(m.id)
	}
	if err == nil {
		setSenderAddr(rpc.Command, m.addr)
		return true
	}
	t.logger.Warn("raft rpc refused: sender is not the certificate's member",
		"rpc", s.rpc, "peer", m.peer, "claimed_id", s.id, "claimed_addr", s.addr, "err", err)
	// An InstallSnapshot's data is left unread: the connection falls out of
	// step and the NetworkTransport closes it at the next decode, which is
	// fine for a member that lies about who it is.
	rpc.Respond(nil, fmt.Errorf("raft rpc refused: %w", err))
	return false
}

// Consumer returns the channel of incoming RPCs, each checked to name the
// member that sent it.
func (t *memberTransport) Consumer() <-chan hraft.RPC { return t.consumer }

// SetHeartbeatHandler sets Raft's fast path for heartbeats on every
// member's NetworkTransport, behind the same check as Consumer.
func (t *memberTransport) SetHeartbeatHandler(cb func(hraft.RPC)) {
	for _, m := range t.members {
		if cb == nil {
			m.trans.SetHeartbeatHandler(nil) // heartbeats go to Consumer
			continue
		}
		m.trans.SetHeartbeatHandler(func(rpc hraft.RPC) {
			if t.admit(m, rpc) {
				cb(rpc)
			}
		})
	}
}

// Close closes the stream layer and every NetworkTransport and waits for the
// transport's goroutines. It is idempotent and returns the stream layer's
// Close error.
func (t *memberTransport) Close() error {
	t.closeOnce.Do(func() {
		close(t.closed)
		t.closeErr = t.stream.Close()
		t.NetworkTransport.Close()
		for _, m := range t.members {
			m.trans.Close()
		}
		t.wg.Wait()
	})
	return t.closeErr
}

// memberStream is the hraft.StreamLayer of one of a memberTransport's
// NetworkTransports: it dials through the TLS stream layer, and accepts the
// connections route hands it, none for the outgoing transport.
type memberStream struct {
	layer     *StreamLayer
	conns     chan net.Conn // nil for the outgoing transport
	closed    chan struct{}
	closeOnce sync.Once
}

var _ hraft.StreamLayer = (*memberStream)(nil)

func (s *memberStream) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

// Close stops Accept; the TLS stream layer is the memberTransport's to close.
func (s *memberStream) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

func (s *memberStream) Addr() net.Addr { return s.layer.Addr() }

func (s *memberStream) Dial(address hraft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.layer.Dial(address, timeout)
}

// sender is who an incoming RPC says sent it: Raft takes the sender's
// server id from the header's ID.
type sender struct {
	rpc  string // the RPC's name, for logs
	id   string // RPCHeader.ID
	addr string // RPCHeader.Addr, for logs
}

// senderOf reads the sender from an RPC's command; it fails for a command
// that is not one of Raft's requests.
func senderOf(cmd any) (sender, error) {
	var s sender
	var h hraft.RPCHeader
	switch c := cmd.(type) {
	case *hraft.AppendEntriesRequest:
		s.rpc, h = "AppendEntries", c.RPCHeader
	case *hraft.RequestVoteRequest:
		s.rpc, h = "RequestVote", c.RPCHeader
	case *hraft.RequestPreVoteRequest:
		s.rpc, h = "RequestPreVote", c.RPCHeader
	case *hraft.InstallSnapshotRequest:
		s.rpc, h = "InstallSnapshot", c.RPCHeader
	case *hraft.TimeoutNowRequest:
		s.rpc, h = "TimeoutNow", c.RPCHeader
	default:
		return sender{rpc: fmt.Sprintf("%T", cmd)}, fmt.Errorf("unknown raft command %T", cmd)
	}
	s.id, s.addr = string(h.ID), string(h.Addr)
	return s, nil
}

// setSenderAddr makes the header of cmd name its sender at addr, and
// clears the deprecated Leader and Candidate fields (Raft reads them only
// when the header carries no address).
func setSenderAddr(cmd any, addr string) {
	a := []byte(addr)
	switch c := cmd.(type) {
	case *hraft.AppendEntriesRequest:
		c.RPCHeader.Addr = a
		//lint:ignore SA1019 cleared so that it cannot name another member
		c.Leader = nil
	case *hraft.RequestVoteRequest:
		c.RPCHeader.Addr = a
		//lint:ignore SA1019 cleared so that it cannot name another member
		c.Candidate = nil
	case *hraft.InstallSnapshotRequest:
		c.RPCHeader.Addr = a
		c.Leader = nil
	case *hraft.RequestPreVoteRequest:
		c.RPCHeader.Addr = a
	case *hraft.TimeoutNowRequest:
		c.RPCHeader.Addr = a
	}
}

// is checks that the sender is server id: the header's ID must be set and
// name it. The addresses the RPC carries are the sender's own and are not
// identity (see memberTransport).
func (s sender) is(id hraft.ServerID) error {
	if s.id != string(id) {
		return fmt.Errorf("%s names server id %q, the certificate is member %s's", s.rpc, s.id, id)
	}
	return nil
}

// AppendEntries sends an AppendEntries RPC. A heartbeat (an empty
// AppendEntries that names no log position, as hashicorp/raft's heartbeat
// loop sends) to a member that had one less than heartbeatEvery ago waits
// first, for at most the rest of that interval (see paceHeartbeat).
func (t *memberTransport) AppendEntries(id hraft.ServerID, target hraft.ServerAddress, args *hraft.AppendEntriesRequest, resp *hraft.AppendEntriesResponse) error {
	if t.heartbeatEvery > 0 && isHeartbeat(args) {
		if err := t.paceHeartbeat(id); err != nil {
			return err
		}
	}
	return t.NetworkTransport.AppendEntries(id, target, args, resp)
}

// isHeartbeat reports whether args is one of hashicorp/raft's heartbeats:
// no entries, no previous entry and no commit index. Replication always
// names the previous entry or carries entries.
func isHeartbeat(args *hraft.AppendEntriesRequest) bool {
	return len(args.Entries) == 0 && args.PrevLogEntry == 0 && args.PrevLogTerm == 0 && args.LeaderCommitIndex == 0
}

// paceHeartbeat holds heartbeats to member id to one per heartbeatEvery.
// hashicorp/raft sends each follower one every HeartbeatTimeout/10 to /5
// (30-60 ms with our defaults), and cannot be told otherwise; on an idle
// leader they are most of its CPU. A follower needs one well within its
// HeartbeatTimeout, and the leader's lease needs contact with a quorum
// within LeaderLeaseTimeout; heartbeatEvery is set below both (Node uses
// the smaller of a third of the one and half of the other), so neither
// runs out. Only the heartbeat loop of id waits here; replication and
// votes go as they come.
func (t *memberTransport) paceHeartbeat(id hraft.ServerID) error {
	t.hbMu.Lock()
	wait := time.Until(t.hbLast[id].Add(t.heartbeatEvery))
	t.hbMu.Unlock()
	if wait > 0 {
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-t.closed:
			timer.Stop()
			return hraft.ErrTransportShutdown
		}
	}
	t.hbMu.Lock()
	t.hbLast[id] = time.Now()
	t.hbMu.Unlock()
	return nil
}
