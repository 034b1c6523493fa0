package main

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/hsm"
	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/internal/fsutil"
	"github.com/cosigner/cosigner/threshold"
)

func newHSMCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hsm",
		Short: "Keys and sealed shares in a YubiHSM2",
		Long: `hsm manages what cosigner keeps in a YubiHSM2 reached through
yubihsm-connector: softsign consensus keys (which sign inside the device and
never leave it) and a threshold cosigner's sealed key share. The [hsm] section of
cosigner.toml names the connector, the authentication key and the file holding
its password; see docs/hsm.md.`,
	}
	keysCmd := &cobra.Command{Use: "keys", Short: "Import, generate and list ed25519 keys in the YubiHSM2"}
	keysCmd.AddCommand(newHSMKeysImportCmd(), newHSMKeysGenerateCmd(), newHSMKeysListCmd())
	shareCmd := &cobra.Command{Use: "share", Short: "Seal a threshold cosigner's key share in the YubiHSM2"}
	shareCmd.AddCommand(newHSMShareImportCmd())
	cmd.AddCommand(keysCmd, shareCmd)
	return cmd
}

// dialHSM opens a session with the device the home's [hsm] section names.
func dialHSM(ctx context.Context, cfg *config.Config, log *slog.Logger) (*hsm.Client, error) {
	if !cfg.HSM.Enabled() {
		return nil, usageError{withHint(errors.New("cosigner.toml has no [hsm] section"),
			"add [hsm] with connector = \"127.0.0.1:12345\", auth_key_id and password_file to %s (see docs/hsm.md)",
			filepath.Join(cfg.Home(), config.FileName))}
	}
	opts, err := cfg.HSMOptions()
	if err != nil {
		return nil, usageError{withHint(err, "write the authentication key's password into %s (mode 0600)", cfg.Path(cfg.HSM.PasswordFile))}
	}
	h, err := hsm.Dial(ctx, opts, log)
	if err != nil {
		return nil, hsmHint(err, cfg)
	}
	return h, nil
}

// hsmHint adds what to do to a device error.
func hsmHint(err error, cfg *config.Config) error {
	cfgPath := filepath.Join(cfg.Home(), config.FileName)
	switch {
	case errors.Is(err, hsm.ErrUnreachable):
		return withHint(err, "start yubihsm-connector with the YubiHSM2 plugged in, and check hsm.connector = %q in %s", cfg.HSM.Connector, cfgPath)
	case errors.Is(err, hsm.ErrAuth):
		return withHint(err, "check hsm.auth_key_id = %d in %s and the password in %s", cfg.HSM.AuthKeyID, cfgPath, cfg.Path(cfg.HSM.PasswordFile))
	case errors.Is(err, hsm.ErrNotFound):
		return withHint(err, "'cosigner hsm keys list --home %s' shows the keys the authentication key can see (objects in other domains are invisible)", cfg.Home())
	case errors.Is(err, hsm.ErrPermission):
		return withHint(err, "authentication key %d lacks a capability this needs (put-asymmetric, generate-asymmetric, sign-eddsa, put-opaque or get-opaque, and the delegated ones)", cfg.HSM.AuthKeyID)
	case errors.Is(err, hsm.ErrExists):
		return withHint(err, "choose a free --id ('cosigner hsm keys list' shows the keys), or delete the old object with yubihsm-shell")
	}
	return err
}

func hsmLogger(cmd *cobra.Command) *slog.Logger {
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// hsmKeyID checks --id.
func hsmKeyID(cmd *cobra.Command, id int) (uint16, error) {
	if err := requireFlags(cmd, "id"); err != nil {
		return 0, err
	}
	if id < 1 || id > 0xffff {
		return 0, usagef("--id %d: object ids are 1 to 65535", id)
	}
	return uint16(id), nil
}

// hsmPrefix picks the bech32 prefix: the flag, or the only chain's.
func hsmPrefix(cfg *config.Config, prefix string) string {
	if prefix != "" {
		return prefix
	}
	if len(cfg.Chains) == 1 {
		return cfg.Chains[0].Prefix()
	}
	return config.DefaultBech32Prefix
}

func printHSMKey(cmd *cobra.Command, verb string, id uint16, pub ed25519.PublicKey, prefix string) {
	info := keys.DescribePubKey(pub, prefix)
	fmt.Fprintf(cmd.OutOrStdout(), "%s ed25519 key %d in the yubihsm\npubkey: %s\naddress: %s\n", verb, id, info.Bech32, info.Address)
	fmt.Fprintf(cmd.OutOrStdout(), "to sign with it, set hsm_key_id = %d in the chain's [[chain]] section (and remove key)\n", id)
}

func newHSMKeysImportCmd() *cobra.Command {
	var id int
	var label, prefix string
	var exportable bool
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Import a priv_validator_key.json or TMKMS key into the YubiHSM2",
		Long: `import reads a CometBFT priv_validator_key.json or a TMKMS softsign key and
stores it in the YubiHSM2 as ed25519 key object --id, with only the sign-eddsa
capability: it can sign but never be read out. --exportable adds
exportable-under-wrap, so the key can be backed up to another YubiHSM2 under a
wrap key (yubihsm-shell); without it the device is the only copy. It warns
when FILE is open to group or others (the key may have been copied). After
importing, destroy the file (and any copy on the validator node).`,
		Example: `  cosigner hsm keys import --home ~/.cosigner --id 1 --label kira-1 ~/.sekaid/config/priv_validator_key.json
  cosigner hsm keys import --home ~/.cosigner --id 2 --exportable /etc/tmkms/secrets/kira-consensus.key`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keyID, err := hsmKeyID(cmd, id)
			if err != nil {
				return err
			}
			cfg, err := loadConfigForKeys(homeFlag(cmd))
			if err != nil {
				return err
			}
			key, warning, err := keys.LoadImportKey(args[0])
			if err != nil {
				return withHint(err, "give a CometBFT priv_validator_key.json or a TMKMS base64 ed25519 key")
			}
			warnOpenKey(cmd, warning)
			ctx := cmd.Context()
			h, err := dialHSM(ctx, cfg, hsmLogger(cmd))
			if err != nil {
				return err
			}
			defer h.Close()
			if err := h.ImportEd25519(ctx, keyID, label, key.Seed(), exportable); err != nil {
				return hsmHint(err, cfg)
			}
			pub, err := h.PublicKey(ctx, keyID)
			if err != nil {
				return hsmHint(err, cfg)
			}
			if !pub.Equal(key.Public()) {
				return fmt.Errorf("the yubihsm reports public key %X for key %d, the file's is %X", []byte(pub), keyID, []byte(key.Public().(ed25519.PublicKey)))
			}
			printHSMKey(cmd, "imported", keyID, pub, hsmPrefix(cfg, prefix))
			return nil
		},
	}
	cmd.Flags().IntVar(&id, "id", 0, "object id of the key in the yubihsm (required)")
	cmd.Flags().StringVar(&label, "label", "", "object label (up to 40 bytes)")
	cmd.Flags().BoolVar(&exportable, "exportable", false, "allow exporting the key under a wrap key (backup to another device)")
	cmd.Flags().StringVar(&prefix, "bech32-prefix", "", "bech32 account prefix (default: the chain's)")
	return cmd
}

func newHSMKeysGenerateCmd() *cobra.Command {
	var id int
	var label, prefix string
	var exportable bool
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Generate an ed25519 key inside the YubiHSM2",
		Long: `generate makes the YubiHSM2 create an ed25519 key object --id that can only
sign; its private key never exists outside the device (unless --exportable lets
it be exported under a wrap key). It prints the public key to register the
validator with.`,
		Example: `  cosigner hsm keys generate --home ~/.cosigner --id 1 --label kira-1`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			keyID, err := hsmKeyID(cmd, id)
			if err != nil {
				return err
			}
			cfg, err := loadConfigForKeys(homeFlag(cmd))
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			h, err := dialHSM(ctx, cfg, hsmLogger(cmd))
			if err != nil {
				return err
			}
			defer h.Close()
			pub, err := h.GenerateEd25519(ctx, keyID, label, exportable)
			if err != nil {
				return hsmHint(err, cfg)
			}
			printHSMKey(cmd, "generated", keyID, pub, hsmPrefix(cfg, prefix))
			return nil
		},
	}
	cmd.Flags().IntVar(&id, "id", 0, "object id of the new key (required)")
	cmd.Flags().StringVar(&label, "label", "", "object label (up to 40 bytes)")
	cmd.Flags().BoolVar(&exportable, "exportable", false, "allow exporting the key under a wrap key (backup to another device)")
	cmd.Flags().StringVar(&prefix, "bech32-prefix", "", "bech32 account prefix (default: the chain's)")
	return cmd
}

func newHSMKeysListCmd() *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the ed25519 keys in the YubiHSM2",
		Long: `list prints every asymmetric key the authentication key can see: object id,
label, and for ed25519 keys the public key as bech32 (<prefix>valconspub).`,
		Example: `  cosigner hsm keys list --home ~/.cosigner --bech32-prefix kira`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfigForKeys(homeFlag(cmd))
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			h, err := dialHSM(ctx, cfg, hsmLogger(cmd))
			if err != nil {
				return err
			}
			defer h.Close()
			objs, err := h.List(ctx, hsm.TypeAsymmetric)
			if err != nil {
				return hsmHint(err, cfg)
			}
			out := cmd.OutOrStdout()
			if len(objs) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no asymmetric keys visible to this authentication key")
				return nil
			}
			fmt.Fprintf(out, "%-6s %-40s %s\n", "ID", "LABEL", "PUBKEY")
			p := hsmPrefix(cfg, prefix)
			for _, o := range objs {
				pk := fmt.Sprintf("(not ed25519: algorithm %d)", o.Algorithm)
				if o.PublicKey != nil {
					pk = keys.DescribePubKey(o.PublicKey, p).Bech32
				}
				label := o.Label
				if label == "" {
					label = "-"
				}
				fmt.Fprintf(out, "%-6d %-40s %s\n", o.ID, label, pk)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "bech32-prefix", "", "bech32 account prefix (default: the chain's)")
	return cmd
}

func newHSMShareImportCmd() *cobra.Command {
	var id int
	var chainID string
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Move a threshold cosigner's key share into the YubiHSM2",
		Long: `import seals this threshold cosigner's key share in the YubiHSM2: it checks the
share file against the group commitments, stores it as an opaque object
labelled cosigner-share-<id>, reads it back and compares it, records
share_hsm_object in cosigner.toml, and only then removes the share file.
'cosigner start' reads the share from the device; it never touches the disk
again. Stop the cosigner first (it refuses while cosigner runs). The object is readable by any session with the
get-opaque capability in its domain: give the authentication key cosigner
uses only the capabilities it needs.

--chain-id seals the share of a chain's own key ('shard --add-to'): its
[[chain]] share_file line becomes share_hsm_object, the object is labelled
cosigner-share-<id>-<chain>.`,
		Example: `  cosigner hsm share import --home ~/.cosigner
  cosigner hsm share import --home shards/cosigner-2 --id 200
  cosigner hsm share import --home ~/.cosigner --chain-id osmosis-1 --id 201`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id < 0 || id > 0xffff {
				return usagef("--id %d: object ids are 1 to 65535 (0: the device picks one)", id)
			}
			home := homeFlag(cmd)
			cfg, err := loadConfigForKeys(home)
			if err != nil {
				return err
			}
			if cfg.Mode != config.ModeThreshold {
				return usagef("%s is a %s cosigner: only a threshold cosigner has a share to seal", home, cfg.Mode)
			}
			src := config.ShareSource{GroupFile: cfg.Threshold.GroupFile, ShareFile: cfg.Threshold.ShareFile, HSMObject: cfg.Threshold.ShareHSMObject}
			label := ""
			if chainID != "" {
				ch, ok := cfg.Chain(chainID)
				if !ok {
					return usagef("chain %q is not in %s", chainID, filepath.Join(home, config.FileName))
				}
				if ch.GroupFile == "" {
					return usagef("chain %s is signed with [threshold]'s share: run without --chain-id", chainID)
				}
				src = cfg.ChainShare(ch)
				label = share.ChainLabel(cfg.Threshold.ID, chainID)
			}
			if src.HSMObject != 0 {
				return usagef("the share is sealed already: cosigner.toml says share_hsm_object = %d", src.HSMObject)
			}
			unlock, err := lockHomeToWrite(cmd, home)
			if err != nil {
				return err
			}
			defer unlock()
			ctx := cmd.Context()
			h, err := dialHSM(ctx, cfg, hsmLogger(cmd))
			if err != nil {
				return err
			}
			defer h.Close()
			ks, objID, err := share.SealSource(ctx, h, cfg, src, label, uint16(id))
			if err := secretModeHint(err); err != nil {
				return err
			}
			if err != nil {
				return hsmHint(err, cfg)
			}
			sharePath := cfg.Path(src.ShareFile)
			if chainID != "" {
				err = config.SetChainShareHSMObject(home, chainID, int(objID))
			} else {
				err = config.SetShareHSMObject(home, int(objID))
			}
			if err != nil {
				where := "under [threshold]"
				if chainID != "" {
					where = "in chain " + chainID + "'s [[chain]], in place of its share_file"
				}
				return withHint(err, "the share is stored as yubihsm object %d and %s is untouched: add share_hsm_object = %d %s by hand, then remove the file", objID, sharePath, objID, where)
			}
			if err := fsutil.Remove(sharePath); err != nil {
				return withHint(fmt.Errorf("remove %s: %w", sharePath, err), "the share is sealed as object %d and cosigner.toml uses it: remove the file by hand", objID)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sealed share %d of %d-of-%d as yubihsm opaque object %d (label %s)\nremoved %s; cosigner.toml now has share_hsm_object = %d\n",
				ks.ID(), ks.Group().Threshold(), ks.Group().N(), objID, cmp.Or(label, share.Label(int(ks.ID()))), sharePath, objID)
			return nil
		},
	}
	cmd.Flags().IntVar(&id, "id", 0, "object id for the share (default: the device picks a free one)")
	cmd.Flags().StringVar(&chainID, "chain-id", "", "seal the share of this chain's own key (default: [threshold]'s)")
	return cmd
}

// isHSMError reports whether err is one of the device errors hsmHint
// explains.
func isHSMError(err error) bool {
	for _, e := range []error{hsm.ErrUnreachable, hsm.ErrAuth, hsm.ErrNotFound, hsm.ErrPermission} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// loadSealedShareOf reads the share sealed in YubiHSM2 object, checked
// against groupFile, for commands that show it.
func loadSealedShareOf(cmd *cobra.Command, cfg *config.Config, object int, groupFile string) (*threshold.KeyShare, error) {
	ctx := cmd.Context()
	h, err := dialHSM(ctx, cfg, hsmLogger(cmd))
	if err != nil {
		return nil, err
	}
	defer h.Close()
	ks, err := share.LoadFromHSM(ctx, h, uint16(object), cfg.Path(groupFile))
	if err != nil {
		return nil, hsmHint(err, cfg)
	}
	return ks, nil
}
