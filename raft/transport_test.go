package raft

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"
)

// TestNodeRefusesImpersonatingMember: member 2, with its valid cluster
// certificate, sends member 1 a vote request whose header names member 3,
// with a huge term that would depose the leader. Member 1 refuses it: the
// client gets an error and member 1's term does not move. A request that
// names member 2 itself is still answered by Raft.
func TestNodeRefusesImpersonatingMember(t *testing.T) {
	c := newTestCluster(t, 3)
	c.waitLeader()
	target := c.nodes[0]
	term := target.View().Term

	trans := newTestClient(t, c.ids[1], 1)
	peers := c.cfgs[0].Peers
	addr1 := hraft.ServerAddress(peers[0].Address)
	forged := &hraft.RequestVoteRequest{
		RPCHeader:          header(3, peers[2].Address),
		Term:               term + 1000,
		LastLogIndex:       1 << 40,
		LastLogTerm:        term + 1000,
		LeadershipTransfer: true,
	}
	var resp hraft.RequestVoteResponse
	if err := trans.RequestVote(serverID(1), addr1, forged, &resp); err == nil {
		t.Fatalf("member 2's RequestVote naming member 3 got a response: %+v", resp)
	}
	if got := target.View().Term; got >= term+1000 {
		t.Fatalf("the forged vote request's term reached member 1: %d", got)
	}

	// A stale vote request in member 2's own name reaches Raft, which
	// answers it (no vote, its current term) rather than the transport.
	honest := &hraft.RequestVoteRequest{RPCHeader: header(2, peers[1].Address)}
	resp = hraft.RequestVoteResponse{}
	if err := trans.RequestVote(serverID(1), addr1, honest, &resp); err != nil {
		t.Fatalf("member 2's RequestVote in its own name: %v", err)
	}
	if resp.Granted || resp.Term < term {
		t.Errorf("answer to a stale vote request: %+v, want no vote and a term of at least %d", resp, term)
	}
}

// TestTransportChecksSender drives member 1's transport directly, with a
// stand-in for Raft that records every RPC it receives from the consumer
// channel and the heartbeat handler. Member 2 sends each kind of RPC over
// real mutual TLS, once naming someone else and once naming itself: only the
// second reaches the stand-in, and the first gets an error.
func TestTransportChecksSender(t *testing.T) {
	ca := newTestCA(t)
	ln := mustListen(t)
	peers := []Peer{
		{ID: 1, Address: ln.Addr().String()},
		{ID: 2, Address: "127.0.0.1:7102"}, // the client's listener is never dialed
		{ID: 3, Address: "127.0.0.1:7103"},
	}
	server := ca.identity(t, 1)
	stream, err := NewStreamLayer(StreamConfig{
		Listener:         ln,
		ServerTLS:        server.serverTLS(),
		ClientTLS:        func(string) (*tls.Config, error) { return nil, fmt.Errorf("member 1 dials no one here") },
		HandshakeTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := newMemberTransport(stream, 1, peers, hraft.NetworkTransportConfig{MaxPool: 1, Timeout: 5 * time.Second}, testLogger())
	defer func() {
		if err := tr.Close(); err != nil {
			t.Error(err)
		}
	}()

	// The stand-in for Raft records what it receives before it answers, so
	// once a call has returned, the record shows whether it got through.
	got := make(chan any, 16)
	done := make(chan struct{})
	defer close(done)
	answer := func(rpc hraft.RPC) {
		got <- rpc.Command
		var resp any
		switch rpc.Command.(type) {
		case *hraft.AppendEntriesRequest:
			resp = &hraft.AppendEntriesResponse{}
		case *hraft.RequestVoteRequest:
			resp = &hraft.RequestVoteResponse{}
		case *hraft.RequestPreVoteRequest:
			resp = &hraft.RequestPreVoteResponse{}
		case *hraft.InstallSnapshotRequest:
			resp = &hraft.InstallSnapshotResponse{}
		case *hraft.TimeoutNowRequest:
			resp = &hraft.TimeoutNowResponse{}
		}
		rpc.Respond(resp, nil)
	}
	tr.SetHeartbeatHandler(answer)
	go func() {
		for {
			select {
			case rpc := <-tr.Consumer():
				answer(rpc)
			case <-done:
				return
			}
		}
	}()

	client := newTestClient(t, ca.identity(t, 2), 1)
	addr2, addr3 := peers[1].Address, peers[2].Address
	id1, addr1 := serverID(1), hraft.ServerAddress(peers[0].Address)
	heartbeat := func(h hraft.RPCHeader) error {
		// No entries, no previous entry and no commit index: the
		// NetworkTransport's heartbeat fast path, which bypasses Consumer.
		req := &hraft.AppendEntriesRequest{RPCHeader: h, Term: 5}
		return client.AppendEntries(id1, addr1, req, new(hraft.AppendEntriesResponse))
	}
	appendEntries := func(h hraft.RPCHeader) error {
		req := &hraft.AppendEntriesRequest{
			RPCHeader: h, Term: 5,
			PrevLogEntry: 1, PrevLogTerm: 1, LeaderCommitIndex: 1,
			Entries: []*hraft.Log{{Index: 2, Term: 5, Type: hraft.LogCommand, Data: []byte("x")}},
		}
		return client.AppendEntries(id1, addr1, req, new(hraft.AppendEntriesResponse))
	}
	requestVote := func(h hraft.RPCHeader) error {
		req := &hraft.RequestVoteRequest{RPCHeader: h, Term: 5}
		return client.RequestVote(id1, addr1, req, new(hraft.RequestVoteResponse))
	}
	preVote := func(h hraft.RPCHeader) error {
		req := &hraft.RequestPreVoteRequest{RPCHeader: h, Term: 5}
		return client.RequestPreVote(id1, addr1, req, new(hraft.RequestPreVoteResponse))
	}
	timeoutNow := func(h hraft.RPCHeader) error {
		return client.TimeoutNow(id1, addr1, &hraft.TimeoutNowRequest{RPCHeader: h}, new(hraft.TimeoutNowResponse))
	}
	installSnapshot := func(h hraft.RPCHeader) error {
		data := []byte("snapshot")
		req := &hraft.InstallSnapshotRequest{RPCHeader: h, SnapshotVersion: 1, Term: 5, Size: int64(len(data))}
		return client.InstallSnapshot(id1, addr1, req, new(hraft.InstallSnapshotResponse), bytes.NewReader(data))
	}

	tests := []struct {
		name string
		call func() error
		ok   bool // the RPC names member 2 and must get through
	}{
		{"TimeoutNow naming member 3", func() error { return timeoutNow(header(3, addr3)) }, false},
		{"TimeoutNow with member 3's address", func() error { return timeoutNow(header(2, addr3)) }, true},
		{"TimeoutNow without an address", func() error { return timeoutNow(header(2, "")) }, true},
		{"TimeoutNow from member 2", func() error { return timeoutNow(header(2, addr2)) }, true},
		{"RequestVote naming member 3", func() error { return requestVote(header(3, addr3)) }, false},
		{"RequestVote with member 3's address", func() error { return requestVote(header(2, addr3)) }, true},
		{"RequestVote naming member 1", func() error { return requestVote(header(1, string(addr1))) }, false},
		{"RequestVote from member 2", func() error { return requestVote(header(2, addr2)) }, true},
		{"RequestPreVote naming member 3", func() error { return preVote(header(3, addr3)) }, false},
		{"RequestPreVote from member 2", func() error { return preVote(header(2, addr2)) }, true},
		{"heartbeat naming member 3", func() error { return heartbeat(header(3, addr3)) }, false},
		{"heartbeat from member 2", func() error { return heartbeat(header(2, addr2)) }, true},
		{"AppendEntries naming member 3", func() error { return appendEntries(header(3, addr3)) }, false},
		{"AppendEntries from member 2", func() error { return appendEntries(header(2, addr2)) }, true},
		{"InstallSnapshot naming member 3", func() error { return installSnapshot(header(3, addr3)) }, false},
		{"InstallSnapshot from member 2", func() error { return installSnapshot(header(2, addr2)) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !tt.ok {
				if err == nil {
					t.Error("the RPC was answered")
				}
				select {
				case cmd := <-got:
					t.Errorf("the RPC reached Raft: %+v", cmd)
				default:
				}
				return
			}
			if err != nil {
				t.Fatalf("the RPC failed: %v", err)
			}
			select {
			case cmd := <-got:
				if h := cmd.(hraft.WithRPCHeader).GetRPCHeader(); string(h.ID) != "2" || string(h.Addr) != addr2 {
					t.Errorf("Raft received an RPC from server %q at %q, want 2 at %q (the address this member knows it by)", h.ID, h.Addr, addr2)
				}
			case <-time.After(waitTimeout):
				t.Fatal("the RPC did not reach Raft")
			}
		})
	}

	// Certificates of the cluster that name no other member: their
	// connections are closed before any RPC is read.
	for _, id := range []int{1, 4} {
		t.Run(fmt.Sprintf("certificate of cosigner %d", id), func(t *testing.T) {
			c := newTestClient(t, ca.identity(t, id), 1)
			err := c.TimeoutNow(id1, addr1, &hraft.TimeoutNowRequest{RPCHeader: header(id, "127.0.0.1:7104")}, new(hraft.TimeoutNowResponse))
			if err == nil {
				t.Error("the RPC was answered")
			}
			select {
			case cmd := <-got:
				t.Errorf("the RPC reached Raft: %+v", cmd)
			default:
			}
		})
	}
}

// header is the RPC header a current Raft server with id at addr sends.
func header(id int, addr string) hraft.RPCHeader {
	return hraft.RPCHeader{ProtocolVersion: hraft.ProtocolVersionMax, ID: []byte(serverID(id)), Addr: []byte(addr)}
}

// newTestClient returns a NetworkTransport that sends RPCs as the holder of
// identity id and expects to reach member server.
func newTestClient(t *testing.T, id identity, server int) *hraft.NetworkTransport {
	t.Helper()
	stream, err := NewStreamLayer(StreamConfig{
		Listener:         mustListen(t),
		ServerTLS:        id.serverTLS(),
		ClientTLS:        func(string) (*tls.Config, error) { return id.clientTLS(server), nil },
		HandshakeTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	trans := hraft.NewNetworkTransportWithConfig(&hraft.NetworkTransportConfig{Stream: stream, MaxPool: 1, Timeout: 5 * time.Second})
	t.Cleanup(func() { trans.Close() })
	return trans
}

// TestSenderIs pins which senders a member's RPC may name.
func TestSenderIs(t *testing.T) {
	const addr = "10.0.0.2:7100"
	tests := []struct {
		name string
		cmd  any
		ok   bool
	}{
		{"AppendEntries", &hraft.AppendEntriesRequest{RPCHeader: header(2, addr)}, true},
		{"RequestPreVote", &hraft.RequestPreVoteRequest{RPCHeader: header(2, addr)}, true},
		{"InstallSnapshot", &hraft.InstallSnapshotRequest{RPCHeader: header(2, addr)}, true},
		{"RequestVote", &hraft.RequestVoteRequest{RPCHeader: header(2, addr)}, true},
		{"RequestVote naming another id", &hraft.RequestVoteRequest{RPCHeader: header(3, addr)}, false},
		{"AppendEntries naming another id", &hraft.AppendEntriesRequest{RPCHeader: header(3, addr)}, false},
		{"TimeoutNow", &hraft.TimeoutNowRequest{RPCHeader: header(2, addr)}, true},
		{"TimeoutNow naming another id", &hraft.TimeoutNowRequest{RPCHeader: header(3, addr)}, false},
		{"TimeoutNow with another address", &hraft.TimeoutNowRequest{RPCHeader: header(2, "10.0.0.3:7100")}, true},
		{"TimeoutNow without an id", &hraft.TimeoutNowRequest{RPCHeader: hraft.RPCHeader{Addr: []byte(addr)}}, false},
		{"TimeoutNow with a non-canonical id", &hraft.TimeoutNowRequest{RPCHeader: hraft.RPCHeader{ID: []byte("02"), Addr: []byte(addr)}}, false},
		{"a response", &hraft.TimeoutNowResponse{RPCHeader: header(2, addr)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := senderOf(tt.cmd)
			if err == nil {
				err = s.is(serverID(2))
			}
			if tt.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tt.ok && err == nil {
				t.Error("accepted")
			}
		})
	}
}

// TestHeartbeatPacing: only hashicorp/raft's heartbeats are paced, each
// member's apart from the others', and a heartbeat waiting its turn gives
// up when the transport closes.
func TestHeartbeatPacing(t *testing.T) {
	if !isHeartbeat(&hraft.AppendEntriesRequest{Term: 3, RPCHeader: hraft.RPCHeader{ID: []byte("1")}}) {
		t.Error("a heartbeat is not taken for one")
	}
	for _, r := range []*hraft.AppendEntriesRequest{
		{Term: 3, PrevLogEntry: 5, PrevLogTerm: 2, LeaderCommitIndex: 5}, // replication with nothing new
		{Term: 3, LeaderCommitIndex: 4},                                  // the commit index
		{Term: 3, Entries: []*hraft.Log{{Index: 1, Term: 3}}},            // the first entries
	} {
		if isHeartbeat(r) {
			t.Errorf("%+v is taken for a heartbeat", r)
		}
	}
	tr := &memberTransport{heartbeatEvery: time.Hour, hbLast: map[hraft.ServerID]time.Time{}, closed: make(chan struct{})}
	if err := tr.paceHeartbeat("2"); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() { waiting <- tr.paceHeartbeat("2") }()
	// Member 3's first heartbeat does not wait for member 2's turn (it
	// would hang the test for an hour).
	if err := tr.paceHeartbeat("3"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waiting:
		t.Fatalf("member 2's second heartbeat went within the hour: %v", err)
	default:
	}
	close(tr.closed)
	if err := <-waiting; !errors.Is(err, hraft.ErrTransportShutdown) {
		t.Fatalf("a waiting heartbeat on a closed transport: %v", err)
	}
}
