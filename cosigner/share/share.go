// Package share is the files of a threshold cluster's key: a cosigner's
// secret share, the group file with the validator key and the Feldman
// commitments each share is checked against, `cosigner shard` writing one
// ready-to-run home per cosigner, and shares sealed in a YubiHSM2.
//
// It knows nothing of signing or of the cluster's network.
package share

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/cosigner/cosigner/internal/fsutil"
	"github.com/cosigner/cosigner/threshold"
)

const (
	shareFileType = "cosigner/frost-ed25519-sha512/key-share"
	groupFileType = "cosigner/frost-ed25519-sha512/group-key"
)

// shareFile is a cosigner's key share on disk (0600). It repeats the group
// public key so a share can be checked on its own.
type shareFile struct {
	Type      string `json:"type"`
	ID        uint16 `json:"id"`
	Threshold int    `json:"threshold"`
	Shares    int    `json:"shares"`
	PubKey    []byte `json:"pub_key"`
	// Epoch is the generation of the shares (FirstEpoch when absent).
	Epoch    uint64              `json:"epoch,omitempty"`
	KeyShare *threshold.KeyShare `json:"key_share"`
}

// groupFile is the public side of a dealing: the validator's public key and
// the Feldman commitments every share is checked against.
type groupFile struct {
	Type      string `json:"type"`
	Threshold int    `json:"threshold"`
	Shares    int    `json:"shares"`
	PubKey    []byte `json:"pub_key"`
	// Epoch is the generation of the shares (FirstEpoch when absent).
	Epoch    uint64              `json:"epoch,omitempty"`
	GroupKey *threshold.GroupKey `json:"group_key"`
}

// Marshal renders share as a share file of epoch number epoch (at least
// FirstEpoch).
func Marshal(share *threshold.KeyShare, epoch uint64) ([]byte, error) {
	if epoch < FirstEpoch {
		return nil, fmt.Errorf("share file: epoch %d: epochs start at %d", epoch, FirstEpoch)
	}
	g := share.Group()
	return json.MarshalIndent(shareFile{Type: shareFileType, ID: share.ID(), Threshold: g.Threshold(), Shares: g.N(),
		PubKey: g.PublicKey(), Epoch: epoch, KeyShare: share}, "", "  ")
}

// MarshalGroup renders a group key as a group file of epoch number epoch
// (at least FirstEpoch).
func MarshalGroup(g *threshold.GroupKey, epoch uint64) ([]byte, error) {
	if epoch < FirstEpoch {
		return nil, fmt.Errorf("group file: epoch %d: epochs start at %d", epoch, FirstEpoch)
	}
	return json.MarshalIndent(groupFile{Type: groupFileType, Threshold: g.Threshold(), Shares: g.N(),
		PubKey: g.PublicKey(), Epoch: epoch, GroupKey: g}, "", "  ")
}

// decodeStrict decodes the JSON object data into v, a pointer to a struct,
// refusing keys the struct does not have. It decodes data in place with
// json.Unmarshal, because a json.Decoder copies its input into a buffer of
// its own that nobody clears, and for a share file that copy would hold the
// secret. Only top-level keys are checked: the files' values are strings,
// numbers and text-encoded keys.
func decodeStrict(data []byte, v any) error {
	var keys map[string]ignored
	if err := json.Unmarshal(data, &keys); err != nil {
		return err
	}
	known := map[string]bool{}
	t := reflect.TypeOf(v).Elem()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		known[name] = true
	}
	for k := range keys {
		if !known[k] {
			return fmt.Errorf("json: unknown field %q", k)
		}
	}
	return json.Unmarshal(data, v)
}

// ignored is a JSON value decodeStrict skips without copying it.
type ignored struct{}

func (*ignored) UnmarshalJSON([]byte) error { return nil }

// LoadGroup reads a group file and checks that its public key is the one the
// commitments define.
func LoadGroup(path string) (*threshold.GroupKey, error) {
	g, _, err := LoadGroupEpoch(path)
	return g, err
}

// LoadGroupEpoch is LoadGroup that also returns the group's epoch.
func LoadGroupEpoch(path string) (*threshold.GroupKey, Epoch, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Epoch{}, fmt.Errorf("read group key: %w", err)
	}
	var f groupFile
	if err := decodeStrict(data, &f); err != nil {
		return nil, Epoch{}, fmt.Errorf("group key %s: %w", path, err)
	}
	if f.Type != groupFileType || f.GroupKey == nil {
		return nil, Epoch{}, fmt.Errorf("group key %s: not a cosigner group key file (type %q)", path, f.Type)
	}
	if !bytes.Equal(f.PubKey, f.GroupKey.PublicKey()) {
		return nil, Epoch{}, fmt.Errorf("group key %s: pub_key does not match the commitments (corrupt or edited file)", path)
	}
	if f.Threshold != f.GroupKey.Threshold() || f.Shares != f.GroupKey.N() {
		return nil, Epoch{}, fmt.Errorf("group key %s: says %d of %d, the commitments say %d of %d", path, f.Threshold, f.Shares, f.GroupKey.Threshold(), f.GroupKey.N())
	}
	return f.GroupKey, EpochOf(f.GroupKey, epochNumber(f.Epoch)), nil
}

// Load reads a share file and checks it against the group file: same
// group, and the secret share lies on the committed polynomial (Feldman
// verification), so a corrupt or foreign share never starts signing. A
// share file that group or others may access is refused with an error
// wrapping *fsutil.ModeError. The file's bytes are cleared once decoded.
func Load(sharePath, groupPath string) (*threshold.KeyShare, error) {
	group, epoch, err := LoadGroupEpoch(groupPath)
	if err != nil {
		return nil, err
	}
	data, err := fsutil.ReadSecret(sharePath)
	var me *fsutil.ModeError
	switch {
	case errors.As(err, &me):
		return nil, fmt.Errorf("key share %w", err)
	case err != nil:
		return nil, fmt.Errorf("read key share: %w", err)
	}
	// The decoded share keeps its own copy of the secret.
	defer clear(data)
	return decode(data, sharePath, group, epoch.Number, groupPath)
}

// decode decodes a share file's content and checks it against group
// as Load does, epoch being the group file's epoch number; sharePath names
// where the data came from (a file, or a YubiHSM2 object).
func decode(data []byte, sharePath string, group *threshold.GroupKey, epoch uint64, groupPath string) (*threshold.KeyShare, error) {
	var f shareFile
	if err := decodeStrict(data, &f); err != nil {
		return nil, fmt.Errorf("key share %s: %w", sharePath, err)
	}
	if f.Type != shareFileType || f.KeyShare == nil {
		return nil, fmt.Errorf("key share %s: not a cosigner key share file (type %q)", sharePath, f.Type)
	}
	share := f.KeyShare
	if f.ID != share.ID() {
		return nil, fmt.Errorf("key share %s: id %d, the share says %d", sharePath, f.ID, share.ID())
	}
	if !share.Group().Equal(group) {
		if bytes.Equal(share.Group().PublicKey(), group.PublicKey()) {
			return nil, fmt.Errorf("key share %s is of %s, the group file %s of %s: shares of another epoch (before or after a 'cosigner reshare') cannot sign with this group; use the share and group files the same ceremony wrote",
				sharePath, EpochOf(share.Group(), epochNumber(f.Epoch)), groupPath, EpochOf(group, epoch))
		}
		return nil, fmt.Errorf("key share %s belongs to another group than %s (validator key %X)", sharePath, groupPath, share.Group().PublicKey())
	}
	if epochNumber(f.Epoch) != epoch {
		return nil, fmt.Errorf("key share %s says epoch %d, the group file %s says epoch %d (edited file?)", sharePath, epochNumber(f.Epoch), groupPath, epoch)
	}
	if err := threshold.VerifyShare(share, ed25519.PublicKey(f.PubKey)); err != nil {
		return nil, fmt.Errorf("key share %s does not verify against its commitments: %w", sharePath, err)
	}
	return share, nil
}

// ErrOutExists is returned when shard's output directory exists.
var ErrOutExists = errors.New("output directory already exists")
