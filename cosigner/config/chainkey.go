package config

import "fmt"

// ShareSource is where a threshold cosigner finds the share of one
// validator key: the group file and either a share file or a YubiHSM2
// opaque object. Paths are as written in cosigner.toml (resolve them with
// Config.Path).
type ShareSource struct {
	GroupFile string
	ShareFile string
	// HSMObject, when not 0, holds the share instead of ShareFile.
	HSMObject int
}

// String names the source for messages: its group file and where the
// share is.
func (s ShareSource) String() string {
	if s.HSMObject != 0 {
		return fmt.Sprintf("group_file %q with share_hsm_object %d", s.GroupFile, s.HSMObject)
	}
	return fmt.Sprintf("group_file %q with share_file %q", s.GroupFile, s.ShareFile)
}

// ChainShare returns where the share of the key that signs ch is: the
// chain's own group_file and share_file (or share_hsm_object) when it
// names them, otherwise [threshold]'s.
func (c *Config) ChainShare(ch *ChainConfig) ShareSource {
	if ch.GroupFile != "" {
		return ShareSource{GroupFile: ch.GroupFile, ShareFile: ch.ShareFile, HSMObject: ch.ShareHSMObject}
	}
	t := c.Threshold
	return ShareSource{GroupFile: t.GroupFile, ShareFile: t.ShareFile, HSMObject: t.ShareHSMObject}
}

// ShareSources returns the distinct share sources of the chains, in the
// order of their first chain, with the chain ids each one signs.
func (c *Config) ShareSources() ([]ShareSource, map[ShareSource][]string) {
	var order []ShareSource
	chains := map[ShareSource][]string{}
	for i := range c.Chains {
		src := c.ChainShare(&c.Chains[i])
		if _, ok := chains[src]; !ok {
			order = append(order, src)
		}
		chains[src] = append(chains[src], c.Chains[i].ID)
	}
	return order, chains
}

// validateChainShare checks a chain's group_file, share_file and
// share_hsm_object.
func (c *Config) validateChainShare(where string, ch ChainConfig) []error {
	if ch.GroupFile == "" && ch.ShareFile == "" && ch.ShareHSMObject == 0 {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Mode != ModeThreshold {
		bad("%s: group_file, share_file and share_hsm_object name a threshold share; mode = %q signs with key or hsm_key_id", where, c.Mode)
		return errs
	}
	if ch.GroupFile == "" {
		bad("%s: share_file or share_hsm_object without group_file: name the chain's group key file too (or remove both to sign with [threshold]'s key)", where)
	}
	switch {
	case ch.ShareFile == "" && ch.ShareHSMObject == 0:
		bad("%s: group_file = %q without share_file or share_hsm_object: name this cosigner's share of the chain's key", where, ch.GroupFile)
	case ch.ShareFile != "" && ch.ShareHSMObject != 0:
		bad("%s: share_file = %q and share_hsm_object = %d: name one, the share file or the YubiHSM2 object", where, ch.ShareFile, ch.ShareHSMObject)
	}
	if ch.ShareHSMObject != 0 {
		if ch.ShareHSMObject < 1 || ch.ShareHSMObject > 0xffff {
			bad("%s: share_hsm_object = %d: allowed are object ids 1 to 65535", where, ch.ShareHSMObject)
		}
		if !c.HSM.Enabled() {
			bad("%s: share_hsm_object = %d needs an [hsm] section with connector, auth_key_id and password_file", where, ch.ShareHSMObject)
		}
	}
	return errs
}

// validateShareSources refuses two share sources that name one file in
// different roles or pair one group file with two shares: each key has one
// group file and one share here.
func (c *Config) validateShareSources() []error {
	if c.Mode != ModeThreshold {
		return nil
	}
	var errs []error
	srcs, chains := c.ShareSources()
	byGroup := map[string]ShareSource{}
	for _, s := range srcs {
		if s.GroupFile == s.ShareFile {
			errs = append(errs, fmt.Errorf("chains %q: group_file and share_file are both %q: they are two files", chains[s], s.GroupFile))
		}
		if o, ok := byGroup[c.Path(s.GroupFile)]; ok {
			errs = append(errs, fmt.Errorf("chains %q and %q: one group_file %q with two shares (%s; %s): one share per key; point every chain of that key at the same share",
				chains[o], chains[s], s.GroupFile, o, s))
			continue
		}
		byGroup[c.Path(s.GroupFile)] = s
	}
	for _, s := range srcs {
		if s.ShareFile == "" {
			continue
		}
		for _, o := range srcs {
			if c.Path(o.GroupFile) == c.Path(s.ShareFile) {
				errs = append(errs, fmt.Errorf("chains %q: share_file %q is the group_file of chains %q", chains[s], s.ShareFile, chains[o]))
			}
		}
	}
	return errs
}
