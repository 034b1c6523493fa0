package main

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/internal/fsutil"
	"github.com/cosigner/cosigner/threshold"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Import and show consensus keys",
	}
	cmd.AddCommand(newKeysImportCmd(), newKeysShowCmd(), newKeysReassembleCmd())
	return cmd
}

// loadConfig loads the home's configuration, marking failures as
// configuration errors (exit 2).
func loadConfig(home string) (*config.Config, error) {
	return configOrHint(config.Load(home))
}

// loadConfigForKeys also accepts a configuration without chains.
func loadConfigForKeys(home string) (*config.Config, error) {
	return configOrHint(config.LoadForKeys(home))
}

func configOrHint(cfg *config.Config, err error) (*config.Config, error) {
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usageError{withHint(err, "run 'cosigner init' (or 'cosigner shard') first, or pass the right --home")}
	}
	if err != nil {
		return nil, usageError{err}
	}
	return cfg, nil
}

// secretModeHint says what to do about a key, share or password file that
// group or others may access (the error itself names the chmod), as a
// configuration error; it returns nil when err is not that.
func secretModeHint(err error) error {
	var me *fsutil.ModeError
	if !errors.As(err, &me) {
		return nil
	}
	return usageError{withHint(err, "cosigner uses secret files only when no other user can read them; after the chmod, check the file's owner, and if someone else could have copied it meanwhile, treat the key as exposed")}
}

// loadShareSource loads and checks the share of src, from its file or the
// YubiHSM2.
func loadShareSource(cmd *cobra.Command, cfg *config.Config, src config.ShareSource) (*threshold.KeyShare, error) {
	var ks *threshold.KeyShare
	var err error
	if src.HSMObject != 0 {
		ks, err = loadSealedShareOf(cmd, cfg, src.HSMObject, src.GroupFile)
	} else {
		ks, err = share.Load(cfg.Path(src.ShareFile), cfg.Path(src.GroupFile))
	}
	if err := secretModeHint(err); err != nil {
		return nil, err
	}
	if err != nil {
		return nil, withHint(err, "copy this cosigner's directory from the 'cosigner shard' output unchanged")
	}
	return ks, nil
}

// chainKey is one line of showChainKeys: a chain and the key that signs
// it.
type chainKey struct {
	ChainID string `json:"chain_id"`
	// Source is where this cosigner's share of the key is.
	Source string `json:"source"`
	keys.PubKeyInfo
}

// showChainKeys prints, for a threshold home with several chains, which
// validator key signs which chain, after checking each share.
func showChainKeys(cmd *cobra.Command, cfg *config.Config, prefix string, asJSON bool) error {
	var out []chainKey
	loaded := map[config.ShareSource]*threshold.KeyShare{}
	for i := range cfg.Chains {
		ch := &cfg.Chains[i]
		src := cfg.ChainShare(ch)
		ks, ok := loaded[src]
		if !ok {
			var err error
			if ks, err = loadShareSource(cmd, cfg, src); err != nil {
				return fmt.Errorf("chain %s: %w", ch.ID, err)
			}
			loaded[src] = ks
			fmt.Fprintf(cmd.ErrOrStderr(), "share %d of a %d-of-%d key (%s) verified against the group commitments\n",
				ks.ID(), ks.Group().Threshold(), ks.Group().N(), src)
		}
		p := prefix
		if p == "" {
			p = ch.Prefix()
		}
		out = append(out, chainKey{ChainID: ch.ID, Source: src.String(), PubKeyInfo: keys.DescribePubKey(ks.Group().PublicKey(), p)})
	}
	w := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	for i, k := range out {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "chain:       %s\n", k.ChainID)
		fmt.Fprintf(w, "key:         %s\n", k.Source)
		fmt.Fprintf(w, "bech32:      %s\n", k.Bech32)
		fmt.Fprintf(w, "address:     %s\n", k.Address)
	}
	return nil
}

// warnOpenKey passes on LoadImportKey's warning: the key file being
// imported is open to other users. The import goes on, since every copy
// cosigner writes is 0600, but the original may have been copied.
func warnOpenKey(cmd *cobra.Command, warning error) {
	if warning != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "cosigner: warning: %v (cosigner's own copy is 0600; if other users could read the original, the key may already be copied)\n", warning)
	}
}

// loadChain loads the home's configuration and the chain named by chainID
// (or the only chain).
func loadChain(cmd *cobra.Command, chainID string) (*config.Config, *config.ChainConfig, error) {
	cfg, err := loadConfig(homeFlag(cmd))
	if err != nil {
		return nil, nil, err
	}
	ch, err := pickChain(cfg, chainID)
	if err != nil {
		return nil, nil, err
	}
	return cfg, ch, nil
}

// pickChain returns the chain named by --chain-id, or the only chain.
func pickChain(cfg *config.Config, id string) (*config.ChainConfig, error) {
	if id == "" {
		if len(cfg.Chains) == 1 {
			return &cfg.Chains[0], nil
		}
		return nil, usagef("%d chains are configured: pass --chain-id", len(cfg.Chains))
	}
	ch, ok := cfg.Chain(id)
	if !ok {
		return nil, usagef("chain %q is not in %s", id, filepath.Join(cfg.Home(), config.FileName))
	}
	return ch, nil
}

func newKeysImportCmd() *cobra.Command {
	var chainID string
	var force bool
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Import a priv_validator_key.json or TMKMS softsign key for a chain",
		Long: `import reads a CometBFT priv_validator_key.json, a TMKMS softsign key (base64
of the 32-byte seed) or the base64 of CometBFT's 64 bytes seed||pubkey (a TMKMS
v0.15 64-byte expanded key holds no seed: 'cosigner migrate tmkms' reads it),
checks it and stores it as the
chain's key file (0600, priv_validator_key.json format). It refuses to replace
an existing key unless --force is given, and refuses while 'cosigner start' runs
on the home (stop cosigner first). It warns when FILE is open to group or others
(the copy it writes is 0600), whereas the key files cosigner signs with must be
0600: start refuses them otherwise. After importing, move the original key off
the validator node.`,
		Example: `  cosigner keys import --home ~/.cosigner ~/.sekaid/config/priv_validator_key.json
  cosigner keys import --home ~/.cosigner --chain-id kira-1 /etc/tmkms/secrets/kira-consensus.key`,
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
			key, warning, err := keys.LoadImportKey(args[0])
			if err != nil {
				return withHint(err, "give a CometBFT priv_validator_key.json or a TMKMS base64 ed25519 key")
			}
			warnOpenKey(cmd, warning)
			dst := cfg.Path(ch.Key)
			if err := fsutil.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return err
			}
			data := keys.MarshalPrivValidatorKey(key)
			if force {
				err = fsutil.Replace(dst, data, 0o600)
			} else {
				err = writeNewFile(dst, data)
			}
			if err != nil {
				return err
			}
			info := keys.DescribePubKey(key.Public().(ed25519.PublicKey), ch.Prefix())
			fmt.Fprintf(cmd.OutOrStdout(), "imported key for chain %s into %s\npubkey: %s\naddress: %s\n", ch.ID, dst, info.Bech32, info.Address)
			return nil
		},
	}
	cmd.Flags().StringVar(&chainID, "chain-id", "", "chain the key signs for (default: the only configured chain)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing key file")
	return cmd
}

func newKeysShowCmd() *cobra.Command {
	var chainID, prefix string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a chain's consensus public key and validator address",
		Long: `show prints the consensus public key as hex, base64, Cosmos JSON and bech32
(<prefix>valconspub), and the validator address. On a threshold cosigner's home
(a 'cosigner shard' output directory) it shows the group public key, after
checking this cosigner's share against the group's commitments: compare it with
the key the chain knows to confirm that sharding kept the validator key. A
threshold home signing several chains with different keys ('cosigner shard
--add-to') shows, without --chain-id, each chain with the key that signs it.`,
		Example: `  cosigner keys show --home ~/.cosigner
  cosigner keys show --home shards/cosigner-1 --bech32-prefix kira
  cosigner keys show --home ~/.cosigner --chain-id kira-1 --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfigForKeys(homeFlag(cmd))
			if err != nil {
				return err
			}
			if cfg.Mode == config.ModeThreshold && chainID == "" && len(cfg.Chains) > 1 {
				return showChainKeys(cmd, cfg, prefix, asJSON)
			}
			var pub ed25519.PublicKey
			var label string
			var ch *config.ChainConfig
			if chainID != "" || len(cfg.Chains) > 0 {
				if ch, err = pickChain(cfg, chainID); err != nil {
					return err
				}
				label = ch.ID
				if prefix == "" {
					prefix = ch.Prefix()
				}
				if cfg.Mode == config.ModeSoftsign {
					key, err := keys.LoadChainKey(cfg.Path(ch.Key))
					if err := secretModeHint(err); err != nil {
						return err
					}
					if err != nil {
						return withHint(err, "import the chain's key with 'cosigner keys import --home %s <file>'", cfg.Home())
					}
					pub = key.Public
				}
			}
			if cfg.Mode == config.ModeThreshold {
				t := cfg.Threshold
				src := config.ShareSource{GroupFile: t.GroupFile, ShareFile: t.ShareFile, HSMObject: t.ShareHSMObject}
				if ch != nil {
					src = cfg.ChainShare(ch)
				}
				ks, err := loadShareSource(cmd, cfg, src)
				if err != nil {
					return err
				}
				pub = ks.Group().PublicKey()
				_, epoch, err := share.LoadGroupEpoch(cfg.Path(src.GroupFile))
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "share %d of a %d-of-%d key (%s) verified against the group commitments, %s\n",
					ks.ID(), ks.Group().Threshold(), ks.Group().N(), src, epoch)
			}
			if prefix == "" {
				prefix = config.DefaultBech32Prefix
			}
			info := keys.DescribePubKey(pub, prefix)
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					ChainID string `json:"chain_id,omitempty"`
					keys.PubKeyInfo
				}{label, info})
			}
			printPubKey(out, label, info)
			return nil
		},
	}
	cmd.Flags().StringVar(&chainID, "chain-id", "", "chain to show (default: the only configured chain)")
	cmd.Flags().StringVar(&prefix, "bech32-prefix", "", "bech32 account prefix (default: the chain's bech32_prefix)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printPubKey prints a consensus public key in every form an operator
// pastes somewhere (genesis, create-validator, an explorer), as 'keys show'
// does.
func printPubKey(out io.Writer, label string, info keys.PubKeyInfo) {
	if label != "" {
		fmt.Fprintf(out, "chain:       %s\n", label)
	}
	fmt.Fprintf(out, "hex:         %s\n", info.Hex)
	fmt.Fprintf(out, "base64:      %s\n", info.Base64)
	fmt.Fprintf(out, "cosmos-json: %s\n", info.CosmosJSON)
	fmt.Fprintf(out, "bech32:      %s\n", info.Bech32)
	fmt.Fprintf(out, "address:     %s\n", info.Address)
	fmt.Fprintf(out, "valcons:     %s\n", info.Bech32Addr)
}
