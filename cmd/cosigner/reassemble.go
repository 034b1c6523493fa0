package main

import (
	"fmt"

	"filippo.io/edwards25519"
	"github.com/spf13/cobra"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/threshold"
)

// reassembleWarning is printed on stderr by keys reassemble, before and
// after the key is written.
const reassembleWarning = `cosigner: WARNING: keys reassemble puts the whole validator key on THIS machine.
cosigner: WARNING: Whoever reads the file, or this machine's disk, memory or backups, can sign
cosigner: WARNING: as the validator and get it slashed or tombstoned, bypassing every cosigner.
cosigner: WARNING: Use it only in an emergency, off-line; never run it alongside the cluster
cosigner: WARNING: (two signers with one key double-sign). As soon as you can, re-shard the key
cosigner: WARNING: ('cosigner shard') and securely destroy the file and every copy of it.
`

func newKeysReassembleCmd() *cobra.Command {
	var out, chainID string
	cmd := &cobra.Command{
		Use:   "reassemble --out FILE SHARE-DIR...",
		Short: "Emergency: rebuild the whole validator key from M cosigners' shares",
		Long: `reassemble reads the key share and group file of each SHARE-DIR (a cosigner
home written by 'cosigner shard': share.json and group.json, as its config
names them), checks every share against the group's Feldman commitments,
interpolates the validator's secret scalar and writes it to FILE (a new file,
0600, type "cosigner/ed25519-scalar-key"; an existing FILE is refused). It
refuses fewer than M shares, shares of different groups, the same share twice
and a share that does not match the commitments (named). The secret is never
printed.

With --chain-id it reassembles the key that signs that chain (a cluster
signing several keys: a chain's own group_file and share_file); without, the
key of [threshold]'s share_file.

A softsign cosigner signs with FILE: set a chain's key = FILE in a softsign
config ('cosigner init'), then 'cosigner start'. 'keys show' shows its key.

This is for emergencies only (too few hosts left to sign, and none can be
replaced in time): the key then exists whole on this machine, which the
threshold setup exists to prevent. Run it off-line, stop every cosigner of
the cluster first (the same key in two signers double-signs), carry over the
sign state, and re-shard the key and destroy FILE as soon as you can. See
docs/threshold.md, "Emergency reassembly".`,
		Example: `  cosigner keys reassemble --out /secure/validator-key.json shards/cosigner-1 shards/cosigner-3
  cosigner keys reassemble --chain-id osmosis-1 --out /secure/osmosis-key.json shards/cosigner-1 shards/cosigner-2`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{withHint(fmt.Errorf("--out is required"), "name the new key file, e.g. --out validator-key.json")}
			}
			var shares []*threshold.KeyShare
			for _, dir := range args {
				cfg, err := loadConfigForKeys(dir)
				if err != nil {
					return fmt.Errorf("share dir %s: %w", dir, err)
				}
				if cfg.Mode != config.ModeThreshold {
					return usageError{fmt.Errorf("share dir %s: mode is %q, not a threshold cosigner's home", dir, cfg.Mode)}
				}
				t := cfg.Threshold
				src := config.ShareSource{GroupFile: t.GroupFile, ShareFile: t.ShareFile, HSMObject: t.ShareHSMObject}
				if chainID != "" {
					ch, ok := cfg.Chain(chainID)
					if !ok {
						return usageError{fmt.Errorf("share dir %s: chain %q is not in its %s", dir, chainID, config.FileName)}
					}
					src = cfg.ChainShare(ch)
				}
				if src.HSMObject != 0 {
					return usageError{fmt.Errorf("share dir %s: its share is sealed in a YubiHSM2 (share_hsm_object = %d) and cannot be read out", dir, src.HSMObject)}
				}
				ks, err := share.Load(cfg.Path(src.ShareFile), cfg.Path(src.GroupFile))
				if err := secretModeHint(err); err != nil {
					return err
				}
				if err != nil {
					return fmt.Errorf("share dir %s: %w", dir, err)
				}
				shares = append(shares, ks)
			}
			fmt.Fprint(cmd.ErrOrStderr(), reassembleWarning)
			secret, err := threshold.Reassemble(shares)
			if err != nil {
				return withHint(err, "give the homes of at least M cosigners of one sharding, each once")
			}
			defer secret.Set(edwards25519.NewScalar())
			data := keys.MarshalScalarKey(secret)
			defer clear(data)
			if err := writeNewFile(out, data); err != nil {
				return err
			}
			info := keys.DescribePubKey(shares[0].Group().PublicKey(), "")
			fmt.Fprintf(cmd.OutOrStdout(), "wrote the whole validator key to %s (0600)\npubkey: %s\naddress: %s\n", out, info.Hex, info.Address)
			fmt.Fprintf(cmd.ErrOrStderr(), "cosigner: WARNING: %s now holds the whole validator key. Re-shard it and destroy the file.\n", out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the key file to write (must not exist)")
	cmd.Flags().StringVar(&chainID, "chain-id", "", "reassemble the key that signs this chain (default: [threshold]'s)")
	return cmd
}
