package privval

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"
)

// wholeKeySigner is a Signer over a whole ed25519 key, with no sign state:
// enough to exercise the protocol. It records the requests it sees.
type wholeKeySigner struct {
	key ed25519.PrivateKey

	mu sync.Mutex
	// err, when set, is returned by every call.
	err error
	// timestamp, when set, is returned as the signed timestamp (and the
	// sign bytes are rebuilt with it), as a signer answering a duplicate.
	timestamp time.Time
	reqs      []*SignRequest
}

var _ Signer = (*wholeKeySigner)(nil)

func newWholeKeySigner(seed string) *wholeKeySigner {
	s := sha256.Sum256([]byte(seed))
	return &wholeKeySigner{key: ed25519.NewKeyFromSeed(s[:])}
}

func (s *wholeKeySigner) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *wholeKeySigner) requests() []*SignRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*SignRequest(nil), s.reqs...)
}

func (s *wholeKeySigner) PubKey(ctx context.Context, chainID string) (ed25519.PublicKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	return s.key.Public().(ed25519.PublicKey), nil
}

func (s *wholeKeySigner) Sign(ctx context.Context, req *SignRequest) (*SignResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, req)
	if s.err != nil {
		return nil, s.err
	}
	res := &SignResponse{Timestamp: req.Timestamp}
	sb := req.SignBytes
	if !s.timestamp.IsZero() {
		res.Timestamp = s.timestamp
		info, err := ParseSignBytes(sb)
		if err != nil {
			return nil, err
		}
		info.Timestamp = s.timestamp
		sb = rebuild(info)
	}
	res.Signature = ed25519.Sign(s.key, sb)
	if req.ExtSignBytes != nil {
		res.ExtSignature = ed25519.Sign(s.key, req.ExtSignBytes)
	}
	return res, nil
}

func TestHandleRequest(t *testing.T) {
	const chainID = "test-chain"
	stamp := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	block := BlockID{Hash: sha("block"), PartSetHeader: PartSetHeader{Total: 2, Hash: sha("parts")}}
	vote := func(typ SignedMsgType, id BlockID, ext string) *Vote {
		v := &Vote{Type: typ, Height: 100, Round: 1, BlockID: id, Timestamp: stamp,
			ValidatorAddress: sha("val")[:20], ValidatorIndex: 3}
		if ext != "" {
			v.Extension = []byte(ext)
		}
		return v
	}
	proposal := &Proposal{Type: ProposalType, Height: 100, Round: 1, POLRound: -1, BlockID: block, Timestamp: stamp}
	boom := errors.New("height regression: already signed 101/0/2")

	tests := []struct {
		name      string
		req       Message
		signerErr error
		wantCode  int32 // 0: success
		wantExt   bool  // an extension signature is expected
		wantDesc  string
	}{
		{name: "pubkey", req: &PubKeyRequest{ChainID: chainID}},
		{name: "pubkey wrong chain", req: &PubKeyRequest{ChainID: "other"}, wantCode: CodeWrongChainID, wantDesc: `"other"`},
		{name: "pubkey signer error", req: &PubKeyRequest{ChainID: chainID}, signerErr: boom, wantCode: CodeSignerError, wantDesc: "height regression"},
		{name: "ping", req: &PingRequest{}},
		{name: "prevote", req: &SignVoteRequest{ChainID: chainID, Vote: vote(PrevoteType, block, "")}},
		{name: "nil prevote", req: &SignVoteRequest{ChainID: chainID, Vote: vote(PrevoteType, BlockID{}, "")}},
		{name: "nil precommit", req: &SignVoteRequest{ChainID: chainID, Vote: vote(PrecommitType, BlockID{}, "")}},
		{name: "precommit with extension", req: &SignVoteRequest{ChainID: chainID, Vote: vote(PrecommitType, block, "ext")}, wantExt: true},
		{name: "precommit with empty extension", req: &SignVoteRequest{ChainID: chainID, Vote: vote(PrecommitType, block, "")}, wantExt: true},
		{name: "precommit with part set header only", req: &SignVoteRequest{ChainID: chainID,
			Vote: vote(PrecommitType, BlockID{PartSetHeader: PartSetHeader{Total: 1}}, "")}, wantExt: true},
		{name: "precommit skip extension signing", req: &SignVoteRequest{ChainID: chainID, Vote: vote(PrecommitType, block, "ext"), SkipExtensionSigning: true}},
		{name: "prevote with extension", req: &SignVoteRequest{ChainID: chainID, Vote: vote(PrevoteType, block, "ext")}, wantCode: CodeInvalidRequest},
		{name: "nil precommit with extension", req: &SignVoteRequest{ChainID: chainID, Vote: vote(PrecommitType, BlockID{}, "ext")}, wantCode: CodeInvalidRequest},
		{name: "vote wrong chain", req: &SignVoteRequest{ChainID: "other", Vote: vote(PrevoteType, block, "")}, wantCode: CodeWrongChainID, wantDesc: `not "other"`},
		{name: "vote no chain", req: &SignVoteRequest{Vote: vote(PrevoteType, block, "")}, wantCode: CodeWrongChainID},
		{name: "no vote", req: &SignVoteRequest{ChainID: chainID}, wantCode: CodeInvalidRequest},
		{name: "unknown vote type", req: &SignVoteRequest{ChainID: chainID, Vote: vote(ProposalType, block, "")}, wantCode: CodeInvalidRequest, wantDesc: "vote type 32"},
		{name: "vote type zero", req: &SignVoteRequest{ChainID: chainID, Vote: vote(UnknownType, block, "")}, wantCode: CodeInvalidRequest},
		{name: "zero height", req: &SignVoteRequest{ChainID: chainID, Vote: &Vote{Type: PrevoteType, Timestamp: stamp}}, wantCode: CodeInvalidRequest},
		{name: "negative round", req: &SignVoteRequest{ChainID: chainID, Vote: &Vote{Type: PrevoteType, Height: 1, Round: -1}}, wantCode: CodeInvalidRequest},
		{name: "short block hash", req: &SignVoteRequest{ChainID: chainID, Vote: vote(PrevoteType, BlockID{Hash: []byte{1, 2}}, "")}, wantCode: CodeInvalidRequest, wantDesc: "2 bytes"},
		{name: "vote signer error", req: &SignVoteRequest{ChainID: chainID, Vote: vote(PrevoteType, block, "")}, signerErr: boom, wantCode: CodeSignerError, wantDesc: "height regression"},
		{name: "proposal", req: &SignProposalRequest{ChainID: chainID, Proposal: proposal}},
		{name: "proposal wrong chain", req: &SignProposalRequest{ChainID: "x", Proposal: proposal}, wantCode: CodeWrongChainID},
		{name: "no proposal", req: &SignProposalRequest{ChainID: chainID}, wantCode: CodeInvalidRequest},
		{name: "proposal bad pol round", req: &SignProposalRequest{ChainID: chainID,
			Proposal: &Proposal{Height: 1, Round: 1, POLRound: -2}}, wantCode: CodeInvalidRequest},
		{name: "proposal signer error", req: &SignProposalRequest{ChainID: chainID, Proposal: proposal}, signerErr: boom, wantCode: CodeSignerError},
		{name: "sign bytes refused", req: &SignBytesRequest{Value: []byte("anything")}, wantCode: CodeUnsupported, wantDesc: "SignBytesRequest"},
	}
	s := newWholeKeySigner("handler")
	pub := s.key.Public().(ed25519.PublicKey)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.setErr(tc.signerErr)
			before := len(s.requests())
			res := HandleRequest(context.Background(), s, chainID, tc.req)
			var rse *RemoteSignerError
			switch res := res.(type) {
			case *PubKeyResponse:
				rse = res.Error
				if rse == nil && (!bytes.Equal(res.PubKey, pub) || res.PubKeyType != PubKeyTypeEd25519) {
					t.Fatalf("public key %x %q", res.PubKey, res.PubKeyType)
				}
			case *PingResponse:
			case *SignBytesResponse:
				rse = res.Error
				if res.Signature != nil {
					t.Fatal("signed arbitrary bytes")
				}
			case *SignedVoteResponse:
				rse = res.Error
				if rse != nil {
					if res.Vote.Signature != nil {
						t.Fatal("refusal carries a signature")
					}
					break
				}
				req := tc.req.(*SignVoteRequest)
				want := *req.Vote
				want.Signature, want.ExtensionSignature = res.Vote.Signature, res.Vote.ExtensionSignature
				if !equalVotes(&res.Vote, &want) {
					t.Fatalf("reply vote %+v, want the request's %+v", res.Vote, want)
				}
				// Verify with CometBFT's own sign bytes.
				cv := cmtVote(&res.Vote)
				if !ed25519.Verify(pub, cmttypes.VoteSignBytes(chainID, cv), res.Vote.Signature) {
					t.Fatal("vote signature does not verify")
				}
				if tc.wantExt {
					if !ed25519.Verify(pub, cmttypes.VoteExtensionSignBytes(chainID, cv), res.Vote.ExtensionSignature) {
						t.Fatal("extension signature does not verify")
					}
				} else if res.Vote.ExtensionSignature != nil {
					t.Fatal("unexpected extension signature")
				}
				got := s.requests()[len(s.requests())-1]
				if (got.ExtSignBytes != nil) != tc.wantExt {
					t.Fatalf("ExtSignBytes = %x, want extension signed: %v", got.ExtSignBytes, tc.wantExt)
				}
				wantStep := map[SignedMsgType]Step{PrevoteType: StepPrevote, PrecommitType: StepPrecommit}[req.Vote.Type]
				if got.Step != wantStep || got.Height != 100 || got.Round != 1 || got.ChainID != chainID ||
					!bytes.Equal(got.BlockID, req.Vote.BlockID.Hash) || !got.Timestamp.Equal(stamp) {
					t.Fatalf("SignRequest %+v", got)
				}
			case *SignedProposalResponse:
				rse = res.Error
				if rse != nil {
					break
				}
				cp := cmtProposal(&res.Proposal)
				if !ed25519.Verify(pub, cmttypes.ProposalSignBytes(chainID, cp), res.Proposal.Signature) {
					t.Fatal("proposal signature does not verify")
				}
				if got := s.requests()[len(s.requests())-1]; got.Step != StepProposal || got.ExtSignBytes != nil {
					t.Fatalf("SignRequest %+v", got)
				}
			default:
				t.Fatalf("reply %T", res)
			}
			if tc.wantCode == 0 {
				if rse != nil {
					t.Fatalf("refused: %v", rse)
				}
				return
			}
			if rse == nil {
				t.Fatalf("no error, want code %d", tc.wantCode)
			}
			if rse.Code != tc.wantCode || !strings.Contains(rse.Description, tc.wantDesc) {
				t.Fatalf("error %d %q, want code %d containing %q", rse.Code, rse.Description, tc.wantCode, tc.wantDesc)
			}
			// Refusals other than the signer's own never reach the signer.
			if tc.signerErr == nil && len(s.requests()) != before {
				t.Fatal("an invalid request reached the signer")
			}
		})
	}
}

func equalVotes(a, b *Vote) bool {
	return bytes.Equal(MarshalMessage(&SignedVoteResponse{Vote: *a}), MarshalMessage(&SignedVoteResponse{Vote: *b}))
}

// TestHandleRequestDuplicateTimestamp: a Signer that answers with an
// earlier signature and its timestamp gets that timestamp into the reply,
// and the signature verifies over it.
func TestHandleRequestDuplicateTimestamp(t *testing.T) {
	const chainID = "c"
	s := newWholeKeySigner("dup")
	earlier := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.timestamp = earlier
	v := &Vote{Type: PrevoteType, Height: 5, Timestamp: earlier.Add(time.Second)}
	res := HandleRequest(context.Background(), s, chainID, &SignVoteRequest{ChainID: chainID, Vote: v}).(*SignedVoteResponse)
	if res.Error != nil || !res.Vote.Timestamp.Equal(earlier) {
		t.Fatalf("reply %+v", res)
	}
	if !ed25519.Verify(s.key.Public().(ed25519.PublicKey), cmttypes.VoteSignBytes(chainID, cmtVote(&res.Vote)), res.Vote.Signature) {
		t.Fatal("signature does not verify over the returned timestamp")
	}
}

type badSigner struct{ res *SignResponse }

func (b badSigner) PubKey(context.Context, string) (ed25519.PublicKey, error) {
	return make([]byte, 31), nil
}

func (b badSigner) Sign(context.Context, *SignRequest) (*SignResponse, error) { return b.res, nil }

func TestHandleRequestBadSigner(t *testing.T) {
	block := BlockID{Hash: sha("b"), PartSetHeader: PartSetHeader{Total: 1, Hash: sha("p")}}
	precommit := &SignVoteRequest{ChainID: "c", Vote: &Vote{Type: PrecommitType, Height: 1, BlockID: block}}
	tests := []struct {
		name string
		s    Signer
		req  Message
	}{
		{"short public key", badSigner{}, &PubKeyRequest{ChainID: "c"}},
		{"no response", badSigner{}, precommit},
		{"short signature", badSigner{&SignResponse{Signature: make([]byte, 63)}}, precommit},
		{"no extension signature", badSigner{&SignResponse{Signature: make([]byte, 64)}}, precommit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rse *RemoteSignerError
			switch res := HandleRequest(context.Background(), tc.s, "c", tc.req).(type) {
			case *PubKeyResponse:
				rse = res.Error
			case *SignedVoteResponse:
				rse = res.Error
			}
			if rse == nil || rse.Code != CodeSignerError {
				t.Fatalf("error %v, want code %d", rse, CodeSignerError)
			}
		})
	}
}

func TestHandleRequestNotARequest(t *testing.T) {
	for _, m := range []Message{nil, &PingResponse{}, &PubKeyResponse{}, &SignedVoteResponse{}, &SignBytesResponse{}} {
		if res := HandleRequest(context.Background(), newWholeKeySigner("x"), "c", m); res != nil {
			t.Errorf("HandleRequest(%T) = %T, want nil", m, res)
		}
	}
}

// TestHandleRequestLargeExtension: a reply that would exceed the node's
// 10 KiB limit leaves the echoed extension out, and keeps the signatures.
func TestHandleRequestLargeExtension(t *testing.T) {
	block := BlockID{Hash: sha("b"), PartSetHeader: PartSetHeader{Total: 1, Hash: sha("p")}}
	v := &Vote{Type: PrecommitType, Height: 1, BlockID: block, Extension: bytes.Repeat([]byte{1}, MaxFrameSize-200)}
	req := &SignVoteRequest{ChainID: "c", Vote: v}
	if n := messageSize(req); n > MaxFrameSize {
		t.Fatalf("request of %d bytes", n)
	}
	s := newWholeKeySigner("x")
	res := HandleRequest(context.Background(), s, "c", req).(*SignedVoteResponse)
	if res.Error != nil || res.Vote.Extension != nil || len(res.Vote.ExtensionSignature) != 64 {
		t.Fatalf("reply: error %v, extension %d bytes, extension signature %d bytes", res.Error, len(res.Vote.Extension), len(res.Vote.ExtensionSignature))
	}
	if !ed25519.Verify(s.key.Public().(ed25519.PublicKey), VoteExtensionSignBytes("c", v), res.Vote.ExtensionSignature) {
		t.Fatal("extension signature does not verify")
	}
	if n := messageSize(res); n > MaxFrameSize {
		t.Fatalf("reply of %d bytes", n)
	}
}

// fixedSigner answers every request with a constant signature, so that
// BenchmarkHandleSignVote measures this package's overhead alone.
type fixedSigner struct{ sig []byte }

func (f fixedSigner) PubKey(context.Context, string) (ed25519.PublicKey, error) {
	return make([]byte, 32), nil
}

func (f fixedSigner) Sign(_ context.Context, req *SignRequest) (*SignResponse, error) {
	return &SignResponse{Signature: f.sig, ExtSignature: f.sig, Timestamp: req.Timestamp}, nil
}

// BenchmarkHandleSignVote: decode a framed precommit request, build its
// sign bytes and extension sign bytes, and encode the framed reply.
func BenchmarkHandleSignVote(b *testing.B) {
	v := vectorVote
	req := AppendFrame(nil, &SignVoteRequest{Vote: &v, ChainID: "kira-1"})
	s := fixedSigner{sig: make([]byte, 64)}
	ctx := context.Background()
	src := bytes.NewReader(req)
	r := bufio.NewReader(src)
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(req)
		r.Reset(src)
		m, err := ReadMessage(r)
		if err != nil {
			b.Fatal(err)
		}
		if err := WriteMessage(io.Discard, HandleRequest(ctx, s, "kira-1", m)); err != nil {
			b.Fatal(err)
		}
	}
}
