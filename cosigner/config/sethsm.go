package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cosigner/cosigner/internal/fsutil"
)

// SetShareHSMObject records in home's cosigner.toml that the share is
// sealed as opaque object objectID: it adds share_hsm_object to the
// [threshold] section, leaving every other line as it is, checks that the
// result loads, and replaces the file atomically.
func SetShareHSMObject(home string, objectID int) error {
	path := filepath.Join(home, FileName)
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
	if _, err := parse([]byte(out), true); err != nil {
		return fmt.Errorf("config with share_hsm_object = %d: %w", objectID, err)
	}
	return fsutil.Replace(path, []byte(out), 0o600)
}

// SetChainShareHSMObject records in home's cosigner.toml that the share of
// chainID's own key is sealed as opaque object objectID: in that chain's
// [[chain]] table it replaces the share_file line with share_hsm_object,
// leaving every other line as it is, checks that the result loads, and
// replaces the file atomically.
func SetChainShareHSMObject(home, chainID string, objectID int) error {
	path := filepath.Join(home, FileName)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	inChain, mine, at := false, false, -1
	for i, l := range lines {
		s := strings.TrimSpace(l)
		if strings.HasPrefix(s, "[") {
			inChain, mine = s == "[[chain]]", false
			continue
		}
		key, val, ok := strings.Cut(s, "=")
		if !inChain || !ok || strings.HasPrefix(s, "#") {
			continue
		}
		switch strings.TrimSpace(key) {
		case "id":
			mine = strings.TrimSpace(val) == fmt.Sprintf("%q", chainID)
			if mine && at >= 0 {
				return fmt.Errorf("%s: chain %s's share_file comes before its id: move the id up", path, chainID)
			}
		case "share_file":
			if mine {
				at = i
			}
		case "share_hsm_object":
			if mine {
				return fmt.Errorf("%s already sets share_hsm_object for chain %s: the share is sealed already", path, chainID)
			}
		}
	}
	if at < 0 {
		return fmt.Errorf("%s has no share_file in the [[chain]] of %s", path, chainID)
	}
	lines[at] = fmt.Sprintf("# The share is sealed in the YubiHSM2 as this opaque object.\nshare_hsm_object = %d\n", objectID)
	out := strings.Join(lines, "")
	cfg, err := parse([]byte(out), true)
	if err != nil {
		return fmt.Errorf("config with share_hsm_object = %d for chain %s: %w", objectID, chainID, err)
	}
	if ch, ok := cfg.Chain(chainID); !ok || ch.ShareHSMObject != objectID {
		return fmt.Errorf("%s: could not set chain %s's share_hsm_object: edit it by hand", path, chainID)
	}
	return fsutil.Replace(path, []byte(out), 0o600)
}
