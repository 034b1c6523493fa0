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
