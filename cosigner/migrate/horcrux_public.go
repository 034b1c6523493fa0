package migrate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/edwards25519"

	"github.com/cosigner/cosigner/threshold"
)

// horcruxPublicType is the type of a public-share file.
const horcruxPublicType = "cosigner/horcrux-public-share"

// horcruxPublicFile is what `cosigner migrate horcrux export` writes on each
// host: the host's shard id, the cluster's M and N from its config.yaml,
// and per chain the validator key and the host's public share s_i·B.
// Nothing in it is secret.
type horcruxPublicFile struct {
	Type      string               `json:"type"`
	ID        int                  `json:"id"`
	Threshold int                  `json:"threshold"`
	Shares    int                  `json:"shares"`
	Chains    []horcruxPublicChain `json:"chains"`
}

type horcruxPublicChain struct {
	ChainID     string `json:"chain_id"`
	PubKey      []byte `json:"pub_key"`
	PublicShare []byte `json:"public_share"`
}

// HorcruxExport is the public file of one Horcrux host.
type HorcruxExport struct {
	// ID is the host's shard id; M and N the cluster's threshold and size.
	ID, M, N int
	// Chains are the chains with a shard on the host, sorted.
	Chains []string
	// JSON is the file's content.
	JSON []byte
}

// ExportHorcrux reads the Horcrux v3 home horcruxHome and returns its public
// file: for every chain with a shard, the validator key and this host's
// public share. Every shard of a host must carry the same id.
func ExportHorcrux(horcruxHome string) (*HorcruxExport, error) {
	h, err := readHorcruxHome(horcruxHome)
	if err != nil {
		return nil, err
	}
	id, err := h.shardID(h.shards)
	if err != nil {
		return nil, err
	}
	f := horcruxPublicFile{Type: horcruxPublicType, ID: id, Threshold: h.m, Shares: h.n}
	out := &HorcruxExport{ID: id, M: h.m, N: h.n}
	for _, s := range h.shards {
		f.Chains = append(f.Chains, horcruxPublicChain{ChainID: s.chainID, PubKey: s.pub, PublicShare: s.public.Bytes()})
		out.Chains = append(out.Chains, s.chainID)
	}
	if out.JSON, err = json.MarshalIndent(f, "", "  "); err != nil {
		return nil, err
	}
	out.JSON = append(out.JSON, '\n')
	return out, nil
}

// shardID returns the id every one of shards carries.
func (h *horcruxHome) shardID(shards []*horcruxShard) (int, error) {
	id := shards[0].id
	for _, s := range shards[1:] {
		if s.id != id {
			return 0, fmt.Errorf("horcrux home %s: shard %s has id %d, shard %s id %d: one host holds one cosigner id; "+
				"keep only this host's shards in the home", h.dir, shards[0].path, id, s.path, s.id)
		}
	}
	return id, nil
}

// horcruxPublic is a public file read back, with where it came from.
type horcruxPublic struct {
	path string
	horcruxPublicFile
}

// readHorcruxPublic reads and checks a public file.
func readHorcruxPublic(path string) (*horcruxPublic, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public share file: %w", err)
	}
	f, err := parseHorcruxPublic(data)
	if err != nil {
		return nil, fmt.Errorf("public share file %s: %w", path, err)
	}
	return &horcruxPublic{path: path, horcruxPublicFile: *f}, nil
}

// parseHorcruxPublic decodes and checks a public file's content.
func parseHorcruxPublic(data []byte) (*horcruxPublicFile, error) {
	var f horcruxPublicFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if f.Type != horcruxPublicType {
		return nil, fmt.Errorf("type %q, want %q (written by 'cosigner migrate horcrux export')", f.Type, horcruxPublicType)
	}
	if f.ID < 1 || f.ID > f.Shares || f.Shares > threshold.MaxParticipants {
		return nil, fmt.Errorf("id %d of %d shares is out of range", f.ID, f.Shares)
	}
	return &f, nil
}

// chain returns the file's entry for chainID.
func (p *horcruxPublic) chain(chainID string) (horcruxPublicChain, bool) {
	for _, c := range p.Chains {
		if c.ChainID == chainID {
			return c, true
		}
	}
	return horcruxPublicChain{}, false
}

// buildHorcruxGroup builds the group key of the cluster from every
// cosigner's public file, for the dealing of keyChain, and checks own (this
// host's shard of keyChain) against it. It refuses files of another
// cluster shape, another key, a duplicate or missing id, a public share
// that is not this host's where it claims to be, and any set whose public
// shares do not all lie, with the validator key, on one polynomial of
// degree M-1, naming the files of the odd shares.
func buildHorcruxGroup(h *horcruxHome, own *horcruxShard, keyChain string, paths []string) (*threshold.GroupKey, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("no public share files: give the file 'cosigner migrate horcrux export' wrote on each of the %d hosts", h.n)
	}
	byID := map[int]string{}
	var shares []threshold.PublicShare
	for _, path := range paths {
		p, err := readHorcruxPublic(path)
		if err != nil {
			return nil, err
		}
		if p.Threshold != h.m || p.Shares != h.n {
			return nil, fmt.Errorf("public share file %s is of a %d-of-%d cluster; %s says %d-of-%d: the hosts' config.yaml disagree",
				path, p.Threshold, p.Shares, filepath.Join(h.dir, horcruxConfigFile), h.m, h.n)
		}
		if prev, dup := byID[p.ID]; dup {
			return nil, fmt.Errorf("public share files %s and %s both carry cosigner id %d: two hosts hold the shard of one id "+
				"(a copied home?); each id may sign on one host only", prev, path, p.ID)
		}
		byID[p.ID] = path
		c, ok := p.chain(keyChain)
		if !ok {
			return nil, fmt.Errorf("public share file %s has no share for chain %s: export again on that host, after "+
				"checking it holds %s%s", path, keyChain, keyChain, horcruxShardSuffix)
		}
		if !bytes.Equal(c.PubKey, own.pub) {
			return nil, fmt.Errorf("public share file %s: chain %s has validator key %X, this host's shard %s has %X: "+
				"the files are of another key", path, keyChain, c.PubKey, own.path, []byte(own.pub))
		}
		pt, err := new(edwards25519.Point).SetBytes(c.PublicShare)
		if err != nil || !bytes.Equal(pt.Bytes(), c.PublicShare) {
			return nil, fmt.Errorf("public share file %s: public_share of chain %s is not a valid point", path, keyChain)
		}
		if p.ID == own.id && pt.Equal(own.public) != 1 {
			return nil, fmt.Errorf("public share file %s claims cosigner id %d, this host's id, but its public share is not "+
				"the one of this host's shard %s: it was exported from another home, or this host's shard changed", path, p.ID, own.path)
		}
		shares = append(shares, threshold.PublicShare{ID: uint16(p.ID), Point: pt})
	}
	var missing []string
	for id := 1; id <= h.n; id++ {
		if _, ok := byID[id]; !ok {
			missing = append(missing, fmt.Sprint(id))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no public share file of cosigner(s) %s: give the file of every one of the %d cosigners, "+
			"so that each share is checked against the others", strings.Join(missing, ", "), h.n)
	}
	group, err := threshold.GroupKeyFromPublicShares(own.pub, h.m, h.n, shares)
	var pe *threshold.PublicShareError
	if errors.As(err, &pe) {
		if len(pe.Odd) == 0 {
			return nil, fmt.Errorf("the public shares of chain %s do not make a %d-of-%d dealing of validator key %X: no %d of "+
				"them interpolate to it (shards of another key or of several dealings, or a threshold in config.yaml that is "+
				"not the one they were dealt with)", keyChain, h.m, h.n, []byte(own.pub), h.m)
		}
		var odd []string
		for _, id := range pe.Odd {
			odd = append(odd, fmt.Sprintf("cosigner %d (%s)", id, byID[int(id)]))
		}
		return nil, fmt.Errorf("the public share of %s does not lie on the polynomial the validator key and the other "+
			"shares define: that host's %s%s is not a share of this dealing", strings.Join(odd, ", "), keyChain, horcruxShardSuffix)
	}
	if err != nil {
		return nil, err
	}
	return group, nil
}
