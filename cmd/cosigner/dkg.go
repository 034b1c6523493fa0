package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cosigner/cosigner/cosigner/ceremony"
	"github.com/cosigner/cosigner/cosigner/clustertls"
	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/cosigner/share"
)

// defaultDKGTimeout is how long 'cosigner dkg' waits for every host by
// default: long enough to start the command on a few hosts by hand.
const defaultDKGTimeout = 5 * time.Minute

func newDKGCmd() *cobra.Command {
	var timeout time.Duration
	var force bool
	var listen, prefix string
	cmd := &cobra.Command{
		Use:   "dkg",
		Short: "Generate the validator key among the cosigners, so that no machine ever holds it",
		Long: `dkg runs a distributed key generation among the N cosigners of a cluster whose
homes 'cosigner shard --no-key' prepared: run it on every host within --timeout
of each other. The hosts talk over the cluster's mutual-TLS links, on each
cosigner's [threshold.peer] address (the cosigner must not be running), and run
a verifiable DKG (Pedersen, with Feldman commitments, over edwards25519): each
deals shares of a random secret to all, checks the deals it gets against their
commitments, and the validator key is the sum of everyone's secret. No machine
ever holds it.

M, N, this cosigner's id and the peers come from cosigner.toml; every host must
have the same ones (checked before anything is dealt: a host with another M, N
or peer list aborts the ceremony, quoting the difference). When every host has
confirmed the same result, dkg writes this cosigner's share (share.json, 0600)
and the group file with the Feldman commitments (group.json): exactly the files
'cosigner shard' writes and 'cosigner start' loads. It prints the validator
public key in every form 'keys show' prints, for the chain's genesis or a
create-validator transaction.

Any failure aborts the ceremony on every host, with an error naming the host
it came from: a host that deals a share inconsistent with its commitments is
named; a host that stops or is killed aborts the others at once; a host not
started within --timeout is named at the timeout. Nothing is written on
failure, so rerunning on every host is safe. dkg refuses to run where a share
or group file is already in place; --force replaces them (only for the
shares of a ceremony that did not complete on every host). If any host
reports an abort, discard the shares of every host of that ceremony
(--force on the rerun): a host that completed holds a share of a key the
others do not have.`,
		Example: `  # on each of the three hosts, within five minutes:
  cosigner dkg --home ~/.cosigner
  cosigner dkg --home ~/.cosigner --timeout 10m --bech32-prefix kira`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfigForKeys(homeFlag(cmd))
			if err != nil {
				return err
			}
			if cfg.Mode != config.ModeThreshold {
				return usagef("%s is a %s home: dkg runs among the cosigners of a threshold cluster", cfg.Home(), cfg.Mode)
			}
			t := cfg.Threshold
			if t.ShareHSMObject != 0 {
				return usagef("threshold.share_hsm_object = %d: dkg writes its share to threshold.share_file; remove the setting, run dkg, then 'cosigner hsm share import'", t.ShareHSMObject)
			}
			if timeout <= 0 {
				return usagef("--timeout %v must be positive", timeout)
			}
			// Held for the whole ceremony: the share must not appear under a
			// running cosigner, nor two ceremonies run on one home.
			unlock, err := lockHomeToWrite(cmd, cfg.Home())
			if err != nil {
				return err
			}
			defer unlock()
			sharePath, groupPath := cfg.Path(t.ShareFile), cfg.Path(t.GroupFile)
			if !force {
				if err := share.CheckNoKey(sharePath, groupPath); err != nil {
					return withHint(err, "this home has a key already: dkg never overwrites one. If it is the share of a ceremony that did not complete on every host, rerun with --force on every host")
				}
			}
			ident, err := clustertls.Load(cfg.Path(t.TLSDir))
			if err != nil {
				return withHint(err, "copy this cosigner's directory from the 'cosigner shard --no-key' output unchanged")
			}
			var parts []ceremony.Participant
			for _, p := range t.Peers {
				parts = append(parts, ceremony.Participant{ID: p.ID, Address: p.Address})
			}
			params, proto := ceremony.FreshDKG(t.Threshold, t.Shares)
			fmt.Fprintf(cmd.ErrOrStderr(), "dkg: cosigner %d of a %d-of-%d cluster: waiting up to %v for the other cosigners\n", t.ID, t.Threshold, t.Shares, timeout)
			ks, group, err := ceremony.Run(cmd.Context(), ceremony.Options{
				Self: t.ID, Participants: parts, TLS: ident, Params: params, Timeout: timeout,
				Listen: listen, Logger: newLogger(cmd.ErrOrStderr(), cfg.LogLevel),
			}, proto)
			if err != nil {
				return withHint(err, "nothing was written; fix the cause, then run 'cosigner dkg' again on every host (with --force on any host that completed)")
			}
			if err := share.WriteKey(sharePath, groupPath, ks, share.FirstEpoch, force); err != nil {
				if errors.Is(err, share.ErrShareInPlace) {
					return withHint(err, "a key appeared during the ceremony: this ceremony's share was not written; discard every host's share of it and rerun")
				}
				return err
			}
			if prefix == "" {
				prefix = config.DefaultBech32Prefix
				if len(cfg.Chains) == 1 {
					prefix = cfg.Chains[0].Prefix()
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "generated a %d-of-%d validator key; no machine ever held it. This cosigner's share %d is in %s, the group file in %s\n\n",
				t.Threshold, t.Shares, ks.ID(), sharePath, groupPath)
			printPubKey(out, "", keys.DescribePubKey(group.PublicKey(), prefix))
			fmt.Fprintf(out, `
next:
  1. check that every host printed the same key
  2. put it in the chain's genesis (cosmos-json above) or a create-validator transaction (see %s)
  3. on each host: cosigner state init --home %s --chain-id <chain> --height <height>
  4. on each host: cosigner start --home %s
`, thresholdDoc, filepath.Clean(cfg.Home()), filepath.Clean(cfg.Home()))
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", defaultDKGTimeout, "how long to wait for every cosigner, from start to end of the ceremony")
	cmd.Flags().BoolVar(&force, "force", false, "replace a share and group file already in place")
	cmd.Flags().StringVar(&listen, "listen", "", "host:port to listen on (default: this cosigner's threshold.peer address)")
	cmd.Flags().StringVar(&prefix, "bech32-prefix", "", "bech32 account prefix for display (default: the chain's bech32_prefix)")
	return cmd
}
