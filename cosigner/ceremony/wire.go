package ceremony

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/cosigner/cosigner/threshold"
)

// Frame types.
const (
	frameHello   byte = 1
	frameConfirm byte = 2
	frameDKG     byte = 3
	frameDone    byte = 4
	frameAbort   byte = 5
)

const (
	helloVersion = 2
	nonceSize    = 32
	digestSize   = 32
	// MaxFrame bounds a frame's length: a deal for 255 participants is
	// well under it.
	MaxFrame = 1 << 20
	// MaxParams bounds the Params a hello carries.
	MaxParams = 64 << 10
	// MaxExtra bounds the Extra a hello carries.
	MaxExtra = 16 << 10
	// MaxReason bounds an abort frame's reason.
	MaxReason = 4096
)

func frameName(t byte) string {
	switch t {
	case frameHello:
		return "hello"
	case frameConfirm:
		return "confirm"
	case frameDKG:
		return "dkg"
	case frameDone:
		return "done"
	case frameAbort:
		return "abort"
	}
	return fmt.Sprintf("type %d", t)
}

// frame is one unit on a ceremony connection.
type frame struct {
	typ  byte
	body []byte
}

func (f frame) bytes() []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(f.body)))
	b = append(b, f.typ)
	return append(b, f.body...)
}

// readFrame reads one frame. It refuses an empty or oversized frame and an
// unknown type before reading the body.
func readFrame(r io.Reader) (frame, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n == 0 || n > MaxFrame {
		return frame{}, fmt.Errorf("frame of %d bytes: want 1..%d", n, MaxFrame)
	}
	if hdr[4] < frameHello || hdr[4] > frameAbort {
		return frame{}, fmt.Errorf("frame of unknown type %d", hdr[4])
	}
	body := make([]byte, n-1)
	if _, err := io.ReadFull(r, body); err != nil {
		return frame{}, fmt.Errorf("%s frame cut short: %w", frameName(hdr[4]), err)
	}
	return frame{typ: hdr[4], body: body}, nil
}

// hello is a participant's first frame.
type hello struct {
	from     uint16
	nonce    [nonceSize]byte
	longterm [threshold.LongtermSize]byte
	params   []byte
	extra    []byte
}

func (h *hello) encode() frame {
	b := []byte{helloVersion}
	b = binary.BigEndian.AppendUint16(b, h.from)
	b = append(b, h.nonce[:]...)
	b = append(b, h.longterm[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(h.params)))
	b = append(b, h.params...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(h.extra)))
	b = append(b, h.extra...)
	return frame{typ: frameHello, body: b}
}

const helloFixed = 1 + 2 + nonceSize + threshold.LongtermSize + 4

func decodeHello(b []byte) (*hello, error) {
	if len(b) < helloFixed {
		return nil, fmt.Errorf("hello: %d bytes, too short", len(b))
	}
	if b[0] != helloVersion {
		return nil, fmt.Errorf("hello: version %d, want %d (run the same cosigner version on every host)", b[0], helloVersion)
	}
	h := &hello{from: binary.BigEndian.Uint16(b[1:3])}
	copy(h.nonce[:], b[3:3+nonceSize])
	copy(h.longterm[:], b[3+nonceSize:3+nonceSize+threshold.LongtermSize])
	n := binary.BigEndian.Uint32(b[helloFixed-4 : helloFixed])
	if n > MaxParams || uint64(len(b)) < uint64(helloFixed)+uint64(n)+4 {
		return nil, fmt.Errorf("hello: params length %d does not fit the %d bytes left", n, len(b)-helloFixed)
	}
	rest := b[helloFixed+int(n):]
	e := binary.BigEndian.Uint32(rest[:4])
	if e > MaxExtra || uint64(len(rest)) != 4+uint64(e) {
		return nil, fmt.Errorf("hello: extra length %d does not fit the %d bytes left", e, len(rest)-4)
	}
	if h.from == 0 {
		return nil, errors.New("hello: from cosigner 0")
	}
	h.params = append([]byte(nil), b[helloFixed:helloFixed+int(n)]...)
	h.extra = append([]byte(nil), rest[4:]...)
	return h, nil
}

func decodeDigest(what string, b []byte, emptyOK bool) ([]byte, error) {
	if len(b) == digestSize || (emptyOK && len(b) == 0) {
		return append([]byte(nil), b...), nil
	}
	return nil, fmt.Errorf("%s: %d bytes, want %d", what, len(b), digestSize)
}

func decodeConfirm(b []byte) ([]byte, error) { return decodeDigest("confirm", b, false) }
func decodeDone(b []byte) ([]byte, error)    { return decodeDigest("done", b, true) }

func encodeAbort(reason string) frame {
	reason = strings.ToValidUTF8(reason, "?")
	if len(reason) > MaxReason {
		reason = reason[:MaxReason]
	}
	// Cutting may split a rune: keep the frame valid UTF-8.
	for !utf8.ValidString(reason) {
		reason = reason[:len(reason)-1]
	}
	return frame{typ: frameAbort, body: []byte(reason)}
}

func decodeAbort(b []byte) (string, error) {
	if len(b) > MaxReason || !utf8.Valid(b) {
		return "", fmt.Errorf("abort: reason of %d bytes is not valid UTF-8 of at most %d", len(b), MaxReason)
	}
	return string(b), nil
}
