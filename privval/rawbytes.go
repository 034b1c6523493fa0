package privval

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Celestia's raw-bytes signing.
//
// celestia-core (Celestia's fork of CometBFT, which keeps the module path
// github.com/cometbft/cometbft) adds to tendermint.privval.Message:
//
//	SignRawBytesRequest    = 9:  {string chain_id = 1; bytes raw_bytes = 2; string unique_id = 3}
//	SignedRawBytesResponse = 10: {bytes signature = 1; RemoteSignerError error = 2}
//
// CometBFT v1.0 numbers its SignBytesRequest {bytes value = 1} and
// SignBytesResponse {bytes signature = 1; RemoteSignerError error = 2} 9
// and 10 too. The two responses have the same shape. The requests are told
// apart by their fields: celestia-core never sends a request without
// raw_bytes and unique_id (its RawBytesMessageSignBytes refuses them empty),
// and v1.0's carries only field 1. UnmarshalMessage decodes field 9 as a
// SignRawBytesRequest when field 2 or 3 is present with a non-empty value,
// else as a SignBytesRequest, which HandleRequest refuses as before.
//
// The signature covers RawBytesSignBytes, not the raw bytes.

// RawBytesSignBytesPrefix opens the bytes a SignRawBytesRequest's signature
// covers (celestia-core's types.RawBytesSignBytesPrefix).
const RawBytesSignBytesPrefix = "COMET::RAW_BYTES::SIGN"

// SignRawBytesRequest is celestia-core's request to sign application bytes
// with the consensus key: RawBytes, for ChainID, under the caller's label
// UniqueID (a domain separator of its choosing, such as a message type).
type SignRawBytesRequest struct {
	ChainID  string
	RawBytes []byte
	UniqueID string
}

// SignedRawBytesResponse answers a SignRawBytesRequest. Its encoding is
// that of SignBytesResponse, into which UnmarshalMessage decodes it: the
// two cannot be told apart on the wire.
type SignedRawBytesResponse struct {
	Signature []byte
	Error     *RemoteSignerError
}

var (
	_ Message = (*SignRawBytesRequest)(nil)
	_ Message = (*SignedRawBytesResponse)(nil)
)

func (*SignRawBytesRequest) oneofField() protowire.Number    { return fieldSignBytesRequest }
func (*SignedRawBytesResponse) oneofField() protowire.Number { return fieldSignBytesResponse }

// RawBytesSignBytes returns the bytes celestia-core signs for a
// SignRawBytesRequest (its types.RawBytesMessageSignBytes):
//
//	"COMET::RAW_BYTES::SIGN" || uvarint(len(P)) || P
//
// where P is the protobuf encoding of SignRawBytesRequest{chain_id,
// raw_bytes, unique_id}, fields in tag order. It refuses an empty chain id,
// unique id or raw bytes, as celestia-core does.
//
// No such bytes can be taken for a vote, proposal or vote extension. Those
// are signed as a uvarint length followed by a CanonicalVote,
// CanonicalProposal or CanonicalVoteExtension. Read that way, the prefix's
// first byte 'C' (0x43) is a length of 67 and the message starts at its
// second byte, 'O' (0x4F): the tag of field 9 with wire type 7. Protobuf
// defines wire types 0 to 5 only, so every decoder (CometBFT's gogoproto
// code, and ParseSignBytes and ParseVoteExtensionSignBytes here) fails on
// that first tag, whatever follows. A signature over RawBytesSignBytes
// therefore never verifies as a consensus signature, and consensus sign
// bytes never begin with the prefix. TestRawBytesNeverConsensus checks it
// against both sets of decoders.
func RawBytesSignBytes(chainID, uniqueID string, rawBytes []byte) ([]byte, error) {
	switch {
	case chainID == "":
		return nil, errors.New("raw bytes request has an empty chain id")
	case uniqueID == "":
		return nil, errors.New("raw bytes request has an empty unique id")
	case len(rawBytes) == 0:
		return nil, errors.New("raw bytes request has no raw bytes")
	}
	m := &SignRawBytesRequest{ChainID: chainID, RawBytes: rawBytes, UniqueID: uniqueID}
	n := m.size()
	b := make([]byte, 0, len(RawBytesSignBytesPrefix)+protowire.SizeVarint(uint64(n))+n)
	b = append(b, RawBytesSignBytesPrefix...)
	b = protowire.AppendVarint(b, uint64(n))
	return m.appendTo(b), nil
}

// Codec.

func (m *SignRawBytesRequest) size() int {
	return sizeBytes(1, len(m.ChainID)) + sizeBytes(2, len(m.RawBytes)) + sizeBytes(3, len(m.UniqueID))
}

func (m *SignRawBytesRequest) appendTo(b []byte) []byte {
	b = appendString(b, 1, m.ChainID)
	b = appendBytes(b, 2, m.RawBytes)
	return appendString(b, 3, m.UniqueID)
}

func (m *SignRawBytesRequest) decode(b []byte) error {
	for len(b) > 0 {
		f, rest, err := consumeField(b)
		if err != nil {
			return err
		}
		b = rest
		switch f.num {
		case 1, 2, 3:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
		}
		switch f.num {
		case 1:
			m.ChainID = string(f.b)
		case 2:
			m.RawBytes = bytesOrNil(f.b)
		case 3:
			m.UniqueID = string(f.b)
		}
	}
	return nil
}

func (m *SignedRawBytesResponse) size() int {
	return (*SignBytesResponse)(m).size()
}

func (m *SignedRawBytesResponse) appendTo(b []byte) []byte {
	return (*SignBytesResponse)(m).appendTo(b)
}

func (m *SignedRawBytesResponse) decode(b []byte) error {
	return (*SignBytesResponse)(m).decode(b)
}

// isRawBytesRequest reports whether b, the body of Message field 9, is
// celestia's SignRawBytesRequest rather than v1.0's SignBytesRequest: it
// sets field 2 or 3 as a non-empty length-delimited value. A malformed b
// is left to the decoder chosen to report.
func isRawBytesRequest(b []byte) bool {
	for len(b) > 0 {
		f, rest, err := consumeField(b)
		if err != nil {
			return false
		}
		b = rest
		if (f.num == 2 || f.num == 3) && f.typ == protowire.BytesType && len(f.b) > 0 {
			return true
		}
	}
	return false
}

// Handling.

// ErrRawBytesDisabled is what a RawBytesSigner wraps when the chain has not
// opted in to raw-bytes signing; the node is then answered with
// CodeUnsupported, as for a signer that never signs raw bytes.
var ErrRawBytesDisabled = errors.New("raw bytes signing is not enabled for this chain")

// RawBytesRequest is a SignRawBytesRequest checked for its chain id, with
// the bytes to sign.
type RawBytesRequest struct {
	ChainID  string
	UniqueID string
	RawBytes []byte
	// SignBytes are RawBytesSignBytes(ChainID, UniqueID, RawBytes): what
	// the signature covers.
	SignBytes []byte
}

func handleSignRawBytes(ctx context.Context, s Signer, chainID string, m *SignRawBytesRequest) (Message, outcome) {
	o := outcome{what: "raw bytes", rawID: m.UniqueID, rawLen: len(m.RawBytes)}
	refuse := func(e *RemoteSignerError) (Message, outcome) {
		o.err = e
		return &SignedRawBytesResponse{Error: e}, o
	}
	if m.ChainID != chainID {
		return refuse(wrongChain(chainID, m.ChainID))
	}
	sb, err := RawBytesSignBytes(m.ChainID, m.UniqueID, m.RawBytes)
	if err != nil {
		return refuse(invalidRequest("%v", err))
	}
	rs, ok := s.(RawBytesSigner)
	if !ok {
		return refuse(&RemoteSignerError{
			Code:        CodeUnsupported,
			Description: "cosigner refuses SignRawBytesRequest: this signer does not sign raw bytes",
		})
	}
	sig, err := rs.SignRawBytes(ctx, &RawBytesRequest{ChainID: chainID, UniqueID: m.UniqueID, RawBytes: m.RawBytes, SignBytes: sb})
	if err == nil && len(sig) != ed25519.SignatureSize {
		err = fmt.Errorf("signer returned a raw bytes signature of %d bytes, want %d", len(sig), ed25519.SignatureSize)
	}
	if err != nil {
		o.cause = err
		e := signerError(err)
		if errors.Is(err, ErrRawBytesDisabled) {
			e.Code = CodeUnsupported
		}
		return refuse(e)
	}
	return &SignedRawBytesResponse{Signature: sig}, o
}

// ParseRawBytesSignBytes decodes bytes made by RawBytesSignBytes and
// returns the request they sign. It accepts only that exact encoding: the
// prefix, a length equal to the rest, the three fields non-empty and in tag
// order, nothing else. Threshold cosigners use it to check, from the bytes
// they are asked to sign, that a raw-bytes share is one. The result's
// RawBytes alias b.
func ParseRawBytesSignBytes(b []byte) (*SignRawBytesRequest, error) {
	rest, ok := bytes.CutPrefix(b, []byte(RawBytesSignBytesPrefix))
	if !ok {
		return nil, fmt.Errorf("raw bytes sign bytes do not begin with %q", RawBytesSignBytesPrefix)
	}
	n, k := protowire.ConsumeVarint(rest)
	if k < 0 || n != uint64(len(rest)-k) {
		return nil, errors.New("raw bytes sign bytes: the length prefix does not match the request")
	}
	m := new(SignRawBytesRequest)
	if err := m.decode(rest[k:]); err != nil {
		return nil, fmt.Errorf("raw bytes sign bytes: %w", err)
	}
	want, err := RawBytesSignBytes(m.ChainID, m.UniqueID, m.RawBytes)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(want, b) {
		return nil, errors.New("raw bytes sign bytes are not in canonical form")
	}
	return m, nil
}
