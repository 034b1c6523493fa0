package migrate

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"filippo.io/edwards25519"
	"gopkg.in/yaml.v3"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/signstate"
)

// The files of a Horcrux v3 home, as Horcrux v3.3.2 names them
// (signer/config.go, cmd/horcrux/cmd/root.go).
const (
	horcruxConfigFile  = "config.yaml"
	horcruxPidFile     = "horcrux.pid"
	horcruxStateDir    = "state"
	horcruxShardSuffix = "_shard.json"
	horcruxPVState     = "_priv_validator_state.json" // the cluster's last signature
	horcruxShareState  = "_share_sign_state.json"     // this cosigner's last share
)

// Sentinel errors of the Horcrux migration, for the CLI's hints.
var (
	// ErrHorcruxRunning: Horcrux's pid file names a live process.
	ErrHorcruxRunning = errors.New("horcrux is running")
	// ErrHorcruxStateMissing: a chain's state file is missing.
	ErrHorcruxStateMissing = errors.New("horcrux state file is missing")
	// ErrNotHorcruxHome: the directory holds no Horcrux config.yaml.
	ErrNotHorcruxHome = errors.New("not a Horcrux home")
	// ErrHomeExists: the cosigner home to create exists (every migration
	// refuses it: a migration never writes over a cosigner home).
	ErrHomeExists = errors.New("cosigner home already exists")
)

// horcruxConfig is Horcrux v3's config.yaml (signer.Config), every key
// v3.3.2 writes. Unknown keys are refused: a key this reader does not know
// may change what the cluster is.
type horcruxConfig struct {
	KeyDir        *string               `yaml:"keyDir"`
	SignMode      string                `yaml:"signMode"`
	ThresholdMode *horcruxThresholdMode `yaml:"thresholdMode"`
	ChainNodes    []struct {
		PrivValAddr string `yaml:"privValAddr"`
	} `yaml:"chainNodes"`
	DebugAddr   string `yaml:"debugAddr"`
	GRPCAddr    string `yaml:"grpcAddr"`
	MaxReadSize int    `yaml:"maxReadSize"`
}

type horcruxThresholdMode struct {
	Threshold int `yaml:"threshold"`
	Cosigners []struct {
		ShardID int    `yaml:"shardID"`
		P2PAddr string `yaml:"p2pAddr"`
	} `yaml:"cosigners"`
	GRPCTimeout string `yaml:"grpcTimeout"`
	RaftTimeout string `yaml:"raftTimeout"`
}

// horcruxHome is what the migration reads from a Horcrux home: the
// threshold and cosigners of its config.yaml and this host's shards.
type horcruxHome struct {
	dir    string
	cfg    horcruxConfig
	keyDir string
	// m and peers (shard id -> gRPC host:port from p2pAddr) come from
	// thresholdMode; n is len(peers).
	m, n  int
	peers map[int]string
	// shards is sorted by chain id.
	shards []*horcruxShard
}

// readHorcruxHome reads and checks a Horcrux v3 threshold home: its
// config.yaml and every {chain-id}_shard.json in its key directory. It
// refuses a home whose Horcrux still runs.
func readHorcruxHome(dir string) (*horcruxHome, error) {
	path := filepath.Join(dir, horcruxConfigFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s is missing", ErrNotHorcruxHome, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read horcrux config: %w", err)
	}
	h := &horcruxHome{dir: dir, peers: map[int]string{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&h.cfg); err != nil {
		return nil, fmt.Errorf("horcrux config %s: %w (this reader knows Horcrux v3's config.yaml)", path, err)
	}
	if err := h.checkConfig(path); err != nil {
		return nil, err
	}
	if err := checkHorcruxStopped(dir); err != nil {
		return nil, err
	}
	h.keyDir = dir
	if h.cfg.KeyDir != nil && *h.cfg.KeyDir != "" {
		// Horcrux opens keyDir as given, relative to its working
		// directory.
		if h.keyDir, err = filepath.Abs(*h.cfg.KeyDir); err != nil {
			return nil, err
		}
	}
	paths, err := filepath.Glob(filepath.Join(h.keyDir, "*"+horcruxShardSuffix))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("horcrux home %s: no {chain-id}%s in %s", dir, horcruxShardSuffix, h.keyDir)
	}
	slices.Sort(paths)
	for _, p := range paths {
		chainID := strings.TrimSuffix(filepath.Base(p), horcruxShardSuffix)
		s, err := readHorcruxShard(p, chainID)
		if err != nil {
			return nil, err
		}
		if s.id > h.n {
			return nil, fmt.Errorf("horcrux shard %s has id %d, but %s lists %d cosigners", p, s.id, path, h.n)
		}
		h.shards = append(h.shards, s)
	}
	return h, nil
}

// checkConfig checks what the migration takes from config.yaml.
func (h *horcruxHome) checkConfig(path string) error {
	c := &h.cfg
	if c.SignMode != "threshold" {
		return fmt.Errorf("horcrux config %s: signMode is %q: only a threshold cluster migrates this way; a single signer's "+
			"{chain-id}_priv_validator_key.json imports with 'cosigner init' and 'cosigner keys import'", path, c.SignMode)
	}
	t := c.ThresholdMode
	if t == nil || len(t.Cosigners) == 0 {
		return fmt.Errorf("horcrux config %s: thresholdMode.cosigners is empty", path)
	}
	h.m, h.n = t.Threshold, len(t.Cosigners)
	for i, cs := range t.Cosigners {
		where := fmt.Sprintf("horcrux config %s: thresholdMode.cosigners[%d]", path, i)
		if cs.ShardID < 1 || cs.ShardID > h.n {
			return fmt.Errorf("%s: shardID %d is not one of 1..%d", where, cs.ShardID, h.n)
		}
		if _, dup := h.peers[cs.ShardID]; dup {
			return fmt.Errorf("%s: shardID %d appears twice", where, cs.ShardID)
		}
		u, err := url.Parse(cs.P2PAddr)
		if err != nil || u.Scheme != "tcp" || u.Host == "" {
			return fmt.Errorf("%s: p2pAddr %q: want tcp://host:port", where, cs.P2PAddr)
		}
		if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
			return fmt.Errorf("%s: p2pAddr %q: want tcp://host:port", where, cs.P2PAddr)
		}
		h.peers[cs.ShardID] = u.Host
	}
	return nil
}

// checkHorcruxStopped refuses a home whose horcrux.pid names a live
// process: its state files would go on changing after they are imported.
// Horcrux removes the file when it stops on a signal.
func checkHorcruxStopped(dir string) error {
	path := filepath.Join(dir, horcruxPidFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read horcrux pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid < 1 {
		return fmt.Errorf("horcrux pid file %s holds %q, not a process id: check that horcrux is stopped, then remove it", path, data)
	}
	if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("%w: %s names process %d; stop horcrux on every host (SIGTERM, so it writes its state), then migrate", ErrHorcruxRunning, path, pid)
	}
	return fmt.Errorf("horcrux pid file %s names process %d, which is gone: horcrux did not stop cleanly, and it writes its "+
		"state files in the background, so they may lag what it signed; restart horcrux and stop it with SIGTERM, or, if "+
		"you are sure, remove the pid file", path, pid)
}

// horcruxShard is one chain's Horcrux shard on this host: the validator
// key and this cosigner's Shamir share s_i of its secret scalar, at x = id.
type horcruxShard struct {
	chainID string
	path    string
	pub     ed25519.PublicKey
	id      int
	secret  *edwards25519.Scalar
	public  *edwards25519.Point // s_i·B
}

// horcruxShardFile is {chain-id}_shard.json (signer.CosignerEd25519Key).
type horcruxShardFile struct {
	PubKey       []byte `json:"pubKey"`
	PrivateShard []byte `json:"privateShard"`
	ID           int    `json:"id"`
}

// Encodings of an ed25519 public key in a shard's pubKey: the protobuf
// tendermint.crypto.PublicKey (field 1, 32 bytes), and the amino form of
// tendermint/PubKeyEd25519 older Horcrux versions wrote.
var (
	protoPubKeyPrefix = []byte{0x0a, 0x20}
	aminoPubKeyPrefix = []byte{0x16, 0x24, 0xde, 0x64, 0x20}
)

// readHorcruxShard reads and checks the shard of chainID at path.
func readHorcruxShard(path, chainID string) (*horcruxShard, error) {
	if err := config.ValidateChainID(chainID); err != nil {
		return nil, fmt.Errorf("horcrux shard %s: %w", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read horcrux shard: %w", err)
	}
	defer clear(data)
	s, err := parseHorcruxShard(data)
	if err != nil {
		return nil, fmt.Errorf("horcrux shard %s: %w", path, err)
	}
	s.chainID, s.path = chainID, path
	return s, nil
}

// parseHorcruxShard decodes and checks a shard file's content.
func parseHorcruxShard(data []byte) (*horcruxShard, error) {
	var f horcruxShardFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	defer clear(f.PrivateShard)
	s := &horcruxShard{id: f.ID}
	switch {
	case len(f.PubKey) == len(protoPubKeyPrefix)+ed25519.PublicKeySize && bytes.HasPrefix(f.PubKey, protoPubKeyPrefix):
		s.pub = ed25519.PublicKey(bytes.Clone(f.PubKey[len(protoPubKeyPrefix):]))
	case len(f.PubKey) == len(aminoPubKeyPrefix)+ed25519.PublicKeySize && bytes.HasPrefix(f.PubKey, aminoPubKeyPrefix):
		s.pub = ed25519.PublicKey(bytes.Clone(f.PubKey[len(aminoPubKeyPrefix):]))
	default:
		return nil, fmt.Errorf("pubKey %x is not an ed25519 public key (protobuf or amino)", f.PubKey)
	}
	if f.ID < 1 || f.ID > 255 {
		return nil, fmt.Errorf("id %d is not one of 1..255", f.ID)
	}
	if len(f.PrivateShard) != 32 {
		return nil, fmt.Errorf("privateShard is %d bytes, want 32", len(f.PrivateShard))
	}
	var err error
	if s.secret, err = edwards25519.NewScalar().SetCanonicalBytes(f.PrivateShard); err != nil {
		// Horcrux's dealer reduces every share mod L; never quote it.
		return nil, errors.New("privateShard is not a scalar below the group order")
	}
	if s.secret.Equal(edwards25519.NewScalar()) == 1 {
		return nil, errors.New("privateShard is zero")
	}
	s.public = new(edwards25519.Point).ScalarBaseMult(s.secret)
	return s, nil
}

// horcruxStateFile is Horcrux's sign state (signer.SignState, written with
// CometBFT's JSON codec: height and round as strings). Unknown fields are
// refused.
type horcruxStateFile struct {
	Height                 json.RawMessage `json:"height"`
	Round                  json.RawMessage `json:"round"`
	Step                   json.RawMessage `json:"step"`
	NoncePublic            []byte          `json:"nonce_public"`
	Signature              []byte          `json:"signature"`
	SignBytes              string          `json:"signbytes"`
	VoteExtensionSignature []byte          `json:"vote_ext_signature"`
}

// readHorcruxState reads a Horcrux state file of chainID. Its height, round,
// step and sign bytes are checked by signstate.ParseForeignState, as a
// CometBFT priv_validator_state.json (the same fields and step numbers),
// sign bytes against the height, round, step and chain. The signature is
// dropped: a cosigner's own mark records sign bytes only, and the share
// state's "signature" is a Horcrux partial signature.
func readHorcruxState(path, chainID string) (signstate.Mark, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return signstate.Mark{}, fmt.Errorf("%w: %s", ErrHorcruxStateMissing, path)
	}
	if err != nil {
		return signstate.Mark{}, fmt.Errorf("read horcrux state: %w", err)
	}
	m, err := parseHorcruxState(data, chainID)
	if err != nil {
		return signstate.Mark{}, fmt.Errorf("horcrux state %s: %w", path, err)
	}
	return m, nil
}

// parseHorcruxState decodes and checks a state file's content.
func parseHorcruxState(data []byte, chainID string) (signstate.Mark, error) {
	var f horcruxStateFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return signstate.Mark{}, err
	}
	if f.Height == nil || f.Round == nil || f.Step == nil {
		return signstate.Mark{}, errors.New("want height, round and step")
	}
	cometbft, err := json.Marshal(map[string]any{"height": f.Height, "round": f.Round, "step": f.Step, "signbytes": f.SignBytes})
	if err != nil {
		return signstate.Mark{}, err
	}
	m, _, err := signstate.ParseForeignState(cometbft, chainID)
	return m, err
}
