package raft

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"
)

// TestStreamLayerRejectsStrangers proves that only a client with a cluster
// certificate that names a member gets a connection out of Accept: the others
// fail their handshake or are dropped after it, and the first connection
// Accept returns is the cluster member's, which dials last, with its id.
func TestStreamLayerRejectsStrangers(t *testing.T) {
	ca := newTestCA(t)
	server := ca.identity(t, 1)
	member := ca.identity(t, 2)
	stranger := newTestCA(t).identity(t, 2)                         // same id, another CA
	anonymous := identity{ca: ca, cert: ca.issueNamed(t, "node-2")} // the CA's, without an id

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStreamLayer(StreamConfig{
		Listener:         ln,
		ServerTLS:        server.serverTLS(),
		ClientTLS:        func(string) (*tls.Config, error) { return server.clientTLS(2), nil },
		HandshakeTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := s.Addr().String()

	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := s.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()

	// trustAny accepts any server, so the server's verdict on the client is
	// what is tested; it always sends its certificate, if any.
	trustAny := func(id *identity) *tls.Config {
		cfg := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
		if id != nil {
			cert := id.cert
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		}
		return cfg
	}
	strangers := []struct {
		name string
		cfg  *tls.Config
	}{
		{"no client certificate", trustAny(nil)},
		{"certificate from another CA", trustAny(&stranger)},
		{"cluster certificate without a cosigner id", trustAny(&anonymous)},
	}
	for _, tt := range strangers {
		t.Run(tt.name, func(t *testing.T) {
			if err := tryConn(addr, tt.cfg); err == nil {
				t.Fatal("a client without a cluster certificate completed a round trip")
			}
		})
	}
	t.Run("plain TCP", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(waitTimeout))
		// Not a TLS ClientHello: the server closes the connection.
		if _, err := c.Write([]byte("\x00\x00\x00\x00 raft rpc")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 64)); err == nil {
			t.Error("plain TCP client got data")
		}
	})

	// A member dials through the stream layer API, as raft does.
	dialer, err := NewStreamLayer(StreamConfig{
		Listener:         mustListen(t),
		ServerTLS:        member.serverTLS(),
		ClientTLS:        func(string) (*tls.Config, error) { return member.clientTLS(1), nil },
		HandshakeTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer dialer.Close()
	c, err := dialer.Dial(hraft.ServerAddress(addr), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	select {
	case got := <-accepted:
		defer got.Close()
		pc := got.(*peerConn)
		if pc.id != 2 {
			t.Errorf("accepted connection has peer id %d, want 2", pc.id)
		}
		cs := pc.ConnectionState()
		if cs.Version != tls.VersionTLS13 {
			t.Errorf("TLS version %x, want 1.3", cs.Version)
		}
		if len(cs.PeerCertificates) == 0 || cs.PeerCertificates[0].Subject.CommonName != "cosigner-2" {
			t.Errorf("first accepted connection is not the member's")
		}
	case <-time.After(waitTimeout):
		t.Fatal("the member's connection was not accepted")
	}

	// Dialing the wrong member fails on the client side.
	wrong, err := NewStreamLayer(StreamConfig{
		Listener:         mustListen(t),
		ServerTLS:        member.serverTLS(),
		ClientTLS:        func(string) (*tls.Config, error) { return member.clientTLS(3), nil },
		HandshakeTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	if _, err := wrong.Dial(hraft.ServerAddress(addr), 5*time.Second); err == nil || !strings.Contains(err.Error(), `want "cosigner-3"`) {
		t.Errorf("dial of the wrong member: err = %v", err)
	}

	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if _, err := s.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: err = %v, want net.ErrClosed", err)
	}
}

// TestCertPeerID pins the id rule shared with cosigner's certID: both forms
// present, equal, canonical and in range.
func TestCertPeerID(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		name string
		cn   string
		uris []string
		want int // 0: an error
	}{
		{"good", "cosigner-7", []string{"cosigner://7"}, 7},
		{"largest", "cosigner-65535", []string{"cosigner://65535"}, 65535},
		{"no URI", "cosigner-7", nil, 0},
		{"two URIs", "cosigner-7", []string{"cosigner://7", "cosigner://8"}, 0},
		{"CN mismatch", "cosigner-8", []string{"cosigner://7"}, 0},
		{"CN without prefix", "7", []string{"cosigner://7"}, 0},
		{"leading zero", "cosigner-07", []string{"cosigner://07"}, 0},
		{"plus sign", "cosigner-+7", []string{"cosigner://+7"}, 0},
		{"zero", "cosigner-0", []string{"cosigner://0"}, 0},
		{"too big", "cosigner-65536", []string{"cosigner://65536"}, 0},
		{"wrong scheme", "cosigner-7", []string{"spiffe://7"}, 0},
		{"opaque", "cosigner-7", []string{"cosigner:7"}, 0},
		{"port", "cosigner-7", []string{"cosigner://7:1"}, 0},
		{"path", "cosigner-7", []string{"cosigner://7/x"}, 0},
		{"user", "cosigner-7", []string{"cosigner://u@7"}, 0},
		{"query", "cosigner-7", []string{"cosigner://7?x"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var uris []*url.URL
			for _, s := range tt.uris {
				u, err := url.Parse(s)
				if err != nil {
					t.Fatal(err)
				}
				uris = append(uris, u)
			}
			cert := ca.issueNamed(t, tt.cn, uris...)
			got, err := certPeerID(tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert.Leaf}})
			switch {
			case tt.want == 0 && err == nil:
				t.Errorf("certPeerID = %d, want an error", got)
			case tt.want != 0 && (err != nil || got != tt.want):
				t.Errorf("certPeerID = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
	if _, err := certPeerID(tls.ConnectionState{}); err == nil {
		t.Error("certPeerID of a state without certificates succeeded")
	}
}

// tryConn completes a TLS handshake and a round trip with the server; in TLS
// 1.3 a rejected client certificate shows up at the first read.
func tryConn(addr string, cfg *tls.Config) error {
	d := &tls.Dialer{Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := c.Write([]byte{0}); err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 1))
	return err
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestNodeRejectsRogueRaftPeer: a Raft peer without a cluster certificate
// cannot deliver RPCs to a cluster node, not even a vote request with a huge
// term that would depose the leader.
func TestNodeRejectsRogueRaftPeer(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.waitLeader()
	term := c.nodes[leader].View().Term

	rogueID := newTestCA(t).identity(t, 9)
	stream, err := NewStreamLayer(StreamConfig{
		Listener:  mustListen(t),
		ServerTLS: rogueID.serverTLS(),
		// The rogue trusts anyone; the cluster must not trust it.
		ClientTLS: func(string) (*tls.Config, error) {
			cert := rogueID.cert
			return &tls.Config{
				MinVersion:           tls.VersionTLS13,
				InsecureSkipVerify:   true,
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
			}, nil
		},
		HandshakeTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	trans := hraft.NewNetworkTransportWithConfig(&hraft.NetworkTransportConfig{Stream: stream, MaxPool: 1, Timeout: 5 * time.Second})
	defer trans.Close()

	target := c.cfgs[leader].Peers[leader]
	req := &hraft.RequestVoteRequest{
		// A current protocol version: Raft itself refuses version 0, which
		// would pass this test even without TLS.
		RPCHeader:          hraft.RPCHeader{ProtocolVersion: hraft.ProtocolVersionMax, ID: []byte("9"), Addr: []byte(stream.Addr().String())},
		Term:               term + 1000,
		LastLogIndex:       1 << 40,
		LastLogTerm:        term + 1000,
		LeadershipTransfer: true,
	}
	var resp hraft.RequestVoteResponse
	if err := trans.RequestVote(serverID(target.ID), hraft.ServerAddress(target.Address), req, &resp); err == nil {
		t.Fatalf("rogue RequestVote got a response: %+v", resp)
	}
	if got := c.nodes[leader].View().Term; got >= term+1000 {
		t.Fatalf("the rogue's term reached the leader: %d", got)
	}
	// The cluster still works under the same leader.
	propose(t, c.nodes[leader], rec("chain-a", 1, 0, 1, "still-leader"))
}
