package privval

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cometbft/cometbft/libs/protoio"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"github.com/cosmos/gogoproto/proto"
	"google.golang.org/protobuf/encoding/protowire"
)

// Hex vectors from celestia-core's privval/msgs_test.go: a
// SignRawBytesRequest of chain "test", unique id "test-msg" and 1000 bytes
// of 0x01, and a SignedRawBytesResponse with 64 bytes of 0x01. The 1000
// bytes are written as a repetition to keep the line short.
var (
	vectorRawBytesRequest  = "4afb07" + "0a0474657374" + "12e807" + strings.Repeat("01", 1000) + "1a08746573742d6d7367"
	vectorRawBytesResponse = "52420a40" + strings.Repeat("01", 64)
	vectorRawBytes         = &SignRawBytesRequest{ChainID: "test", RawBytes: bytes.Repeat([]byte{1}, 1000), UniqueID: "test-msg"}
)

func TestRawBytesVectors(t *testing.T) {
	b := mustHex(t, vectorRawBytesRequest)
	got, err := UnmarshalMessage(b)
	if err != nil {
		t.Fatalf("decode celestia-core's request vector: %v", err)
	}
	if !reflect.DeepEqual(got, vectorRawBytes) {
		t.Fatalf("decoded %#v, want %#v", got, vectorRawBytes)
	}
	if enc := MarshalMessage(vectorRawBytes); !bytes.Equal(enc, b) {
		t.Fatalf("request encodes as %x, want celestia-core's %x", enc, b)
	}
	resp := &SignedRawBytesResponse{Signature: bytes.Repeat([]byte{1}, 64)}
	if enc := MarshalMessage(resp); !bytes.Equal(enc, mustHex(t, vectorRawBytesResponse)) {
		t.Fatalf("response encodes as %x, want celestia-core's %s", enc, vectorRawBytesResponse)
	}
	// The response decodes as v1.0's SignBytesResponse: the same shape.
	dec, err := UnmarshalMessage(mustHex(t, vectorRawBytesResponse))
	if err != nil {
		t.Fatal(err)
	}
	if want := (&SignBytesResponse{Signature: resp.Signature}); !reflect.DeepEqual(dec, want) {
		t.Fatalf("response decodes as %#v, want %#v", dec, want)
	}
}

// TestRawBytesOrSignBytes: field 9 is celestia's request when it carries
// raw_bytes or unique_id, else v1.0's SignBytesRequest, decoded as before.
func TestRawBytesOrSignBytes(t *testing.T) {
	tests := []struct {
		name    string
		b       []byte
		want    Message
		wantErr string
	}{
		{"v1.0 sign bytes", pb{}.bytes(9, pb{}.bytes(1, []byte("x"))), &SignBytesRequest{Value: []byte("x")}, ""},
		{"v1.0 empty", pb{}.bytes(9, nil), &SignBytesRequest{}, ""},
		{"raw bytes", pb{}.bytes(9, pb{}.bytes(1, []byte("c")).bytes(2, []byte{7}).bytes(3, []byte("u"))),
			&SignRawBytesRequest{ChainID: "c", RawBytes: []byte{7}, UniqueID: "u"}, ""},
		{"raw bytes only", pb{}.bytes(9, pb{}.bytes(2, []byte{7})), &SignRawBytesRequest{RawBytes: []byte{7}}, ""},
		{"unique id only", pb{}.bytes(9, pb{}.bytes(3, []byte("u"))), &SignRawBytesRequest{UniqueID: "u"}, ""},
		{"empty raw bytes field is v1.0's", pb{}.bytes(9, pb{}.bytes(1, []byte("x")).bytes(2, nil)),
			&SignBytesRequest{Value: []byte("x")}, ""},
		{"varint field 2 is v1.0's unknown field", pb{}.bytes(9, pb{}.bytes(1, []byte("x")).varint(2, 1)),
			&SignBytesRequest{Value: []byte("x")}, ""},
		{"last value wins", pb{}.bytes(9, pb{}.bytes(3, []byte("a")).bytes(3, []byte("b"))), &SignRawBytesRequest{UniqueID: "b"}, ""},
		{"chain id of wrong type", pb{}.bytes(9, pb{}.varint(1, 1).bytes(2, []byte{7})), nil, "wire type"},
		{"truncated", mustHex(t, vectorRawBytesRequest)[:100], nil, "unexpected EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := UnmarshalMessage(tc.b)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("UnmarshalMessage(%x) = %#v, %v; want an error with %q", tc.b, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnmarshalMessage(%x): %v", tc.b, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("UnmarshalMessage(%x) = %#v, want %#v", tc.b, got, tc.want)
			}
		})
	}
}

func TestRawBytesSignBytes(t *testing.T) {
	// Independently of the codec: the prefix, then the vector's request
	// body (without its oneof tag and length) length-delimited.
	body := mustHex(t, vectorRawBytesRequest)[3:]
	want := append([]byte(RawBytesSignBytesPrefix), protowire.AppendVarint(nil, uint64(len(body)))...)
	want = append(want, body...)
	got, err := RawBytesSignBytes("test", "test-msg", bytes.Repeat([]byte{1}, 1000))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("RawBytesSignBytes = %x, %v; want %x", got, err, want)
	}
	for _, tc := range []struct {
		name, chain, id string
		raw             []byte
		wantErr         string
	}{
		{"no chain id", "", "u", []byte{1}, "empty chain id"},
		{"no unique id", "c", "", []byte{1}, "empty unique id"},
		{"no raw bytes", "c", "u", nil, "no raw bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if b, err := RawBytesSignBytes(tc.chain, tc.id, tc.raw); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("RawBytesSignBytes = %x, %v; want an error with %q", b, err, tc.wantErr)
			}
		})
	}
}

// refusedAsConsensus returns nil if every decoder of consensus sign bytes,
// ours and CometBFT's, refuses b, else which one accepted it.
func refusedAsConsensus(b []byte) error {
	if _, err := ParseSignBytes(b); err == nil {
		return errors.New("ParseSignBytes accepts it")
	}
	if _, err := ParseVoteExtensionSignBytes(b); err == nil {
		return errors.New("ParseVoteExtensionSignBytes accepts it")
	}
	for _, m := range []proto.Message{&cmtproto.CanonicalVote{}, &cmtproto.CanonicalProposal{}, &cmtproto.CanonicalVoteExtension{}} {
		if _, err := protoio.NewDelimitedReader(bytes.NewReader(b), 1<<30).ReadMsg(m); err == nil {
			return fmt.Errorf("CometBFT decodes it as a %T", m)
		}
	}
	return nil
}

// TestRawBytesNeverConsensus checks RawBytesSignBytes' argument: no raw
// bytes request yields sign bytes that any decoder takes for a vote,
// proposal or vote extension, even when its raw bytes, chain id or unique
// id are themselves valid consensus sign bytes.
func TestRawBytesNeverConsensus(t *testing.T) {
	vote := &Vote{Type: PrecommitType, Height: 7, Round: 1, Timestamp: time.Unix(1700000000, 0).UTC(),
		BlockID:   BlockID{Hash: bytes.Repeat([]byte{3}, 32), PartSetHeader: PartSetHeader{Total: 1, Hash: bytes.Repeat([]byte{4}, 32)}},
		Extension: []byte("ext")}
	consensus := [][]byte{
		VoteSignBytes("c", vote),
		ProposalSignBytes("c", &Proposal{Type: ProposalType, Height: 7, Round: 1, POLRound: -1, BlockID: vote.BlockID, Timestamp: vote.Timestamp}),
		VoteExtensionSignBytes("c", vote),
	}
	// The checker is not vacuous: it accepts real consensus sign bytes.
	for _, b := range consensus {
		if refusedAsConsensus(b) == nil {
			t.Fatalf("consensus sign bytes %x refused by every decoder", b)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	type req struct {
		chain, id string
		raw       []byte
	}
	var reqs []req
	for _, c := range consensus {
		reqs = append(reqs, req{"c", "u", c}, req{string(c), "u", c}, req{"c", string(c), []byte{1}},
			req{"c", "u", c[1:]}, req{"c", "u", append([]byte(RawBytesSignBytesPrefix), c...)})
	}
	for range 5000 {
		reqs = append(reqs, req{string(randBytes(1 + r.IntN(40))), string(randBytes(1 + r.IntN(40))), randBytes(1 + r.IntN(300))})
	}
	for _, q := range reqs {
		sb, err := RawBytesSignBytes(q.chain, q.id, q.raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := refusedAsConsensus(sb); err != nil {
			t.Fatalf("raw bytes sign bytes %x: %v", sb, err)
		}
	}
	// And the reason: the message would start at 'O', field 9 wire type 7.
	num, typ, n := protowire.ConsumeTag([]byte(RawBytesSignBytesPrefix[1:]))
	if RawBytesSignBytesPrefix[0] != 0x43 || num != 9 || typ != 7 || n != 1 {
		t.Fatalf("prefix reads as length %d then field %d wire type %d", RawBytesSignBytesPrefix[0], num, typ)
	}
}

// rawBytesSigner is a wholeKeySigner that also signs raw bytes, or fails
// with err.
type rawBytesSigner struct {
	*wholeKeySigner
	err error
	sig []byte // returned instead of a signature when set
}

var _ RawBytesSigner = (*rawBytesSigner)(nil)

func (s *rawBytesSigner) SignRawBytes(ctx context.Context, req *RawBytesRequest) ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.sig != nil {
		return s.sig, nil
	}
	return ed25519.Sign(s.key, req.SignBytes), nil
}

func TestHandleSignRawBytes(t *testing.T) {
	ctx := context.Background()
	good := &SignRawBytesRequest{ChainID: "test", RawBytes: []byte("blob"), UniqueID: "u"}
	tests := []struct {
		name     string
		s        Signer
		req      *SignRawBytesRequest
		wantCode int32
		wantDesc string
	}{
		{"wrong chain", &rawBytesSigner{wholeKeySigner: newWholeKeySigner("k")},
			&SignRawBytesRequest{ChainID: "other", RawBytes: []byte("b"), UniqueID: "u"}, CodeWrongChainID, `not "other"`},
		{"no unique id", &rawBytesSigner{wholeKeySigner: newWholeKeySigner("k")},
			&SignRawBytesRequest{ChainID: "test", RawBytes: []byte("b")}, CodeInvalidRequest, "empty unique id"},
		{"no raw bytes", &rawBytesSigner{wholeKeySigner: newWholeKeySigner("k")},
			&SignRawBytesRequest{ChainID: "test", UniqueID: "u"}, CodeInvalidRequest, "no raw bytes"},
		{"signer without raw bytes", newWholeKeySigner("k"), good, CodeUnsupported, "does not sign raw bytes"},
		{"chain not opted in", &rawBytesSigner{wholeKeySigner: newWholeKeySigner("k"), err: fmt.Errorf("set sign_raw_bytes: %w", ErrRawBytesDisabled)},
			good, CodeUnsupported, "sign_raw_bytes"},
		{"signer fails", &rawBytesSigner{wholeKeySigner: newWholeKeySigner("k"), err: errors.New("device away")},
			good, CodeSignerError, "device away"},
		{"short signature", &rawBytesSigner{wholeKeySigner: newWholeKeySigner("k"), sig: []byte{1}},
			good, CodeSignerError, "1 bytes"},
		{"signed", &rawBytesSigner{wholeKeySigner: newWholeKeySigner("k")}, good, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, ok := HandleRequest(ctx, tc.s, "test", tc.req).(*SignedRawBytesResponse)
			if !ok {
				t.Fatalf("answer is not a SignedRawBytesResponse")
			}
			if tc.wantCode != 0 {
				if res.Error == nil || res.Error.Code != tc.wantCode || !strings.Contains(res.Error.Description, tc.wantDesc) || res.Signature != nil {
					t.Fatalf("answer %+v (error %+v), want code %d with %q and no signature", res, res.Error, tc.wantCode, tc.wantDesc)
				}
				return
			}
			if res.Error != nil {
				t.Fatalf("refused: %v", res.Error)
			}
			sb, _ := RawBytesSignBytes(good.ChainID, good.UniqueID, good.RawBytes)
			pk, _ := tc.s.PubKey(ctx, "test")
			if !ed25519.Verify(pk, sb, res.Signature) {
				t.Fatal("signature does not verify over RawBytesSignBytes")
			}
		})
	}
}

func FuzzDecodeRawBytesRequest(f *testing.F) {
	f.Add(mustHex(f, vectorRawBytesRequest))
	f.Add(mustHex(f, vectorRawBytesResponse))
	f.Add([]byte(pb{}.bytes(9, pb{}.bytes(1, []byte("x")))))
	f.Add([]byte(pb{}.bytes(9, pb{}.bytes(3, []byte("u")).bytes(2, VoteSignBytes("c", &Vote{Type: PrevoteType, Height: 1})))))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalMessage(b)
		if err != nil {
			return
		}
		enc := MarshalMessage(m)
		if m2, err := UnmarshalMessage(enc); err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("decode(encode(decode(%x))) = %#v, %v; want %#v", b, m2, err, m)
		}
		r, ok := m.(*SignRawBytesRequest)
		if !ok {
			return
		}
		if r.RawBytes == nil && r.UniqueID == "" {
			t.Fatalf("%x decodes as a raw bytes request with neither raw bytes nor unique id", b)
		}
		sb, err := RawBytesSignBytes(r.ChainID, r.UniqueID, r.RawBytes)
		if err != nil {
			return
		}
		if err := refusedAsConsensus(sb); err != nil {
			t.Fatalf("sign bytes %x of %x: %v", sb, b, err)
		}
		if p, err := ParseRawBytesSignBytes(sb); err != nil || !reflect.DeepEqual(p, r) {
			t.Fatalf("ParseRawBytesSignBytes(%x) = %#v, %v; want %#v", sb, p, err, r)
		}
	})
}

func TestParseRawBytesSignBytes(t *testing.T) {
	good, err := RawBytesSignBytes("test", "test-msg", bytes.Repeat([]byte{1}, 1000))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseRawBytesSignBytes(good)
	if err != nil || !reflect.DeepEqual(got, vectorRawBytes) {
		t.Fatalf("ParseRawBytesSignBytes = %#v, %v; want %#v", got, err, vectorRawBytes)
	}
	frame := func(body []byte) []byte {
		b := append([]byte(RawBytesSignBytesPrefix), protowire.AppendVarint(nil, uint64(len(body)))...)
		return append(b, body...)
	}
	vote := VoteSignBytes("c", &Vote{Type: PrevoteType, Height: 1})
	for _, tc := range []struct {
		name    string
		b       []byte
		wantErr string
	}{
		{"vote sign bytes", vote, "do not begin with"},
		{"no prefix", good[1:], "do not begin with"},
		{"trailing byte", append(append([]byte(nil), good...), 0), "length prefix"},
		{"truncated", good[:len(good)-1], "length prefix"},
		{"fields out of order", frame(pb{}.bytes(3, []byte("u")).bytes(1, []byte("c")).bytes(2, []byte{1})), "canonical"},
		{"unknown field", frame(pb{}.bytes(1, []byte("c")).bytes(2, []byte{1}).bytes(3, []byte("u")).varint(4, 1)), "canonical"},
		{"no unique id", frame(pb{}.bytes(1, []byte("c")).bytes(2, []byte{1})), "empty unique id"},
		{"wrong wire type", frame(pb{}.varint(1, 1)), "wire type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if m, err := ParseRawBytesSignBytes(tc.b); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseRawBytesSignBytes(%x) = %#v, %v; want an error with %q", tc.b, m, err, tc.wantErr)
			}
		})
	}
}
