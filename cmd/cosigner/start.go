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

	if cfg.Mode == cosigner.ModeThreshold {
		return startThreshold(ctx, cfg, identity, log)
	}

	signer := cosigner.NewSoftsign(log)
	for _, ch := range cfg.Chains {
		key, err := cosigner.LoadKey(cfg.Path(ch.Key))
		if err != nil {
			return usageError{withHint(err, "import the key with 'cosigner keys import --home %s --chain-id %s <priv_validator_key.json>'", home, ch.ID)}
		}
		state, err := cosigner.LoadSignState(statePath(cfg, ch.ID), ch.ID)
		if err != nil {
			return usageError{stateHint(err, home, ch.ID)}
		}
		if err := signer.AddChain(ch.ID, key, state); err != nil {
			return err
		}
		m := state.Mark()
		info := cosigner.DescribePubKey(key.Public().(ed25519.PublicKey), ch.Prefix())
		log.Info("chain ready", "chain", ch.ID, "pubkey", info.Bech32, "address", info.Address,
			"height", m.Height, "round", m.Round, "step", int(m.Step))
	}

	log.Info("starting", "version", Version, "mode", cfg.Mode, "node_id", privval.NodeID(identity.Public().(ed25519.PublicKey)))
	g, ctx := errgroup.WithContext(ctx)
	for _, ch := range cfg.Chains {
		for _, addr := range ch.Nodes {
			client, err := privval.NewNodeClient(addr, ch.ID, identity, signer, log, privval.DefaultNodeClientConfig())
			if err != nil {
				return usageError{err}
			}
			g.Go(func() error { return client.Run(ctx) })
		}
	}
	err = g.Wait()
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

func startThreshold(ctx context.Context, cfg *cosigner.Config, identity ed25519.PrivateKey, log *slog.Logger) error {
	t := cfg.Threshold
	c, err := cosigner.NewCluster(cfg, identity, log, Version)
	if err != nil {
		var se *cosigner.StateError
		if errors.As(err, &se) {
			return usageError{stateHint(se.Err, cfg.Home(), se.ChainID)}
		}
		return usageError{withHint(err, "check the files 'cosigner shard' wrote into %s, and the [threshold] section of cosigner.toml", cfg.Home())}
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
	err = c.Run(ctx)
	log.Info("stopped")
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
