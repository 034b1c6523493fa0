package softsign

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/cosigner/cosigner/cosigner/hsm"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/internal/testkit/testhsm"
	"github.com/cosigner/cosigner/internal/testkit/teststate"
	"github.com/cosigner/cosigner/privval"
)

// celestia-core's privval/msgs_test.go vectors: a SignRawBytesRequest of
// chain "test", unique id "test-msg" and 1000 bytes of 0x01, as a Message
// (oneof tag 0x4a, length 0x07fb), and its response (tag 0x52).
var (
	celestiaRequestBody = "0a0474657374" + "12e807" + strings.Repeat("01", 1000) + "1a08746573742d6d7367"
	celestiaRequest     = "4afb07" + celestiaRequestBody
)

// celestiaSignBytes is celestia-core's RawBytesMessageSignBytes for the
// vector, built by hand: the prefix, the body's length (1019 = 0xfb 0x07)
// and the body.
func celestiaSignBytes(t *testing.T) []byte {
	body, err := hex.DecodeString(celestiaRequestBody)
	if err != nil {
		t.Fatal(err)
	}
	b := append([]byte("COMET::RAW_BYTES::SIGN"), 0xfb, 0x07)
	return append(b, body...)
}

func rawRequest(t *testing.T, chainID, uniqueID string, raw []byte) *privval.RawBytesRequest {
	sb, err := privval.RawBytesSignBytes(chainID, uniqueID, raw)
	if err != nil {
		t.Fatal(err)
	}
	return &privval.RawBytesRequest{ChainID: chainID, UniqueID: uniqueID, RawBytes: raw, SignBytes: sb}
}

// TestSignRawBytes: an opted-in chain's raw bytes are signed and its sign
// state does not move (neither in memory nor on disk); a chain that has
// not opted in is refused with an error naming the key.
func TestSignRawBytes(t *testing.T) {
	ctx := context.Background()
	on := teststate.NewOf(t, "celestia", signstate.Mark{Height: 9, Round: 1, Step: privval.StepPrevote})
	off := teststate.NewOf(t, "kira-1", signstate.Mark{Height: 9})
	s := New(testkit.Log, nil, Options{SignRawBytes: map[string]bool{"celestia": true, "kira-1": false}})
	if err := s.AddChain("celestia", testkit.Key, on); err != nil {
		t.Fatal(err)
	}
	if err := s.AddChain("kira-1", testkit.Key, off); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(on.Path())
	if err != nil {
		t.Fatal(err)
	}

	req := rawRequest(t, "celestia", "blob", []byte("application bytes"))
	sig, err := s.SignRawBytes(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(testkit.Key.Public().(ed25519.PublicKey), req.SignBytes, sig) {
		t.Fatal("signature does not verify over the raw bytes sign bytes")
	}
	if m := on.Mark(); m.Height != 9 || m.Round != 1 || m.Step != privval.StepPrevote || len(m.Signature) != 0 {
		t.Fatalf("mark moved to %+v", m)
	}
	if after, err := os.ReadFile(on.Path()); err != nil || !bytes.Equal(after, before) {
		t.Fatalf("state file rewritten by a raw bytes signature (%v)", err)
	}

	tampered := rawRequest(t, "celestia", "blob", []byte("application bytes"))
	tampered.SignBytes = testkit.Vote(10, 0, privval.StepPrevote, "A", time.Unix(1700000000, 0)).SignBytes
	for _, tc := range []struct {
		name     string
		req      *privval.RawBytesRequest
		disabled bool
		wantErr  string
	}{
		{"not opted in", rawRequest(t, "kira-1", "blob", []byte("x")), true, "set sign_raw_bytes = true"},
		{"unknown chain", rawRequest(t, "other", "blob", []byte("x")), false, `no key for chain "other"`},
		{"sign bytes not the request's", tampered, false, "do not match the request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := s.SignRawBytes(ctx, tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.Is(err, privval.ErrRawBytesDisabled) != tc.disabled || sig != nil {
				t.Fatalf("SignRawBytes = %x, %v; want an error with %q (ErrRawBytesDisabled: %v)", sig, err, tc.wantErr, tc.disabled)
			}
		})
	}
	if m := on.Mark(); m.Height != 9 {
		t.Fatalf("mark moved to %+v", m)
	}
}

// TestSignRawBytesHSM signs raw bytes with the key in the YubiHSM2
// simulator.
func TestSignRawBytesHSM(t *testing.T) {
	sim := testkit.Sim(t)
	h := testhsm.Dial(t, sim, 500*time.Millisecond)
	ctx := context.Background()
	if err := h.ImportEd25519(ctx, 5, "test", testkit.Key.Seed(), false); err != nil {
		t.Fatal(err)
	}
	key, err := hsm.NewKey(ctx, h, 5, 500*time.Millisecond, testkit.Log)
	if err != nil {
		t.Fatal(err)
	}
	s := New(testkit.Log, nil, Options{SignRawBytes: map[string]bool{"test": true}})
	if err := s.AddChainKey("test", key, teststate.NewOf(t, "test", signstate.Mark{Height: 1})); err != nil {
		t.Fatal(err)
	}
	req := rawRequest(t, "test", "test-msg", bytes.Repeat([]byte{1}, 1000))
	sig, err := s.SignRawBytes(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(key.Public(), celestiaSignBytes(t), sig) {
		t.Fatal("YubiHSM2 signature does not verify over celestia's sign bytes")
	}
}

// TestRawBytesOverNodeClient drives a real NodeClient over a unix socket
// with celestia-core's request frame, byte for byte, and checks the reply
// frame and its signature over the sign bytes built by hand. A chain that
// has not opted in gets celestia's response with an error naming the key.
func TestRawBytesOverNodeClient(t *testing.T) {
	pub := testkit.Key.Public().(ed25519.PublicKey)
	req, err := hex.DecodeString(celestiaRequest)
	if err != nil {
		t.Fatal(err)
	}
	frame := protowire.AppendVarint(nil, uint64(len(req)))
	frame = append(frame, req...)
	for _, tc := range []struct {
		name    string
		enabled bool
	}{
		{"sign_raw_bytes = true", true},
		{"sign_raw_bytes unset", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := teststate.NewOf(t, "test", signstate.Mark{Height: 9})
			s := New(testkit.Log, nil, Options{SignRawBytes: map[string]bool{"test": tc.enabled}})
			if err := s.AddChain("test", testkit.Key, state); err != nil {
				t.Fatal(err)
			}
			conn := dialedBy(t, s, "test")
			if _, err := conn.Write(frame); err != nil {
				t.Fatal(err)
			}
			res, err := privval.ReadFrame(bufio.NewReader(conn))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.enabled {
				m, err := privval.UnmarshalMessage(res)
				if err != nil {
					t.Fatalf("decode reply %x: %v", res, err)
				}
				r, ok := m.(*privval.SignBytesResponse)
				if !ok || r.Error == nil || r.Error.Code != privval.CodeUnsupported ||
					!strings.Contains(r.Error.Description, "sign_raw_bytes = true") || r.Signature != nil {
					t.Fatalf("reply %#v (error %+v), want a refusal with code %d naming sign_raw_bytes", m, r.Error, privval.CodeUnsupported)
				}
				return
			}
			// SignedRawBytesResponse{signature = 64 bytes}: tag 0x52, length
			// 0x42, field 1 (0x0a) of 0x40 bytes.
			if len(res) != 68 || !bytes.Equal(res[:4], []byte{0x52, 0x42, 0x0a, 0x40}) {
				t.Fatalf("reply %x is not a SignedRawBytesResponse with a signature", res)
			}
			if !ed25519.Verify(pub, celestiaSignBytes(t), res[4:]) {
				t.Fatal("signature does not verify over RawBytesMessageSignBytes")
			}
			if m := state.Mark(); m.Height != 9 || m.Step != 0 {
				t.Fatalf("mark moved to %+v", m)
			}
		})
	}
}

// dialedBy starts a NodeClient for chainID served by s, which dials a unix
// socket of the test, and returns the accepted connection (the node's
// side); the client stops at the end of the test.
func dialedBy(t *testing.T, s *Signer, chainID string) net.Conn {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "pv.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	client, err := privval.NewNodeClient("unix://"+sock, chainID, nil, s, testkit.Log, privval.DefaultNodeClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { client.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return conn
}
