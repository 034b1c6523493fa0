package share

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cosigner/cosigner/internal/fsutil"
)

// RetiredFile is the file `cosigner reshare` writes into an old home once
// the new shares are complete. `cosigner start` refuses a home holding it:
// the old shares still sign together, and an old cluster started again
// beside the new one could sign a block the new one signs differently.
const RetiredFile = "retired.json"

const retiredFileType = "cosigner/retired-home"

// Retirement is the content of RetiredFile.
type Retirement struct {
	Type string `json:"type"`
	// Epoch and Group name the shares this home holds.
	Epoch uint64 `json:"epoch"`
	Group string `json:"group"`
	// Successor and SuccessorGroup name the epoch that replaced them, and
	// SuccessorHome where its share was written on this host ("" for a
	// host that retired from the cluster).
	Successor      uint64    `json:"successor_epoch"`
	SuccessorGroup string    `json:"successor_group"`
	SuccessorHome  string    `json:"successor_home,omitempty"`
	At             time.Time `json:"at"`
}

// Retire writes RetiredFile into home, naming old as the epoch it holds
// and successor as the one that replaced it (its Group zero when unknown
// here, as on a retiring host; newHome: where this host's new share is,
// "" if none). It never overwrites: a home is retired once.
func Retire(home string, old, successor Epoch, newHome string, at time.Time) error {
	next := ""
	if successor.Group != ([32]byte{}) {
		next = hex.EncodeToString(successor.Group[:])
	}
	data, err := json.MarshalIndent(Retirement{Type: retiredFileType, Epoch: old.Number, Group: hex.EncodeToString(old.Group[:]),
		Successor: successor.Number, SuccessorGroup: next, SuccessorHome: newHome, At: at.UTC()}, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteNew(filepath.Join(home, RetiredFile), append(data, '\n')); err != nil {
		return fmt.Errorf("retire home %s: %w", home, err)
	}
	return fsutil.SyncDir(home)
}

// ErrRetired is wrapped by CheckRetired's error for a retired home.
var ErrRetired = errors.New("home retired by a reshare")

// CheckRetired returns an error wrapping ErrRetired when home holds
// RetiredFile (also when that file cannot be read or decoded: in doubt
// the home stays retired), nil when it holds none.
func CheckRetired(home string) error {
	path := filepath.Join(home, RetiredFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %s cannot be read (%v); the home is treated as retired", ErrRetired, path, err)
	}
	var r Retirement
	if err := json.Unmarshal(data, &r); err != nil || r.Type != retiredFileType {
		return fmt.Errorf("%w: %s is not a cosigner retirement file; the home is treated as retired", ErrRetired, path)
	}
	where := "this host left the cluster"
	if r.SuccessorHome != "" {
		where = "this host's new share is in " + r.SuccessorHome + ": start that home"
	}
	short := func(h string) string {
		if h == "" {
			return "unknown here"
		}
		return h[:min(8, len(h))]
	}
	return fmt.Errorf("%w: %s says this home's share (epoch %d, group %s) was replaced by epoch %d (group %s) at %s; %s. "+
		"The old shares must never sign again: an old cluster beside the new one could sign a block twice",
		ErrRetired, path, r.Epoch, short(r.Group), r.Successor, short(r.SuccessorGroup), r.At.Format(time.RFC3339), where)
}
