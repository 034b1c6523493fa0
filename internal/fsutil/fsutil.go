// Package fsutil holds the durable file writes every cosigner file goes
// through: key, share, certificate, configuration and sign-state files.
// Each function says what survives a crash or power loss at any point.
//
// It knows nothing of what the files hold. Files are created 0600 (or with
// the mode given) and never replaced without the caller asking for it by
// name (Replace): key and state files are never overwritten implicitly.
// ReadSecret is the one read of a secret file: it refuses one that group or
// others may access.
package fsutil

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteNew creates path with mode 0600, failing with an error satisfying
// errors.Is(err, fs.ErrExist) if anything is there, writes data and syncs
// the file and its directory. After a crash the file is absent, or present
// with all of data: data goes to a temporary file in the same directory,
// synced, then hard-linked to path (which fails if path exists), so path
// never names a partly written file. A crash can leave the temporary file
// (".NAME.tmp-*") behind; nothing reads it.
func WriteNew(path string, data []byte) error {
	dir := filepath.Dir(path)
	if _, err := os.Lstat(path); err == nil {
		return &os.PathError{Op: "create", Path: path, Err: fs.ErrExist}
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmpName, path); err != nil {
		return err
	}
	if err := os.Remove(tmpName); err != nil {
		return err
	}
	return SyncDir(dir)
}

// Replace replaces path with data (mode perm) so that after a power loss
// the file holds either the old or the new content: a temporary file in
// the same directory, fsync, rename over path, fsync of the directory.
func Replace(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmpName, path); err != nil {
		return err
	}
	ok = true
	return SyncDir(dir)
}

// Remove removes path and syncs its directory, so the removal survives a
// power loss.
func Remove(path string) error {
	if err := os.Remove(path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// MkdirAll creates dir and any missing parents with mode perm, and syncs
// the parent of every directory it created, so the new entries survive a
// power loss (a file synced inside a directory whose own entry was lost is
// lost with it).
func MkdirAll(dir string, perm os.FileMode) error {
	dir = filepath.Clean(dir)
	var created []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		created = append(created, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	for _, d := range created {
		if err := SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// SyncDir fsyncs the directory dir, making the entries created, renamed or
// removed in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
