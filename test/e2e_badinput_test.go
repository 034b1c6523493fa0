package test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/signstate"

	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/libs/protoio"
	cmtprivval "github.com/cometbft/cometbft/privval"
	privvalproto "github.com/cometbft/cometbft/proto/tendermint/privval"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"github.com/cometbft/cometbft/types"

	"github.com/cosigner/cosigner/test/harness"
)

// fakeNode plays a CometBFT node's side of the remote-signer protocol with
// CometBFT v0.38.17's own listener endpoint and signer client (tcp with
// SecretConnection), so the requests it sends are exactly a node's.
type fakeNode struct {
	Addr   string
	Client *cmtprivval.SignerClient
}

func newFakeNode(t *testing.T, chainID string) *fakeNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := cmtprivval.NewSignerListenerEndpoint(log.NewNopLogger(),
		cmtprivval.NewTCPListener(ln, cmted25519.GenPrivKey()))
	client, err := cmtprivval.NewSignerClient(endpoint, chainID) // starts the endpoint
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = endpoint.Stop() })
	return &fakeNode{Addr: "tcp://" + ln.Addr().String(), Client: client}
}

// newKeyedCosigner sets up a softsign cosigner with a fresh key for chainID
// and node, with its state initialised, and returns it with the key.
func newKeyedCosigner(t *testing.T, bin, chainID, node string) (*harness.Cosigner, ed25519.PublicKey) {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "priv_validator_key.json")
	pub, err := harness.WriteNewValidatorKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	c := harness.NewCosigner(t, bin, chainID, node)
	c.MustRun("keys", "import", "--home", c.Home, "--chain-id", chainID, keyFile)
	c.MustRun("state", "init", "--home", c.Home, "--chain-id", chainID)
	return c, pub
}

func blockID(b byte) cmtproto.BlockID {
	return cmtproto.BlockID{
		Hash:          bytes.Repeat([]byte{b}, 32),
		PartSetHeader: cmtproto.PartSetHeader{Total: 1, Hash: bytes.Repeat([]byte{b + 1}, 32)},
	}
}

func testVote(typ cmtproto.SignedMsgType, h int64, r int32, block byte, ts time.Time, pub ed25519.PublicKey) *cmtproto.Vote {
	v := &cmtproto.Vote{
		Type:             typ,
		Height:           h,
		Round:            r,
		BlockID:          blockID(block),
		Timestamp:        ts,
		ValidatorAddress: types.Address(cmted25519.PubKey(pub).Address()),
		ValidatorIndex:   0,
	}
	if typ == cmtproto.PrecommitType {
		v.Extension = []byte("extension")
	}
	return v
}

func checkVoteSigned(t *testing.T, chainID string, pub ed25519.PublicKey, v *cmtproto.Vote) {
	t.Helper()
	if !ed25519.Verify(pub, types.VoteSignBytes(chainID, v), v.Signature) {
		t.Fatalf("vote %d/%d/%v: signature does not verify", v.Height, v.Round, v.Type)
	}
	if v.Type == cmtproto.PrecommitType && len(v.BlockID.Hash) > 0 {
		if !ed25519.Verify(pub, types.VoteExtensionSignBytes(chainID, v), v.ExtensionSignature) {
			t.Fatalf("vote %d/%d/%v: extension signature does not verify", v.Height, v.Round, v.Type)
		}
	}
}

// waitRefusal waits for a WARN line with one of msgs for a request at
// height h, starting at output line from, and returns the index after it.
func waitRefusal(t *testing.T, p *harness.Process, from int, h int64, msgs ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	i, line, err := p.WaitLine(ctx, from, func(l string) bool {
		if !strings.Contains(l, "level=WARN") || !strings.Contains(l, fmt.Sprintf(" height=%d ", h)) {
			return false
		}
		return slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(l, fmt.Sprintf("msg=%q", m)) })
	})
	if err != nil {
		t.Errorf("no WARN log line with msg in %q at height %d: %v", msgs, h, err)
		return from
	}
	t.Logf("cosigner logged: %s", line)
	return i + 1
}

// TestBadRequests drives the real binary over tcp with SecretConnection with
// requests a node must never get signed, each followed by a check that
// nothing was signed and the high-water mark did not move.
func TestBadRequests(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	const chainID = "badreq-1"
	node := newFakeNode(t, chainID)
	cs, pub := newKeyedCosigner(t, bin, chainID, node.Addr)
	proc := cs.Start()
	if err := node.Client.WaitForConnection(20 * time.Second); err != nil {
		t.Fatalf("cosigner did not dial the fake node: %v", err)
	}
	got, err := node.Client.GetPubKey()
	if err != nil {
		t.Fatalf("pubkey request: %v", err)
	}
	if !bytes.Equal(got.Bytes(), pub) {
		t.Fatalf("pubkey %X, want %X", got.Bytes(), []byte(pub))
	}
	logAt := 0
	ts := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

	t.Run("wrong chain id", func(t *testing.T) {
		v := testVote(cmtproto.PrevoteType, 5, 0, 0xA0, ts, pub)
		err := node.Client.SignVote("other-chain", v)
		if err == nil {
			t.Fatal("signed a vote for another chain")
		}
		t.Logf("error returned: %v", err)
		if len(v.Signature) != 0 {
			t.Fatal("a signature came back with the error")
		}
		if st := cs.StateShow(); st.Height != 0 {
			t.Fatalf("state moved to %s", st.Raw)
		}
		// The contract says "refused sign request"; the CLI logs "refused
		// prevote" here (see the report).
		logAt = waitRefusal(t, proc, logAt, 5, "refused sign request", "refused prevote")
	})

	var first *cmtproto.Vote
	t.Run("valid prevote", func(t *testing.T) {
		v := testVote(cmtproto.PrevoteType, 10, 0, 0xA0, ts, pub)
		if err := node.Client.SignVote(chainID, v); err != nil {
			t.Fatal(err)
		}
		checkVoteSigned(t, chainID, pub, v)
		first = v
		if st := cs.StateShow(); st.Height != 10 || st.Round != 0 || st.Step != 2 {
			t.Fatalf("state after prevote 10/0: %s, want height 10 round 0 step 2", st.Raw)
		}
	})
	if first == nil {
		t.FailNow()
	}

	refuse := func(t *testing.T, v *cmtproto.Vote) {
		t.Helper()
		before := cs.StateShow()
		err := node.Client.SignVote(chainID, v)
		var rse *cmtprivval.RemoteSignerError
		if !errors.As(err, &rse) {
			t.Fatalf("got %v, want a RemoteSignerError", err)
		}
		t.Logf("error returned: %v", err)
		if len(v.Signature) != 0 {
			t.Fatal("a signature came back with the error")
		}
		if after := cs.StateShow(); after.Raw != before.Raw {
			t.Fatalf("state changed from %s to %s", before.Raw, after.Raw)
		}
		logAt = waitRefusal(t, proc, logAt, v.Height, signstate.LogRefusedDoubleSign)
	}
	t.Run("height regression", func(t *testing.T) {
		refuse(t, testVote(cmtproto.PrevoteType, 9, 0, 0xA0, ts, pub))
	})
	t.Run("conflicting prevote", func(t *testing.T) {
		refuse(t, testVote(cmtproto.PrevoteType, 10, 0, 0xB0, ts, pub))
	})
	t.Run("nil prevote at the signed HRS", func(t *testing.T) {
		v := testVote(cmtproto.PrevoteType, 10, 0, 0, ts, pub)
		v.BlockID = cmtproto.BlockID{}
		refuse(t, v)
	})

	var precommit *cmtproto.Vote
	t.Run("valid precommit with extension after refusals", func(t *testing.T) {
		v := testVote(cmtproto.PrecommitType, 10, 0, 0xA0, ts, pub)
		if err := node.Client.SignVote(chainID, v); err != nil {
			t.Fatal(err)
		}
		checkVoteSigned(t, chainID, pub, v)
		precommit = v
		if st := cs.StateShow(); st.Height != 10 || st.Step != 3 {
			t.Fatalf("state after precommit 10/0: %s, want height 10 step 3", st.Raw)
		}
	})

	t.Run("same HRS, only the timestamp differs", func(t *testing.T) {
		if precommit == nil {
			t.Skip("no precommit signed")
		}
		v := testVote(cmtproto.PrecommitType, 10, 0, 0xA0, ts.Add(1500*time.Millisecond), pub)
		if err := node.Client.SignVote(chainID, v); err != nil {
			t.Fatal(err)
		}
		if !v.Timestamp.Equal(precommit.Timestamp) {
			t.Errorf("timestamp %v, want the original %v", v.Timestamp, precommit.Timestamp)
		}
		if !bytes.Equal(v.Signature, precommit.Signature) {
			t.Errorf("signature %X, want the original %X", v.Signature, precommit.Signature)
		}
		checkVoteSigned(t, chainID, pub, v)
	})

	t.Run("proposal at the next height", func(t *testing.T) {
		p := &cmtproto.Proposal{Type: cmtproto.ProposalType, Height: 11, Round: 0, PolRound: -1, BlockID: blockID(0xC0), Timestamp: ts.Add(2 * time.Second)}
		if err := node.Client.SignProposal(chainID, p); err != nil {
			t.Fatal(err)
		}
		if !ed25519.Verify(pub, types.ProposalSignBytes(chainID, p), p.Signature) {
			t.Fatal("proposal signature does not verify")
		}
	})

	// Signed: prevote and precommit at 10/0, proposal at 11/0; the
	// timestamp-only duplicate may be logged again, for the same block.
	// The reply reaches the node before cosigner logs it: stop the process
	// so that every line is in.
	cs.Stop()
	recs := cs.Records()
	if err := harness.CheckNoDoubleSign(recs); err != nil {
		t.Error(err)
	}
	signed := map[string]bool{}
	var lines []string
	for _, r := range recs {
		signed[fmt.Sprintf("%d/%d/%s", r.Height, r.Round, r.Step)] = true
		lines = append(lines, r.Line)
	}
	if len(signed) != 3 || !signed["10/0/prevote"] || !signed["10/0/precommit"] || !signed["11/0/proposal"] {
		t.Errorf("signed %v, want 10/0/prevote, 10/0/precommit, 11/0/proposal; log:\n%s", signed, strings.Join(lines, "\n"))
	}
}

// TestBadFrames feeds the real binary garbage and an oversized frame over a
// raw unix socket: each time it must log an error, drop the connection,
// redial, and then serve a valid request.
func TestBadFrames(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	const chainID = "badframe-1"
	dir, err := os.MkdirTemp("", "cs-raw-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "node.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cs, pub := newKeyedCosigner(t, bin, chainID, "unix://"+sock)
	proc := cs.Start()

	accept := func(t *testing.T) net.Conn {
		t.Helper()
		_ = ln.(*net.UnixListener).SetDeadline(time.Now().Add(20 * time.Second))
		conn, err := ln.Accept()
		if err != nil {
			t.Fatalf("cosigner did not (re)dial: %v", err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	// expectDrop checks that the cosigner closes the connection and logs a
	// WARN or ERROR line that says what was wrong (one of the words in
	// about).
	expectDrop := func(t *testing.T, conn net.Conn, about ...string) {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		reply, err := io.ReadAll(conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("cosigner kept the connection open (read %d bytes)", len(reply))
		}
		if len(reply) > 0 {
			t.Logf("cosigner replied %d bytes before closing: %X", len(reply), reply)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, line, err := proc.WaitLine(ctx, 0, func(l string) bool {
			if !strings.Contains(l, "level=WARN") && !strings.Contains(l, "level=ERROR") {
				return false
			}
			l = strings.ToLower(l)
			return slices.ContainsFunc(about, func(w string) bool { return strings.Contains(l, w) })
		})
		if err != nil {
			t.Errorf("no WARN or ERROR log line mentioning any of %q: %v", about, err)
			return
		}
		t.Logf("cosigner logged: %s", line)
	}

	t.Run("garbage", func(t *testing.T) {
		conn := accept(t)
		// Length 6, then bytes that are not a protobuf message (a varint
		// tag that never ends).
		_, _ = conn.Write([]byte{0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		expectDrop(t, conn, "malformed", "decode", "invalid")
	})
	t.Run("oversized frame", func(t *testing.T) {
		conn := accept(t)
		frame := binary.AppendUvarint(nil, 10*1024+1)
		frame = append(frame, make([]byte, 1024)...)
		_, _ = conn.Write(frame) // the cosigner may close before reading it all
		expectDrop(t, conn, "too large", "oversize", "exceeds", "10240")
	})
	t.Run("valid request after redial", func(t *testing.T) {
		conn := accept(t)
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		v := testVote(cmtproto.PrevoteType, 3, 0, 0xA0, time.Now().UTC().Truncate(time.Millisecond), pub)
		req := privvalproto.Message{Sum: &privvalproto.Message_SignVoteRequest{
			SignVoteRequest: &privvalproto.SignVoteRequest{Vote: v, ChainId: chainID},
		}}
		if _, err := protoio.NewDelimitedWriter(conn).WriteMsg(&req); err != nil {
			t.Fatal(err)
		}
		var resp privvalproto.Message
		if _, err := protoio.NewDelimitedReader(conn, 64*1024).ReadMsg(&resp); err != nil {
			t.Fatalf("read reply: %v", err)
		}
		svr := resp.GetSignedVoteResponse()
		if svr == nil {
			t.Fatalf("reply %T, want a SignedVoteResponse", resp.Sum)
		}
		if svr.Error != nil {
			t.Fatalf("remote signer error: %d %s", svr.Error.Code, svr.Error.Description)
		}
		checkVoteSigned(t, chainID, pub, &svr.Vote)
	})
}

// TestStartRefusesBadState checks that `cosigner start` refuses a missing
// or corrupt state file with a message naming the file and a hint.
func TestStartRefusesBadState(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	const chainID = "state-1"
	keyFile := filepath.Join(t.TempDir(), "priv_validator_key.json")
	if _, err := harness.WriteNewValidatorKey(keyFile); err != nil {
		t.Fatal(err)
	}
	// Nobody listens here: start must refuse before it dials anything.
	cs := harness.NewCosigner(t, bin, chainID, "tcp://127.0.0.1:1")
	cs.MustRun("keys", "import", "--home", cs.Home, "--chain-id", chainID, keyFile)
	stateDir := filepath.Join(cs.Home, "state")

	check := func(t *testing.T, r harness.Result, wantPath string) {
		t.Helper()
		t.Logf("%s", r)
		if r.Code != 1 && r.Code != 2 {
			t.Errorf("exit code %d, want 2 (or 1)", r.Code)
		}
		if !strings.Contains(r.Stderr, wantPath) {
			t.Errorf("stderr does not name %s", wantPath)
		}
		if !strings.Contains(r.Stderr, "hint") {
			t.Errorf("stderr has no hint")
		}
	}

	t.Run("missing", func(t *testing.T) {
		r := cs.Run("start", "--home", cs.Home)
		check(t, r, stateDir)
		if !strings.Contains(r.Stderr, "cosigner state init") {
			t.Errorf("stderr does not suggest 'cosigner state init'")
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		cs.MustRun("state", "init", "--home", cs.Home, "--chain-id", chainID)
		files, err := filepath.Glob(filepath.Join(stateDir, "*"))
		if err != nil || len(files) != 1 {
			t.Fatalf("state dir %s holds %v, want one file", stateDir, files)
		}
		if err := os.WriteFile(files[0], []byte("{\"height\": \"12\", \"round\": 0, \"st"), 0o600); err != nil {
			t.Fatal(err)
		}
		check(t, cs.Run("start", "--home", cs.Home), files[0])
	})
}
