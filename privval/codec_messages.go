package privval

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// The bodies of the privval messages themselves; codec.go has the wire
// helpers and the consensus types they carry.

// RemoteSignerError.

func remoteSignerErrorSize(e *RemoteSignerError) int {
	return sizeVarint(1, i32(e.Code)) + sizeBytes(2, len(e.Description))
}

func appendRemoteSignerError(b []byte, e *RemoteSignerError) []byte {
	b = appendVarint(b, 1, i32(e.Code))
	return appendString(b, 2, e.Description)
}

// sizeError and appendError write a nullable error field when e is set.
func sizeError(num protowire.Number, e *RemoteSignerError) int {
	if e == nil {
		return 0
	}
	return sizeMessage(num, remoteSignerErrorSize(e))
}

func appendError(b []byte, num protowire.Number, e *RemoteSignerError) []byte {
	if e == nil {
		return b
	}
	b = appendMessageHeader(b, num, remoteSignerErrorSize(e))
	return appendRemoteSignerError(b, e)
}

func (e *RemoteSignerError) decode(b []byte) error {
	for len(b) > 0 {
		f, rest, err := consumeField(b)
		if err != nil {
			return fmt.Errorf("remote signer error: %w", err)
		}
		b = rest
		switch f.num {
		case 1:
			if err := f.want(protowire.VarintType); err != nil {
				return fmt.Errorf("remote signer error: %w", err)
			}
			e.Code = int32(f.v)
		case 2:
			if err := f.want(protowire.BytesType); err != nil {
				return fmt.Errorf("remote signer error: %w", err)
			}
			e.Description = string(f.b)
		}
	}
	return nil
}

// decodeError merges an error field into *dst, allocating it if needed.
func decodeError(dst **RemoteSignerError, b []byte) error {
	if *dst == nil {
		*dst = new(RemoteSignerError)
	}
	return (*dst).decode(b)
}

// PubKeyRequest.

func (m *PubKeyRequest) size() int { return sizeBytes(1, len(m.ChainID)) }

func (m *PubKeyRequest) appendTo(b []byte) []byte { return appendString(b, 1, m.ChainID) }

func (m *PubKeyRequest) decode(b []byte) error {
	for len(b) > 0 {
		f, rest, err := consumeField(b)
		if err != nil {
			return err
		}
		b = rest
		if f.num == 1 {
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			m.ChainID = string(f.b)
		}
	}
	return nil
}

// PubKeyResponse.

// legacyKeyField is the field of tendermint.crypto.PublicKey's oneof that
// carries a key of type t, or 0 when that message cannot carry it.
func legacyKeyField(t string) protowire.Number {
	switch t {
	case PubKeyTypeEd25519:
		return 1
	case PubKeyTypeSecp256k1:
		return 2
	}
	return 0
}

// legacyKeySize is the size of the tendermint.crypto.PublicKey body.
func (m *PubKeyResponse) legacyKeySize() int {
	num := legacyKeyField(m.PubKeyType)
	if num == 0 {
		return 0
	}
	return sizeBytes(num, len(m.PubKey))
}

func (m *PubKeyResponse) size() int {
	return sizeMessage(1, m.legacyKeySize()) +
		sizeError(2, m.Error) +
		sizeBytes(3, len(m.PubKey)) +
		sizeBytes(4, len(m.PubKeyType))
}

func (m *PubKeyResponse) appendTo(b []byte) []byte {
	// Field 1 is non-nullable in v0.34–v0.38 and written even when empty.
	b = appendMessageHeader(b, 1, m.legacyKeySize())
	if num := legacyKeyField(m.PubKeyType); num != 0 {
		b = appendBytes(b, num, m.PubKey)
	}
	b = appendError(b, 2, m.Error)
	b = appendBytes(b, 3, m.PubKey)
	return appendString(b, 4, m.PubKeyType)
}

func (m *PubKeyResponse) decode(b []byte) error {
	var legacyKey, newKey []byte
	var legacyType, newType string
	for len(b) > 0 {
		f, rest, err := consumeField(b)
		if err != nil {
			return err
		}
		b = rest
		switch f.num {
		case 1, 2, 3, 4:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
		default:
			continue
		}
		switch f.num {
		case 1:
			// Merge, as gogoproto does; the last key of the oneof wins.
			k, t, err := decodeLegacyPubKey(f.b)
			if err != nil {
				return err
			}
			if t != "" {
				legacyKey, legacyType = k, t
			}
		case 2:
			if err := decodeError(&m.Error, f.b); err != nil {
				return err
			}
		case 3:
			newKey = bytesOrNil(f.b)
		case 4:
			newType = string(f.b)
		}
	}
	switch {
	case newKey == nil && newType == "":
		m.PubKey, m.PubKeyType = legacyKey, legacyType
	case legacyType == "":
		m.PubKey, m.PubKeyType = newKey, newType
	case legacyType != newType || string(legacyKey) != string(newKey):
		return fmt.Errorf("public key fields disagree: pub_key is %s %x, pub_key_bytes is %q %x",
			legacyType, legacyKey, newType, newKey)
	default:
		m.PubKey, m.PubKeyType = newKey, newType
	}
	return nil
}

// decodeLegacyPubKey decodes a tendermint.crypto.PublicKey. An empty key
// of either type counts as no key.
func decodeLegacyPubKey(b []byte) (key []byte, typ string, err error) {
	for len(b) > 0 {
		f, rest, err := consumeField(b)
		if err != nil {
			return nil, "", fmt.Errorf("public key: %w", err)
		}
		b = rest
		var t string
		switch f.num {
		case 1:
			t = PubKeyTypeEd25519
		case 2:
			t = PubKeyTypeSecp256k1
		default:
			continue
		}
		if err := f.want(protowire.BytesType); err != nil {
			return nil, "", fmt.Errorf("public key: %w", err)
		}
		if len(f.b) == 0 {
			key, typ = nil, ""
		} else {
			key, typ = f.b, t
		}
	}
	return key, typ, nil
}

// SignVoteRequest.

func (m *SignVoteRequest) size() int {
	n := sizeBytes(2, len(m.ChainID))
	if m.Vote != nil {
		n += sizeMessage(1, m.Vote.size())
	}
	if m.SkipExtensionSigning {
		n += sizeVarint(3, 1)
	}
	return n
}

func (m *SignVoteRequest) appendTo(b []byte) []byte {
	if m.Vote != nil {
		b = appendMessageHeader(b, 1, m.Vote.size())
		b = m.Vote.appendTo(b)
	}
	b = appendString(b, 2, m.ChainID)
	if m.SkipExtensionSigning {
		b = appendVarint(b, 3, 1)
	}
	return b
}

func (m *SignVoteRequest) decode(b []byte) error {
	for len(b) > 0 {
		f, rest, err := consumeField(b)
		if err != nil {
			return err
		}
		b = rest
		switch f.num {
		case 1:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			if m.Vote == nil {
				m.Vote = new(Vote)
			}
			if err := m.Vote.decode(f.b); err != nil {
				return err
			}
		case 2:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			m.ChainID = string(f.b)
		case 3:
			if err := f.want(protowire.VarintType); err != nil {
				return err
			}
			m.SkipExtensionSigning = f.v != 0
		}
	}
	return nil
}

// SignedVoteResponse.

func (m *SignedVoteResponse) size() int {
	return sizeMessage(1, m.Vote.size()) + sizeError(2, m.Error)
}

func (m *SignedVoteResponse) appendTo(b []byte) []byte {
	b = appendMessageHeader(b, 1, m.Vote.size())
	b = m.Vote.appendTo(b)
	return appendError(b, 2, m.Error)
}

func (m *SignedVoteResponse) decode(b []byte) error {
	for len(b) > 0 {
		f, rest, err := consumeField(b)
		if err != nil {
			return err
		}
		b = rest
		switch f.num {
		case 1:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			if err := m.Vote.decode(f.b); err != nil {
				return err
			}
		case 2:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			if err := decodeError(&m.Error, f.b); err != nil {
				return err
			}
		}
	}
	return nil
}

// SignProposalRequest.

func (m *SignProposalRequest) size() int {
	n := sizeBytes(2, len(m.ChainID))
	if m.Proposal != nil {
		n += sizeMessage(1, m.Proposal.size())
	}
	return n
}

func (m *SignProposalRequest) appendTo(b []byte) []byte {
	if m.Proposal != nil {
		b = appendMessageHeader(b, 1, m.Proposal.size())
		b = m.Proposal.appendTo(b)
	}
	return appendString(b, 2, m.ChainID)
}

func (m *SignProposalRequest) decode(b []byte) error {
	for len(b) > 0 {
		f, rest, err := consumeField(b)
		if err != nil {
			return err
		}
		b = rest
		switch f.num {
		case 1:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			if m.Proposal == nil {
				m.Proposal = new(Proposal)
			}
			if err := m.Proposal.decode(f.b); err != nil {
				return err
			}
		case 2:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			m.ChainID = string(f.b)
		}
	}
	return nil
}

// SignedProposalResponse.

func (m *SignedProposalResponse) size() int {
	return sizeMessage(1, m.Proposal.size()) + sizeError(2, m.Error)
}

func (m *SignedProposalResponse) appendTo(b []byte) []byte {
	b = appendMessageHeader(b, 1, m.Proposal.size())
	b = m.Proposal.appendTo(b)
	return appendError(b, 2, m.Error)
}

func (m *SignedProposalResponse) decode(b []byte) error {
	for len(b) > 0 {
		f, rest, err := consumeField(b)
		if err != nil {
			return err
		}
		b = rest
		switch f.num {
		case 1:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			if err := m.Proposal.decode(f.b); err != nil {
				return err
			}
		case 2:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			if err := decodeError(&m.Error, f.b); err != nil {
				return err
			}
		}
	}
	return nil
}

// PingRequest and PingResponse have no fields; their bodies are checked
// only for well-formedness.

func (*PingRequest) size() int                { return 0 }
func (*PingRequest) appendTo(b []byte) []byte { return b }
func (*PingRequest) decode(b []byte) error    { return skipAll(b) }

func (*PingResponse) size() int                { return 0 }
func (*PingResponse) appendTo(b []byte) []byte { return b }
func (*PingResponse) decode(b []byte) error    { return skipAll(b) }

func skipAll(b []byte) error {
	for len(b) > 0 {
		_, rest, err := consumeField(b)
		if err != nil {
			return err
		}
		b = rest
	}
	return nil
}

// SignBytesRequest.

func (m *SignBytesRequest) size() int { return sizeBytes(1, len(m.Value)) }

func (m *SignBytesRequest) appendTo(b []byte) []byte { return appendBytes(b, 1, m.Value) }

func (m *SignBytesRequest) decode(b []byte) error {
	for len(b) > 0 {
		f, rest, err := consumeField(b)
		if err != nil {
			return err
		}
		b = rest
		if f.num == 1 {
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			m.Value = bytesOrNil(f.b)
		}
	}
	return nil
}

// SignBytesResponse.

func (m *SignBytesResponse) size() int {
	return sizeBytes(1, len(m.Signature)) + sizeError(2, m.Error)
}

func (m *SignBytesResponse) appendTo(b []byte) []byte {
	b = appendBytes(b, 1, m.Signature)
	return appendError(b, 2, m.Error)
}

func (m *SignBytesResponse) decode(b []byte) error {
	for len(b) > 0 {
		f, rest, err := consumeField(b)
		if err != nil {
			return err
		}
		b = rest
		switch f.num {
		case 1:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			m.Signature = bytesOrNil(f.b)
		case 2:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			if err := decodeError(&m.Error, f.b); err != nil {
				return err
			}
		}
	}
	return nil
}
