package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/cosigner/migrate"
)

func newMigrateTMKMSCmd() *cobra.Command {
	var pathMaps, heights []string
	var metrics string
	cmd := &cobra.Command{
		Use:   "tmkms TMKMS_TOML",
		Short: "Make a softsign cosigner home from a TMKMS tmkms.toml, its keys and its state",
		Long: `tmkms reads a TMKMS configuration (tmkms.toml of TMKMS v0.10 to v0.15) and every
file it names, and writes a new softsign cosigner home (--home) that signs for
the same chains, with the same keys, from the same nodes, above the state
TMKMS reached:

  [[chain]]               one cosigner [[chain]] each; bech32_prefix from
                          key_format's consensus_key_prefix ("kiravalconspub"
                          gives "kira"); state_file (default
                          <id>_priv_validator_state.json) imported as the sign
                          state, TMKMS's steps 0/1/2 becoming 1/2/3
  [[validator]]           the chain's nodes; tcp://ID@host:port loses its ID
                          (CometBFT's privval listener makes a new key at every
                          start, so the ID cannot be checked); the secret_key
                          becomes cosigner's SecretConnection identity
  [[providers.softsign]]  the key, base64 (a 32-byte seed) or json
                          (priv_validator_key.json), stored as keys/<chain>.json
  [[providers.yubihsm]]   the key stays in the device: hsm_key_id, and an [hsm]
                          section with the connector, auth key and a 0600 copy
                          of the password

A TMKMS v0.15 64-byte expanded key (scalar then prefix, no seed) becomes a
cosigner/ed25519-scalar-key file of the same validator key, with a note.

It refuses what would not sign as TMKMS did, saying what to do: a 96-byte
YubiHSM2 export (keep the key in the device), 64 bytes that are also CometBFT's
seed||public key layout (which key the chain has is unclear), a
missing or unreadable state file (pass --height CHAIN=N with the chain's
current height), a validator of a chain without a [[chain]], a chain with two
keys, unknown keys in tmkms.toml, and an existing non-empty --home. Relative
paths in tmkms.toml are taken from its directory; --path-map reads paths of a
tmkms.toml written for a container from the host. It prints no secret.

Stop TMKMS before starting cosigner, and keep it stopped: cosigner refuses to
sign at or below the state it imported, but cannot see what TMKMS signs after
the migration.`,
		Example: `  cosigner migrate tmkms --home ~/.cosigner /etc/tmkms/tmkms.toml
  # KIRA's sekin layout: tmkms.toml names /tmkms/... inside the TMKMS container
  cosigner migrate tmkms --home ~/cosigner --path-map /tmkms=$PWD/tmkms tmkms/tmkms.toml
  # a chain whose TMKMS state file is lost: start at the chain's current height
  cosigner migrate tmkms --home ~/.cosigner --height kira-1=1234567 tmkms.toml`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := migrate.TMKMSOptions{MetricsListen: metrics, Heights: map[string]int64{}}
			for _, s := range pathMaps {
				pm, err := migrate.ParsePathMapping(s)
				if err != nil {
					return usageError{withHint(fmt.Errorf("--path-map: %w", err), "see 'cosigner migrate tmkms --help'")}
				}
				opts.PathMap = append(opts.PathMap, pm)
			}
			for _, s := range heights {
				chain, n, ok := strings.Cut(s, "=")
				h, err := strconv.ParseInt(n, 10, 64)
				if !ok || chain == "" || err != nil || h < 0 {
					return usageError{withHint(fmt.Errorf("--height %q: want CHAIN=N with N a height, like kira-1=1234567", s), "see 'cosigner migrate tmkms --help'")}
				}
				opts.Heights[chain] = h
			}
			home := homeFlag(cmd)
			m, err := migrate.ReadTMKMS(args[0], opts)
			if err != nil {
				return usageError{withHint(err, "nothing was written; fix tmkms.toml or the file it names (or pass the flag the message names) and run the migration again")}
			}
			if err := m.Write(home); err != nil {
				if errors.Is(err, migrate.ErrHomeExists) {
					return usageError{withHint(err, "a migration never writes over a cosigner home: choose a new --home, or move %s away", home)}
				}
				return err
			}
			printTMKMSMigration(cmd.OutOrStdout(), home, m)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&pathMaps, "path-map", nil, "FROM=TO: read the files tmkms.toml names under FROM from TO (repeatable)")
	cmd.Flags().StringArrayVar(&heights, "height", nil, "CHAIN=N: sign CHAIN from height N, for a missing state file or above it (repeatable)")
	cmd.Flags().StringVar(&metrics, "metrics-listen", defaultMetricsListen, "host:port for Prometheus /metrics, /healthz and /readyz (\"\": off)")
	return cmd
}

// printTMKMSMigration says what was written and what to do next. It
// prints public keys and node ids only.
func printTMKMSMigration(w io.Writer, home string, m *migrate.TMKMSMigration) {
	fmt.Fprintf(w, "migrated %s into the softsign home %s\n", m.Source, home)
	for i, ch := range m.Chains {
		cc := m.Config.Chains[i]
		fmt.Fprintf(w, "\nchain %s\n", ch.ID)
		if ch.HSMKeyID != 0 {
			fmt.Fprintf(w, "  key:    YubiHSM2 key object %d at %s (hsm_key_id; the key stays in the device)\n", ch.HSMKeyID, m.Config.HSM.Connector)
		} else {
			info := keys.DescribePubKey(ch.PubKey, cc.Prefix())
			fmt.Fprintf(w, "  key:    %s from %s\n          validator %s, %s\n", cc.Key, ch.KeyFrom, info.Address, info.Bech32)
		}
		fmt.Fprintf(w, "  nodes:  %s\n", strings.Join(ch.Nodes, ", "))
		mk := ch.Mark
		switch {
		case ch.StateKind == "height":
			fmt.Fprintf(w, "  state:  signs from height %d (--height)\n", mk.Height)
		case mk.Step == 0:
			fmt.Fprintf(w, "  state:  %s state from %s: height %d, nothing signed at it\n", ch.StateKind, ch.StateFrom, mk.Height)
		default:
			fmt.Fprintf(w, "  state:  %s state from %s: last signed %d/%d/%d (%s)\n", ch.StateKind, ch.StateFrom, mk.Height, mk.Round, mk.Step, mk.Step)
		}
	}
	if m.IdentityFrom != "" {
		fmt.Fprintf(w, "\nidentity: imported %s (node id %s)\n", m.IdentityFrom, m.IdentityNodeID)
	} else {
		fmt.Fprintf(w, "\nidentity: fresh (node id %s)\n", m.IdentityNodeID)
	}
	if len(m.Notes) > 0 {
		fmt.Fprintf(w, "\nnotes:\n")
		for _, n := range m.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	key := firstKey(m.Config)
	fmt.Fprintf(w, `
next:
  1. stop TMKMS and keep it stopped (disable its service, or its compose service's restart policy):
     two signers with one key can double sign. cosigner refuses to sign at or below the state
     imported above, but it cannot see what TMKMS signs after this migration
`)
	if key != "" {
		fmt.Fprintf(w, "  2. check the key: cosigner keys show --home %s\n", home)
	} else {
		fmt.Fprintf(w, "  2. check the key objects: cosigner hsm keys list --home %s\n", home)
	}
	fmt.Fprintf(w, "  3. start: cosigner start --home %s\n", home)
	fmt.Fprint(w, doppelgangerAdvice)
	if key != "" {
		fmt.Fprintf(w, "later, to split the key over a threshold cluster: cosigner shard --key %s ...\n", filepath.Join(home, key))
	}
}

func firstKey(cfg *config.Config) string {
	for _, ch := range cfg.Chains {
		if ch.Key != "" {
			return ch.Key
		}
	}
	return ""
}
