package share

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"filippo.io/edwards25519"

	"github.com/cosigner/cosigner/cosigner/config"

	"github.com/cosigner/cosigner/cosigner/clustertls"
	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/internal/fsutil"
	"github.com/cosigner/cosigner/threshold"
)

// Options says how to split a key and what to write into each
// cosigner's configuration.
type Options struct {
	// Threshold is M and Shares is N; M > N/2.
	Threshold, Shares int
	// Peers are the gRPC host:port of cosigners 1..N; each one's Raft
	// transport listens on the next port. Empty: a cluster on loopback
	// (cosigner i on 127.0.0.1:27100+10i).
	Peers []string
	// ChainID, Nodes and Bech32Prefix fill the [[chain]] table; without a
	// chain id the configuration carries a commented example to fill in.
	ChainID      string
	Nodes        []string
	Bech32Prefix string
	// RPC are the chain's CometBFT RPC addresses: with them the [[chain]]
	// has the doppelganger watch on.
	RPC []string
	// Random is the randomness for the polynomial and keys; nil means
	// crypto/rand.
	Random io.Reader
}

// LoopbackPeerPort is the gRPC port of cosigner i in a loopback cluster
// (Raft on the next port, metrics on the one after).
func LoopbackPeerPort(id int) int { return 27100 + 10*id }

// Dir is the directory of cosigner id under out.
func Dir(out string, id int) string {
	return filepath.Join(out, "cosigner-"+strconv.Itoa(id))
}

// Shard splits key into opts.Shares FROST shares and writes, under out (which
// must not exist), one ready-to-run home per cosigner: cosigner.toml, its
// key share (0600), the group key, a cluster certificate issued by a one-off
// CA whose private key is discarded before Shard returns, a SecretConnection
// identity and an empty state directory.
func Shard(key ed25519.PrivateKey, out string, opts Options) (*threshold.GroupKey, error) {
	return shard(out, opts, func(random io.Reader) (*threshold.Dealing, error) {
		return threshold.Deal(key.Seed(), opts.Threshold, opts.Shares, random)
	})
}

// ShardScalar is Shard for a key given as its secret scalar (a
// cosigner/ed25519-scalar-key file, as 'keys reassemble' writes).
func ShardScalar(secret *edwards25519.Scalar, out string, opts Options) (*threshold.GroupKey, error) {
	return shard(out, opts, func(random io.Reader) (*threshold.Dealing, error) {
		return threshold.DealScalar(secret, opts.Threshold, opts.Shares, random)
	})
}

func shard(out string, opts Options, deal func(io.Reader) (*threshold.Dealing, error)) (*threshold.GroupKey, error) {
	if err := threshold.CheckThreshold(opts.Threshold, opts.Shares); err != nil {
		return nil, err
	}
	peers, err := shardPeers(opts)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(out); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrOutExists, out)
	}
	random := opts.Random
	if random == nil {
		random = rand.Reader
	}
	dealing, err := deal(random)
	if err != nil {
		return nil, err
	}
	ca, err := clustertls.NewCA()
	if err != nil {
		return nil, err
	}
	defer ca.Discard()
	if err := fsutil.MkdirAll(out, 0o700); err != nil {
		return nil, err
	}
	for i, share := range dealing.Shares {
		id := i + 1
		if err := writeShardDir(Dir(out, id), id, share, ca, peers, opts); err != nil {
			return nil, fmt.Errorf("cosigner %d: %w", id, err)
		}
	}
	return dealing.Group, nil
}

// Prepare writes, under out (which must not exist), one home per cosigner
// of an opts.Threshold-of-opts.Shares cluster without any key: cosigner.toml,
// a cluster certificate issued by a one-off CA whose private key is
// discarded before Prepare returns, a SecretConnection identity and an
// empty state directory. `cosigner dkg` then writes each cosigner's share
// and the group file into its home. opts.Random is not used.
func Prepare(out string, opts Options) error {
	if err := threshold.CheckThreshold(opts.Threshold, opts.Shares); err != nil {
		return err
	}
	peers, err := shardPeers(opts)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("%w: %s", ErrOutExists, out)
	}
	ca, err := clustertls.NewCA()
	if err != nil {
		return err
	}
	defer ca.Discard()
	if err := fsutil.MkdirAll(out, 0o700); err != nil {
		return err
	}
	for id := 1; id <= opts.Shares; id++ {
		if err := writeShardDir(Dir(out, id), id, nil, ca, peers, opts); err != nil {
			return fmt.Errorf("cosigner %d: %w", id, err)
		}
	}
	return nil
}

func shardPeers(opts Options) ([]config.PeerConfig, error) {
	peers := make([]config.PeerConfig, opts.Shares)
	if len(opts.Peers) == 0 {
		for i := range peers {
			port := LoopbackPeerPort(i + 1)
			peers[i] = config.PeerConfig{ID: i + 1, Address: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
				RaftAddress: net.JoinHostPort("127.0.0.1", strconv.Itoa(port+1))}
		}
		return peers, nil
	}
	if len(opts.Peers) != opts.Shares {
		return nil, fmt.Errorf("%d --peer addresses for %d shares: give one host:port per cosigner, in id order", len(opts.Peers), opts.Shares)
	}
	for i, p := range opts.Peers {
		host, portStr, err := net.SplitHostPort(p)
		port, perr := strconv.Atoi(portStr)
		if err != nil || perr != nil || port < 1 || port > 65533 {
			return nil, fmt.Errorf("--peer %q: want host:port with a port below 65534 (Raft uses the next one, metrics the one after)", p)
		}
		peers[i] = config.PeerConfig{ID: i + 1, Address: p, RaftAddress: net.JoinHostPort(host, strconv.Itoa(port+1))}
	}
	return peers, nil
}

func writeShardDir(dir string, id int, share *threshold.KeyShare, ca *clustertls.CA, peers []config.PeerConfig, opts Options) error {
	cfg := HomeConfig(id, peers, opts)
	cert, err := ca.Issue(id)
	if err != nil {
		return err
	}
	return WriteHome(dir, cfg, share, FirstEpoch, ca.CertPEM(), cert)
}

// HomeConfig returns the cosigner.toml of cosigner id of a cluster of
// peers (Peers(opts)), as shard writes it.
func HomeConfig(id int, peers []config.PeerConfig, opts Options) *config.Config {
	cfg := config.DefaultConfig()
	cfg.Mode = config.ModeThreshold
	cfg.Threshold.ID = id
	cfg.Threshold.Threshold = opts.Threshold
	cfg.Threshold.Shares = opts.Shares
	cfg.Threshold.Peers = peers
	// Metrics on loopback, on the port after Raft's: distinct per cosigner
	// even when a whole cluster runs on one host.
	if len(opts.Peers) == 0 {
		cfg.Metrics.Listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(LoopbackPeerPort(id)+2))
	} else {
		_, port, _ := net.SplitHostPort(opts.Peers[id-1]) // checked by shardPeers
		n, _ := strconv.Atoi(port)
		cfg.Metrics.Listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(n+2))
	}
	if opts.ChainID != "" {
		cfg.Chains = []config.ChainConfig{{ID: opts.ChainID, Bech32Prefix: opts.Bech32Prefix, Nodes: opts.Nodes, RPC: opts.RPC}}
	}
	return cfg
}

// Peers returns the [[threshold.peer]] list of opts: opts.Peers with Raft
// on the next port, or a loopback cluster.
func Peers(opts Options) ([]config.PeerConfig, error) { return shardPeers(opts) }

// WriteHome writes a threshold cosigner's home into dir, creating it 0700:
// cfg as cosigner.toml, the key share (0600) and the group key it belongs
// to, both of epoch number epoch, the cluster CA certificate with this cosigner's certificate and key,
// a fresh SecretConnection identity and an empty state directory. It never
// overwrites a file. `shard` writes one per cosigner; `migrate horcrux`
// writes the home of the host it runs on. With a nil share it writes
// neither share nor group file (a home prepared for `cosigner dkg`).
func WriteHome(dir string, cfg *config.Config, share *threshold.KeyShare, epoch uint64, caCertPEM []byte, cert *clustertls.Cert) error {
	for _, d := range []string{dir, filepath.Join(dir, cfg.StateDir)} {
		if err := fsutil.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	_, identity, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	if err := clustertls.WriteFiles(filepath.Join(dir, cfg.Threshold.TLSDir), caCertPEM, cert); err != nil {
		return err
	}
	type file struct {
		name string
		data []byte
	}
	var files []file
	if share != nil {
		shareJSON, err := Marshal(share, epoch)
		if err != nil {
			return err
		}
		defer clear(shareJSON)
		groupJSON, err := MarshalGroup(share.Group(), epoch)
		if err != nil {
			return err
		}
		files = append(files, file{cfg.Threshold.ShareFile, shareJSON}, file{cfg.Threshold.GroupFile, groupJSON})
	}
	files = append(files, file{cfg.IdentityKey, keys.MarshalNodeKey(identity)}, file{config.FileName, cfg.Marshal()})
	for _, f := range files {
		if err := fsutil.WriteNew(filepath.Join(dir, f.name), f.data); err != nil {
			return err
		}
	}
	return fsutil.SyncDir(dir)
}
