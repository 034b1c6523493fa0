package privval

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Canonical sign bytes are what a validator's key actually signs: the
// protobuf encoding of tendermint.types.CanonicalVote, CanonicalProposal or
// CanonicalVoteExtension, prefixed with its uvarint length (a relic of the
// Amino encoding CometBFT keeps for compatibility). They must match
// CometBFT's types.VoteSignBytes, types.ProposalSignBytes and
// types.VoteExtensionSignBytes byte for byte, or the chain rejects the
// signature.
//
// The gogoproto details that matter:
//   - height and round are sfixed64 (8 bytes little-endian), omitted when
//     zero like every proto3 scalar; pol_round is a plain int64 varint, so
//     -1 takes ten bytes;
//   - the block id is omitted when it is zero (the nil vote); when present
//     its part set header is always written, even when empty;
//   - the timestamp is always written (non-nullable stdtime), the zero
//     time.Time as -62135596800 seconds;
//   - the chain id comes last and is omitted when empty;
//   - a proposal's type is always 32, whatever the proposal says.

// Field numbers of CanonicalVote and CanonicalProposal.
const (
	cvType      = 1
	cvHeight    = 2
	cvRound     = 3
	cvBlockID   = 4
	cvTimestamp = 5
	cvChainID   = 6

	cpType      = 1
	cpHeight    = 2
	cpRound     = 3
	cpPOLRound  = 4
	cpBlockID   = 5
	cpTimestamp = 6
	cpChainID   = 7
)

// canonicalBlockIDSize is the size of the CanonicalBlockID field number num,
// 0 when id is zero and so omitted.
func canonicalBlockIDSize(num protowire.Number, id *BlockID) int {
	if id.IsZero() {
		return 0
	}
	return sizeMessage(num, blockIDSize(id))
}

func appendCanonicalBlockID(b []byte, num protowire.Number, id *BlockID) []byte {
	if id.IsZero() {
		return b
	}
	// CanonicalBlockID and CanonicalPartSetHeader encode exactly as BlockID
	// and PartSetHeader do.
	b = appendMessageHeader(b, num, blockIDSize(id))
	return appendBlockID(b, id)
}

// VoteSignBytes returns the canonical sign bytes of v for chainID, as
// CometBFT's types.VoteSignBytes: a uvarint-length-prefixed CanonicalVote.
// It reads Type, Height, Round, BlockID and Timestamp; the validator, the
// signatures and the extension do not enter them.
func VoteSignBytes(chainID string, v *Vote) []byte {
	n := sizeVarint(cvType, i32(int32(v.Type))) +
		sizeSfixed64(cvHeight, v.Height) +
		sizeSfixed64(cvRound, int64(v.Round)) +
		canonicalBlockIDSize(cvBlockID, &v.BlockID) +
		sizeMessage(cvTimestamp, timestampSize(v.Timestamp)) +
		sizeBytes(cvChainID, len(chainID))
	b := make([]byte, 0, protowire.SizeVarint(uint64(n))+n)
	b = protowire.AppendVarint(b, uint64(n))
	b = appendVarint(b, cvType, i32(int32(v.Type)))
	b = appendSfixed64(b, cvHeight, v.Height)
	b = appendSfixed64(b, cvRound, int64(v.Round))
	b = appendCanonicalBlockID(b, cvBlockID, &v.BlockID)
	b = appendMessageHeader(b, cvTimestamp, timestampSize(v.Timestamp))
	b = appendTimestamp(b, v.Timestamp)
	return appendString(b, cvChainID, chainID)
}

// ProposalSignBytes returns the canonical sign bytes of p for chainID, as
// CometBFT's types.ProposalSignBytes: a uvarint-length-prefixed
// CanonicalProposal. Its type is always ProposalType.
func ProposalSignBytes(chainID string, p *Proposal) []byte {
	n := sizeVarint(cpType, uint64(ProposalType)) +
		sizeSfixed64(cpHeight, p.Height) +
		sizeSfixed64(cpRound, int64(p.Round)) +
		sizeVarint(cpPOLRound, i32(p.POLRound)) +
		canonicalBlockIDSize(cpBlockID, &p.BlockID) +
		sizeMessage(cpTimestamp, timestampSize(p.Timestamp)) +
		sizeBytes(cpChainID, len(chainID))
	b := make([]byte, 0, protowire.SizeVarint(uint64(n))+n)
	b = protowire.AppendVarint(b, uint64(n))
	b = appendVarint(b, cpType, uint64(ProposalType))
	b = appendSfixed64(b, cpHeight, p.Height)
	b = appendSfixed64(b, cpRound, int64(p.Round))
	b = appendVarint(b, cpPOLRound, i32(p.POLRound))
	b = appendCanonicalBlockID(b, cpBlockID, &p.BlockID)
	b = appendMessageHeader(b, cpTimestamp, timestampSize(p.Timestamp))
	b = appendTimestamp(b, p.Timestamp)
	return appendString(b, cpChainID, chainID)
}

// VoteExtensionSignBytes returns the canonical sign bytes of v's extension
// for chainID, as CometBFT's types.VoteExtensionSignBytes: a
// uvarint-length-prefixed CanonicalVoteExtension{extension, height, round,
// chain_id}. An empty extension still has sign bytes, and non-nil
// precommits sign them.
func VoteExtensionSignBytes(chainID string, v *Vote) []byte {
	n := sizeBytes(1, len(v.Extension)) +
		sizeSfixed64(2, v.Height) +
		sizeSfixed64(3, int64(v.Round)) +
		sizeBytes(4, len(chainID))
	b := make([]byte, 0, protowire.SizeVarint(uint64(n))+n)
	b = protowire.AppendVarint(b, uint64(n))
	b = appendBytes(b, 1, v.Extension)
	b = appendSfixed64(b, 2, v.Height)
	b = appendSfixed64(b, 3, int64(v.Round))
	return appendString(b, 4, chainID)
}

// SignBytesInfo is what canonical vote or proposal sign bytes say.
type SignBytesInfo struct {
	Step   Step
	Height int64
	Round  int32
	// POLRound is a proposal's proof-of-lock round (-1 for none); 0 for
	// votes.
	POLRound  int32
	Timestamp time.Time
	// BlockID is zero for a nil vote. Its slices alias the parsed bytes.
	BlockID BlockID
	ChainID string
}

// ErrNonCanonical is wrapped by the errors of ParseSignBytes and
// ParseVoteExtensionSignBytes for bytes that are not exactly what CometBFT
// would produce for any vote, proposal or extension.
var ErrNonCanonical = errors.New("not canonical sign bytes")

// canonical is the allocation-free result of parsing sign bytes.
type canonical struct {
	typ      SignedMsgType
	height   int64
	round    int64
	polRound int64
	blockID  BlockID
	secs     int64
	nanos    int64
	chainID  []byte
	body     []byte // the message, without the length prefix
	tsStart  int    // offset in body of the timestamp field's tag
	tsEnd    int    // offset in body just past the timestamp field
}

// ParseSignBytes decodes canonical vote or proposal sign bytes, as
// VoteSignBytes and ProposalSignBytes produce them, and returns what they
// commit to. It is strict: it accepts exactly the bytes CometBFT could
// produce for a prevote, precommit or proposal with a positive height, a
// non-negative round and 32-byte hashes, and nothing else (no unknown,
// repeated, out-of-order or zero-valued fields, no overlong varints), so
// that one byte string has one meaning. Whatever it accepts, the matching
// VoteSignBytes or ProposalSignBytes reproduces byte for byte.
// Errors wrap ErrNonCanonical. BlockID's slices alias b.
func ParseSignBytes(b []byte) (SignBytesInfo, error) {
	var c canonical
	if err := parseCanonical(b, &c); err != nil {
		return SignBytesInfo{}, err
	}
	info := SignBytesInfo{
		Height:    c.height,
		Round:     int32(c.round),
		POLRound:  int32(c.polRound),
		Timestamp: time.Unix(c.secs, c.nanos).UTC(),
		BlockID:   c.blockID,
		ChainID:   string(c.chainID),
	}
	switch c.typ {
	case PrevoteType:
		info.Step = StepPrevote
	case PrecommitType:
		info.Step = StepPrecommit
	case ProposalType:
		info.Step = StepProposal
	}
	return info, nil
}

// OnlyTimestampDiffers reports whether canonical sign bytes a and b commit
// to the same vote or proposal (step, height, round, block id, chain id,
// proof-of-lock round) apart from their timestamps. Identical bytes report
// true. This is FilePV's duplicate rule: a signer that crashed after signing
// may be asked again with a fresh timestamp, and answers with the signature
// it already released and that signature's timestamp. It returns an error
// if either is not canonical sign bytes (see ParseSignBytes).
func OnlyTimestampDiffers(a, b []byte) (bool, error) {
	var ca, cb canonical
	if err := parseCanonical(a, &ca); err != nil {
		return false, err
	}
	if err := parseCanonical(b, &cb); err != nil {
		return false, err
	}
	// Canonical encodings are unique, so equal content outside the
	// timestamp field means equal bytes there.
	return bytes.Equal(ca.body[:ca.tsStart], cb.body[:cb.tsStart]) &&
		bytes.Equal(ca.body[ca.tsEnd:], cb.body[cb.tsEnd:]), nil
}

// nonCanonical builds an error wrapping ErrNonCanonical.
func nonCanonical(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNonCanonical, fmt.Sprintf(format, args...))
}

// canonicalReader walks a canonical message, enforcing strictly increasing
// field numbers and minimal encodings.
type canonicalReader struct {
	b    []byte
	off  int
	last protowire.Number
	what string
}

// next returns the next field's number and type, or 0 at the end.
func (r *canonicalReader) next() (protowire.Number, protowire.Type, error) {
	if r.off == len(r.b) {
		return 0, 0, nil
	}
	num, typ, n := protowire.ConsumeTag(r.b[r.off:])
	if n < 0 {
		return 0, 0, nonCanonical("%s: %v", r.what, protowire.ParseError(n))
	}
	if n != protowire.SizeTag(num) {
		return 0, 0, nonCanonical("%s: overlong tag", r.what)
	}
	if num <= r.last {
		return 0, 0, nonCanonical("%s: field %d out of order or repeated", r.what, num)
	}
	r.last = num
	r.off += n
	return num, typ, nil
}

func (r *canonicalReader) varint(num protowire.Number, typ protowire.Type) (uint64, error) {
	if typ != protowire.VarintType {
		return 0, nonCanonical("%s: field %d has wire type %d, want varint", r.what, num, typ)
	}
	v, n := protowire.ConsumeVarint(r.b[r.off:])
	if n < 0 {
		return 0, nonCanonical("%s: field %d: %v", r.what, num, protowire.ParseError(n))
	}
	if n != protowire.SizeVarint(v) {
		return 0, nonCanonical("%s: field %d: overlong varint", r.what, num)
	}
	if v == 0 {
		return 0, nonCanonical("%s: field %d: zero value written", r.what, num)
	}
	r.off += n
	return v, nil
}

func (r *canonicalReader) sfixed64(num protowire.Number, typ protowire.Type) (int64, error) {
	if typ != protowire.Fixed64Type {
		return 0, nonCanonical("%s: field %d has wire type %d, want fixed64", r.what, num, typ)
	}
	v, n := protowire.ConsumeFixed64(r.b[r.off:])
	if n < 0 {
		return 0, nonCanonical("%s: field %d: %v", r.what, num, protowire.ParseError(n))
	}
	if v == 0 {
		return 0, nonCanonical("%s: field %d: zero value written", r.what, num)
	}
	r.off += n
	return int64(v), nil
}

// bytes returns a length-delimited field's value; allowEmpty is for
// non-nullable sub-messages, which are written even when empty.
func (r *canonicalReader) bytes(num protowire.Number, typ protowire.Type, allowEmpty bool) ([]byte, error) {
	if typ != protowire.BytesType {
		return nil, nonCanonical("%s: field %d has wire type %d, want bytes", r.what, num, typ)
	}
	v, n := protowire.ConsumeBytes(r.b[r.off:])
	if n < 0 {
		return nil, nonCanonical("%s: field %d: %v", r.what, num, protowire.ParseError(n))
	}
	if n != protowire.SizeBytes(len(v)) {
		return nil, nonCanonical("%s: field %d: overlong length", r.what, num)
	}
	if len(v) == 0 && !allowEmpty {
		return nil, nonCanonical("%s: field %d: empty value written", r.what, num)
	}
	r.off += n
	return v, nil
}

// hashSize is the size of CometBFT's block and part set hashes (SHA-256).
const hashSize = 32

// parseCanonical parses canonical vote or proposal sign bytes into c.
func parseCanonical(b []byte, c *canonical) error {
	n, k := protowire.ConsumeVarint(b)
	if k < 0 {
		return nonCanonical("length prefix: %v", protowire.ParseError(k))
	}
	if k != protowire.SizeVarint(n) || n != uint64(len(b)-k) {
		return nonCanonical("length prefix %d does not match the %d bytes that follow", n, len(b)-k)
	}
	c.body = b[k:]
	r := canonicalReader{b: c.body, what: "sign bytes"}

	num, typ, err := r.next()
	if err != nil {
		return err
	}
	if num != cvType {
		return nonCanonical("sign bytes: no type")
	}
	t, err := r.varint(num, typ)
	if err != nil {
		return err
	}
	c.typ = SignedMsgType(t)
	// Votes and proposals number their fields differently after round.
	fBlockID, fTimestamp, fChainID := protowire.Number(cvBlockID), protowire.Number(cvTimestamp), protowire.Number(cvChainID)
	switch {
	case t == uint64(PrevoteType) || t == uint64(PrecommitType):
	case t == uint64(ProposalType):
		fBlockID, fTimestamp, fChainID = cpBlockID, cpTimestamp, cpChainID
	default:
		return nonCanonical("sign bytes: type %d is not a prevote, precommit or proposal", t)
	}
	sawTimestamp := false
	for {
		num, typ, err := r.next()
		if err != nil {
			return err
		}
		if num == 0 {
			break
		}
		switch {
		case num == cvHeight:
			if c.height, err = r.sfixed64(num, typ); err != nil {
				return err
			}
		case num == cvRound:
			if c.round, err = r.sfixed64(num, typ); err != nil {
				return err
			}
		case num == cpPOLRound && c.typ == ProposalType:
			var v uint64
			if v, err = r.varint(num, typ); err != nil {
				return err
			}
			c.polRound = int64(v)
		case num == fBlockID:
			v, err := r.bytes(num, typ, false)
			if err != nil {
				return err
			}
			if err := parseCanonicalBlockID(v, &c.blockID); err != nil {
				return err
			}
		case num == fTimestamp:
			start := r.off - protowire.SizeTag(num)
			v, err := r.bytes(num, typ, true)
			if err != nil {
				return err
			}
			if c.secs, c.nanos, err = parseCanonicalTimestamp(v); err != nil {
				return err
			}
			c.tsStart, c.tsEnd, sawTimestamp = start, r.off, true
		case num == fChainID:
			if c.chainID, err = r.bytes(num, typ, false); err != nil {
				return err
			}
		default:
			return nonCanonical("sign bytes: unexpected field %d", num)
		}
	}
	if !sawTimestamp {
		return nonCanonical("sign bytes: no timestamp")
	}
	if c.height <= 0 {
		return nonCanonical("sign bytes: height %d is not positive", c.height)
	}
	if c.round < 0 || c.round > math.MaxInt32 {
		return nonCanonical("sign bytes: round %d out of range", c.round)
	}
	if c.typ == ProposalType {
		if c.polRound < -1 || c.polRound > math.MaxInt32 {
			return nonCanonical("sign bytes: pol round %d out of range", c.polRound)
		}
	}
	return nil
}

// parseCanonicalBlockID parses a present (so non-zero) CanonicalBlockID.
func parseCanonicalBlockID(b []byte, id *BlockID) error {
	r := canonicalReader{b: b, what: "block id"}
	sawPSH := false
	for {
		num, typ, err := r.next()
		if err != nil {
			return err
		}
		switch num {
		case 0:
			if !sawPSH {
				return nonCanonical("block id: no part set header")
			}
			if id.IsZero() {
				return nonCanonical("block id: zero block id written")
			}
			return nil
		case 1:
			if id.Hash, err = r.bytes(num, typ, false); err != nil {
				return err
			}
			if len(id.Hash) != hashSize {
				return nonCanonical("block id: hash of %d bytes, want %d", len(id.Hash), hashSize)
			}
		case 2:
			v, err := r.bytes(num, typ, true)
			if err != nil {
				return err
			}
			if err := parseCanonicalPartSetHeader(v, &id.PartSetHeader); err != nil {
				return err
			}
			sawPSH = true
		default:
			return nonCanonical("block id: unexpected field %d", num)
		}
	}
}

func parseCanonicalPartSetHeader(b []byte, h *PartSetHeader) error {
	r := canonicalReader{b: b, what: "part set header"}
	for {
		num, typ, err := r.next()
		if err != nil {
			return err
		}
		switch num {
		case 0:
			return nil
		case 1:
			v, err := r.varint(num, typ)
			if err != nil {
				return err
			}
			if v > math.MaxUint32 {
				return nonCanonical("part set header: total %d out of range", v)
			}
			h.Total = uint32(v)
		case 2:
			if h.Hash, err = r.bytes(num, typ, false); err != nil {
				return err
			}
			if len(h.Hash) != hashSize {
				return nonCanonical("part set header: hash of %d bytes, want %d", len(h.Hash), hashSize)
			}
		default:
			return nonCanonical("part set header: unexpected field %d", num)
		}
	}
}

func parseCanonicalTimestamp(b []byte) (secs, nanos int64, err error) {
	r := canonicalReader{b: b, what: "timestamp"}
	for {
		num, typ, err := r.next()
		if err != nil {
			return 0, 0, err
		}
		switch num {
		case 0:
			if secs < minTimestampSeconds || secs >= maxTimestampSeconds {
				return 0, 0, nonCanonical("timestamp: seconds %d out of range", secs)
			}
			return secs, nanos, nil
		case 1:
			v, err := r.varint(num, typ)
			if err != nil {
				return 0, 0, err
			}
			secs = int64(v)
		case 2:
			v, err := r.varint(num, typ)
			if err != nil {
				return 0, 0, err
			}
			if v >= 1e9 {
				return 0, 0, nonCanonical("timestamp: nanos %d out of range", int64(v))
			}
			nanos = int64(v)
		default:
			return 0, 0, nonCanonical("timestamp: unexpected field %d", num)
		}
	}
}

// VoteExtensionInfo is what canonical vote extension sign bytes say.
type VoteExtensionInfo struct {
	Extension []byte // aliases the parsed bytes; nil when empty
	Height    int64
	Round     int32
	ChainID   string
}

// ParseVoteExtensionSignBytes decodes canonical vote extension sign bytes
// as VoteExtensionSignBytes produces them, with the strictness of
// ParseSignBytes. Threshold peers use it to check that the extension bytes
// a leader asks them to sign belong to the precommit they sign with them.
func ParseVoteExtensionSignBytes(b []byte) (VoteExtensionInfo, error) {
	n, k := protowire.ConsumeVarint(b)
	if k < 0 {
		return VoteExtensionInfo{}, nonCanonical("length prefix: %v", protowire.ParseError(k))
	}
	if k != protowire.SizeVarint(n) || n != uint64(len(b)-k) {
		return VoteExtensionInfo{}, nonCanonical("length prefix %d does not match the %d bytes that follow", n, len(b)-k)
	}
	r := canonicalReader{b: b[k:], what: "vote extension sign bytes"}
	var info VoteExtensionInfo
	var round int64
	for {
		num, typ, err := r.next()
		if err != nil {
			return VoteExtensionInfo{}, err
		}
		switch num {
		case 0:
			if info.Height <= 0 {
				return VoteExtensionInfo{}, nonCanonical("vote extension sign bytes: height %d is not positive", info.Height)
			}
			if round < 0 || round > math.MaxInt32 {
				return VoteExtensionInfo{}, nonCanonical("vote extension sign bytes: round %d out of range", round)
			}
			info.Round = int32(round)
			return info, nil
		case 1:
			if info.Extension, err = r.bytes(num, typ, false); err != nil {
				return VoteExtensionInfo{}, err
			}
		case 2:
			if info.Height, err = r.sfixed64(num, typ); err != nil {
				return VoteExtensionInfo{}, err
			}
		case 3:
			if round, err = r.sfixed64(num, typ); err != nil {
				return VoteExtensionInfo{}, err
			}
		case 4:
			v, err := r.bytes(num, typ, false)
			if err != nil {
				return VoteExtensionInfo{}, err
			}
			info.ChainID = string(v)
		default:
			return VoteExtensionInfo{}, nonCanonical("vote extension sign bytes: unexpected field %d", num)
		}
	}
}
