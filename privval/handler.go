package privval

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"
)

// HandleRequest answers one request from a node: it is the whole of the
// protocol's logic, with no I/O of its own besides the calls to s, so that
// it can be tested without sockets.
//
//   - PubKeyRequest: the key from s.PubKey, in both the v0.34–v0.38 and the
//     v1.0 encodings at once.
//   - SignVoteRequest, SignProposalRequest: checked (chain id, vote type,
//     height, round, hash sizes), turned into a SignRequest with canonical
//     sign bytes, signed by s.Sign, and answered with the node's own vote or
//     proposal carrying the signature, the signed timestamp and the
//     extension signature. The extension is signed, even when empty,
//     exactly for precommits with a non-zero block id, unless v1.0's
//     skip_extension_signing is set.
//   - PingRequest: a PingResponse.
//   - SignBytesRequest (v1.0): always refused; this signer never signs
//     arbitrary bytes with a consensus key.
//   - SignRawBytesRequest (celestia-core): checked for its chain id and
//     non-empty fields, and signed over RawBytesSignBytes by s if s is a
//     RawBytesSigner (which refuses chains that have not opted in); else
//     refused with CodeUnsupported.
//
// Every refusal and every error of s becomes a RemoteSignerError in the
// matching response, with a non-zero code (see CodeWrongChainID and the
// others). HandleRequest returns nil only when req is not a request at all
// (a response, or nil); the caller should then drop the connection, as the
// peer does not speak the protocol.
func HandleRequest(ctx context.Context, s Signer, chainID string, req Message) Message {
	res, _ := handleRequest(ctx, s, chainID, req)
	return res
}

// outcome describes a handled request for the connection's log line.
type outcome struct {
	what   string // "pubkey", "ping", "prevote", ...; "" for a non-request
	sign   bool   // a vote or proposal signature was asked for
	height int64
	round  int32
	block  []byte // block hash, nil for a nil vote
	ext    bool   // an extension was signed
	ts     time.Time
	err    *RemoteSignerError // the refusal sent, if any
	cause  error              // the Signer's error behind err, if any
	rawID  string             // a raw bytes request's unique id
	rawLen int                // and the length of its raw bytes
}

func handleRequest(ctx context.Context, s Signer, chainID string, req Message) (Message, outcome) {
	switch m := req.(type) {
	case *PubKeyRequest:
		return handlePubKey(ctx, s, chainID, m)
	case *SignVoteRequest:
		return handleSignVote(ctx, s, chainID, m)
	case *SignProposalRequest:
		return handleSignProposal(ctx, s, chainID, m)
	case *PingRequest:
		return &PingResponse{}, outcome{what: "ping"}
	case *SignRawBytesRequest:
		return handleSignRawBytes(ctx, s, chainID, m)
	case *SignBytesRequest:
		e := &RemoteSignerError{
			Code:        CodeUnsupported,
			Description: "cosigner refuses SignBytesRequest: it signs only votes and proposals with a consensus key",
		}
		return &SignBytesResponse{Error: e}, outcome{what: "sign bytes", err: e}
	}
	return nil, outcome{}
}

func wrongChain(want, got string) *RemoteSignerError {
	return &RemoteSignerError{
		Code:        CodeWrongChainID,
		Description: fmt.Sprintf("cosigner serves chain %q on this connection, not %q", want, got),
	}
}

func invalidRequest(format string, args ...any) *RemoteSignerError {
	return &RemoteSignerError{Code: CodeInvalidRequest, Description: fmt.Sprintf(format, args...)}
}

func signerError(err error) *RemoteSignerError {
	return &RemoteSignerError{Code: CodeSignerError, Description: err.Error()}
}

func handlePubKey(ctx context.Context, s Signer, chainID string, m *PubKeyRequest) (Message, outcome) {
	o := outcome{what: "pubkey"}
	if m.ChainID != chainID {
		o.err = wrongChain(chainID, m.ChainID)
		return &PubKeyResponse{Error: o.err}, o
	}
	pk, err := s.PubKey(ctx, chainID)
	if err == nil && len(pk) != ed25519.PublicKeySize {
		err = fmt.Errorf("signer returned a public key of %d bytes, want %d", len(pk), ed25519.PublicKeySize)
	}
	if err != nil {
		o.err = signerError(err)
		return &PubKeyResponse{Error: o.err}, o
	}
	return &PubKeyResponse{PubKey: pk, PubKeyType: PubKeyTypeEd25519}, o
}

// checkBlockID accepts the block ids CometBFT's ValidateBasic accepts:
// hashes empty or 32 bytes.
func checkBlockID(id *BlockID) *RemoteSignerError {
	if n := len(id.Hash); n != 0 && n != hashSize {
		return invalidRequest("block hash of %d bytes, want %d", n, hashSize)
	}
	if n := len(id.PartSetHeader.Hash); n != 0 && n != hashSize {
		return invalidRequest("part set header hash of %d bytes, want %d", n, hashSize)
	}
	return nil
}

func handleSignVote(ctx context.Context, s Signer, chainID string, m *SignVoteRequest) (Message, outcome) {
	o := outcome{what: "vote"}
	refuse := func(e *RemoteSignerError) (Message, outcome) {
		o.err = e
		return &SignedVoteResponse{Error: e}, o
	}
	v := m.Vote
	if v == nil {
		return refuse(invalidRequest("sign vote request carries no vote"))
	}
	o.height, o.round, o.block, o.ts = v.Height, v.Round, v.BlockID.Hash, v.Timestamp
	var step Step
	switch v.Type {
	case PrevoteType:
		step, o.what = StepPrevote, "prevote"
	case PrecommitType:
		step, o.what = StepPrecommit, "precommit"
	default:
		return refuse(invalidRequest("vote type %d is neither prevote (1) nor precommit (2)", int32(v.Type)))
	}
	o.sign = true
	if m.ChainID != chainID {
		return refuse(wrongChain(chainID, m.ChainID))
	}
	if v.Height <= 0 {
		return refuse(invalidRequest("vote height %d is not positive", v.Height))
	}
	if v.Round < 0 {
		return refuse(invalidRequest("vote round %d is negative", v.Round))
	}
	if e := checkBlockID(&v.BlockID); e != nil {
		return refuse(e)
	}
	signExt := v.Type == PrecommitType && !v.BlockID.IsZero()
	if !signExt && len(v.Extension) > 0 {
		return refuse(invalidRequest("%s with a vote extension: extensions belong to non-nil precommits only", step))
	}
	req := &SignRequest{
		ChainID:   chainID,
		Step:      step,
		Height:    v.Height,
		Round:     v.Round,
		Timestamp: v.Timestamp,
		BlockID:   v.BlockID.Hash,
		SignBytes: VoteSignBytes(chainID, v),
	}
	if signExt && !m.SkipExtensionSigning {
		req.ExtSignBytes = VoteExtensionSignBytes(chainID, v)
		o.ext = true
	}
	res, err := signChecked(ctx, s, req)
	if err != nil {
		o.cause = err
		return refuse(signerError(err))
	}
	reply := &SignedVoteResponse{Vote: *v}
	reply.Vote.Signature = res.Signature
	reply.Vote.Timestamp = signedTimestamp(req, res)
	reply.Vote.ExtensionSignature = nil
	if req.ExtSignBytes != nil {
		reply.Vote.ExtensionSignature = res.ExtSignature
	}
	o.ts = reply.Vote.Timestamp
	// The node reads nothing of the echoed vote but the signature, the
	// timestamp and the extension signature, and refuses replies over
	// MaxFrameSize: a large extension is better left out than the
	// signature lost.
	if messageSize(reply) > MaxFrameSize {
		reply.Vote.Extension = nil
	}
	return reply, o
}

func handleSignProposal(ctx context.Context, s Signer, chainID string, m *SignProposalRequest) (Message, outcome) {
	o := outcome{what: "proposal"}
	refuse := func(e *RemoteSignerError) (Message, outcome) {
		o.err = e
		return &SignedProposalResponse{Error: e}, o
	}
	p := m.Proposal
	if p == nil {
		return refuse(invalidRequest("sign proposal request carries no proposal"))
	}
	o.sign, o.height, o.round, o.block, o.ts = true, p.Height, p.Round, p.BlockID.Hash, p.Timestamp
	if m.ChainID != chainID {
		return refuse(wrongChain(chainID, m.ChainID))
	}
	// p.Type is not checked: the canonical form always says ProposalType,
	// and CometBFT's own fixtures carry other values.
	if p.Height <= 0 {
		return refuse(invalidRequest("proposal height %d is not positive", p.Height))
	}
	if p.Round < 0 {
		return refuse(invalidRequest("proposal round %d is negative", p.Round))
	}
	if p.POLRound < -1 {
		return refuse(invalidRequest("proposal pol round %d is below -1", p.POLRound))
	}
	if e := checkBlockID(&p.BlockID); e != nil {
		return refuse(e)
	}
	req := &SignRequest{
		ChainID:   chainID,
		Step:      StepProposal,
		Height:    p.Height,
		Round:     p.Round,
		Timestamp: p.Timestamp,
		BlockID:   p.BlockID.Hash,
		SignBytes: ProposalSignBytes(chainID, p),
	}
	res, err := signChecked(ctx, s, req)
	if err != nil {
		o.cause = err
		return refuse(signerError(err))
	}
	reply := &SignedProposalResponse{Proposal: *p}
	reply.Proposal.Signature = res.Signature
	reply.Proposal.Timestamp = signedTimestamp(req, res)
	o.ts = reply.Proposal.Timestamp
	return reply, o
}

// signChecked asks s to sign req and checks its answer.
func signChecked(ctx context.Context, s Signer, req *SignRequest) (*SignResponse, error) {
	res, err := s.Sign(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := checkSignResponse(req, res); err != nil {
		return nil, err
	}
	return res, nil
}

// checkSignResponse catches a Signer that breaks its contract before a
// malformed signature reaches the node.
func checkSignResponse(req *SignRequest, res *SignResponse) error {
	if res == nil {
		return fmt.Errorf("signer returned no signature for %s at height %d round %d", req.Step, req.Height, req.Round)
	}
	if len(res.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("signer returned a signature of %d bytes, want %d", len(res.Signature), ed25519.SignatureSize)
	}
	if req.ExtSignBytes != nil && len(res.ExtSignature) != ed25519.SignatureSize {
		return fmt.Errorf("signer returned an extension signature of %d bytes, want %d", len(res.ExtSignature), ed25519.SignatureSize)
	}
	return nil
}

// signedTimestamp is the timestamp the signature covers: the Signer's when
// it answers a duplicate with its earlier signature, else the request's.
func signedTimestamp(req *SignRequest, res *SignResponse) time.Time {
	if res.Timestamp.IsZero() {
		return req.Timestamp
	}
	return res.Timestamp
}

// shortHex is the first 6 bytes of a hash in upper-case hex, as CometBFT and
// TMKMS print block ids; "nil" for a nil vote.
func shortHex(b []byte) string {
	if len(b) == 0 {
		return "nil"
	}
	if len(b) > 6 {
		b = b[:6]
	}
	const digits = "0123456789ABCDEF"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&0x0f]
	}
	return string(out)
}
