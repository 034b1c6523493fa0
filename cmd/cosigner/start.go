package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/cosigner/cosigner/cosigner"
	"github.com/cosigner/cosigner/privval"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

func newStartCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "start",
		Short: "Run the signer: dial every configured node and sign",
		Long: `start loads cosigner.toml, every chain's key and sign state, and dials each
node's priv_validator_laddr, redialling whenever a connection drops. It refuses
to start when a chain's state file is missing or corrupt, or when another
cosigner holds the same home. SIGINT or SIGTERM stops it.`,
		Example: `  cosigner start --home ~/.cosigner`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return start(ctx, homeFlag(cmd), cmd.ErrOrStderr())
		},
	}
}

func newLogger(w interface{ Write([]byte) (int, error) }, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated by Config.Validate
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func start(ctx context.Context, home string, logOut interface{ Write([]byte) (int, error) }) error {
	cfg, err := loadConfig(home)
	if err != nil {
		return err
	}
	log := newLogger(logOut, cfg.LogLevel)

	unlock, err := lockHome(home)
	if err != nil {
		return err
	}
	defer unlock()

	identity, err := cosigner.LoadKey(cfg.Path(cfg.IdentityKey))
	if err != nil {
		return usageError{withHint(err, "the identity key is created by 'cosigner init'; restore it or create a new one (the node accepts any identity)")}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := cosigner.NewMetrics(reg, Version)
	if err != nil {
		return err
	}

	if cfg.Mode == cosigner.ModeThreshold {
		return startThreshold(ctx, cfg, identity, log, reg, metrics)
	}

	signer := cosigner.NewSoftsign(log)
	signer.SetMetrics(metrics)
	hsm, hsmRun, err := openHSM(ctx, cfg, log, reg)
	if err != nil {
		return err
	}
	for _, ch := range cfg.Chains {
		var key cosigner.ChainKey
		if ch.HSMKeyID != 0 {
			if key, err = hsmChainKey(ctx, cfg, hsm, ch, log); err != nil {
				return err
			}
		} else {
			k, err := cosigner.LoadKey(cfg.Path(ch.Key))
			if err != nil {
				return usageError{withHint(err, "import the key with 'cosigner keys import --home %s --chain-id %s <priv_validator_key.json>'", home, ch.ID)}
			}
			key = cosigner.MemoryKey(k)
		}
		state, err := cosigner.LoadSignState(statePath(cfg, ch.ID), ch.ID)
		if err != nil {
			return usageError{stateHint(err, home, ch.ID)}
		}
		if err := signer.AddChainKey(ch.ID, key, state); err != nil {
			return err
		}
		m := state.Mark()
		metrics.ServeNodes(ch.ID, ch.Nodes, m.Height)
		info := cosigner.DescribePubKey(key.Public(), ch.Prefix())
		args := []any{"chain", ch.ID, "pubkey", info.Bech32, "address", info.Address,
			"height", m.Height, "round", m.Round, "step", int(m.Step)}
		if ch.HSMKeyID != 0 {
			args = append(args, "hsm_key_id", ch.HSMKeyID)
		}
		log.Info("chain ready", args...)
	}

	admin := cosigner.NewSoftsignAdmin(signer, metrics, Version)
	runs, err := opsComponents(cfg, reg, admin.Ready, admin, log)
	if err != nil {
		return err
	}
	log.Info("starting", "version", Version, "mode", cfg.Mode, "node_id", privval.NodeID(identity.Public().(ed25519.PublicKey)))
	ncfg := privval.DefaultNodeClientConfig()
	ncfg.Observer = metrics
	if hsmRun != nil {
		runs = append(runs, hsmRun)
	}
	for _, ch := range cfg.Chains {
		for _, addr := range ch.Nodes {
			client, err := privval.NewNodeClient(addr, ch.ID, identity, signer, log, ncfg)
			if err != nil {
				return usageError{err}
			}
			runs = append(runs, client.Run)
		}
	}
	err = runComponents(ctx, runs...)
	log.Info("stopped")
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// lockHome takes an exclusive lock on the home so that two cosigners never
// sign from the same keys and state: the second would not see the first's
// marks.
func lockHome(home string) (func(), error) {
	path := filepath.Join(home, "cosigner.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, withHint(fmt.Errorf("another cosigner is running with home %s (%s is locked)", home, path),
			"stop the other process first; two signers on one key and state can double sign")
	}
	return func() { f.Close() }, nil
}

// opsComponents binds the metrics endpoint (if configured) and the admin
// socket, before anything signs, and returns their Run functions.
func opsComponents(cfg *cosigner.Config, reg *prometheus.Registry, ready cosigner.ReadyFunc, admin cosigner.AdminBackend, log *slog.Logger) ([]func(context.Context) error, error) {
	var runs []func(context.Context) error
	if cfg.Metrics.Listen != "" {
		ops, err := cosigner.NewOpsServer(cfg.Metrics.Listen, reg, ready, log)
		if err != nil {
			return nil, usageError{withHint(err, "set [metrics] listen in %s to a free host:port, or to \"\" to turn metrics off",
				filepath.Join(cfg.Home(), cosigner.ConfigFileName))}
		}
		runs = append(runs, ops.Run)
	}
	adminSrv, err := cosigner.NewAdminServer(filepath.Join(cfg.Home(), cosigner.AdminSocketName), admin, log)
	if err != nil {
		return nil, withHint(err, "the admin socket lives in the home directory; its path must be shorter than about 100 bytes")
	}
	return append(runs, adminSrv.Run), nil
}

// runComponents runs each component until ctx ends or any of them returns,
// then stops the others, waits for them and returns the first error.
func runComponents(ctx context.Context, runs ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	for _, run := range runs {
		g.Go(func() error {
			defer cancel()
			return run(ctx)
		})
	}
	return g.Wait()
}

func startThreshold(ctx context.Context, cfg *cosigner.Config, identity ed25519.PrivateKey, log *slog.Logger, reg *prometheus.Registry, metrics *cosigner.Metrics) error {
	t := cfg.Threshold
	c, err := cosigner.NewCluster(cfg, identity, log, Version)
	if err != nil {
		var se *cosigner.StateError
		if errors.As(err, &se) {
			return usageError{stateHint(se.Err, cfg.Home(), se.ChainID)}
		}
		if cfg.Threshold.ShareHSMObject != 0 && isHSMError(err) {
			return hsmHint(err, cfg)
		}
		return usageError{withHint(err, "check the files 'cosigner shard' wrote into %s, and the [threshold] section of cosigner.toml", cfg.Home())}
	}
	c.SetMetrics(metrics)
	runs, err := opsComponents(cfg, reg, c.Ready, c, log)
	if err != nil {
		return err
	}
	info := cosigner.DescribePubKey(c.Signer().PublicKey(), cfg.Chains[0].Prefix())
	self, _ := t.Self()
	log.Info("starting", "version", Version, "mode", cfg.Mode, "cosigner", t.ID, "threshold", t.Threshold, "shares", t.Shares,
		"pubkey", info.Bech32, "address", info.Address, "grpc", self.Address, "raft", self.RaftAddress,
		"node_id", privval.NodeID(identity.Public().(ed25519.PublicKey)))
	for _, ch := range cfg.Chains {
		m, _ := c.Signer().Mark(ch.ID)
		log.Info("chain ready", "chain", ch.ID, "height", m.Height, "round", m.Round, "step", int(m.Step), "nodes", len(ch.Nodes))
	}
	err = runComponents(ctx, append(runs, c.Run)...)
	log.Info("stopped")
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
