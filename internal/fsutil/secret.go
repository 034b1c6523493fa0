package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ModeError is a secret file (a key, a key share) whose mode lets group or
// others read or write it. The message says how to fix it.
type ModeError struct {
	Path string
	Mode fs.FileMode // permission bits
}

func (e *ModeError) Error() string {
	return fmt.Sprintf("%s has mode %#o, readable or writable by group or others: run 'chmod 600 %s'", e.Path, e.Mode, e.Path)
}

// CheckSecretMode returns a *ModeError if mode gives group or others any
// access to the secret file at path, and nil otherwise.
func CheckSecretMode(path string, mode fs.FileMode) error {
	if mode.Perm()&0o077 != 0 {
		return &ModeError{Path: path, Mode: mode.Perm()}
	}
	return nil
}

// ReadSecret reads the secret file at path, refusing one that group or
// others may access (CheckSecretMode) before reading a byte of it. The mode
// is taken from the open file, so the file checked is the file read. The
// buffer is sized from the file and never regrown without clearing the old
// one, so no copy of the secret is left behind; the caller clears the
// returned bytes once it has decoded them.
func ReadSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := CheckSecretMode(path, st.Mode()); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, st.Size()+1)
	for {
		if len(buf) == cap(buf) {
			// The file grew since the stat.
			old := buf
			buf = append(buf, 0)[:len(buf)]
			clear(old)
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			clear(buf)
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
}
