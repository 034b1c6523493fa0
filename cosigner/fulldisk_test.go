//go:build linux

package cosigner

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cosigner/cosigner/privval"
)

// TestSignStateFullDisk runs the state on a tiny tmpfs, fills it, and checks
// that a signature is withheld with ENOSPC, the mark stays, and signing
// resumes once space is freed. It needs root (mount); elsewhere it skips.
func TestSignStateFullDisk(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=16k"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); the removed-directory test covers write failures", err)
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
			break
		}
	}
	f.Close()

	sig, _, err := s.Sign(vote(2, 0, privval.StepPrecommit, "A", t0), sign)
	if !errors.Is(err, syscall.ENOSPC) || sig != nil {
		t.Fatalf("full disk: sig=%x err=%v, want ENOSPC and no signature", sig, err)
	}
	if m, err := ReadMark(path, testChain); err != nil || m.Step != privval.StepPrevote {
		t.Fatalf("state file after full disk: %+v %v", m, err)
	}
	os.Remove(filler)
	if _, _, err := s.Sign(vote(2, 0, privval.StepPrecommit, "A", t0), sign); err != nil {
		t.Fatalf("after freeing space: %v", err)
	}
}
