package cosigner

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/cosigner/cosigner/threshold"
)

// A threshold cosigner's share sealed by a YubiHSM2 is its share file's
// content stored as an opaque object. The device hands it out only to a
// session authenticated with a key holding get-opaque; the file is removed
// once the device's copy is read back and compared, and the share then only
// ever lives in the device and in this process's memory.

// ShareLabel is the label of the opaque object holding cosigner id's share.
func ShareLabel(id int) string { return fmt.Sprintf("cosigner-share-%d", id) }

// SealShare stores the share file named by cfg (checked against the group
// file first) in the device as opaque object objectID (0: the device picks
// the id), reads it back and compares it byte for byte, and returns the
// share and the object id. It neither removes the file nor edits the
// configuration: see SetShareHSMObject.
func SealShare(ctx context.Context, h *HSM, cfg *Config, objectID uint16) (*threshold.KeyShare, uint16, error) {
	t := cfg.Threshold
	sharePath, groupPath := cfg.Path(t.ShareFile), cfg.Path(t.GroupFile)
	share, err := LoadShare(sharePath, groupPath)
	if err != nil {
		return nil, 0, err
	}
	data, err := os.ReadFile(sharePath)
	if err != nil {
		return nil, 0, fmt.Errorf("read key share: %w", err)
	}
	defer clear(data)
	objectID, err = h.PutOpaque(ctx, objectID, ShareLabel(int(share.ID())), data)
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

// LoadShareFromHSM reads the share sealed as opaque object objectID and
// checks it against the group file as LoadShare does.
func LoadShareFromHSM(ctx context.Context, h *HSM, objectID uint16, groupPath string) (*threshold.KeyShare, error) {
	group, err := LoadGroup(groupPath)
	if err != nil {
		return nil, err
	}
	data, err := h.GetOpaque(ctx, objectID)
	if err != nil {
		return nil, err
	}
	// The decoded share keeps its own copy of the secret.
	defer clear(data)
	return decodeShare(data, fmt.Sprintf("in yubihsm object %d", objectID), group, groupPath)
}

// loadClusterShare loads the threshold share: from the YubiHSM2 when
// threshold.share_hsm_object is set, otherwise from threshold.share_file.
// The session with the device is closed once the share is read.
func loadClusterShare(cfg *Config, log *slog.Logger) (*threshold.KeyShare, error) {
	t := cfg.Threshold
	if t.ShareHSMObject == 0 {
		return LoadShare(cfg.Path(t.ShareFile), cfg.Path(t.GroupFile))
	}
	opts, err := HSMOptionsFromConfig(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*opts.Timeout)
	defer cancel()
	h, err := DialHSM(ctx, opts, log)
	if err != nil {
		return nil, fmt.Errorf("read the share sealed in the yubihsm: %w", err)
	}
	defer h.Close()
	share, err := LoadShareFromHSM(ctx, h, uint16(t.ShareHSMObject), cfg.Path(t.GroupFile))
	if err != nil {
		return nil, err
	}
	log.Info("share read from the yubihsm", "object", t.ShareHSMObject, "connector", opts.Addr)
	return share, nil
}

// SetShareHSMObject records in home's cosigner.toml that the share is
// sealed as opaque object objectID: it adds share_hsm_object to the
// [threshold] section, leaving every other line as it is, checks that the
// result loads, and replaces the file atomically.
func SetShareHSMObject(home string, objectID int) error {
	path := filepath.Join(home, ConfigFileName)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	at := -1
	for i, l := range lines {
		s := strings.TrimSpace(l)
		if strings.HasPrefix(s, "share_hsm_object") {
			return fmt.Errorf("%s already sets share_hsm_object: the share is sealed already", path)
		}
		if s == "[threshold]" {
			at = i + 1
		}
	}
	if at < 0 {
		return fmt.Errorf("%s has no [threshold] section", path)
	}
	ins := fmt.Sprintf("# The share is sealed in the YubiHSM2 as this opaque object; share_file is not read.\nshare_hsm_object = %d\n", objectID)
	out := strings.Join(lines[:at], "") + ins + strings.Join(lines[at:], "")
	if _, err := parseConfig([]byte(out), true); err != nil {
		return fmt.Errorf("config with share_hsm_object = %d: %w", objectID, err)
	}
	return replaceFile(path, []byte(out))
}

// replaceFile replaces path with data durably: a synced temporary file
// renamed over it, then the directory synced.
func replaceFile(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// RemoveFileDurably removes path and syncs its directory.
func RemoveFileDurably(path string) error {
	if err := os.Remove(path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}
