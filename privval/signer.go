package privval

import (
	"context"
	"crypto/ed25519"
	"time"
)

// Step is the consensus step of a signature, numbered as CometBFT's FilePV
// numbers them (TMKMS state files use 0/1/2; translate on import).
type Step int8

// Steps, in the order a height signs them.
const (
	StepProposal  Step = 1
	StepPrevote   Step = 2
	StepPrecommit Step = 3
)

// String returns "proposal", "prevote" or "precommit".
func (s Step) String() string {
	switch s {
	case StepProposal:
		return "proposal"
	case StepPrevote:
		return "prevote"
	case StepPrecommit:
		return "precommit"
	}
	return "unknown"
}

// SignRequest is one vote or proposal to sign, already checked for its chain
// id and turned into canonical sign bytes by this package. A Signer needs no
// knowledge of CometBFT's wire formats to serve it.
type SignRequest struct {
	ChainID   string
	Step      Step
	Height    int64
	Round     int32
	Timestamp time.Time
	// BlockID is the hash of the block voted for or proposed; empty for a
	// nil vote. It is used in logs and to tell conflicting payloads apart.
	BlockID []byte
	// SignBytes are the canonical sign bytes (CanonicalVote or
	// CanonicalProposal, uvarint length-delimited) to sign.
	SignBytes []byte
	// ExtSignBytes, when non-nil, are the canonical vote extension sign
	// bytes; the Signer must sign them too (non-nil precommits only).
	ExtSignBytes []byte
}

// SignResponse is a Signer's answer to a SignRequest.
type SignResponse struct {
	Signature []byte
	// Timestamp is the timestamp the signature covers. It differs from the
	// request's when the Signer answers a same-HRS request whose content
	// differs only by timestamp with the signature it already released.
	Timestamp    time.Time
	ExtSignature []byte
}

// Signer is what the request loop hands requests to: softsign and the
// threshold coordinator implement it. It must be safe for concurrent use
// (one goroutine per node connection calls it). An error is returned to the
// node as a RemoteSignerError whose description is the error's text; the
// connection stays open.
type Signer interface {
	// PubKey returns the consensus public key for chainID.
	PubKey(ctx context.Context, chainID string) (ed25519.PublicKey, error)
	// Sign signs req, enforcing double-sign protection.
	Sign(ctx context.Context, req *SignRequest) (*SignResponse, error)
}

// RawBytesSigner is implemented by the Signers that can answer
// celestia-core's SignRawBytesRequest. HandleRequest checks the request's
// chain id against the connection's and computes its sign bytes
// (RawBytesSignBytes) before calling SignRawBytes; a Signer that does not
// implement it has every such request refused with CodeUnsupported.
//
// Raw bytes have no height, round or step: SignRawBytes moves no sign-state
// mark and is not subject to double-sign protection. Their safety rests on
// the sign bytes' prefix, which no consensus message can begin with (see
// RawBytesSignBytes), and on the chain having opted in: a chain that has
// not must be refused with an error wrapping ErrRawBytesDisabled.
// SignRawBytes must be safe for concurrent use and return a 64-byte ed25519
// signature of req.SignBytes.
type RawBytesSigner interface {
	SignRawBytes(ctx context.Context, req *RawBytesRequest) ([]byte, error)
}
