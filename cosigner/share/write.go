package share

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cosigner/cosigner/internal/fsutil"
	"github.com/cosigner/cosigner/threshold"
)

// ErrShareInPlace is returned by CheckNoKey and WriteKey when a share or group
// file is already in place and replacing it was not asked for.
var ErrShareInPlace = errors.New("a key share or group file is already in place")

// CheckNoKey fails with an error wrapping ErrShareInPlace if sharePath or
// groupPath exists. `cosigner dkg` checks before it starts a ceremony
// whose result it would then refuse to write.
func CheckNoKey(sharePath, groupPath string) error {
	for _, p := range []string{sharePath, groupPath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%w: %s", ErrShareInPlace, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// WriteKey writes ks as a share file at sharePath (0600) and its group as
// a group file at groupPath, both of epoch number epoch (FirstEpoch for a
// DKG, one more for each resharing), the files `cosigner start` loads. Each file
// appears whole or not at all (written to a temporary file, synced, then
// linked or renamed into place, and the directory synced), the group file
// first, so a share is never in place without its group. Without replace it
// refuses, with an error wrapping ErrShareInPlace, if either file exists, and
// never overwrites one; with replace it replaces both. If the share cannot
// be written, a group file it has just written is removed again.
func WriteKey(sharePath, groupPath string, ks *threshold.KeyShare, epoch uint64, replace bool) error {
	shareJSON, err := Marshal(ks, epoch)
	if err != nil {
		return err
	}
	defer clear(shareJSON)
	groupJSON, err := MarshalGroup(ks.Group(), epoch)
	if err != nil {
		return err
	}
	if !replace {
		if err := CheckNoKey(sharePath, groupPath); err != nil {
			return err
		}
	}
	if err := publish(groupPath, groupJSON, replace); err != nil {
		return fmt.Errorf("write group file: %w", err)
	}
	if err := publish(sharePath, shareJSON, replace); err != nil {
		if !replace {
			fsutil.Remove(groupPath)
		}
		return fmt.Errorf("write key share: %w", err)
	}
	return nil
}

// publish puts data at path (0600) whole or not at all. Without replace it
// links the synced temporary file into place, which fails if path exists
// (no check-then-write race).
func publish(path string, data []byte, replace bool) error {
	if replace {
		return fsutil.Replace(path, data, 0o600)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name)
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(name, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrShareInPlace, path)
		}
		return err
	}
	return fsutil.SyncDir(dir)
}
