package share

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/hsm"
	"github.com/cosigner/cosigner/threshold"
)

// A threshold cosigner's share sealed by a YubiHSM2 is its share file's
// content stored as an opaque object. The device hands it out only to a
// session authenticated with a key holding get-opaque; the file is removed
// once the device's copy is read back and compared, and the share then only
// ever lives in the device and in this process's memory.

// Label is the label of the opaque object holding cosigner id's share.
func Label(id int) string { return fmt.Sprintf("cosigner-share-%d", id) }

// Seal stores the share file named by cfg (checked against the group
// file first) in the device as opaque object objectID (0: the device picks
// the id), reads it back and compares it byte for byte, and returns the
// share and the object id. It neither removes the file nor edits the
// configuration: see SetShareHSMObject.
func Seal(ctx context.Context, h *hsm.Client, cfg *config.Config, objectID uint16) (*threshold.KeyShare, uint16, error) {
	t := cfg.Threshold
	return SealSource(ctx, h, cfg, config.ShareSource{GroupFile: t.GroupFile, ShareFile: t.ShareFile}, "", objectID)
}

// ChainLabel is the label of the opaque object holding cosigner id's share
// of chainID's own key, cut to the device's 40 bytes.
func ChainLabel(id int, chainID string) string {
	l := fmt.Sprintf("cosigner-share-%d-%s", id, chainID)
	if len(l) > 40 {
		l = l[:40]
	}
	return l
}

// SealSource is Seal for the share file of src (a chain's own key), with
// label for the object ("": Label of the share's id).
func SealSource(ctx context.Context, h *hsm.Client, cfg *config.Config, src config.ShareSource, label string, objectID uint16) (*threshold.KeyShare, uint16, error) {
	sharePath, groupPath := cfg.Path(src.ShareFile), cfg.Path(src.GroupFile)
	share, err := Load(sharePath, groupPath)
	if err != nil {
		return nil, 0, err
	}
	if label == "" {
		label = Label(int(share.ID()))
	}
	data, err := os.ReadFile(sharePath)
	if err != nil {
		return nil, 0, fmt.Errorf("read key share: %w", err)
	}
	defer clear(data)
	objectID, err = h.PutOpaque(ctx, objectID, label, data)
	if err != nil {
		return nil, 0, err
	}
	back, err := h.GetOpaque(ctx, objectID)
	if err != nil {
		return nil, 0, fmt.Errorf("read the sealed share back: %w", err)
	}
	defer clear(back)
	if !bytes.Equal(back, data) {
		return nil, 0, fmt.Errorf("the share read back from yubihsm object %d differs from %s: keep the file, delete the object and retry", objectID, sharePath)
	}
	return share, objectID, nil
}

// LoadFromHSM reads the share sealed as opaque object objectID and
// checks it against the group file as Load does.
func LoadFromHSM(ctx context.Context, h *hsm.Client, objectID uint16, groupPath string) (*threshold.KeyShare, error) {
	group, epoch, err := LoadGroupEpoch(groupPath)
	if err != nil {
		return nil, err
	}
	data, err := h.GetOpaque(ctx, objectID)
	if err != nil {
		return nil, err
	}
	// The decoded share keeps its own copy of the secret.
	defer clear(data)
	return decode(data, fmt.Sprintf("in yubihsm object %d", objectID), group, epoch.Number, groupPath)
}

// LoadFromConfig loads the threshold share: from the YubiHSM2 when
// threshold.share_hsm_object is set, otherwise from threshold.share_file.
// The session with the device is closed once the share is read.
func LoadFromConfig(ctx context.Context, cfg *config.Config, log *slog.Logger) (*threshold.KeyShare, error) {
	t := cfg.Threshold
	return LoadSource(ctx, cfg, config.ShareSource{GroupFile: t.GroupFile, ShareFile: t.ShareFile, HSMObject: t.ShareHSMObject}, log)
}

// LoadSource is LoadFromConfig for one share source of cfg (a chain's own
// key, config.Config.ChainShare).
func LoadSource(ctx context.Context, cfg *config.Config, src config.ShareSource, log *slog.Logger) (*threshold.KeyShare, error) {
	if src.HSMObject == 0 {
		return Load(cfg.Path(src.ShareFile), cfg.Path(src.GroupFile))
	}
	opts, err := cfg.HSMOptions()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*opts.Timeout)
	defer cancel()
	h, err := hsm.Dial(ctx, opts, log)
	if err != nil {
		return nil, fmt.Errorf("read the share sealed in the yubihsm: %w", err)
	}
	defer h.Close()
	share, err := LoadFromHSM(ctx, h, uint16(src.HSMObject), cfg.Path(src.GroupFile))
	if err != nil {
		return nil, err
	}
	log.Info("share read from the yubihsm", "object", src.HSMObject, "connector", opts.Addr)
	return share, nil
}
