package migrate

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cosigner/cosigner/cosigner/clustertls"
	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/internal/fsutil"
	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/threshold"
)

// HorcruxOptions says what MigrateHorcrux reads and what it changes on the
// way.
type HorcruxOptions struct {
	// HorcruxHome is the Horcrux v3 home of this host (config.yaml, its
	// shards, state/); it is only read.
	HorcruxHome string
	// Home is the cosigner home to create; it must not exist.
	Home string
	// ChainIDs are the chains to migrate; empty means every chain with a
	// shard in HorcruxHome. Chains of different validator keys become one
	// cluster signing with several keys, one share each.
	ChainIDs []string
	// Public are the public share files ExportHorcrux wrote on every host,
	// this one included.
	Public []string
	// TLSDir is this host's directory from IssueHorcruxTLS.
	TLSDir string
	// Nodes maps a chain id to its nodes' priv_validator_laddr, replacing
	// config.yaml's chainNodes; the key "" gives nodes of every chain.
	// Without it, chainNodes go to the one chain migrated.
	Nodes map[string][]string
	// Peers and RaftPeers replace the gRPC and Raft host:port of cosigner
	// ids. By default gRPC takes Horcrux's p2pAddr and Raft the next port.
	Peers, RaftPeers map[int]string
	// Bech32Prefix is each chain's account prefix ("" for the default).
	Bech32Prefix string
	// MetricsListen, if not nil, is metrics.listen; nil takes config.yaml's
	// debugAddr, or loopback on the gRPC port + 2 without one.
	MetricsListen *string
}

// HorcruxReport says what MigrateHorcrux wrote.
type HorcruxReport struct {
	// ID is this cosigner's id; M of N the cluster's threshold.
	ID, M, N int
	// PubKey, KeyChain and Fingerprint are those of Keys[0], the key in
	// [threshold] share_file.
	PubKey ed25519.PublicKey
	// KeyChain is the chain whose shards are the cluster's shares (Horcrux
	// deals each chain's shards separately; one dealing is enough for one
	// key).
	KeyChain string
	// Fingerprint identifies the group key (the first 8 bytes of the
	// SHA-256 of its encoding, hex): every host must print the same.
	Fingerprint string
	// Keys are the validator keys the home signs with, one share each:
	// the first in [threshold], the others named by their chains.
	Keys   []HorcruxKey
	Config *config.Config
	Chains []HorcruxChain
	// NotCarried lists config.yaml settings and files the home does not
	// take over, with the reason.
	NotCarried []string
}

// HorcruxKey is one validator key of a migrated home.
type HorcruxKey struct {
	PubKey ed25519.PublicKey
	// KeyChain is the chain whose shard is the key's share; Chains are
	// the chains it signs.
	KeyChain string
	Chains   []string
	// Fingerprint identifies the group key, as HorcruxReport's.
	Fingerprint string
	// Source is where the home keeps the share and the group file.
	Source config.ShareSource
}

// HorcruxChain is one migrated chain.
type HorcruxChain struct {
	ID string
	// KeyChain is the chain whose share signs it (its own, or another
	// dealing of the same key).
	KeyChain string
	// Cluster and Share are the marks of Horcrux's two state files
	// (the cluster's last signature, this cosigner's last share); Start
	// is the higher, which the home's state file holds.
	Cluster, Share, Start signstate.Mark
	// OtherDealing is true when this chain's shard on the host is another
	// dealing of the key than KeyChain's: the cosigner signs it with
	// KeyChain's share, which makes the same signatures.
	OtherDealing bool
}

// MigrateHorcrux creates a threshold cosigner home from this host's
// Horcrux v3 home: the same share (no key reassembly), the cluster's
// threshold, cosigner ids and addresses, the chains and their nodes, and
// for each chain a sign state at the higher of Horcrux's two marks.
//
// The group key, which Horcrux does not store, is rebuilt from every
// cosigner's public share (threshold.GroupKeyFromPublicShares), refusing a
// set in which any share is of another key or dealing; this host's share
// must be the one its public file claims. The home is written to a
// temporary directory beside opts.Home, loaded back as `cosigner start`
// would load it, and renamed into place only then: a refused migration
// leaves nothing behind, and the Horcrux home is never written.
func MigrateHorcrux(opts HorcruxOptions) (*HorcruxReport, error) {
	if opts.Home == "" || opts.HorcruxHome == "" {
		return nil, errors.New("migrate horcrux: name the Horcrux home and the cosigner home to create")
	}
	if _, err := os.Lstat(opts.Home); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrHomeExists, opts.Home)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if opts.TLSDir == "" {
		return nil, errors.New("migrate horcrux: no cluster TLS directory: issue one per cosigner with IssueHorcruxTLS")
	}
	h, err := readHorcruxHome(opts.HorcruxHome)
	if err != nil {
		return nil, err
	}
	shards, err := h.selectShards(opts.ChainIDs)
	if err != nil {
		return nil, err
	}
	id, err := h.shardID(shards)
	if err != nil {
		return nil, err
	}
	groups := keyGroups(shards)
	keyShares := make([]*threshold.KeyShare, len(groups))
	for i, g := range groups {
		group, err := buildHorcruxGroup(h, g.own, g.own.chainID, opts.Public)
		if err != nil {
			return nil, err
		}
		ks, err := threshold.NewKeyShare(uint16(id), g.own.secret, group)
		if err != nil {
			return nil, err
		}
		if err := threshold.VerifyShare(ks, g.own.pub); err != nil {
			return nil, fmt.Errorf("this host's shard %s: %w", g.own.path, err)
		}
		keyShares[i] = ks
	}
	own := groups[0].own

	ident, err := clustertls.Load(opts.TLSDir)
	if err != nil {
		return nil, err
	}
	if ident.ID() != id {
		return nil, fmt.Errorf("cluster TLS directory %s holds the certificate of cosigner %d, this host's shard is cosigner %d: copy cosigner-%d's directory here", opts.TLSDir, ident.ID(), id, id)
	}
	tlsFiles := map[string][]byte{}
	for _, name := range []string{clustertls.CAFile, clustertls.CertFile, clustertls.KeyFile} {
		if tlsFiles[name], err = os.ReadFile(filepath.Join(opts.TLSDir, name)); err != nil {
			return nil, err
		}
	}
	defer clear(tlsFiles[clustertls.KeyFile])

	peers, err := h.clusterPeers(opts.Peers, opts.RaftPeers)
	if err != nil {
		return nil, err
	}
	rep := &HorcruxReport{ID: id, M: h.m, N: h.n, PubKey: own.pub, KeyChain: own.chainID, Fingerprint: groupFingerprint(keyShares[0].Group())}
	cfg := config.DefaultConfig()
	cfg.Mode = config.ModeThreshold
	cfg.Threshold.ID, cfg.Threshold.Threshold, cfg.Threshold.Shares = id, h.m, h.n
	cfg.Threshold.Peers = peers
	cfg.Metrics.Listen, err = h.metricsListen(opts.MetricsListen, peers, id)
	if err != nil {
		return nil, err
	}
	nodes, err := h.chainNodes(shards, opts.Nodes)
	if err != nil {
		return nil, err
	}
	for i, g := range groups {
		k := HorcruxKey{PubKey: g.own.pub, KeyChain: g.own.chainID, Fingerprint: groupFingerprint(keyShares[i].Group()),
			Source: config.ShareSource{GroupFile: cfg.Threshold.GroupFile, ShareFile: cfg.Threshold.ShareFile}}
		if i > 0 {
			// The other keys are named by their chains, in the files
			// 'shard --add-to' would write for the key's first chain.
			k.Source = config.ShareSource{GroupFile: share.AddedGroupFile(g.own.chainID), ShareFile: share.AddedShareFile(g.own.chainID)}
		}
		for _, s := range g.shards {
			k.Chains = append(k.Chains, s.chainID)
		}
		rep.Keys = append(rep.Keys, k)
	}
	for _, s := range shards {
		gi := slices.IndexFunc(groups, func(g keyGroup) bool { return slices.Contains(g.shards, s) })
		g := groups[gi]
		ch := config.ChainConfig{ID: s.chainID, Bech32Prefix: opts.Bech32Prefix, Nodes: nodes[s.chainID]}
		if gi > 0 {
			ch.GroupFile, ch.ShareFile = rep.Keys[gi].Source.GroupFile, rep.Keys[gi].Source.ShareFile
		}
		cfg.Chains = append(cfg.Chains, ch)
		c, err := h.chainState(s.chainID)
		if err != nil {
			return nil, err
		}
		c.KeyChain = g.own.chainID
		c.OtherDealing = s.secret.Equal(g.own.secret) != 1
		rep.Chains = append(rep.Chains, c)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("the configuration migrated from %s is not valid: %w", filepath.Join(h.dir, horcruxConfigFile), err)
	}
	rep.NotCarried = h.notCarried()

	cert := &clustertls.Cert{ID: id, CertPEM: tlsFiles[clustertls.CertFile], KeyPEM: tlsFiles[clustertls.KeyFile]}
	if err := writeHome(opts.Home, cfg, keyShares, rep.Keys, tlsFiles[clustertls.CAFile], cert, rep.Chains); err != nil {
		return nil, err
	}
	if rep.Config, err = config.Load(opts.Home); err != nil {
		return nil, err
	}
	return rep, nil
}

// selectShards returns the shards of chainIDs (every shard if empty),
// sorted by chain id.
func (h *horcruxHome) selectShards(chainIDs []string) ([]*horcruxShard, error) {
	var out []*horcruxShard
	if len(chainIDs) == 0 {
		out = h.shards
	}
	for _, c := range chainIDs {
		i := slices.IndexFunc(h.shards, func(s *horcruxShard) bool { return s.chainID == c })
		if i < 0 {
			var have []string
			for _, s := range h.shards {
				have = append(have, s.chainID)
			}
			return nil, fmt.Errorf("horcrux home %s has no shard for chain %s (%s%s); it has: %s",
				h.dir, c, c, horcruxShardSuffix, strings.Join(have, ", "))
		}
		if !slices.Contains(out, h.shards[i]) {
			out = append(out, h.shards[i])
		}
	}
	slices.SortFunc(out, func(a, b *horcruxShard) int { return strings.Compare(a.chainID, b.chainID) })
	return out, nil
}

// keyGroup is the shards of one validator key; own, the first chain's,
// is the key's share (Horcrux deals each chain's shards separately; one
// dealing is enough for one key).
type keyGroup struct {
	own    *horcruxShard
	shards []*horcruxShard
}

// keyGroups groups shards by validator key, in the order of each key's
// first chain.
func keyGroups(shards []*horcruxShard) []keyGroup {
	var out []keyGroup
	for _, s := range shards {
		i := slices.IndexFunc(out, func(g keyGroup) bool { return g.own.pub.Equal(s.pub) })
		if i < 0 {
			out = append(out, keyGroup{own: s})
			i = len(out) - 1
		}
		out[i].shards = append(out[i].shards, s)
	}
	return out
}

// clusterPeers returns every cosigner's gRPC and Raft addresses: Horcrux's
// p2pAddr serves gRPC and Raft on one port, cosigner uses two, gRPC on
// p2pAddr's port and Raft on the next, unless overridden.
func (h *horcruxHome) clusterPeers(grpc, raft map[int]string) ([]config.PeerConfig, error) {
	for _, m := range []map[int]string{grpc, raft} {
		for id, addr := range m {
			if _, ok := h.peers[id]; !ok {
				return nil, fmt.Errorf("address %s given for cosigner %d: the cluster has cosigners 1..%d", addr, id, h.n)
			}
			if _, _, err := net.SplitHostPort(addr); err != nil {
				return nil, fmt.Errorf("address %q of cosigner %d: want host:port", addr, id)
			}
		}
	}
	peers := make([]config.PeerConfig, 0, h.n)
	for id := 1; id <= h.n; id++ {
		p := config.PeerConfig{ID: id, Address: h.peers[id], RaftAddress: raft[id]}
		if a, ok := grpc[id]; ok {
			p.Address = a
		}
		if p.RaftAddress == "" {
			host, portStr, _ := net.SplitHostPort(p.Address) // checked above and in checkConfig
			port, err := strconv.Atoi(portStr)
			if err != nil || port < 1 || port > 65534 {
				return nil, fmt.Errorf("cosigner %d's gRPC address %s: cannot put Raft on the next port; give its Raft address", id, p.Address)
			}
			p.RaftAddress = net.JoinHostPort(host, strconv.Itoa(port+1))
		}
		peers = append(peers, p)
	}
	type use struct {
		id   int
		what string
	}
	used := map[string]use{}
	for _, p := range peers {
		for _, u := range []struct{ addr, what string }{{p.Address, "gRPC"}, {p.RaftAddress, "Raft"}} {
			if other, dup := used[u.addr]; dup {
				return nil, fmt.Errorf("address %s would be both cosigner %d's %s and cosigner %d's %s: cosigner needs two "+
					"ports per cosigner, gRPC on Horcrux's p2pAddr and Raft on the next port by default; give the Raft "+
					"address of each cosigner on a free port", u.addr, other.id, other.what, p.ID, u.what)
			}
			used[u.addr] = use{p.ID, u.what}
		}
	}
	return peers, nil
}

// metricsListen returns metrics.listen.
func (h *horcruxHome) metricsListen(set *string, peers []config.PeerConfig, id int) (string, error) {
	switch {
	case set != nil:
		return *set, nil
	case h.cfg.DebugAddr != "":
		return h.cfg.DebugAddr, nil
	}
	_, portStr, _ := net.SplitHostPort(peers[id-1].Address)
	port, _ := strconv.Atoi(portStr)
	if port > 65533 {
		return "", fmt.Errorf("cannot put metrics two ports after %s: give the metrics address", peers[id-1].Address)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port+2)), nil
}

// chainNodes returns the nodes of each chain.
func (h *horcruxHome) chainNodes(shards []*horcruxShard, given map[string][]string) (map[string][]string, error) {
	out := map[string][]string{}
	for c := range given {
		if c != "" && !slices.ContainsFunc(shards, func(s *horcruxShard) bool { return s.chainID == c }) {
			return nil, fmt.Errorf("nodes given for chain %s, which is not migrated", c)
		}
	}
	for _, s := range shards {
		out[s.chainID] = append(slices.Clone(given[""]), given[s.chainID]...)
	}
	source := "the nodes given"
	if len(given) == 0 {
		if len(shards) > 1 {
			var addrs []string
			for _, n := range h.cfg.ChainNodes {
				addrs = append(addrs, n.PrivValAddr)
			}
			return nil, fmt.Errorf("config.yaml's chainNodes (%s) do not say which node runs which of the %d chains: name each "+
				"chain's nodes", strings.Join(addrs, ", "), len(shards))
		}
		for _, n := range h.cfg.ChainNodes {
			out[shards[0].chainID] = append(out[shards[0].chainID], n.PrivValAddr)
		}
		source = filepath.Join(h.dir, horcruxConfigFile) + " chainNodes"
	}
	for _, s := range shards {
		if len(out[s.chainID]) == 0 {
			return nil, fmt.Errorf("chain %s has no node: %s name none", s.chainID, source)
		}
		for _, a := range out[s.chainID] {
			if err := config.ValidateNodeAddress(a); err != nil {
				return nil, fmt.Errorf("chain %s, from %s: %w", s.chainID, source, err)
			}
		}
	}
	return out, nil
}

// chainState reads both Horcrux state files of chainID and returns the
// higher mark as the start. At the same height, round and step, the two
// must be for the same payload (the timestamp may differ); the share's is
// kept, what this cosigner released last.
func (h *horcruxHome) chainState(chainID string) (HorcruxChain, error) {
	c := HorcruxChain{ID: chainID}
	dir := filepath.Join(h.dir, horcruxStateDir)
	var err error
	pvPath, sharePath := filepath.Join(dir, chainID+horcruxPVState), filepath.Join(dir, chainID+horcruxShareState)
	if c.Cluster, err = readHorcruxState(pvPath, chainID); err != nil {
		return c, err
	}
	if c.Share, err = readHorcruxState(sharePath, chainID); err != nil {
		return c, err
	}
	a, b := c.Cluster, c.Share
	switch {
	case signstate.Above(a.Height, a.Round, a.Step, b.Height, b.Round, b.Step):
		c.Start = a
	case signstate.Above(b.Height, b.Round, b.Step, a.Height, a.Round, a.Step):
		c.Start = b
	case len(a.SignBytes) > 0 && len(b.SignBytes) > 0:
		only, err := privval.OnlyTimestampDiffers(a.SignBytes, b.SignBytes)
		if err != nil || !only {
			return c, fmt.Errorf("chain %s: %s and %s both mark %d/%d/%d, for different payloads: the cluster signed "+
				"something this cosigner did not; do not migrate before you know why", chainID, pvPath, sharePath, a.Height, a.Round, a.Step)
		}
		c.Start = b
	case len(a.SignBytes) > 0:
		c.Start = a
	default:
		c.Start = b
	}
	return c, nil
}

// notCarried lists what the home does not take over.
func (h *horcruxHome) notCarried() []string {
	var out []string
	t := h.cfg.ThresholdMode
	if t.GRPCTimeout != "" || t.RaftTimeout != "" {
		out = append(out, fmt.Sprintf("thresholdMode.grpcTimeout %q and raftTimeout %q: cosigner sets its own deadlines within the node's 5 s", t.GRPCTimeout, t.RaftTimeout))
	}
	if h.cfg.GRPCAddr != "" {
		out = append(out, fmt.Sprintf("grpcAddr %q: cosigner has no remote-signer gRPC server; nodes connect through priv_validator_laddr", h.cfg.GRPCAddr))
	}
	for _, name := range []string{"ecies_keys.json", "rsa_keys.json"} {
		if _, err := os.Stat(filepath.Join(h.keyDir, name)); err == nil {
			out = append(out, name+": Horcrux's link keys; the cluster's mutual TLS replaces them")
		}
	}
	return out
}

// writeHome writes the home into a temporary directory beside home, loads
// it back and renames it into place.
func writeHome(home string, cfg *config.Config, shares []*threshold.KeyShare, ks []HorcruxKey, caPEM []byte, cert *clustertls.Cert, chains []HorcruxChain) error {
	parent := filepath.Dir(filepath.Clean(home))
	if err := fsutil.MkdirAll(parent, 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(home)+".migrating-")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if err := share.WriteHome(tmp, cfg, shares[0], share.FirstEpoch, caPEM, cert); err != nil {
		return err
	}
	for i := 1; i < len(shares); i++ {
		shareJSON, err := share.Marshal(shares[i], share.FirstEpoch)
		if err != nil {
			return err
		}
		groupJSON, err := share.MarshalGroup(shares[i].Group(), share.FirstEpoch)
		if err != nil {
			clear(shareJSON)
			return err
		}
		err = fsutil.WriteNew(filepath.Join(tmp, ks[i].Source.ShareFile), shareJSON)
		clear(shareJSON)
		if err != nil {
			return err
		}
		if err := fsutil.WriteNew(filepath.Join(tmp, ks[i].Source.GroupFile), groupJSON); err != nil {
			return err
		}
	}
	for _, c := range chains {
		if err := signstate.WriteMark(signstate.StatePath(filepath.Join(tmp, cfg.StateDir), c.ID), c.ID, c.Start, false); err != nil {
			return err
		}
	}
	// Load it as `cosigner start` would, before it takes the name.
	loaded, err := config.Load(tmp)
	if err != nil {
		return fmt.Errorf("check the new home: %w", err)
	}
	srcs, _ := loaded.ShareSources()
	for _, src := range srcs {
		if _, err := share.Load(loaded.Path(src.ShareFile), loaded.Path(src.GroupFile)); err != nil {
			return fmt.Errorf("check the new home: %w", err)
		}
	}
	if _, err := clustertls.Load(loaded.Path(loaded.Threshold.TLSDir)); err != nil {
		return fmt.Errorf("check the new home: %w", err)
	}
	for _, c := range chains {
		if _, err := signstate.ReadMark(signstate.StatePath(loaded.Path(loaded.StateDir), c.ID), c.ID); err != nil {
			return fmt.Errorf("check the new home: %w", err)
		}
	}
	if _, err := os.Lstat(home); err == nil {
		return fmt.Errorf("%w: %s", ErrHomeExists, home)
	}
	if err := os.Rename(tmp, home); err != nil {
		return err
	}
	done = true
	return fsutil.SyncDir(parent)
}

// groupFingerprint is the first 8 bytes of the SHA-256 of the group key's
// encoding, in hex.
func groupFingerprint(g *threshold.GroupKey) string {
	b := g.Bytes()
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%X", sum[:8])
}
