package privval

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	cmtconn "github.com/cometbft/cometbft/p2p/conn"
	cmtprivval "github.com/cometbft/cometbft/privval"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	cmttypes "github.com/cometbft/cometbft/types"
	"google.golang.org/protobuf/encoding/protowire"
)

const e2eChainID = "e2e-chain"

// logBuffer collects a client's log lines for assertions.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced at every write
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{})} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.changed)
	b.changed = make(chan struct{})
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// wait blocks until the log contains s, for at most 10 s.
func (b *logBuffer) wait(t *testing.T, s string) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		found, changed := strings.Contains(b.buf.String(), s), b.changed
		b.mu.Unlock()
		if found {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("log lacks %q after 10 s", s)
		}
	}
}

// listen opens a listener for network "tcp" (on 127.0.0.1:0 unless addr
// is set) or "unix" (in a temporary directory unless addr is set) and
// returns it with the address our client dials.
func listen(t *testing.T, network, addr string) (net.Listener, string) {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
		if network == "unix" {
			addr = filepath.Join(t.TempDir(), "pv.sock")
		}
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if network == "unix" {
		return ln, "unix://" + addr
	}
	return ln, "tcp://" + ln.Addr().String()
}

// cometNode is CometBFT v0.38.17's node side of the protocol: a
// SignerListenerEndpoint with a SignerClient, as a validator node runs it.
type cometNode struct {
	endpoint *cmtprivval.SignerListenerEndpoint
	client   *cmtprivval.SignerClient
	ln       net.Listener
	addr     string // listener address, to reopen it
}

func startCometNode(t *testing.T, network, addr string) (*cometNode, string) {
	t.Helper()
	ln, dial := listen(t, network, addr)
	var l net.Listener
	if network == "tcp" {
		// The node's identity is ephemeral, as in CometBFT.
		l = cmtprivval.NewTCPListener(ln, cmted25519.GenPrivKey())
	} else {
		l = cmtprivval.NewUnixListener(ln)
	}
	endpoint := cmtprivval.NewSignerListenerEndpoint(cmtlog.NewNopLogger(), l)
	client, err := cmtprivval.NewSignerClient(endpoint, e2eChainID)
	if err != nil {
		t.Fatal(err)
	}
	n := &cometNode{endpoint: endpoint, client: client, ln: ln, addr: ln.Addr().String()}
	t.Cleanup(n.stop)
	return n, dial
}

// stop stops the node as a process exit would: the listener first, so
// that no redial lands in its backlog. (Stopping the endpoint first can
// leave a connection accepted and never served nor closed, which the
// client only drops after ReadTimeout.)
func (n *cometNode) stop() {
	n.ln.Close()
	if n.endpoint.IsRunning() {
		_ = n.endpoint.Stop()
	}
}

func testConfig() NodeClientConfig {
	cfg := DefaultNodeClientConfig()
	cfg.MinBackoff = 20 * time.Millisecond
	cfg.MaxBackoff = 200 * time.Millisecond
	return cfg
}

// testClient is a running NodeClient.
type testClient struct {
	logs  *logBuffer
	idPub ed25519.PublicKey
	stop  func(within time.Duration) error
}

// runClient starts a NodeClient and stops it (checking that Run returns
// nil promptly) when the test ends, if the test did not.
func runClient(t *testing.T, dial string, s Signer, cfg NodeClientConfig) *testClient {
	t.Helper()
	logs := newLogBuffer()
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	idPub, idKey, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewNodeClient(dial, e2eChainID, idKey, s, logger, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	var stopErr error
	stop := func(within time.Duration) error {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					stopErr = fmt.Errorf("Run = %v, want nil", err)
				}
			case <-time.After(within):
				stopErr = fmt.Errorf("Run did not return within %v of cancel", within)
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := stop(5 * time.Second); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("client log:\n%s", logs.String())
		}
	})
	return &testClient{logs: logs, idPub: idPub, stop: stop}
}

func exchange(t *testing.T, n *cometNode, s *wholeKeySigner, height int64) {
	t.Helper()
	pub := s.key.Public().(ed25519.PublicKey)
	if err := n.client.WaitForConnection(10 * time.Second); err != nil {
		t.Fatalf("node saw no signer: %v", err)
	}
	pk, err := n.client.GetPubKey()
	if err != nil {
		t.Fatalf("GetPubKey: %v", err)
	}
	if !bytes.Equal(pk.Bytes(), pub) {
		t.Fatalf("node got public key %x, want %x", pk.Bytes(), pub)
	}
	if err := n.client.Ping(); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	stamp := time.Now().UTC().Truncate(time.Millisecond)
	block := cmtproto.BlockID{Hash: sha("block"), PartSetHeader: cmtproto.PartSetHeader{Total: 1, Hash: sha("parts")}}
	for _, tc := range []struct {
		name    string
		typ     cmtproto.SignedMsgType
		block   cmtproto.BlockID
		ext     []byte
		wantExt bool
	}{
		{"prevote", cmtproto.PrevoteType, block, nil, false},
		{"precommit with extension", cmtproto.PrecommitType, block, []byte("vote extension"), true},
		{"nil precommit", cmtproto.PrecommitType, cmtproto.BlockID{}, nil, false},
	} {
		v := &cmtproto.Vote{Type: tc.typ, Height: height, Round: 0, BlockID: tc.block, Timestamp: stamp,
			ValidatorAddress: sha("val")[:20], ValidatorIndex: 0, Extension: tc.ext}
		if err := n.client.SignVote(e2eChainID, v); err != nil {
			t.Fatalf("%s: SignVote: %v", tc.name, err)
		}
		if !ed25519.Verify(pub, cmttypes.VoteSignBytes(e2eChainID, v), v.Signature) {
			t.Fatalf("%s: vote signature does not verify", tc.name)
		}
		if tc.wantExt != (v.ExtensionSignature != nil) {
			t.Fatalf("%s: extension signature %x", tc.name, v.ExtensionSignature)
		}
		if tc.wantExt && !ed25519.Verify(pub, cmttypes.VoteExtensionSignBytes(e2eChainID, v), v.ExtensionSignature) {
			t.Fatalf("%s: extension signature does not verify", tc.name)
		}
		if !v.Timestamp.Equal(stamp) || !bytes.Equal(v.Extension, tc.ext) {
			t.Fatalf("%s: vote came back changed: %+v", tc.name, v)
		}
	}
	p := &cmtproto.Proposal{Type: cmtproto.ProposalType, Height: height, Round: 0, PolRound: -1, BlockID: block, Timestamp: stamp}
	if err := n.client.SignProposal(e2eChainID, p); err != nil {
		t.Fatalf("SignProposal: %v", err)
	}
	if !ed25519.Verify(pub, cmttypes.ProposalSignBytes(e2eChainID, p), p.Signature) {
		t.Fatal("proposal signature does not verify")
	}

	// A refusal reaches the node as a RemoteSignerError, and the
	// connection keeps serving.
	s.setErr(errors.New("double sign refused"))
	v := &cmtproto.Vote{Type: cmtproto.PrevoteType, Height: height, BlockID: block, Timestamp: stamp}
	var rse *cmtprivval.RemoteSignerError
	if err := n.client.SignVote(e2eChainID, v); !errors.As(err, &rse) || rse.Code != int(CodeSignerError) || !strings.Contains(rse.Description, "double sign refused") {
		t.Fatalf("SignVote with a refusing signer = %v", err)
	}
	s.setErr(nil)
	if err := n.client.SignVote("other-chain", v); !errors.As(err, &rse) || rse.Code != int(CodeWrongChainID) {
		t.Fatalf("SignVote for another chain = %v", err)
	}
	if err := n.client.Ping(); err != nil {
		t.Fatalf("Ping after refusals: %v", err)
	}
}

// TestCometBFTNode runs our client against CometBFT v0.38.17's own node
// side, over TCP with SecretConnection and over a unix socket, through a
// node restart on the same address.
func TestCometBFTNode(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			s := newWholeKeySigner("e2e")
			n, dial := startCometNode(t, network, "")
			logs := runClient(t, dial, s, testConfig()).logs
			exchange(t, n, s, 10)

			// The node restarts on the same address: the client notices the
			// closed connection, redials and serves the new node.
			n.stop()
			n2, _ := startCometNode(t, network, n.addr)
			exchange(t, n2, s, 11)

			for _, line := range []string{"msg=\"signed prevote\"", "msg=\"signed precommit\"", "msg=\"signed proposal\"",
				"extension=true", "block=" + shortHex(sha("block")), "msg=\"refused prevote\"", "latency="} {
				if !strings.Contains(logs.String(), line) {
					t.Errorf("log lacks %s", line)
				}
			}
		})
	}
}

// fakeNode accepts connections as a node would, running the node's side
// of SecretConnection for tcp, and lets the test write raw frames.
type fakeNode struct {
	t       *testing.T
	ln      net.Listener
	network string
	key     cmted25519.PrivKey
}

// accept waits for the client's next connection.
func (f *fakeNode) accept() (net.Conn, *cmtconn.SecretConnection) {
	f.t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := f.ln.Accept()
		ch <- result{c, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-time.After(10 * time.Second):
		f.ln.Close()
		<-ch
		f.t.Fatal("client did not connect within 10 s")
	}
	if r.err != nil {
		f.t.Fatal(r.err)
	}
	f.t.Cleanup(func() { r.c.Close() })
	if err := r.c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		f.t.Fatal(err)
	}
	if f.network != "tcp" {
		return r.c, nil
	}
	sc, err := cmtconn.MakeSecretConnection(r.c, f.key)
	if err != nil {
		f.t.Fatal(err)
	}
	return sc, sc
}

// expectClosed waits for the client to close c.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(make([]byte, 1))
	if err == nil {
		t.Fatal("client wrote instead of closing")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("client did not close the connection")
	}
}

// roundTrip sends req and reads the reply.
func roundTrip(t *testing.T, c net.Conn, req Message) Message {
	t.Helper()
	if err := WriteMessage(c, req); err != nil {
		t.Fatal(err)
	}
	res, err := ReadMessage(bufio.NewReader(c))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestMisbehavingNode: garbage, an oversized frame and a non-request each
// make the client drop the connection with a clear log line; it redials at
// once and keeps serving.
func TestMisbehavingNode(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			ln, dial := listen(t, network, "")
			f := &fakeNode{t: t, ln: ln, network: network, key: cmted25519.GenPrivKey()}
			cfg := testConfig()
			// Waits this long would show as a failed 10 s accept: every
			// redial below must be immediate.
			cfg.MinBackoff, cfg.MaxBackoff = time.Minute, time.Minute
			tc := runClient(t, dial, newWholeKeySigner("fake"), cfg)
			logs, idPub := tc.logs, tc.idPub

			c, sc := f.accept()
			if sc != nil && !bytes.Equal(sc.RemotePubKey().Bytes(), idPub) {
				t.Fatalf("client identity %x, want %x", sc.RemotePubKey().Bytes(), idPub)
			}
			if res := roundTrip(t, c, &PingRequest{}); messageName(res) != "ping response" {
				t.Fatalf("reply to ping: %s", messageName(res))
			}
			// Garbage: a frame whose body is no protobuf.
			if _, err := c.Write([]byte{3, 0xff, 0xff, 0xff}); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, c)

			// A frame over the limit, refused from its length prefix.
			c, _ = f.accept()
			if res := roundTrip(t, c, &PingRequest{}); messageName(res) != "ping response" {
				t.Fatalf("reply to ping: %s", messageName(res))
			}
			if _, err := c.Write(protowire.AppendVarint(nil, MaxFrameSize+1)); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, c)

			// A response where a request belongs.
			c, _ = f.accept()
			if res := roundTrip(t, c, &PingRequest{}); messageName(res) != "ping response" {
				t.Fatalf("reply to ping: %s", messageName(res))
			}
			if err := WriteMessage(c, &PingResponse{}); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, c)

			// The node closes the connection at once, as CometBFT 0.37.2
			// does with the first connection after a signer restart.
			c, _ = f.accept()
			c.Close()

			// And the client still serves.
			c, _ = f.accept()
			res := roundTrip(t, c, &PubKeyRequest{ChainID: e2eChainID})
			if pk, ok := res.(*PubKeyResponse); !ok || pk.Error != nil || len(pk.PubKey) != 32 {
				t.Fatalf("reply to pubkey request: %#v", res)
			}

			for _, want := range []string{"dropping connection: malformed request", ErrFrameTooLarge.Error(),
				"dropping connection: unexpected message", "redialing"} {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("log lacks %q", want)
				}
			}
		})
	}
}

// TestRunStops: cancelling ctx stops Run promptly whether the client is
// connected and waiting for a request, in a handshake, or backing off from
// a node that is down.
func TestRunStops(t *testing.T) {
	const within = 2 * time.Second
	t.Run("connected", func(t *testing.T) {
		ln, dial := listen(t, "unix", "")
		f := &fakeNode{t: t, ln: ln, network: "unix"}
		tc := runClient(t, dial, newWholeKeySigner("x"), testConfig())
		c, _ := f.accept()
		roundTrip(t, c, &PingRequest{})
		if err := tc.stop(within); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, c)
	})
	t.Run("node down", func(t *testing.T) {
		ln, dial := listen(t, "tcp", "")
		ln.Close() // nothing listens there now
		cfg := testConfig()
		cfg.MinBackoff, cfg.MaxBackoff = time.Hour, time.Hour
		tc := runClient(t, dial, newWholeKeySigner("x"), cfg)
		tc.logs.wait(t, "cannot reach node")
		if err := tc.stop(within); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("handshake", func(t *testing.T) {
		// A peer that accepts TCP and never answers the handshake.
		ln, dial := listen(t, "tcp", "")
		tc := runClient(t, dial, newWholeKeySigner("x"), testConfig())
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := tc.stop(within); err != nil {
			t.Fatal(err)
		}
	})
}

func TestNodeID(t *testing.T) {
	k := cmted25519.GenPrivKey()
	pub := ed25519.PublicKey(k.PubKey().Bytes())
	want := strings.ToLower(k.PubKey().Address().String())
	if got := NodeID(pub); got != want {
		t.Fatalf("NodeID = %s, want %s", got, want)
	}
	c, err := NewNodeClient("tcp://127.0.0.1:1", "c", ed25519.PrivateKey(k.Bytes()), newWholeKeySigner("x"),
		slog.New(slog.NewTextHandler(io.Discard, nil)), DefaultNodeClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ID(); got != want {
		t.Fatalf("ID = %s, want %s", got, want)
	}
}

func TestNewNodeClientRejects(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	s := newWholeKeySigner("x")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	bad := DefaultNodeClientConfig()
	bad.ReadTimeout = 0
	tests := []struct {
		name, address, chainID string
		key                    ed25519.PrivateKey
		cfg                    NodeClientConfig
		want                   string
	}{
		{"no scheme", "127.0.0.1:26659", "c", key, DefaultNodeClientConfig(), "want tcp://"},
		{"bad scheme", "http://127.0.0.1:26659", "c", key, DefaultNodeClientConfig(), "neither tcp nor unix"},
		{"no port", "tcp://127.0.0.1", "c", key, DefaultNodeClientConfig(), "no port"},
		{"no identity for tcp", "tcp://127.0.0.1:1", "c", nil, DefaultNodeClientConfig(), "identity key"},
		{"no chain id", "unix:///tmp/x.sock", "", nil, DefaultNodeClientConfig(), "empty chain id"},
		{"bad config", "unix:///tmp/x.sock", "c", nil, bad, "ReadTimeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewNodeClient(tc.address, tc.chainID, tc.key, s, logger, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewNodeClient = %v, want an error with %q", err, tc.want)
			}
		})
	}
	if _, err := NewNodeClient("unix:///tmp/x.sock", "c", nil, s, logger, DefaultNodeClientConfig()); err != nil {
		t.Fatalf("unix without identity: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	min, max := 100*time.Millisecond, 2*time.Second
	want := []time.Duration{100, 200, 400, 800, 1600, 2000, 2000}
	for i, w := range want {
		if got := backoff(min, max, i+1); got != w*time.Millisecond {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
}
