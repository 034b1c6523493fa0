//go:build linux

package signstate

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cosigner/cosigner/privval"
)

// TestSignStateFullDisk runs the state on a tiny tmpfs and fills it. The
// state file is preallocated and written in place, so a full disk does not
// stop signing, and every mark still reaches the disk; creating a new state
// file on the full disk fails cleanly. It needs root (mount); elsewhere it
// skips.
func TestSignStateFullDisk(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); the write-failure test covers I/O errors", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })

	path := StatePath(dir, testChain)
	if err := WriteMark(path, testChain, Mark{Height: 1}, false); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSignState(path, testChain)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	t0 := time.Unix(1700000000, 0).UTC()
	if _, _, err := s.Sign(vote(2, 0, privval.StepPrevote, "A", t0), sign); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	f.Close()

	// Signing goes on, durably.
	for h := int64(3); h < 6; h++ {
		if _, _, err := s.Sign(vote(h, 0, privval.StepPrecommit, "A", t0), sign); err != nil {
			t.Fatalf("height %d on a full disk: %v", h, err)
		}
		if m, err := ReadMark(path, testChain); err != nil || m.Height != h {
			t.Fatalf("state on disk after height %d: %+v %v", h, m, err)
		}
	}
	// A new state file cannot be created, and nothing is left behind.
	other := StatePath(dir, "other-chain")
	if err := WriteMark(other, "other-chain", Mark{Height: 1}, false); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("state init on a full disk: %v", err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatal("a failed state init left a file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("temp files left on the full disk: %v", entries)
	}
}
