package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/privval"
)

func newStateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Create, show and import per-chain sign state (double-sign protection)",
	}
	cmd.AddCommand(newStateInitCmd(), newStateShowCmd(), newStateImportCmd())
	return cmd
}

func statePath(cfg *config.Config, chainID string) string {
	return signstate.StatePath(cfg.Path(cfg.StateDir), chainID)
}

func newStateInitCmd() *cobra.Command {
	var chainID string
	var height int64
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a chain's sign state at a height",
		Long: `init creates the sign-state file of a chain. cosigner refuses every vote or
proposal below --height. Use the chain's current height when moving a running
validator, so nothing it signed before can be signed again differently.

It refuses to replace an existing state unless --force is given, and refuses
(with or without --force) while 'cosigner start' runs on the home: the running
cosigner keeps writing its marks to the file it opened, and a file replaced
under it would lose them at its next start. Stop cosigner first.`,
		Example: `  cosigner state init --home ~/.cosigner --chain-id kira-1 --height 1234567`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, ch, err := loadChain(cmd, chainID)
			if err != nil {
				return err
			}
			if height < 0 {
				return usagef("--height %d is negative", height)
			}
			unlock, err := lockHomeToWrite(cmd, cfg.Home())
			if err != nil {
				return err
			}
			defer unlock()
			path := statePath(cfg, ch.ID)
			if err := signstate.WriteMark(path, ch.ID, signstate.Mark{Height: height}, force); err != nil {
				if errors.Is(err, signstate.ErrStateExists) {
					return withHint(err, "inspect it with 'cosigner state show'; replacing it can allow a double sign, so pass --force only if you are sure")
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s: chain %s signs from height %d\n", path, ch.ID, height)
			return nil
		},
	}
	cmd.Flags().StringVar(&chainID, "chain-id", "", "chain (default: the only configured chain)")
	cmd.Flags().Int64Var(&height, "height", 0, "lowest height that may be signed")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing state file")
	return cmd
}

type stateView struct {
	ChainID   string `json:"chain_id"`
	Height    string `json:"height"`
	Round     int32  `json:"round"`
	Step      int8   `json:"step"`
	StepName  string `json:"step_name,omitempty"`
	BlockID   string `json:"block_id,omitempty"`
	Timestamp string `json:"timestamp,omitempty"`
	Signature []byte `json:"signature,omitempty"`
	SignBytes string `json:"signbytes,omitempty"`
}

func newStateShowCmd() *cobra.Command {
	var chainID string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "show",
		Short:   "Show a chain's last signed height, round and step",
		Example: `  cosigner state show --home ~/.cosigner --chain-id kira-1 --json`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, ch, err := loadChain(cmd, chainID)
			if err != nil {
				return err
			}
			m, err := signstate.ReadMark(statePath(cfg, ch.ID), ch.ID)
			if err != nil {
				return usageError{stateHint(err, cfg.Home(), ch.ID)}
			}
			v := stateView{ChainID: ch.ID, Height: strconv.FormatInt(m.Height, 10), Round: m.Round, Step: int8(m.Step), Signature: m.Signature}
			if m.Step != 0 {
				v.StepName = m.Step.String()
			}
			if len(m.SignBytes) > 0 {
				v.SignBytes = fmt.Sprintf("%X", m.SignBytes)
				if info, err := privval.ParseSignBytes(m.SignBytes); err == nil {
					v.BlockID = fmt.Sprintf("%X", info.BlockID.Hash)
					v.Timestamp = info.Timestamp.UTC().Format(time.RFC3339Nano)
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			fmt.Fprintf(out, "chain %s: last signed %s/%d/%d", ch.ID, v.Height, v.Round, v.Step)
			if v.StepName != "" {
				fmt.Fprintf(out, " (%s", v.StepName)
				if v.BlockID != "" {
					fmt.Fprintf(out, " of block %s", v.BlockID)
				} else {
					fmt.Fprintf(out, " of nil")
				}
				fmt.Fprintf(out, ")")
			} else {
				fmt.Fprintf(out, " (nothing signed at this height yet)")
			}
			fmt.Fprintln(out)
			return nil
		},
	}
	cmd.Flags().StringVar(&chainID, "chain-id", "", "chain (default: the only configured chain)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// stateHint adds what to do to a state loading error.
func stateHint(err error, home, chainID string) error {
	switch {
	case errors.Is(err, signstate.ErrStateMissing):
		return withHint(err, "run 'cosigner state init --home %s --chain-id %s --height N' with the chain's current height, or 'cosigner state import' the state of the signer you are replacing", home, chainID)
	case errors.Is(err, signstate.ErrStateCorrupt):
		return withHint(err, "do not delete it: compare with the chain's current height, then recreate it with 'cosigner state init --home %s --chain-id %s --height N --force' using a height above anything this key may have signed", home, chainID)
	}
	return err
}

func newStateImportCmd() *cobra.Command {
	var chainID string
	var force bool
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Import the sign state of CometBFT (priv_validator_state.json) or TMKMS",
		Long: `import reads a CometBFT priv_validator_state.json or a TMKMS state file (whose
steps 0/1/2 become 1/2/3) and makes it the chain's sign state, so the key cannot
sign below what the previous signer signed. It refuses to replace an existing
state unless --force is given, and refuses while 'cosigner start' runs on the
home (stop cosigner first).`,
		Example: `  cosigner state import --home ~/.cosigner --chain-id kira-1 ~/.sekaid/data/priv_validator_state.json
  cosigner state import --home ~/.cosigner --chain-id kira-1 /var/lib/tmkms/state/kira-1-consensus.json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, ch, err := loadChain(cmd, chainID)
			if err != nil {
				return err
			}
			unlock, err := lockHomeToWrite(cmd, cfg.Home())
			if err != nil {
				return err
			}
			defer unlock()
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			m, kind, err := signstate.ParseForeignState(data, ch.ID)
			if err != nil {
				return withHint(fmt.Errorf("state %s: %w", args[0], err), "give a CometBFT priv_validator_state.json or a TMKMS consensus state file")
			}
			path := statePath(cfg, ch.ID)
			if err := signstate.WriteMark(path, ch.ID, m, force); err != nil {
				if errors.Is(err, signstate.ErrStateExists) {
					return withHint(err, "inspect it with 'cosigner state show'; pass --force to replace it")
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %s state into %s: last signed %d/%d/%d\n", kind, path, m.Height, m.Round, m.Step)
			if ch.Watch() == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "note: the doppelganger watch is off for %s; for the first start after a migration, list the chain's "+
					"CometBFT RPC in [[chain]] rpc (e.g. rpc = [\"http://10.0.0.2:26657\"]) so that start refuses to sign while the old signer "+
					"still runs (docs/operations.md \"Doppelganger watch\")\n", ch.ID)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&chainID, "chain-id", "", "chain (default: the only configured chain)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing state file")
	return cmd
}
