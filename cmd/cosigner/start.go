package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/cosigner/cosigner/cosigner"
	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/doppel"
	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/cosigner/signstate"
)

func newStartCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "start",
		Short: "Run the signer: dial every configured node and sign",
		Long: `start loads cosigner.toml, every chain's key and sign state, and dials each
node's priv_validator_laddr, redialling whenever a connection drops. It refuses
to start when a chain's state file is missing or corrupt, when a key file is
readable by group or others, or when another cosigner holds the same home
(<home>/cosigner.lock). While it runs, keys import, state init and state import
refuse to touch the home. SIGINT or SIGTERM stops it.

A chain that lists rpc addresses is guarded by the doppelganger watch: before
signing, start follows doppelganger_watch new heights (default 3) and exits
non-zero if a commit carries the validator's signature that this cosigner did
not make (another signer is live for the key); while running, such a commit
stops the chain's signing until cosigner is restarted. See docs/operations.md.`,
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

	unlock, err := lockHome(home, "stop the other process first; two signers on one key and state can double sign")
	if err != nil {
		return err
	}
	defer unlock()

	identity, err := keys.LoadKey(cfg.Path(cfg.IdentityKey))
	if err := secretModeHint(err); err != nil {
		return err
	}
	if err != nil {
		return usageError{withHint(err, "the identity key is created by 'cosigner init'; restore it or create a new one (the node accepts any identity)")}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	c, err := cosigner.New(ctx, cfg, identity, cosigner.Options{Log: log, Version: Version, Registry: reg})
	if err != nil {
		return startHint(err, cfg)
	}
	return runHint(c.Run(ctx))
}

// runHint says what to do about a Run that ended in error.
func runHint(err error) error {
	var det *doppel.DetectedError
	switch {
	case errors.As(err, &det):
		// Exit 2, as a configuration error: systemd's unit does not
		// restart it, the operator must look first.
		return usageError{withHint(err, "look on every host that ever held this key for a signer still running (cosigner, TMKMS, Horcrux, "+
			"a node whose priv_validator_laddr is unset), stop it, then start cosigner again; see docs/operations.md \"Doppelganger watch\"")}
	case errors.Is(err, doppel.ErrWrongChain):
		return usageError{withHint(err, "each [[chain]] rpc must be the CometBFT RPC (rpc.laddr) of a node of that chain")}
	}
	return err
}

// startHint says what to do about a start that New refused.
func startHint(err error, cfg *config.Config) error {
	var (
		se *signstate.LoadError
		ke *cosigner.KeyError
		le *cosigner.ListenError
	)
	if err := secretModeHint(err); err != nil {
		return err
	}
	switch {
	case errors.As(err, &se):
		return usageError{stateHint(se.Err, cfg.Home(), se.ChainID)}
	case errors.As(err, &ke):
		return usageError{withHint(err, "import the key with 'cosigner keys import --home %s --chain-id %s <priv_validator_key.json>'", cfg.Home(), ke.ChainID)}
	case errors.As(err, &le) && le.Key != "":
		return usageError{withHint(err, "set [metrics] listen in %s to a free host:port, or to \"\" to turn metrics off",
			filepath.Join(cfg.Home(), config.FileName))}
	case errors.As(err, &le):
		return withHint(err, "the admin socket lives in the home directory; its path must be shorter than about 100 bytes")
	case isHSMError(err):
		return hsmHint(err, cfg)
	case errors.Is(err, share.ErrRetired):
		return usageError{withHint(err, "start the home 'cosigner reshare' wrote instead; never delete %s to start this one "+
			"(docs/threshold.md, 'Resharing')", filepath.Join(cfg.Home(), share.RetiredFile))}
	case cfg.Mode == config.ModeThreshold:
		return usageError{withHint(err, "check the files 'cosigner shard' wrote into %s, and the [threshold] section of cosigner.toml", cfg.Home())}
	}
	return err
}
