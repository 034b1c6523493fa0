package threshold

import (
	"encoding/binary"
	"errors"
	"fmt"

	pedersen "go.dedis.ch/kyber/v3/share/dkg/pedersen"
	vss "go.dedis.ch/kyber/v3/share/vss/pedersen"
)

// DKG message encoding, version 1 (big-endian integers):
//
//	version 1 | kind 1 | session 32 | from 2 | to 2 | payload length 4 | payload | signature 64
//
// The signature is a Schnorr signature by the sender's long-term key over
// everything before it. A deal payload is
//
//	dealer index 4 | DH key 32 | DH key signature 64 | nonce 12 | cipher length 4 | cipher | signature 64
//
// and a response payload is
//
//	dealer index 4 | session ID 32 | verifier index 4 | status 1 (0 complaint, 1 approval) | signature 64
//
// Decoders are strict: exact lengths, no trailing bytes, known values only.
const (
	dkgVersion    = 1
	dkgHeaderSize = 1 + 1 + 32 + 2 + 2 + 4
	schnorrSize   = 64
	gcmNonceSize  = 12
	dealFixedSize = 4 + 32 + schnorrSize + gcmNonceSize + 4 + schnorrSize
	responseSize  = 4 + 32 + 4 + 1 + schnorrSize
	// maxDealCipher bounds a deal's ciphertext: a share, the session ID and
	// M commitments, with protobuf overhead, for M up to 255.
	maxDealCipher = 64 * 1024
)

func (m *DKGMessage) signed() []byte {
	b := make([]byte, 0, dkgHeaderSize+len(m.payload))
	b = append(b, dkgVersion, byte(m.Kind))
	b = append(b, m.Session[:]...)
	b = binary.BigEndian.AppendUint16(b, m.From)
	b = binary.BigEndian.AppendUint16(b, m.To)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.payload)))
	return append(b, m.payload...)
}

// Bytes returns the message's encoding.
func (m *DKGMessage) Bytes() []byte {
	return append(m.signed(), m.sig...)
}

// DecodeDKGMessage decodes a message encoded by Bytes. It checks the
// structure only; DKG.Handle checks the session and signature.
func DecodeDKGMessage(b []byte) (*DKGMessage, error) {
	if len(b) < dkgHeaderSize+schnorrSize {
		return nil, fmt.Errorf("DKG message: %d bytes, too short", len(b))
	}
	if b[0] != dkgVersion {
		return nil, fmt.Errorf("DKG message: version %d, want %d", b[0], dkgVersion)
	}
	m := &DKGMessage{Kind: MessageKind(b[1])}
	copy(m.Session[:], b[2:34])
	m.From = binary.BigEndian.Uint16(b[34:36])
	m.To = binary.BigEndian.Uint16(b[36:38])
	n := binary.BigEndian.Uint32(b[38:42])
	if uint64(len(b)) != uint64(dkgHeaderSize)+uint64(n)+schnorrSize {
		return nil, fmt.Errorf("DKG message: %d bytes, want %d for a %d-byte payload", len(b), uint64(dkgHeaderSize)+uint64(n)+schnorrSize, n)
	}
	m.payload = append([]byte(nil), b[dkgHeaderSize:dkgHeaderSize+int(n)]...)
	m.sig = append([]byte(nil), b[dkgHeaderSize+int(n):]...)
	var err error
	switch m.Kind {
	case KindDeal:
		_, err = decodeDeal(m.payload)
	case KindResponse:
		_, err = decodeResponse(m.payload)
	default:
		err = fmt.Errorf("kind %d unknown", m.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("DKG message: %w", err)
	}
	return m, nil
}

func encodeDeal(d *pedersen.Deal) []byte {
	b := binary.BigEndian.AppendUint32(nil, d.Index)
	b = append(b, d.Deal.DHKey...)
	b = append(b, d.Deal.Signature...)
	b = append(b, d.Deal.Nonce...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(d.Deal.Cipher)))
	b = append(b, d.Deal.Cipher...)
	return append(b, d.Signature...)
}

func decodeDeal(b []byte) (*pedersen.Deal, error) {
	if len(b) < dealFixedSize {
		return nil, fmt.Errorf("deal: %d bytes, too short", len(b))
	}
	cut := func(n int) []byte {
		out := append([]byte(nil), b[:n]...)
		b = b[n:]
		return out
	}
	d := &pedersen.Deal{Index: binary.BigEndian.Uint32(cut(4)), Deal: &vss.EncryptedDeal{}}
	d.Deal.DHKey = cut(32)
	d.Deal.Signature = cut(schnorrSize)
	d.Deal.Nonce = cut(gcmNonceSize)
	n := binary.BigEndian.Uint32(cut(4))
	if n == 0 || n > maxDealCipher || uint64(len(b)) != uint64(n)+schnorrSize {
		return nil, fmt.Errorf("deal: cipher length %d does not fit the %d bytes left", n, len(b))
	}
	d.Deal.Cipher = cut(int(n))
	d.Signature = cut(schnorrSize)
	if d.Index > MaxParticipants {
		return nil, fmt.Errorf("deal: dealer index %d out of range", d.Index)
	}
	if _, err := decodeElement(d.Deal.DHKey); err != nil {
		return nil, errors.New("deal: DH key is not a point")
	}
	return d, nil
}

func encodeResponse(r *pedersen.Response) []byte {
	b := binary.BigEndian.AppendUint32(nil, r.Index)
	b = append(b, r.Response.SessionID...)
	b = binary.BigEndian.AppendUint32(b, r.Response.Index)
	st := byte(0)
	if r.Response.Status == vss.StatusApproval {
		st = 1
	}
	b = append(b, st)
	return append(b, r.Response.Signature...)
}

func decodeResponse(b []byte) (*pedersen.Response, error) {
	if len(b) != responseSize {
		return nil, fmt.Errorf("response: %d bytes, want %d", len(b), responseSize)
	}
	r := &pedersen.Response{Index: binary.BigEndian.Uint32(b[:4]), Response: &vss.Response{}}
	r.Response.SessionID = append([]byte(nil), b[4:36]...)
	r.Response.Index = binary.BigEndian.Uint32(b[36:40])
	switch b[40] {
	case 0:
		r.Response.Status = vss.StatusComplaint
	case 1:
		r.Response.Status = vss.StatusApproval
	default:
		return nil, fmt.Errorf("response: status %d is neither 0 nor 1", b[40])
	}
	r.Response.Signature = append([]byte(nil), b[41:]...)
	if r.Index > MaxParticipants || r.Response.Index > MaxParticipants {
		return nil, errors.New("response: index out of range")
	}
	return r, nil
}
