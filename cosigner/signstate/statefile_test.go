package signstate

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/cosigner/cosigner/internal/fsutil"
	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/privval"
)

// TestTornSlotWrites: a crash or power loss can stop a slot write anywhere,
// leaving a prefix of the new slot over the old bytes (or a suffix, when the
// disk writes the later sectors first). For each of the first writes after
// the file is created, torn at every offset, loading the file (what start
// does) finds the last complete mark: the previous one, or the new one if
// everything the checksum covers made it. No tear leaves a file that start
// refuses, and none resurrects an older mark.
func TestTornSlotWrites(t *testing.T) {
	const writes = 3
	layouts := []struct {
		name   string
		create func(t *testing.T, path string)
	}{
		{"created by state init", func(t *testing.T, path string) {
			if err := WriteMark(path, testChain, Mark{Height: 1}, false); err != nil {
				t.Fatal(err)
			}
		}},
		// Files created before the fix hold sequence 1 in slot 0; the
		// first write must still go to the other slot.
		{"sequence 1 in slot 0", func(t *testing.T, path string) {
			buf := make([]byte, 2*slotSize)
			if err := encodeSlot(buf, 1, encodeState(testChain, Mark{Height: 1})); err != nil {
				t.Fatal(err)
			}
			if err := fsutil.WriteNew(path, buf); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, layout := range layouts {
		t.Run(layout.name, func(t *testing.T) {
			path := StatePath(t.TempDir(), testChain)
			layout.create(t, path)
			snaps := [][]byte{readFile(t, path)}
			heights := []int64{1}
			s, err := LoadSignState(path, testChain)
			if err != nil {
				t.Fatal(err)
			}
			for h := int64(2); h < 2+writes; h++ {
				if _, _, err := s.Sign(vote(h, 0, privval.StepPrevote, "A", testkit.T0), sign); err != nil {
					t.Fatal(err)
				}
				snaps = append(snaps, readFile(t, path))
				heights = append(heights, h)
			}
			s.Close()

			// One file, rewritten in place for each tear: loading reads
			// it as start does.
			torn := filepath.Join(t.TempDir(), "torn.json")
			f, err := os.OpenFile(torn, os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for k := 1; k <= writes; k++ {
				before, after := snaps[k-1], snaps[k]
				off := writtenSlot(t, before, after)
				// What the new slot's checksum covers: header and payload.
				covered := slotHeader + int(binary.LittleEndian.Uint32(after[off+12:]))
				for i := 0; i <= slotSize; i++ {
					for _, suffix := range []bool{false, true} {
						// A tear at i whose boundary byte is the same
						// before and after gives the same file as the
						// tear next to it: load each file once.
						if i > 0 && i < slotSize {
							j := off + i - 1
							if suffix {
								j = off + i
							}
							if before[j] == after[j] {
								continue
							}
						}
						data := append([]byte(nil), before...)
						if suffix {
							copy(data[off+i:off+slotSize], after[off+i:off+slotSize])
						} else {
							copy(data[off:off+i], after[off:off+i])
						}
						want := heights[k-1]
						if bytes.Equal(data[off:off+covered], after[off:off+covered]) {
							want = heights[k]
						}
						if _, err := f.WriteAt(data, 0); err != nil {
							t.Fatal(err)
						}
						st, err := LoadSignState(torn, testChain)
						if err != nil {
							t.Fatalf("write %d torn at %d (suffix %v): start refuses: %v", k, i, suffix, err)
						}
						m := st.Mark()
						st.Close()
						if m.Height != want {
							t.Fatalf("write %d torn at %d (suffix %v): loaded height %d, want %d", k, i, suffix, m.Height, want)
						}
					}
				}
			}
		})
	}
}

// writtenSlot returns the offset of the one slot that differs between
// before and after; a write that touches both slots fails the test.
func writtenSlot(t *testing.T, before, after []byte) int {
	t.Helper()
	var changed []int
	for off := 0; off < 2*slotSize; off += slotSize {
		if !bytes.Equal(before[off:off+slotSize], after[off:off+slotSize]) {
			changed = append(changed, off)
		}
	}
	if len(changed) != 1 {
		t.Fatalf("a mark write changed the slots at offsets %v, want exactly one", changed)
	}
	return changed[0]
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
