package privval

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// The codec is hand-written over protowire so that one set of structs
// serves every CometBFT version from v0.34 to v1.0: their privval messages
// differ only by fields added or retired, never by renumbering.
//
// Encoding follows gogoproto's output for CometBFT's structs byte for byte:
// proto3 scalars are omitted when zero, non-nullable sub-messages (a
// response's vote, a vote's block id and part set header, timestamps) are
// always written, nullable ones only when set. Decoding follows gogoproto's
// semantics: unknown fields are skipped, a repeated scalar replaces the
// earlier value, a repeated sub-message merges into it, a wrong wire type
// for a known field is an error, and so is any truncation.

// ErrEmptyMessage is returned by UnmarshalMessage for an encoding that sets
// none of the privval messages this package knows.
var ErrEmptyMessage = errors.New("privval message carries no known request or response")

// MarshalMessage returns the protobuf encoding of m as a
// tendermint.privval.Message, without a length prefix.
func MarshalMessage(m Message) []byte {
	return AppendMessage(make([]byte, 0, messageSize(m)), m)
}

// AppendMessage appends the protobuf encoding of m (a
// tendermint.privval.Message, without a length prefix) to b.
func AppendMessage(b []byte, m Message) []byte {
	b = protowire.AppendTag(b, m.oneofField(), protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(m.size()))
	return m.appendTo(b)
}

// messageSize is the length of AppendMessage's output for m.
func messageSize(m Message) int {
	return protowire.SizeTag(m.oneofField()) + protowire.SizeBytes(m.size())
}

// UnmarshalMessage decodes a tendermint.privval.Message (without a length
// prefix). Byte slices of the result alias b: the caller must not modify b
// while it uses the message. It returns an error, never panics, on any
// malformed input, and ErrEmptyMessage when no known message is set.
func UnmarshalMessage(b []byte) (Message, error) {
	var msg Message
	for len(b) > 0 {
		f, rest, err := consumeField(b)
		if err != nil {
			return nil, fmt.Errorf("decode privval message: %w", err)
		}
		b = rest
		m := newMessage(f.num)
		if f.num == fieldSignBytesRequest && isRawBytesRequest(f.b) {
			m = new(SignRawBytesRequest) // celestia-core's, not v1.0's
		}
		if m == nil {
			continue // an unknown field: a newer version's message
		}
		if f.typ != protowire.BytesType {
			return nil, fmt.Errorf("decode privval message: field %d has wire type %d, want bytes", f.num, f.typ)
		}
		if err := m.decode(f.b); err != nil {
			return nil, fmt.Errorf("decode %s: %w", messageName(m), err)
		}
		// As in gogoproto, a repeated oneof field replaces the earlier one.
		msg = m
	}
	if msg == nil {
		return nil, ErrEmptyMessage
	}
	return msg, nil
}

// field is one decoded protobuf field: a varint or fixed value in v, a
// length-delimited value in b.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

// consumeField decodes the first field of b and returns it and the rest.
// Groups (a proto2 relic no CometBFT message uses) are skipped as a whole.
func consumeField(b []byte) (field, []byte, error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return field{}, nil, protowire.ParseError(n)
	}
	b = b[n:]
	f := field{num: num, typ: typ}
	switch typ {
	case protowire.VarintType:
		f.v, n = protowire.ConsumeVarint(b)
	case protowire.Fixed64Type:
		f.v, n = protowire.ConsumeFixed64(b)
	case protowire.Fixed32Type:
		var v uint32
		v, n = protowire.ConsumeFixed32(b)
		f.v = uint64(v)
	case protowire.BytesType:
		f.b, n = protowire.ConsumeBytes(b)
	default:
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	if n < 0 {
		return field{}, nil, fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
	}
	return f, b[n:], nil
}

// want checks that a known field has the wire type its schema gives it.
func (f field) want(typ protowire.Type) error {
	if f.typ != typ {
		return fmt.Errorf("field %d has wire type %d, want %d", f.num, f.typ, typ)
	}
	return nil
}

// bytesOrNil returns nil for an empty slice, so that decoding is
// deterministic: an absent and an empty bytes field decode alike.
func bytesOrNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// Size and append helpers for proto3 fields, which are omitted when zero.

func sizeVarint(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func sizeSfixed64(num protowire.Number, v int64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + 8
}

func appendSfixed64(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, uint64(v))
}

func sizeBytes(num protowire.Number, n int) int {
	if n == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendString(b []byte, num protowire.Number, v string) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}

// sizeMessage is the size of a sub-message field that is always written
// (non-nullable), even when empty.
func sizeMessage(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func appendMessageHeader(b []byte, num protowire.Number, n int) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(n))
}

// int32 and int64 fields are varints of the sign-extended 64-bit value.
func i32(v int32) uint64 { return uint64(int64(v)) }

// Timestamps (google.protobuf.Timestamp). gogoproto's stdtime refuses
// values outside years 0001–9999 and nanos outside [0, 1e9); so do we.

const (
	minTimestampSeconds = -62135596800 // 0001-01-01T00:00:00Z
	maxTimestampSeconds = 253402300800 // 10000-01-01T00:00:00Z, exclusive
)

func timestampSize(t time.Time) int {
	return sizeVarint(1, uint64(t.Unix())) + sizeVarint(2, i32(int32(t.Nanosecond())))
}

func appendTimestamp(b []byte, t time.Time) []byte {
	b = appendVarint(b, 1, uint64(t.Unix()))
	return appendVarint(b, 2, i32(int32(t.Nanosecond())))
}

func decodeTimestamp(b []byte) (time.Time, error) {
	var secs int64
	var nanos int32
	for len(b) > 0 {
		f, rest, err := consumeField(b)
		if err != nil {
			return time.Time{}, fmt.Errorf("timestamp: %w", err)
		}
		b = rest
		switch f.num {
		case 1:
			if err := f.want(protowire.VarintType); err != nil {
				return time.Time{}, fmt.Errorf("timestamp: %w", err)
			}
			secs = int64(f.v)
		case 2:
			if err := f.want(protowire.VarintType); err != nil {
				return time.Time{}, fmt.Errorf("timestamp: %w", err)
			}
			nanos = int32(f.v)
		}
	}
	if secs < minTimestampSeconds || secs >= maxTimestampSeconds {
		return time.Time{}, fmt.Errorf("timestamp seconds %d out of range", secs)
	}
	if nanos < 0 || nanos >= 1e9 {
		return time.Time{}, fmt.Errorf("timestamp nanos %d out of range", nanos)
	}
	return time.Unix(secs, int64(nanos)).UTC(), nil
}

// PartSetHeader and BlockID.

func partSetHeaderSize(h *PartSetHeader) int {
	return sizeVarint(1, uint64(h.Total)) + sizeBytes(2, len(h.Hash))
}

func appendPartSetHeader(b []byte, h *PartSetHeader) []byte {
	b = appendVarint(b, 1, uint64(h.Total))
	return appendBytes(b, 2, h.Hash)
}

func (h *PartSetHeader) decode(b []byte) error {
	for len(b) > 0 {
		f, rest, err := consumeField(b)
		if err != nil {
			return fmt.Errorf("part set header: %w", err)
		}
		b = rest
		switch f.num {
		case 1:
			if err := f.want(protowire.VarintType); err != nil {
				return fmt.Errorf("part set header: %w", err)
			}
			h.Total = uint32(f.v)
		case 2:
			if err := f.want(protowire.BytesType); err != nil {
				return fmt.Errorf("part set header: %w", err)
			}
			h.Hash = bytesOrNil(f.b)
		}
	}
	return nil
}

// blockIDSize is the size of a BlockID's body; its part set header is
// non-nullable and always written.
func blockIDSize(id *BlockID) int {
	return sizeBytes(1, len(id.Hash)) + sizeMessage(2, partSetHeaderSize(&id.PartSetHeader))
}

func appendBlockID(b []byte, id *BlockID) []byte {
	b = appendBytes(b, 1, id.Hash)
	b = appendMessageHeader(b, 2, partSetHeaderSize(&id.PartSetHeader))
	return appendPartSetHeader(b, &id.PartSetHeader)
}

func (id *BlockID) decode(b []byte) error {
	for len(b) > 0 {
		f, rest, err := consumeField(b)
		if err != nil {
			return fmt.Errorf("block id: %w", err)
		}
		b = rest
		switch f.num {
		case 1:
			if err := f.want(protowire.BytesType); err != nil {
				return fmt.Errorf("block id: %w", err)
			}
			id.Hash = bytesOrNil(f.b)
		case 2:
			if err := f.want(protowire.BytesType); err != nil {
				return fmt.Errorf("block id: %w", err)
			}
			if err := id.PartSetHeader.decode(f.b); err != nil {
				return fmt.Errorf("block id: %w", err)
			}
		}
	}
	return nil
}

// Vote.

func (v *Vote) size() int {
	return sizeVarint(1, i32(int32(v.Type))) +
		sizeVarint(2, uint64(v.Height)) +
		sizeVarint(3, i32(v.Round)) +
		sizeMessage(4, blockIDSize(&v.BlockID)) +
		sizeMessage(5, timestampSize(v.Timestamp)) +
		sizeBytes(6, len(v.ValidatorAddress)) +
		sizeVarint(7, i32(v.ValidatorIndex)) +
		sizeBytes(8, len(v.Signature)) +
		sizeBytes(9, len(v.Extension)) +
		sizeBytes(10, len(v.ExtensionSignature))
}

func (v *Vote) appendTo(b []byte) []byte {
	b = appendVarint(b, 1, i32(int32(v.Type)))
	b = appendVarint(b, 2, uint64(v.Height))
	b = appendVarint(b, 3, i32(v.Round))
	b = appendMessageHeader(b, 4, blockIDSize(&v.BlockID))
	b = appendBlockID(b, &v.BlockID)
	b = appendMessageHeader(b, 5, timestampSize(v.Timestamp))
	b = appendTimestamp(b, v.Timestamp)
	b = appendBytes(b, 6, v.ValidatorAddress)
	b = appendVarint(b, 7, i32(v.ValidatorIndex))
	b = appendBytes(b, 8, v.Signature)
	b = appendBytes(b, 9, v.Extension)
	return appendBytes(b, 10, v.ExtensionSignature)
}

func (v *Vote) decode(b []byte) error {
	for len(b) > 0 {
		f, rest, err := consumeField(b)
		if err != nil {
			return fmt.Errorf("vote: %w", err)
		}
		b = rest
		switch f.num {
		case 1, 2, 3, 7:
			err = f.want(protowire.VarintType)
		case 4, 5, 6, 8, 9, 10:
			err = f.want(protowire.BytesType)
		default:
			continue
		}
		if err != nil {
			return fmt.Errorf("vote: %w", err)
		}
		switch f.num {
		case 1:
			v.Type = SignedMsgType(f.v)
		case 2:
			v.Height = int64(f.v)
		case 3:
			v.Round = int32(f.v)
		case 4:
			err = v.BlockID.decode(f.b)
		case 5:
			v.Timestamp, err = decodeTimestamp(f.b)
		case 6:
			v.ValidatorAddress = bytesOrNil(f.b)
		case 7:
			v.ValidatorIndex = int32(f.v)
		case 8:
			v.Signature = bytesOrNil(f.b)
		case 9:
			v.Extension = bytesOrNil(f.b)
		case 10:
			v.ExtensionSignature = bytesOrNil(f.b)
		}
		if err != nil {
			return fmt.Errorf("vote: %w", err)
		}
	}
	return nil
}

// Proposal.

func (p *Proposal) size() int {
	return sizeVarint(1, i32(int32(p.Type))) +
		sizeVarint(2, uint64(p.Height)) +
		sizeVarint(3, i32(p.Round)) +
		sizeVarint(4, i32(p.POLRound)) +
		sizeMessage(5, blockIDSize(&p.BlockID)) +
		sizeMessage(6, timestampSize(p.Timestamp)) +
		sizeBytes(7, len(p.Signature))
}

func (p *Proposal) appendTo(b []byte) []byte {
	b = appendVarint(b, 1, i32(int32(p.Type)))
	b = appendVarint(b, 2, uint64(p.Height))
	b = appendVarint(b, 3, i32(p.Round))
	b = appendVarint(b, 4, i32(p.POLRound))
	b = appendMessageHeader(b, 5, blockIDSize(&p.BlockID))
	b = appendBlockID(b, &p.BlockID)
	b = appendMessageHeader(b, 6, timestampSize(p.Timestamp))
	b = appendTimestamp(b, p.Timestamp)
	return appendBytes(b, 7, p.Signature)
}

func (p *Proposal) decode(b []byte) error {
	for len(b) > 0 {
		f, rest, err := consumeField(b)
		if err != nil {
			return fmt.Errorf("proposal: %w", err)
		}
		b = rest
		switch f.num {
		case 1, 2, 3, 4:
			err = f.want(protowire.VarintType)
		case 5, 6, 7:
			err = f.want(protowire.BytesType)
		default:
			continue
		}
		if err != nil {
			return fmt.Errorf("proposal: %w", err)
		}
		switch f.num {
		case 1:
			p.Type = SignedMsgType(f.v)
		case 2:
			p.Height = int64(f.v)
		case 3:
			p.Round = int32(f.v)
		case 4:
			p.POLRound = int32(f.v)
		case 5:
			err = p.BlockID.decode(f.b)
		case 6:
			p.Timestamp, err = decodeTimestamp(f.b)
		case 7:
			p.Signature = bytesOrNil(f.b)
		}
		if err != nil {
			return fmt.Errorf("proposal: %w", err)
		}
	}
	return nil
}
