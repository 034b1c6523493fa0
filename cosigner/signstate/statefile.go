package signstate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/cosigner/cosigner/internal/fsutil"
)

// A state file is preallocated and holds two slots of slotSize bytes. Each
// advance of the mark overwrites the slot that does not hold the newest
// valid mark (the older one, or one a crash left torn) in place and is made
// durable with one fdatasync: no file is created, renamed or grown, so no directory
// or metadata write is needed, and a write costs about a fifth of the
// temp-file/fsync/rename/directory-fsync dance. A write torn by a crash or
// power loss leaves a slot whose checksum fails; the other slot still holds
// the previous mark, which is what the process had acted on, since no
// signature leaves before the write returns.
//
// Slot layout (little-endian):
//
//	magic "CSM1" | sequence uint64 | length uint32 | crc32c(sequence|length|payload) uint32 | payload | zero padding
//
// The payload is the state's JSON (stateFile), so the file stays greppable
// and `cosigner state show` prints it.
const (
	slotSize   = 4096
	slotHeader = 4 + 8 + 4 + 4
)

var (
	slotMagic  = [4]byte{'C', 'S', 'M', '1'}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// encodeSlot renders payload with sequence number seq into a full slot.
func encodeSlot(buf []byte, seq uint64, payload []byte) error {
	if len(payload) > slotSize-slotHeader {
		return fmt.Errorf("sign state of %d bytes does not fit a %d-byte slot", len(payload), slotSize)
	}
	clear(buf[:slotSize])
	copy(buf, slotMagic[:])
	binary.LittleEndian.PutUint64(buf[4:], seq)
	binary.LittleEndian.PutUint32(buf[12:], uint32(len(payload)))
	copy(buf[slotHeader:], payload)
	crc := crc32.Checksum(buf[4:16], castagnoli)
	crc = crc32.Update(crc, castagnoli, payload)
	binary.LittleEndian.PutUint32(buf[16:], crc)
	return nil
}

// decodeSlot returns the payload and sequence of a valid slot.
func decodeSlot(slot []byte) (payload []byte, seq uint64, ok bool) {
	if len(slot) < slotHeader || !bytes.Equal(slot[:4], slotMagic[:]) {
		return nil, 0, false
	}
	seq = binary.LittleEndian.Uint64(slot[4:])
	n := binary.LittleEndian.Uint32(slot[12:])
	if int(n) > len(slot)-slotHeader {
		return nil, 0, false
	}
	payload = slot[slotHeader : slotHeader+int(n)]
	crc := crc32.Checksum(slot[4:16], castagnoli)
	crc = crc32.Update(crc, castagnoli, payload)
	if crc != binary.LittleEndian.Uint32(slot[16:]) {
		return nil, 0, false
	}
	return payload, seq, true
}

// isSlotted reports whether data is a two-slot state file (rather than a
// plain JSON state, which ReadMark also accepts): either slot starts with
// the magic (slot 0 is empty until the first write, and a torn write may
// have damaged either slot's magic, never both).
func isSlotted(data []byte) bool {
	return bytes.HasPrefix(data, slotMagic[:]) ||
		len(data) >= slotSize+len(slotMagic) && bytes.Equal(data[slotSize:slotSize+len(slotMagic)], slotMagic[:])
}

// readSlots returns the payload and sequence of the valid slot with the
// higher sequence, and that slot's index (0 or 1).
func readSlots(data []byte) (payload []byte, seq uint64, slot int, err error) {
	if len(data) != 2*slotSize {
		return nil, 0, 0, fmt.Errorf("state file is %d bytes, want %d", len(data), 2*slotSize)
	}
	p0, s0, ok0 := decodeSlot(data[:slotSize])
	p1, s1, ok1 := decodeSlot(data[slotSize:])
	switch {
	case ok0 && ok1 && s0 == s1:
		return nil, 0, 0, errors.New("both slots carry the same sequence number")
	case ok0 && (!ok1 || s0 > s1):
		return p0, s0, 0, nil
	case ok1:
		return p1, s1, 1, nil
	}
	return nil, 0, 0, errors.New("no slot passes its checksum")
}

// createSlotFile writes a new two-slot state file holding payload, durably
// and atomically (temp file, fsync, rename, directory fsync), replacing any
// file at path. The payload goes into slot 1 with sequence 1, so that
// sequence n lives in slot n%2 and the first in-place write goes to the
// empty slot 0. (Files created before this rule hold sequence 1 in slot 0;
// write picks the slot from what it found, so they are safe too.)
func createSlotFile(path string, payload []byte) error {
	buf := make([]byte, 2*slotSize)
	if err := encodeSlot(buf[slotSize:], 1, payload); err != nil {
		return err
	}
	return fsutil.Replace(path, buf, 0o600)
}

// slotFile is an open two-slot state file.
type slotFile struct {
	f    *os.File
	seq  uint64 // sequence of the newest valid slot
	slot int    // index of the newest valid slot: writes go to the other
	buf  []byte
}

// openSlotFile opens the state file at path for in-place writes. A plain
// JSON state (written by hand or by an older tool) is first rewritten as a
// two-slot file with the same content.
func openSlotFile(path string) (*slotFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !isSlotted(data) {
		if err := createSlotFile(path, bytes.TrimSpace(data)); err != nil {
			return nil, fmt.Errorf("convert %s to a two-slot state file: %w", filepath.Base(path), err)
		}
		if data, err = os.ReadFile(path); err != nil {
			return nil, err
		}
	}
	_, seq, slot, err := readSlots(data)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return &slotFile{f: f, seq: seq, slot: slot, buf: make([]byte, slotSize)}, nil
}

// write stores payload in the slot that does not hold the newest valid
// mark, and makes it durable. The newest mark is never touched, so a write
// torn at any byte leaves it readable. On error the mark on disk is the
// previous one; neither the sequence number nor the slot advances, and the
// next write goes to the same slot again.
func (s *slotFile) write(payload []byte) error {
	next, slot := s.seq+1, 1-s.slot
	if err := encodeSlot(s.buf, next, payload); err != nil {
		return err
	}
	if _, err := s.f.WriteAt(s.buf, int64(slot)*slotSize); err != nil {
		return err
	}
	if err := fsutil.Datasync(s.f); err != nil {
		return err
	}
	s.seq, s.slot = next, slot
	return nil
}

func (s *slotFile) close() error { return s.f.Close() }
