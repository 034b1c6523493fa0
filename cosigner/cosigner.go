package cosigner

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/cosigner/cosigner/cosigner/admin"
	"github.com/cosigner/cosigner/cosigner/cluster"
	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/doppel"
	"github.com/cosigner/cosigner/cosigner/hsm"
	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/cosigner/metrics"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/cosigner/softsign"
	"github.com/cosigner/cosigner/privval"
)

// Options are what New needs besides the configuration and the identity.
type Options struct {
	Log     *slog.Logger
	Version string
	// Registry receives the process's metrics and is served on [metrics]
	// listen; nil: a fresh registry.
	Registry *prometheus.Registry
}

// KeyError is a softsign chain whose key file could not be loaded.
type KeyError struct {
	ChainID string
	Err     error
}

func (e *KeyError) Error() string { return fmt.Sprintf("chain %s: %v", e.ChainID, e.Err) }
func (e *KeyError) Unwrap() error { return e.Err }

// ListenError is an address of cosigner.toml that could not be bound (the
// metrics endpoint) or the admin socket.
type ListenError struct {
	// Key is the configuration key ("metrics.listen"), or "" for the admin
	// socket.
	Key string
	Err error
}

func (e *ListenError) Error() string { return e.Err.Error() }
func (e *ListenError) Unwrap() error { return e.Err }

// Cosigner is one cosigner process, in either mode, with everything it
// serves: the node connections (softsign) or the cluster member (threshold),
// the YubiHSM2 session if any, the metrics endpoint and the admin socket.
type Cosigner struct {
	log *slog.Logger
	// guards are the doppelganger watches of a softsign process's chains.
	guards doppel.Guards
	runs   []func(context.Context) error
	// closers release what New opened, if Run is never called.
	closers []func()
}

// New loads and checks everything the process needs, binds its listeners
// and returns it ready to Run. It signs nothing before Run. A missing or
// corrupt sign state is a *signstate.LoadError, a softsign key that does
// not load a *KeyError, a YubiHSM2 that cannot be used an error wrapping
// one of hsm's sentinels, a taken address a *ListenError.
func New(ctx context.Context, cfg *config.Config, identity ed25519.PrivateKey, opts Options) (*Cosigner, error) {
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	m, err := metrics.New(opts.Registry, opts.Version)
	if err != nil {
		return nil, err
	}
	tracker := admin.NewTracker(m)
	c := &Cosigner{log: opts.Log}
	var (
		backend admin.Backend
		ready   admin.ReadyFunc
	)
	dm, err := doppel.NewMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	if cfg.Mode == config.ModeThreshold {
		cl, err := cluster.New(ctx, cfg, identity, cluster.Options{Log: opts.Log, Version: opts.Version, Metrics: m, Tracker: tracker, Doppel: dm})
		if err != nil {
			return nil, err
		}
		c.runs = append(c.runs, cl.Run)
		c.closers = append(c.closers, cl.Close)
		backend, ready = cl, cl.Ready
		t := cfg.Threshold
		self, _ := t.Self()
		opts.Log.Info("starting", "version", opts.Version, "mode", cfg.Mode, "cosigner", t.ID, "threshold", t.Threshold, "shares", t.Shares,
			"keys", len(cl.Keys().Signers()), "grpc", self.Address, "raft", self.RaftAddress,
			"node_id", privval.NodeID(identity.Public().(ed25519.PublicKey)), "boot_id", cl.Keys().BootID().String(),
			"epoch", cl.Epoch().Number, "group", cl.Epoch().Short())
		for _, ch := range cfg.Chains {
			mk, _ := cl.Keys().Mark(ch.ID)
			info := keys.DescribePubKey(cl.Keys().PublicKey(ch.ID), ch.Prefix())
			m.SetChainKey(ch.ID, info.Address, info.Bech32)
			opts.Log.Info("chain ready", "chain", ch.ID, "pubkey", info.Bech32, "address", info.Address, "key", cfg.ChainShare(&ch).String(),
				"height", mk.Height, "round", mk.Round, "step", int(mk.Step), "nodes", len(ch.Nodes))
		}
	} else {
		s, err := c.newSoftsign(ctx, cfg, identity, opts, m, dm, tracker)
		if err != nil {
			c.close()
			return nil, err
		}
		sb := &softsignBackend{signer: s, tracker: tracker, version: opts.Version, guards: c.guards, prefixes: map[string]string{}}
		for _, ch := range cfg.Chains {
			sb.prefixes[ch.ID] = ch.Prefix()
		}
		backend, ready = sb, sb.Ready
	}
	if err := c.listen(cfg, opts, ready, backend); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// softsignOptions are the softsign.Options cfg sets: the height bound and
// the chains with sign_raw_bytes.
func softsignOptions(cfg *config.Config) softsign.Options {
	raw := map[string]bool{}
	for _, ch := range cfg.Chains {
		raw[ch.ID] = ch.SignRawBytes
	}
	return softsign.Options{MaxHeightAhead: cfg.Softsign.MaxHeightAhead, MaxHeightRate: cfg.Softsign.MaxHeightRate, SignRawBytes: raw}
}

// newSoftsign loads every chain's key (from its file or the YubiHSM2) and
// sign state, and adds a node client per configured node to c.runs.
func (c *Cosigner) newSoftsign(ctx context.Context, cfg *config.Config, identity ed25519.PrivateKey, opts Options, m *metrics.Metrics, dm *doppel.Metrics, tracker *admin.Tracker) (*softsign.Signer, error) {
	log := opts.Log
	// guards is filled below, chain by chain, before anything is served.
	guards := doppel.Guards{}
	c.guards = guards
	so := softsignOptions(cfg)
	so.Guard = guards
	s := softsign.New(log, m, so)
	dev, err := openHSM(ctx, cfg, log, opts.Registry)
	if err != nil {
		return nil, err
	}
	if dev != nil {
		c.closers = append(c.closers, dev.Close)
		c.runs = append(c.runs, dev.Run)
	}
	for _, ch := range cfg.Chains {
		var key softsign.ChainKey
		if ch.HSMKeyID != 0 {
			k, err := hsm.NewKey(ctx, dev, uint16(ch.HSMKeyID), cfg.HSM.Timeout(), log)
			if err != nil {
				return nil, fmt.Errorf("chain %s: hsm_key_id = %d: %w", ch.ID, ch.HSMKeyID, err)
			}
			key = k
		} else {
			k, err := keys.LoadChainKey(cfg.Path(ch.Key))
			if err != nil {
				return nil, &KeyError{ChainID: ch.ID, Err: err}
			}
			if k.Scalar != nil {
				key = softsign.ScalarKey(k.Scalar)
			} else {
				key = softsign.MemoryKey(k.Seed)
			}
		}
		state, err := signstate.LoadSignState(signstate.StatePath(cfg.Path(cfg.StateDir), ch.ID), ch.ID)
		if err != nil {
			return nil, &signstate.LoadError{ChainID: ch.ID, Err: err}
		}
		c.closers = append(c.closers, func() { state.Close() })
		if err := s.AddChainKey(ch.ID, key, state); err != nil {
			return nil, err
		}
		mk := state.Mark()
		tracker.ServeNodes(ch.ID, ch.Nodes, mk.Height)
		info := keys.DescribePubKey(key.Public(), ch.Prefix())
		m.SetChainKey(ch.ID, info.Address, info.Bech32)
		args := []any{"chain", ch.ID, "pubkey", info.Bech32, "address", info.Address,
			"height", mk.Height, "round", mk.Round, "step", int(mk.Step)}
		if ch.HSMKeyID != 0 {
			args = append(args, "hsm_key_id", ch.HSMKeyID)
		}
		if ch.SignRawBytes {
			args = append(args, "sign_raw_bytes", true)
		}
		log.Info("chain ready", args...)
		if w := newWatch(ch, key.Public(), mk.Height, log, dm); w != nil {
			guards[ch.ID] = w
			c.runs = append(c.runs, w.Run)
		}
	}
	log.Info("starting", "version", opts.Version, "mode", cfg.Mode, "node_id", privval.NodeID(identity.Public().(ed25519.PublicKey)))
	ncfg := privval.DefaultNodeClientConfig()
	ncfg.Observer = tracker
	for _, ch := range cfg.Chains {
		for _, addr := range ch.Nodes {
			client, err := privval.NewNodeClient(addr, ch.ID, identity, s, log, ncfg)
			if err != nil {
				return nil, err
			}
			c.runs = append(c.runs, client.Run)
		}
	}
	return s, nil
}

// newWatch returns the doppelganger watch of a chain, or nil (with a
// warning) when the chain names no rpc address.
func newWatch(ch config.ChainConfig, pub ed25519.PublicKey, mark int64, log *slog.Logger, m *doppel.Metrics) *doppel.Watch {
	if len(ch.RPC) == 0 {
		log.Warn(doppel.LogOff, "chain", ch.ID, "hint", "list the CometBFT RPC of the chain's nodes in [[chain]] rpc; see docs/operations.md")
		return nil
	}
	if ch.Watch() == 0 {
		log.Warn("doppelganger start watch off (doppelganger_watch = 0): signing at once; commits are still compared with what this cosigner signs",
			"chain", ch.ID)
	}
	addr, _ := hex.DecodeString(keys.Address(pub))
	return doppel.New(doppel.NewClient(ch.RPC, ch.ID, rpcTimeout), doppel.Options{
		ChainID: ch.ID, Address: addr, Heights: ch.Watch(), Mark: mark, RPCDown: ch.RPCDown(), Log: log, Metrics: m,
	})
}

// rpcTimeout bounds each request of the doppelganger watch to a node's RPC.
const rpcTimeout = 5 * time.Second

// openHSM opens the YubiHSM2 session of a softsign process whose chains
// name device keys, or returns nil when none does.
func openHSM(ctx context.Context, cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (*hsm.Client, error) {
	use := false
	for _, ch := range cfg.Chains {
		use = use || ch.HSMKeyID != 0
	}
	if !use {
		return nil, nil
	}
	hopts, err := cfg.HSMOptions()
	if err != nil {
		return nil, err
	}
	if hopts.Metrics, err = hsm.NewMetrics(reg); err != nil {
		return nil, err
	}
	dev, err := hsm.Dial(ctx, hopts, log)
	if err != nil {
		return nil, err
	}
	serial, firmware, err := dev.DeviceInfo(ctx)
	if err != nil {
		dev.Close()
		return nil, err
	}
	log.Info("hsm session open", "connector", cfg.HSM.Connector, "serial", serial, "firmware", firmware,
		"auth_key_id", cfg.HSM.AuthKeyID, "request_timeout", cfg.HSM.Timeout())
	return dev, nil
}

// listen binds the metrics endpoint (if configured) and the admin socket,
// before anything signs.
func (c *Cosigner) listen(cfg *config.Config, opts Options, ready admin.ReadyFunc, backend admin.Backend) error {
	if cfg.Metrics.Listen != "" {
		ops, err := admin.NewOpsServer(cfg.Metrics.Listen, opts.Registry, ready, opts.Log)
		if err != nil {
			return &ListenError{Key: "metrics.listen", Err: err}
		}
		c.runs = append(c.runs, ops.Run)
		c.closers = append(c.closers, ops.Close)
	}
	srv, err := admin.NewServer(filepath.Join(cfg.Home(), admin.SocketName), backend, opts.Log)
	if err != nil {
		return &ListenError{Err: err}
	}
	c.runs = append(c.runs, srv.Run)
	c.closers = append(c.closers, srv.Close)
	return nil
}

func (c *Cosigner) close() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
}

// Run serves until ctx ends or a component fails, then stops every
// component, waits for them and returns the first error (nil after ctx
// ended).
func (c *Cosigner) Run(ctx context.Context) error {
	c.closers = nil // each component releases its own resources when Run returns
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	for _, run := range c.runs {
		g.Go(func() error {
			defer cancel()
			return run(gctx)
		})
	}
	err := g.Wait()
	c.log.Info("stopped")
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// softsignBackend is the admin.Backend of a softsign process: a cluster of
// one.
type softsignBackend struct {
	signer  *softsign.Signer
	tracker *admin.Tracker
	version string
	guards  doppel.Guards
	// prefixes are the chains' bech32 prefixes, for status.
	prefixes map[string]string
}

var _ admin.Backend = (*softsignBackend)(nil)

// Ready reports a node that is not connected or a key that cannot sign, or
// nil.
func (a *softsignBackend) Ready() error {
	if err := a.tracker.NodesDown(); err != nil {
		return err
	}
	for _, id := range a.signer.Chains() {
		if err := a.guards.Allow(id); err != nil {
			return fmt.Errorf("chain %s: %w", id, err)
		}
	}
	return a.signer.Ready()
}

// Status implements admin.Backend.
func (a *softsignBackend) Status(context.Context) admin.Status {
	st := admin.Status{Mode: config.ModeSoftsign, Version: a.version, Role: config.ModeSoftsign, Quorum: true}
	st.SetShape(1, 1)
	if err := a.Ready(); err != nil {
		st.NotReady = err.Error()
	} else {
		st.Ready = true
	}
	activity := map[string]admin.ChainActivity{}
	for _, ac := range a.tracker.Activity() {
		activity[ac.ChainID] = ac
	}
	for _, id := range a.signer.Chains() {
		if ac, ok := activity[id]; ok && !ac.SignedAt.IsZero() {
			st.Chains = append(st.Chains, admin.NewChainReport(id, ac.Height, ac.Round, ac.Step, ac.SignedAt, "this process"))
			continue
		}
		m, _ := a.signer.Mark(id)
		st.Chains = append(st.Chains, admin.NewChainReport(id, m.Height, m.Round, m.Step, time.Time{}, "state"))
	}
	for i := range st.Chains {
		if pub, err := a.signer.PubKey(context.Background(), st.Chains[i].ID); err == nil {
			info := keys.DescribePubKey(pub, a.prefixes[st.Chains[i].ID])
			st.Chains[i].Address, st.Chains[i].PubKey = info.Address, info.Bech32
		}
		if limit, ok := a.signer.HeightLimit(st.Chains[i].ID); ok {
			st.Chains[i].MaxHeight = &limit
		}
	}
	st.Nodes = a.tracker.NodeReports()
	return st
}

// TransferLeadership implements admin.Backend: softsign has no leader.
func (a *softsignBackend) TransferLeadership(context.Context, int) (int, error) {
	return 0, errors.New("this cosigner runs in softsign mode: there is no cluster leadership to transfer")
}
