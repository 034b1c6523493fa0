package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/internal/fsutil"
	"github.com/cosigner/cosigner/privval"
)

func newInitCmd() *cobra.Command {
	var chainID, prefix, metrics string
	var nodes, rpc []string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a home directory for one chain and its nodes",
		Long: `init creates cosigner.toml, a SecretConnection identity key and the key and
state directories. It refuses to touch an existing home. More chains and nodes
are added by editing cosigner.toml.

--node takes the node's priv_validator_laddr as tcp://host:port or
unix:///path. TMKMS's tcp://ID@host:port is refused: CometBFT's privval
listener makes a new SecretConnection key at every start, so cosigner cannot
verify the node's ID; drop the "ID@" and protect the link with a firewall or
WireGuard.

--rpc takes the CometBFT RPC of a node of the chain (http://host:26657) and
turns the doppelganger watch on: before signing, start watches 3 new heights
and refuses to sign if the chain shows the validator signing elsewhere. Without
--rpc the watch is off (start logs a warning). See docs/operations.md.`,
		Example: `  cosigner init --home ~/.cosigner --chain-id kira-1 --node tcp://10.0.0.2:26659 --rpc http://10.0.0.2:26657 --bech32-prefix kira
  cosigner keys import --home ~/.cosigner priv_validator_key.json
  cosigner state init --home ~/.cosigner --chain-id kira-1 --height 1234567`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "chain-id", "node"); err != nil {
				return err
			}
			home := homeFlag(cmd)
			cfg := config.DefaultConfig()
			cfg.Metrics.Listen = metrics
			cfg.Chains = []config.ChainConfig{{
				ID:           chainID,
				Key:          filepath.Join("keys", chainID+".json"),
				Bech32Prefix: prefix,
				Nodes:        nodes,
				RPC:          rpc,
			}}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			cfgPath := filepath.Join(home, config.FileName)
			if _, err := os.Stat(cfgPath); err == nil {
				return usageError{withHint(fmt.Errorf("%s already exists", cfgPath),
					"edit it to add chains or nodes, or choose another --home")}
			}
			for _, d := range []string{home, filepath.Join(home, "keys"), filepath.Join(home, cfg.StateDir)} {
				if err := fsutil.MkdirAll(d, 0o700); err != nil {
					return fmt.Errorf("create %s: %w", d, err)
				}
			}
			_, id, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			idPath := filepath.Join(home, cfg.IdentityKey)
			if err := writeNewFile(idPath, keys.MarshalNodeKey(id)); err != nil {
				return err
			}
			if err := writeNewFile(cfgPath, cfg.Marshal()); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "created %s\n", cfgPath)
			fmt.Fprintf(out, "identity node id: %s\n", privval.NodeID(id.Public().(ed25519.PublicKey)))
			fmt.Fprintf(out, "next: cosigner keys import --home %s <priv_validator_key.json>\n", home)
			fmt.Fprintf(out, "      cosigner state init --home %s --chain-id %s --height <current height>\n", home, chainID)
			return nil
		},
	}
	cmd.Flags().StringVar(&chainID, "chain-id", "", "chain id to sign for (required)")
	cmd.Flags().StringArrayVar(&nodes, "node", nil, "node priv_validator_laddr: tcp://host:port (no ID@) or unix:///path (required, repeatable)")
	cmd.Flags().StringArrayVar(&rpc, "rpc", nil, "CometBFT RPC of a node of the chain, http://host:26657: turns the doppelganger watch on (repeatable)")
	cmd.Flags().StringVar(&prefix, "bech32-prefix", config.DefaultBech32Prefix, "chain's bech32 account prefix, for keys show")
	cmd.Flags().StringVar(&metrics, "metrics-listen", defaultMetricsListen, "host:port for Prometheus /metrics, /healthz and /readyz (\"\": off)")
	return cmd
}

// defaultMetricsListen is init's metrics address: loopback, so nothing is
// exposed until the operator chooses to.
const defaultMetricsListen = "127.0.0.1:26680"

// writeNewFile writes a 0600 file and refuses to replace an existing one.
func writeNewFile(path string, data []byte) error {
	err := fsutil.WriteNew(path, data)
	if errors.Is(err, os.ErrExist) {
		return withHint(fmt.Errorf("%s already exists", path), "cosigner never overwrites key or state files; move it away first if you mean to replace it")
	}
	return err
}
