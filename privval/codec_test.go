package privval

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	cmtcrypto "github.com/cometbft/cometbft/proto/tendermint/crypto"
	cmtprivval "github.com/cometbft/cometbft/proto/tendermint/privval"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"google.golang.org/protobuf/encoding/protowire"
)

func sha(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// CometBFT's fixtures from privval/msgs_test.go.
var (
	vectorStamp = time.Date(2019, 10, 13, 16, 14, 44, 0, time.UTC)
	vectorVote  = Vote{
		Type:   PrecommitType,
		Height: 3,
		Round:  2,
		BlockID: BlockID{Hash: sha("blockID_hash"),
			PartSetHeader: PartSetHeader{Total: 1000000, Hash: sha("blockID_part_set_header_hash")}},
		Timestamp:        vectorStamp,
		ValidatorAddress: sha("validator_address")[:20],
		ValidatorIndex:   56789,
		Extension:        []byte("extension"),
	}
	vectorProposal = Proposal{
		Type:      PrevoteType, // sic: CometBFT's fixture; sign bytes ignore it
		Height:    3,
		Round:     2,
		POLRound:  2,
		Timestamp: vectorStamp,
		Signature: []byte("it's a signature"),
		BlockID: BlockID{Hash: sha("blockID_hash"),
			PartSetHeader: PartSetHeader{Total: 1000000, Hash: sha("blockID_part_set_header_hash")}},
	}
	vectorError  = &RemoteSignerError{Code: 1, Description: "it's a error"}
	vectorPubKey = "556a436f1218d30942efe798420f51dc9b6a311b929c578257457d05c5fcf230"
)

// privvalVectors are CometBFT's published privval message encodings
// (privval/msgs_test.go, TestPrivvalVectors). ours is set where our
// encoding differs: a public key reply also carries v1.0's fields 3 and 4.
var privvalVectors = []struct {
	name  string
	msg   Message
	hex   string
	ours  string
	empty bool // the vector's vote or proposal is CometBFT's zero value
}{
	{name: "ping request", msg: &PingRequest{}, hex: "3a00"},
	{name: "ping response", msg: &PingResponse{}, hex: "4200"},
	{name: "pubkey request", msg: &PubKeyRequest{}, hex: "0a00"},
	{name: "pubkey response", msg: &PubKeyResponse{PubKeyType: PubKeyTypeEd25519},
		hex:  "12240a220a20" + vectorPubKey,
		ours: "124f0a220a20" + vectorPubKey + "1a20" + vectorPubKey + "2207" + hex.EncodeToString([]byte("ed25519"))},
	{name: "pubkey response with error", msg: &PubKeyResponse{Error: vectorError},
		hex: "12140a0012100801120c697427732061206572726f72"},
	{name: "vote request", msg: &SignVoteRequest{Vote: &vectorVote},
		hex: "1a81010a7f080210031802224a0a208b01023386c371778ecb6368573e539afc3cc860ec3a2f614e54fe5652f4fc80122608c0843d122072db3d959635dff1bb567bedaa70573392c5159666a3f8caf11e413aac52207a2a0608f49a8ded0532146af1f4111082efb388211bc72c55bcd61e9ac3d538d5bb034a09657874656e73696f6e"},
	{name: "vote response", msg: &SignedVoteResponse{Vote: vectorVote},
		hex: "2281010a7f080210031802224a0a208b01023386c371778ecb6368573e539afc3cc860ec3a2f614e54fe5652f4fc80122608c0843d122072db3d959635dff1bb567bedaa70573392c5159666a3f8caf11e413aac52207a2a0608f49a8ded0532146af1f4111082efb388211bc72c55bcd61e9ac3d538d5bb034a09657874656e73696f6e"},
	{name: "vote response with error", msg: &SignedVoteResponse{Error: vectorError},
		hex: "22250a11220212002a0b088092b8c398feffffff0112100801120c697427732061206572726f72"},
	{name: "proposal request", msg: &SignProposalRequest{Proposal: &vectorProposal},
		hex: "2a700a6e08011003180220022a4a0a208b01023386c371778ecb6368573e539afc3cc860ec3a2f614e54fe5652f4fc80122608c0843d122072db3d959635dff1bb567bedaa70573392c5159666a3f8caf11e413aac52207a320608f49a8ded053a10697427732061207369676e6174757265"},
	{name: "proposal response", msg: &SignedProposalResponse{Proposal: vectorProposal},
		hex: "32700a6e08011003180220022a4a0a208b01023386c371778ecb6368573e539afc3cc860ec3a2f614e54fe5652f4fc80122608c0843d122072db3d959635dff1bb567bedaa70573392c5159666a3f8caf11e413aac52207a320608f49a8ded053a10697427732061207369676e6174757265"},
	{name: "proposal response with error", msg: &SignedProposalResponse{Error: vectorError},
		hex: "32250a112a021200320b088092b8c398feffffff0112100801120c697427732061206572726f72"},
}

func init() {
	pk, _ := hex.DecodeString(vectorPubKey)
	for i := range privvalVectors {
		if m, ok := privvalVectors[i].msg.(*PubKeyResponse); ok && m.PubKeyType != "" {
			m.PubKey = pk
		}
	}
}

func TestPrivvalVectors(t *testing.T) {
	for _, tc := range privvalVectors {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.ours
			if want == "" {
				want = tc.hex
			}
			if got := hex.EncodeToString(MarshalMessage(tc.msg)); got != want {
				t.Errorf("MarshalMessage =\n%s\nwant\n%s", got, want)
			}
			for _, enc := range []string{tc.hex, want} {
				got, err := UnmarshalMessage(mustHex(t, enc))
				if err != nil {
					t.Fatalf("UnmarshalMessage(%s): %v", enc, err)
				}
				if !reflect.DeepEqual(got, tc.msg) {
					t.Errorf("UnmarshalMessage(%s) =\n%#v\nwant\n%#v", enc, got, tc.msg)
				}
			}
		})
	}
}

// toCometBFT converts a message v0.38 knows into its gogoproto form.
func toCometBFT(t testing.TB, m Message) *cmtprivval.Message {
	t.Helper()
	rse := func(e *RemoteSignerError) *cmtprivval.RemoteSignerError {
		if e == nil {
			return nil
		}
		return &cmtprivval.RemoteSignerError{Code: e.Code, Description: e.Description}
	}
	switch m := m.(type) {
	case *PubKeyRequest:
		return &cmtprivval.Message{Sum: &cmtprivval.Message_PubKeyRequest{PubKeyRequest: &cmtprivval.PubKeyRequest{ChainId: m.ChainID}}}
	case *PubKeyResponse:
		var pk cmtcrypto.PublicKey
		if len(m.PubKey) > 0 {
			pk.Sum = &cmtcrypto.PublicKey_Ed25519{Ed25519: m.PubKey}
		}
		return &cmtprivval.Message{Sum: &cmtprivval.Message_PubKeyResponse{PubKeyResponse: &cmtprivval.PubKeyResponse{PubKey: pk, Error: rse(m.Error)}}}
	case *SignVoteRequest:
		var v *cmtproto.Vote
		if m.Vote != nil {
			v = cmtVote(m.Vote)
		}
		return &cmtprivval.Message{Sum: &cmtprivval.Message_SignVoteRequest{SignVoteRequest: &cmtprivval.SignVoteRequest{Vote: v, ChainId: m.ChainID}}}
	case *SignedVoteResponse:
		return &cmtprivval.Message{Sum: &cmtprivval.Message_SignedVoteResponse{SignedVoteResponse: &cmtprivval.SignedVoteResponse{Vote: *cmtVote(&m.Vote), Error: rse(m.Error)}}}
	case *SignProposalRequest:
		var p *cmtproto.Proposal
		if m.Proposal != nil {
			p = cmtProposal(m.Proposal)
		}
		return &cmtprivval.Message{Sum: &cmtprivval.Message_SignProposalRequest{SignProposalRequest: &cmtprivval.SignProposalRequest{Proposal: p, ChainId: m.ChainID}}}
	case *SignedProposalResponse:
		return &cmtprivval.Message{Sum: &cmtprivval.Message_SignedProposalResponse{SignedProposalResponse: &cmtprivval.SignedProposalResponse{Proposal: *cmtProposal(&m.Proposal), Error: rse(m.Error)}}}
	case *PingRequest:
		return &cmtprivval.Message{Sum: &cmtprivval.Message_PingRequest{PingRequest: &cmtprivval.PingRequest{}}}
	case *PingResponse:
		return &cmtprivval.Message{Sum: &cmtprivval.Message_PingResponse{PingResponse: &cmtprivval.PingResponse{}}}
	}
	t.Fatalf("no CometBFT v0.38 form for %T", m)
	return nil
}

func randomError(r *rand.Rand) *RemoteSignerError {
	if r.IntN(2) == 0 {
		return nil
	}
	return &RemoteSignerError{Code: r.Int32() - r.Int32(), Description: randomChainID(r)}
}

// randomV038Message returns a random message of the kinds v0.38 knows.
func randomV038Message(r *rand.Rand) Message {
	switch r.IntN(8) {
	case 0:
		return &PubKeyRequest{ChainID: randomChainID(r)}
	case 1:
		m := &PubKeyResponse{Error: randomError(r)}
		if r.IntN(3) > 0 {
			m.PubKey, m.PubKeyType = randomBytes(r, 32), PubKeyTypeEd25519
		}
		return m
	case 2:
		m := &SignVoteRequest{ChainID: randomChainID(r)}
		if r.IntN(5) > 0 {
			v := randomVote(r)
			m.Vote = &v
		}
		return m
	case 3:
		return &SignedVoteResponse{Vote: randomVote(r), Error: randomError(r)}
	case 4:
		m := &SignProposalRequest{ChainID: randomChainID(r)}
		if r.IntN(5) > 0 {
			p := randomProposal(r)
			m.Proposal = &p
		}
		return m
	case 5:
		return &SignedProposalResponse{Proposal: randomProposal(r), Error: randomError(r)}
	case 6:
		return &PingRequest{}
	}
	return &PingResponse{}
}

func TestCodecMatchesCometBFT(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for i := 0; i < 3000; i++ {
		m := randomV038Message(r)
		cm := toCometBFT(t, m)
		theirs, err := cm.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ours := MarshalMessage(m)

		// Ours decodes with gogoproto to the same message.
		var decoded cmtprivval.Message
		if err := decoded.Unmarshal(ours); err != nil {
			t.Fatalf("gogoproto cannot decode our %T %x: %v", m, ours, err)
		}
		again, err := decoded.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, theirs) {
			t.Fatalf("%T: gogoproto read ours as\n%x\nwant\n%x", m, again, theirs)
		}
		// And byte for byte what gogoproto writes, but for the public key
		// reply, which also carries v1.0's fields.
		if _, ok := m.(*PubKeyResponse); !ok && !bytes.Equal(ours, theirs) {
			t.Fatalf("%T: MarshalMessage =\n%x\ngogoproto =\n%x", m, ours, theirs)
		}

		// Theirs decodes with ours to the same message.
		got, err := UnmarshalMessage(theirs)
		if err != nil {
			t.Fatalf("UnmarshalMessage(%x) of %T: %v", theirs, m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("UnmarshalMessage(gogoproto's) =\n%#v\nwant\n%#v", got, m)
		}
	}
}

// pb builds protobuf bytes by hand for v1.0's fields, which the v0.38
// module in go.mod does not know.
type pb []byte

func (b pb) bytes(num protowire.Number, v []byte) pb {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func (b pb) varint(num protowire.Number, v uint64) pb {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func TestCodecV1Fields(t *testing.T) {
	pk := mustHex(t, vectorPubKey)
	other := bytes.Repeat([]byte{7}, 32)
	vote := MarshalMessage(&SignedVoteResponse{Vote: vectorVote})
	voteBody := vectorVote.appendTo(nil)
	tests := []struct {
		name    string
		b       []byte
		want    Message
		wantErr string
	}{
		{"v1.0 public key reply", pb{}.bytes(2, pb{}.bytes(3, pk).bytes(4, []byte("ed25519"))),
			&PubKeyResponse{PubKey: pk, PubKeyType: PubKeyTypeEd25519}, ""},
		{"both forms", pb{}.bytes(2, pb{}.bytes(1, pb{}.bytes(1, pk)).bytes(3, pk).bytes(4, []byte("ed25519"))),
			&PubKeyResponse{PubKey: pk, PubKeyType: PubKeyTypeEd25519}, ""},
		{"forms disagree", pb{}.bytes(2, pb{}.bytes(1, pb{}.bytes(1, pk)).bytes(3, other).bytes(4, []byte("ed25519"))),
			nil, "disagree"},
		{"secp256k1 legacy key", pb{}.bytes(2, pb{}.bytes(1, pb{}.bytes(2, other[:33-1]))),
			&PubKeyResponse{PubKey: other[:32], PubKeyType: PubKeyTypeSecp256k1}, ""},
		{"skip extension signing", pb{}.bytes(3, pb(nil).bytes(1, voteBody).bytes(2, []byte("c")).varint(3, 1)),
			&SignVoteRequest{Vote: &vectorVote, ChainID: "c", SkipExtensionSigning: true}, ""},
		{"sign bytes request", pb{}.bytes(9, pb{}.bytes(1, []byte("anything"))),
			&SignBytesRequest{Value: []byte("anything")}, ""},
		{"sign bytes response", pb{}.bytes(10, pb{}.bytes(1, other).bytes(2, pb{}.varint(1, 5).bytes(2, []byte("no")))),
			&SignBytesResponse{Signature: other, Error: &RemoteSignerError{Code: 5, Description: "no"}}, ""},
		{"unknown oneof field skipped", pb{}.bytes(11, []byte{1, 2}).bytes(7, nil).varint(12, 9),
			&PingRequest{}, ""},
		{"unknown vote fields skipped", pb{}.bytes(3, pb{}.bytes(1, append(pb(voteBody).varint(15, 3), pb{}.bytes(16, []byte("x"))...))),
			&SignVoteRequest{Vote: &vectorVote}, ""},
		{"last oneof wins", pb{}.bytes(1, pb{}.bytes(1, []byte("a"))).bytes(7, nil),
			&PingRequest{}, ""},
		{"empty", nil, nil, "no known"},
		{"only unknown fields", pb{}.varint(20, 1), nil, "no known"},
		{"truncated", vote[:len(vote)-1], nil, "unexpected EOF"},
		{"wrong wire type for oneof", pb{}.varint(3, 1), nil, "wire type"},
		{"wrong wire type in vote", pb{}.bytes(3, pb{}.bytes(1, pb{}.bytes(2, []byte{1}))), nil, "wire type"},
		{"timestamp out of range", pb{}.bytes(3, pb{}.bytes(1, pb{}.bytes(5, pb{}.varint(1, 1<<62)))), nil, "out of range"},
		{"negative nanos", pb{}.bytes(3, pb{}.bytes(1, pb{}.bytes(5, pb{}.varint(2, uint64(1<<64-1))))), nil, "out of range"},
		{"bad tag", []byte{0x00, 0x00}, nil, "invalid field number"},
		{"bad nested tag", pb{}.bytes(3, pb{}.bytes(1, []byte{0x22, 0x01, 0x00})), nil, "invalid field number"},
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
				t.Fatalf("UnmarshalMessage(%x) =\n%#v\nwant\n%#v", tc.b, got, tc.want)
			}
		})
	}
	if !errors.Is(func() error { _, err := UnmarshalMessage(nil); return err }(), ErrEmptyMessage) {
		t.Error("empty input does not return ErrEmptyMessage")
	}
}

func TestPubKeyResponseCarriesBothForms(t *testing.T) {
	pk := mustHex(t, vectorPubKey)
	b := MarshalMessage(&PubKeyResponse{PubKey: pk, PubKeyType: PubKeyTypeEd25519})
	// v0.34–v0.38 read field 1.
	var old cmtprivval.Message
	if err := old.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	legacy := old.GetPubKeyResponse().GetPubKey()
	if got := legacy.GetEd25519(); !bytes.Equal(got, pk) {
		t.Fatalf("v0.38 reads public key %x, want %x", got, pk)
	}
	// v1.0 reads fields 3 and 4 of the reply.
	body := b[2:]
	var key []byte
	var typ string
	for len(body) > 0 {
		num, _, n := protowire.ConsumeTag(body)
		v, m := protowire.ConsumeBytes(body[n:])
		if n < 0 || m < 0 {
			t.Fatal("malformed reply")
		}
		switch num {
		case 3:
			key = v
		case 4:
			typ = string(v)
		}
		body = body[n+m:]
	}
	if !bytes.Equal(key, pk) || typ != "ed25519" {
		t.Fatalf("v1.0 reads pub_key_bytes %x, pub_key_type %q", key, typ)
	}
	if n := len(b); n > 100 {
		t.Fatalf("public key reply of %d bytes", n)
	}
}

func TestFraming(t *testing.T) {
	var buf bytes.Buffer
	msgs := []Message{&PingRequest{}, &SignVoteRequest{Vote: &vectorVote, ChainID: "c"}, &PubKeyRequest{ChainID: "c"}}
	for _, m := range msgs {
		if err := WriteMessage(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&buf)
	for _, want := range msgs {
		got, err := ReadMessage(r)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ReadMessage = %#v, want %#v", got, want)
		}
	}
	if _, err := ReadMessage(r); err != io.EOF {
		t.Fatalf("ReadMessage at the end = %v, want io.EOF", err)
	}

	big := &SignBytesRequest{Value: make([]byte, MaxFrameSize)}
	if err := WriteMessage(io.Discard, big); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("WriteMessage of %d bytes = %v, want ErrFrameTooLarge", MaxFrameSize, err)
	}

	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"just over the limit", protowire.AppendVarint(nil, MaxFrameSize+1), ErrFrameTooLarge},
		{"huge length", protowire.AppendVarint(nil, 1<<62), ErrFrameTooLarge},
		{"overlong length", []byte{0x81, 0x80, 0x00}, ErrFrameTooLarge},
		{"cut in the length", []byte{0x81}, io.ErrUnexpectedEOF},
		{"cut in the body", []byte{0x05, 1, 2}, io.ErrUnexpectedEOF},
		{"empty", nil, io.EOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadFrame(bufio.NewReader(bytes.NewReader(tc.b)))
			if !errors.Is(err, tc.want) {
				t.Fatalf("ReadFrame(%x) = %v, want %v", tc.b, err, tc.want)
			}
		})
	}
	// Exactly MaxFrameSize is allowed.
	b := protowire.AppendVarint(nil, MaxFrameSize)
	b = append(b, make([]byte, MaxFrameSize)...)
	if got, err := ReadFrame(bufio.NewReader(bytes.NewReader(b))); err != nil || len(got) != MaxFrameSize {
		t.Fatalf("ReadFrame of MaxFrameSize: %d bytes, %v", len(got), err)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	for _, tc := range privvalVectors {
		f.Add(mustHex(f, tc.hex))
		if tc.ours != "" {
			f.Add(mustHex(f, tc.ours))
		}
	}
	f.Add([]byte(pb{}.bytes(9, pb{}.bytes(1, []byte("x")))))
	f.Add([]byte(pb{}.bytes(3, pb{}.bytes(1, pb{}.varint(1, 2)).varint(3, 1))))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalMessage(b)
		if err != nil {
			return
		}
		enc := MarshalMessage(m)
		m2, err := UnmarshalMessage(enc)
		if err != nil {
			t.Fatalf("re-decoding %x (from %x): %v", enc, b, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("decode(encode(decode(%x))) =\n%#v\nwant\n%#v", b, m2, m)
		}
		if enc2 := MarshalMessage(m2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %x then %x", enc, enc2)
		}
	})
}

func BenchmarkDecodeSignVoteRequest(b *testing.B) {
	v := vectorVote
	v.Extension = bytes.Repeat([]byte{9}, 64)
	enc := MarshalMessage(&SignVoteRequest{Vote: &v, ChainID: "kira-1"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UnmarshalMessage(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeSignedVoteResponse(b *testing.B) {
	v := vectorVote
	v.Signature = bytes.Repeat([]byte{1}, 64)
	v.ExtensionSignature = bytes.Repeat([]byte{2}, 64)
	m := &SignedVoteResponse{Vote: v}
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteMessage(io.Discard, m); err != nil {
			b.Fatal(err)
		}
	}
}
