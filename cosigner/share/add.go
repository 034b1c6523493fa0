package share

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"filippo.io/edwards25519"

	"github.com/cosigner/cosigner/cosigner/clustertls"
	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/internal/fsutil"
	"github.com/cosigner/cosigner/threshold"
)

// AddOptions says which chain a key added to a cluster's homes signs.
type AddOptions struct {
	// Threshold and Shares, when not 0, must be the homes' M and N: a
	// check that the operator adds to the cluster meant.
	Threshold, Shares int
	// ChainID, Nodes, Bech32Prefix and RPC fill the new [[chain]] table;
	// ChainID and Nodes are required.
	ChainID      string
	Nodes        []string
	Bech32Prefix string
	RPC          []string
	// Random is the randomness for the polynomial; nil means crypto/rand.
	Random io.Reader
}

// ErrChainExists is returned by Add when a home already signs the chain.
var ErrChainExists = errors.New("the chain is already configured")

// ErrKeyExists is returned by Add when the homes already hold a share of
// the key.
var ErrKeyExists = errors.New("the homes already hold a share of this validator key")

// ErrNotCluster is returned by Add when the directory does not hold the
// complete homes of one cluster of the expected shape.
var ErrNotCluster = errors.New("not the homes of one cluster")

// AddedShareFile and AddedGroupFile are the names, in each home, of the
// files Add writes for chainID's key.
func AddedShareFile(chainID string) string { return "share-" + chainID + ".json" }

// AddedGroupFile: see AddedShareFile.
func AddedGroupFile(chainID string) string { return "group-" + chainID + ".json" }

// Add splits key into shares for the cluster whose homes are dir/cosigner-1
// ... dir/cosigner-N (a 'cosigner shard --out' directory) and gives each
// home its share and the group file of the new key, and a [[chain]] table
// for opts.ChainID naming them, appended to its cosigner.toml. The homes
// keep their TLS identities, peers, Raft data, ids, threshold and every
// file they had; nothing is overwritten but cosigner.toml, which is
// replaced whole (old or new content after a crash) and keeps its text.
//
// Before it writes anything Add checks every home: present, one cluster
// (same CA, peers, threshold, shares, ids 1..N in order), opts'
// threshold and shares if set, no home signing opts.ChainID yet
// (ErrChainExists), no home holding a share of the key
// (ErrKeyExists), no file it would write already there.
func Add(key ed25519.PrivateKey, dir string, opts AddOptions) (*threshold.GroupKey, error) {
	return add(dir, opts, func(m, n int, random io.Reader) (*threshold.Dealing, error) {
		return threshold.Deal(key.Seed(), m, n, random)
	})
}

// AddScalar is Add for a key given as its secret scalar.
func AddScalar(secret *edwards25519.Scalar, dir string, opts AddOptions) (*threshold.GroupKey, error) {
	return add(dir, opts, func(m, n int, random io.Reader) (*threshold.Dealing, error) {
		return threshold.DealScalar(secret, m, n, random)
	})
}

// home is one cosigner home as Add reads it.
type home struct {
	dir  string
	cfg  *config.Config
	text []byte
}

func add(dir string, opts AddOptions, deal func(m, n int, random io.Reader) (*threshold.Dealing, error)) (*threshold.GroupKey, error) {
	if err := config.ValidateChainID(opts.ChainID); err != nil {
		return nil, err
	}
	if len(opts.Nodes) == 0 {
		return nil, fmt.Errorf("chain %s needs at least one node address", opts.ChainID)
	}
	homes, err := readHomes(dir, opts)
	if err != nil {
		return nil, err
	}
	t := homes[0].cfg.Threshold
	random := opts.Random
	if random == nil {
		random = rand.Reader
	}
	dealing, err := deal(t.Threshold, t.Shares, random)
	if err != nil {
		return nil, err
	}
	pub := dealing.Group.PublicKey()
	for _, h := range homes {
		if err := checkNewKey(h, pub); err != nil {
			return nil, err
		}
	}
	ch := config.ChainConfig{ID: opts.ChainID, Bech32Prefix: opts.Bech32Prefix, Nodes: opts.Nodes, RPC: opts.RPC,
		GroupFile: AddedGroupFile(opts.ChainID), ShareFile: AddedShareFile(opts.ChainID)}
	// Render and check every new configuration before writing any file.
	texts := make([][]byte, len(homes))
	for i, h := range homes {
		texts[i] = append(slices.Clip(h.text), h.cfg.MarshalChain(ch)...)
		if _, err := config.Parse(texts[i]); err != nil {
			return nil, fmt.Errorf("cosigner %d: the configuration with chain %s: %w", i+1, opts.ChainID, err)
		}
	}
	groupJSON, err := MarshalGroup(dealing.Group, FirstEpoch)
	if err != nil {
		return nil, err
	}
	for i, h := range homes {
		if err := writeAdded(h, dealing.Shares[i], groupJSON, ch, texts[i]); err != nil {
			return nil, fmt.Errorf("cosigner %d (%s): %w; the homes before it have chain %s already, this one and those after it do not: "+
				"fix the cause and add the missing files by hand, or restore the homes from their copies", i+1, h.dir, err, opts.ChainID)
		}
	}
	return dealing.Group, nil
}

// readHomes reads and checks every home of dir.
func readHomes(dir string, opts AddOptions) ([]home, error) {
	first, err := readHome(Dir(dir, 1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v (name the directory 'cosigner shard --out' wrote, holding cosigner-1 ... cosigner-N)", ErrNotCluster, err)
	}
	t := first.cfg.Threshold
	if opts.Threshold != 0 && opts.Threshold != t.Threshold || opts.Shares != 0 && opts.Shares != t.Shares {
		return nil, fmt.Errorf("%w: the homes in %s are a %d-of-%d cluster, asked for %d-of-%d: every key of a cluster has its shape",
			ErrNotCluster, dir, t.Threshold, t.Shares, opts.Threshold, opts.Shares)
	}
	ca, err := os.ReadFile(filepath.Join(first.cfg.Path(t.TLSDir), clustertls.CAFile))
	if err != nil {
		return nil, fmt.Errorf("%w: cosigner 1: %v", ErrNotCluster, err)
	}
	homes := []home{first}
	for id := 2; id <= t.Shares; id++ {
		h, err := readHome(Dir(dir, id))
		if err != nil {
			return nil, fmt.Errorf("%w: %v: every home of the %d cosigners must be there (the key is split for all of them at once)", ErrNotCluster, err, t.Shares)
		}
		ht := h.cfg.Threshold
		if ht.Threshold != t.Threshold || ht.Shares != t.Shares || !slices.Equal(ht.Peers, t.Peers) {
			return nil, fmt.Errorf("%w: cosigner %d's home %s is %d-of-%d with peers %v, cosigner 1's %d-of-%d with peers %v",
				ErrNotCluster, id, h.dir, ht.Threshold, ht.Shares, ht.Peers, t.Threshold, t.Shares, t.Peers)
		}
		other, err := os.ReadFile(filepath.Join(h.cfg.Path(ht.TLSDir), clustertls.CAFile))
		if err != nil {
			return nil, fmt.Errorf("%w: cosigner %d: %v", ErrNotCluster, id, err)
		}
		if !bytes.Equal(ca, other) {
			return nil, fmt.Errorf("%w: cosigner %d's home %s has another cluster CA than cosigner 1's", ErrNotCluster, id, h.dir)
		}
		homes = append(homes, h)
	}
	if _, err := os.Lstat(Dir(dir, t.Shares+1)); err == nil {
		return nil, fmt.Errorf("%w: %s holds %s, but the homes are of %d cosigners", ErrNotCluster, dir, Dir(dir, t.Shares+1), t.Shares)
	}
	for i, h := range homes {
		if h.cfg.Threshold.ID != i+1 {
			return nil, fmt.Errorf("%w: %s says threshold.id = %d, want %d", ErrNotCluster, h.dir, h.cfg.Threshold.ID, i+1)
		}
		if _, ok := h.cfg.Chain(opts.ChainID); ok {
			return nil, fmt.Errorf("%w: %s signs chain %s already (with %s); one key per chain: to replace a chain's key, remove its [[chain]] first",
				ErrChainExists, h.dir, opts.ChainID, h.cfg.ChainShare(mustChain(h.cfg, opts.ChainID)))
		}
		for _, name := range []string{AddedShareFile(opts.ChainID), AddedGroupFile(opts.ChainID)} {
			if _, err := os.Lstat(filepath.Join(h.dir, name)); err == nil {
				return nil, fmt.Errorf("%w: %s exists: shard never overwrites; remove it if it is left from an earlier attempt",
					fs.ErrExist, filepath.Join(h.dir, name))
			}
		}
	}
	return homes, nil
}

func mustChain(cfg *config.Config, id string) *config.ChainConfig {
	ch, _ := cfg.Chain(id)
	return ch
}

func readHome(dir string) (home, error) {
	text, err := os.ReadFile(filepath.Join(dir, config.FileName))
	if err != nil {
		return home{}, err
	}
	cfg, err := config.LoadForKeys(dir)
	if err != nil {
		return home{}, err
	}
	if cfg.Mode != config.ModeThreshold {
		return home{}, fmt.Errorf("%s: mode = %q, not a threshold cosigner's home", dir, cfg.Mode)
	}
	return home{dir: dir, cfg: cfg, text: text}, nil
}

// checkNewKey refuses a key whose group file h already holds, under
// [threshold] or any chain.
func checkNewKey(h home, pub ed25519.PublicKey) error {
	files := []string{h.cfg.Threshold.GroupFile}
	for i := range h.cfg.Chains {
		files = append(files, h.cfg.ChainShare(&h.cfg.Chains[i]).GroupFile)
	}
	for _, f := range files {
		g, err := LoadGroup(h.cfg.Path(f))
		if err != nil {
			return fmt.Errorf("%s: %w", h.dir, err)
		}
		if bytes.Equal(g.PublicKey(), pub) {
			var chains []string
			for i := range h.cfg.Chains {
				if h.cfg.ChainShare(&h.cfg.Chains[i]).GroupFile == f {
					chains = append(chains, h.cfg.Chains[i].ID)
				}
			}
			return fmt.Errorf("%w: %s holds validator key %X in %s (chains %v): to sign another chain with it, add a [[chain]] without group_file or share_file to each home",
				ErrKeyExists, h.dir, pub, f, chains)
		}
	}
	return nil
}

// writeAdded writes one home's new share and group file, then its new
// configuration.
func writeAdded(h home, ks *threshold.KeyShare, groupJSON []byte, ch config.ChainConfig, text []byte) error {
	shareJSON, err := Marshal(ks, FirstEpoch)
	if err != nil {
		return err
	}
	defer clear(shareJSON)
	if err := fsutil.WriteNew(filepath.Join(h.dir, ch.ShareFile), shareJSON); err != nil {
		return err
	}
	if err := fsutil.WriteNew(filepath.Join(h.dir, ch.GroupFile), groupJSON); err != nil {
		return err
	}
	return fsutil.Replace(filepath.Join(h.dir, config.FileName), text, 0o600)
}
