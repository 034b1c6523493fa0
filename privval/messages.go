package privval

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// SignedMsgType is CometBFT's tendermint.types.SignedMsgType: what a
// signature is for.
type SignedMsgType int32

// The signed message types CometBFT defines.
const (
	UnknownType   SignedMsgType = 0
	PrevoteType   SignedMsgType = 1
	PrecommitType SignedMsgType = 2
	ProposalType  SignedMsgType = 32
)

// String returns "prevote", "precommit", "proposal" or "type(N)".
func (t SignedMsgType) String() string {
	switch t {
	case PrevoteType:
		return "prevote"
	case PrecommitType:
		return "precommit"
	case ProposalType:
		return "proposal"
	}
	return fmt.Sprintf("type(%d)", int32(t))
}

// PartSetHeader is tendermint.types.PartSetHeader.
type PartSetHeader struct {
	Total uint32
	Hash  []byte
}

// IsZero reports whether h is the part set header of a nil block.
func (h PartSetHeader) IsZero() bool { return h.Total == 0 && len(h.Hash) == 0 }

// BlockID is tendermint.types.BlockID. The zero BlockID (no hash, zero part
// set header) is the block id of a nil vote.
type BlockID struct {
	Hash          []byte
	PartSetHeader PartSetHeader
}

// IsZero reports whether id is the block id of a nil vote, by CometBFT's
// rule: an empty hash and a zero part set header. The canonical sign bytes
// omit such a block id, and only precommits with a non-zero block id carry a
// signed vote extension.
func (id BlockID) IsZero() bool { return len(id.Hash) == 0 && id.PartSetHeader.IsZero() }

// Vote is tendermint.types.Vote (cometbft.types.v1.Vote): the same fields
// from v0.34 to v1.0, with Extension and ExtensionSignature added in v0.38.
//
// A zero Timestamp (time.Time{}) stands for an absent timestamp field, as in
// CometBFT, whose non-nullable timestamps decode an absent field to the zero
// time and encode the zero time as -62135596800 seconds.
type Vote struct {
	Type               SignedMsgType
	Height             int64
	Round              int32
	BlockID            BlockID
	Timestamp          time.Time
	ValidatorAddress   []byte
	ValidatorIndex     int32
	Signature          []byte
	Extension          []byte
	ExtensionSignature []byte
}

// Proposal is tendermint.types.Proposal.
type Proposal struct {
	Type      SignedMsgType
	Height    int64
	Round     int32
	POLRound  int32
	BlockID   BlockID
	Timestamp time.Time
	Signature []byte
}

// RemoteSignerError is tendermint.privval.RemoteSignerError: a refusal or
// failure reported to the node in place of a signature. It implements error.
type RemoteSignerError struct {
	Code        int32
	Description string
}

// Error returns the description and the code.
func (e *RemoteSignerError) Error() string {
	return fmt.Sprintf("remote signer error %d: %s", e.Code, e.Description)
}

// Codes of the RemoteSignerErrors this package sends. CometBFT only prints
// the code; it is non-zero so that no refusal looks like success, and above
// the range of CometBFT's own privval.Errors enum (0–5) so that no refusal
// reads as one of its connection errors.
const (
	// CodeWrongChainID: the request names a chain this signer does not serve.
	CodeWrongChainID int32 = 101
	// CodeInvalidRequest: the request is malformed (no vote, an unknown vote
	// type, a negative height, a block hash of the wrong size, ...).
	CodeInvalidRequest int32 = 102
	// CodeSignerError: the Signer refused or failed (double-sign protection,
	// lost quorum, timeout); the description is its error's text.
	CodeSignerError int32 = 103
	// CodeUnsupported: a request this signer never serves, such as v1.0's
	// SignBytesRequest (signing arbitrary bytes with the consensus key).
	CodeUnsupported int32 = 104
)

// Message is one privval message: the oneof of tendermint.privval.Message
// (cometbft.privval.v1.Message). Its implementations are the pointer types
// of this file, from *PubKeyRequest to *SignBytesResponse; the set is
// closed.
type Message interface {
	// oneofField is the number of the Message oneof field that carries it.
	oneofField() protowire.Number
	// size is the length of its encoding, without tag or length prefix.
	size() int
	// appendTo appends its encoding, without tag or length prefix.
	appendTo(b []byte) []byte
	// decode merges the encoding b into the receiver.
	decode(b []byte) error
}

// Oneof field numbers of tendermint.privval.Message.
const (
	fieldPubKeyRequest          protowire.Number = 1
	fieldPubKeyResponse         protowire.Number = 2
	fieldSignVoteRequest        protowire.Number = 3
	fieldSignedVoteResponse     protowire.Number = 4
	fieldSignProposalRequest    protowire.Number = 5
	fieldSignedProposalResponse protowire.Number = 6
	fieldPingRequest            protowire.Number = 7
	fieldPingResponse           protowire.Number = 8
	fieldSignBytesRequest       protowire.Number = 9
	fieldSignBytesResponse      protowire.Number = 10
)

// PubKeyRequest asks for the consensus public key of ChainID.
type PubKeyRequest struct {
	ChainID string
}

// PubKeyTypeEd25519 is the key type name CometBFT uses for ed25519 keys.
const PubKeyTypeEd25519 = "ed25519"

// PubKeyTypeSecp256k1 is the key type name CometBFT uses for secp256k1 keys.
const PubKeyTypeSecp256k1 = "secp256k1"

// PubKeyResponse answers a PubKeyRequest.
//
// It is encoded in both forms at once so that one reply serves every
// CometBFT version: v0.34–v0.38's field 1 (tendermint.crypto.PublicKey, a
// oneof of ed25519 and secp256k1 bytes) and v1.0's pub_key_bytes (3) and
// pub_key_type (4). Decoding accepts either or both, and rejects a reply
// whose two forms disagree.
type PubKeyResponse struct {
	PubKey     []byte
	PubKeyType string // PubKeyTypeEd25519 for every key this package serves
	Error      *RemoteSignerError
}

// SignVoteRequest asks for a vote signature.
type SignVoteRequest struct {
	Vote    *Vote
	ChainID string
	// SkipExtensionSigning is v1.0's flag: the node does not want the vote
	// extension signed. Earlier versions never set it.
	SkipExtensionSigning bool
}

// SignedVoteResponse answers a SignVoteRequest: the vote with its
// signatures, or an error.
type SignedVoteResponse struct {
	Vote  Vote
	Error *RemoteSignerError
}

// SignProposalRequest asks for a proposal signature.
type SignProposalRequest struct {
	Proposal *Proposal
	ChainID  string
}

// SignedProposalResponse answers a SignProposalRequest.
type SignedProposalResponse struct {
	Proposal Proposal
	Error    *RemoteSignerError
}

// PingRequest is the node's keep-alive.
type PingRequest struct{}

// PingResponse answers a PingRequest.
type PingResponse struct{}

// SignBytesRequest is v1.0's request to sign arbitrary bytes with the
// consensus key. This package always refuses it. (celestia-core's request
// on the same oneof field is SignRawBytesRequest.)
type SignBytesRequest struct {
	Value []byte
}

// SignBytesResponse answers a SignBytesRequest.
type SignBytesResponse struct {
	Signature []byte
	Error     *RemoteSignerError
}

// Compile-time checks that every message type is a Message.
var (
	_ Message = (*PubKeyRequest)(nil)
	_ Message = (*PubKeyResponse)(nil)
	_ Message = (*SignVoteRequest)(nil)
	_ Message = (*SignedVoteResponse)(nil)
	_ Message = (*SignProposalRequest)(nil)
	_ Message = (*SignedProposalResponse)(nil)
	_ Message = (*PingRequest)(nil)
	_ Message = (*PingResponse)(nil)
	_ Message = (*SignBytesRequest)(nil)
	_ Message = (*SignBytesResponse)(nil)
)

func (*PubKeyRequest) oneofField() protowire.Number          { return fieldPubKeyRequest }
func (*PubKeyResponse) oneofField() protowire.Number         { return fieldPubKeyResponse }
func (*SignVoteRequest) oneofField() protowire.Number        { return fieldSignVoteRequest }
func (*SignedVoteResponse) oneofField() protowire.Number     { return fieldSignedVoteResponse }
func (*SignProposalRequest) oneofField() protowire.Number    { return fieldSignProposalRequest }
func (*SignedProposalResponse) oneofField() protowire.Number { return fieldSignedProposalResponse }
func (*PingRequest) oneofField() protowire.Number            { return fieldPingRequest }
func (*PingResponse) oneofField() protowire.Number           { return fieldPingResponse }
func (*SignBytesRequest) oneofField() protowire.Number       { return fieldSignBytesRequest }
func (*SignBytesResponse) oneofField() protowire.Number      { return fieldSignBytesResponse }

// newMessage returns an empty message for a oneof field number, or nil for
// a number this package does not know.
func newMessage(num protowire.Number) Message {
	switch num {
	case fieldPubKeyRequest:
		return new(PubKeyRequest)
	case fieldPubKeyResponse:
		return new(PubKeyResponse)
	case fieldSignVoteRequest:
		return new(SignVoteRequest)
	case fieldSignedVoteResponse:
		return new(SignedVoteResponse)
	case fieldSignProposalRequest:
		return new(SignProposalRequest)
	case fieldSignedProposalResponse:
		return new(SignedProposalResponse)
	case fieldPingRequest:
		return new(PingRequest)
	case fieldPingResponse:
		return new(PingResponse)
	case fieldSignBytesRequest:
		return new(SignBytesRequest)
	case fieldSignBytesResponse:
		return new(SignBytesResponse)
	}
	return nil
}

// messageName names a message for logs and errors.
func messageName(m Message) string {
	switch m.(type) {
	case *PubKeyRequest:
		return "pubkey request"
	case *PubKeyResponse:
		return "pubkey response"
	case *SignVoteRequest:
		return "sign vote request"
	case *SignedVoteResponse:
		return "signed vote response"
	case *SignProposalRequest:
		return "sign proposal request"
	case *SignedProposalResponse:
		return "signed proposal response"
	case *PingRequest:
		return "ping request"
	case *PingResponse:
		return "ping response"
	case *SignBytesRequest:
		return "sign bytes request"
	case *SignBytesResponse:
		return "sign bytes response"
	case *SignRawBytesRequest:
		return "sign raw bytes request"
	case *SignedRawBytesResponse:
		return "signed raw bytes response"
	case nil:
		return "nil"
	}
	return fmt.Sprintf("%T", m)
}
