package privval

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// MaxFrameSize is the largest privval message, in bytes without its length
// prefix, that either side accepts: CometBFT refuses longer ones (its
// maxRemoteSignerMsgSize), and so do we, before allocating anything.
const MaxFrameSize = 10 * 1024

// ErrFrameTooLarge is wrapped by ReadFrame's error for a frame longer than
// MaxFrameSize.
var ErrFrameTooLarge = errors.New("privval frame too large")

// ReadFrame reads one uvarint-length-delimited frame from r and returns
// its body in a newly allocated slice. It refuses a length over
// MaxFrameSize before reading or allocating the body. At a clean end of
// stream (before the first byte of a frame) it returns io.EOF; a frame cut
// short returns io.ErrUnexpectedEOF.
func ReadFrame(r *bufio.Reader) ([]byte, error) {
	var n uint64
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		n |= uint64(c&0x7f) << (7 * i)
		if n > MaxFrameSize {
			return nil, fmt.Errorf("%w: length prefix says %d bytes, limit %d", ErrFrameTooLarge, n, MaxFrameSize)
		}
		if c < 0x80 {
			break
		}
		// Two bytes hold lengths up to 16383; a third means more than
		// MaxFrameSize (or an overlong encoding, which CometBFT never sends).
		if i == 1 {
			return nil, fmt.Errorf("%w: length prefix says more than 16383 bytes, limit %d", ErrFrameTooLarge, MaxFrameSize)
		}
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read %d-byte frame: %w", n, err)
	}
	return b, nil
}

// AppendFrame appends m, uvarint-length-delimited, to b.
func AppendFrame(b []byte, m Message) []byte {
	b = protowire.AppendVarint(b, uint64(messageSize(m)))
	return AppendMessage(b, m)
}

// ReadMessage reads and decodes one framed message. See ReadFrame and
// UnmarshalMessage.
func ReadMessage(r *bufio.Reader) (Message, error) {
	b, err := ReadFrame(r)
	if err != nil {
		return nil, err
	}
	return UnmarshalMessage(b)
}

// WriteMessage writes m, uvarint-length-delimited, in one Write call. It
// refuses a message over MaxFrameSize, which the node would refuse.
func WriteMessage(w io.Writer, m Message) error {
	n := messageSize(m)
	if n > MaxFrameSize {
		return fmt.Errorf("%w: %s of %d bytes, limit %d", ErrFrameTooLarge, messageName(m), n, MaxFrameSize)
	}
	b := AppendFrame(make([]byte, 0, protowire.SizeVarint(uint64(n))+n), m)
	_, err := w.Write(b)
	return err
}
