package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/threshold"
)

func newShardCmd() *cobra.Command {
	var keyFile, out, addTo, chainID, prefix string
	var m, n int
	var noKey bool
	var peers, nodes, rpc []string
	cmd := &cobra.Command{
		Use:   "shard",
		Short: "Split a validator key into threshold shares, one home per cosigner (--no-key: the homes for dkg)",
		Long: `shard splits a CometBFT priv_validator_key.json (or a TMKMS base64 key, or a
cosigner/ed25519-scalar-key file from 'keys reassemble', to re-shard after an emergency) into N
FROST shares, any M of which sign (M must be more than N/2, so two quorums always
share a cosigner). It writes DIR/cosigner-1 ... DIR/cosigner-N, each a complete
cosigner home: cosigner.toml, the key share (0600), the group key with its
Feldman commitments, a cluster TLS certificate from a one-off CA whose key is
discarded, and a SecretConnection identity. It warns when the key file is open
to group or others (the key may have been copied); the files it writes are 0600
and start refuses them otherwise.

--peer host:port (once per cosigner, in id order) sets each cosigner's gRPC
address; its Raft transport uses the next port. Without --peer the cluster runs
on loopback (cosigner i on 127.0.0.1:27100+10i). --chain-id and --node fill the
chain section; otherwise fill it in before 'cosigner state init'. --rpc (the
chain's CometBFT RPC, http://host:26657) turns the doppelganger watch on: each
new leader without a recent signature of the cluster's watches a few heights
before signing (docs/operations.md).

shard prints what the shape withstands: N-M cosigners may be down and signing
goes on; 2M-N-1 may be compromised (or run twice, as a cloned VM) without a
double sign, since two quorums share 2M-N cosigners and only an honest one
refuses the second of two conflicting votes; M shares sign on their own. It
warns when that second figure is 0: 2-of-3 and 3-of-5 tolerate no compromised
cosigner; 3-of-4 tolerates one, 4-of-5 and 5-of-7 two.
See ` + threatModelDoc + `.

--add-to DIR adds the key, for one more chain, to an existing cluster's homes
DIR/cosigner-1 ... DIR/cosigner-N (what an earlier 'shard --out DIR' wrote), so
one cluster signs several chains with different keys, as Horcrux does. The homes
keep their TLS identities, peers, Raft data, ids and M-of-N; each gets
share-<chain>.json, group-<chain>.json and a [[chain]] table naming them,
appended to its cosigner.toml. --chain-id and --node are required; --threshold
and --shares, if given, must be the homes'. It refuses, before writing anything,
a chain a home already signs, a key the homes already hold, a missing home, homes
of different clusters or shapes, and any file it would overwrite.

--no-key writes the same homes without a share or group file and without any
key: the cluster's TLS identities, configuration, peers and SecretConnection
identities. Copy each to its host and run 'cosigner dkg' there: the hosts
generate the validator key among themselves and no machine ever holds it
(` + thresholdDoc + `).`,
		Example: `  cosigner shard --no-key --threshold 2 --shares 3 --out homes --chain-id kira-1 --node tcp://10.8.0.1:26659 \
    --peer 10.8.0.11:7100 --peer 10.8.0.12:7100 --peer 10.8.0.13:7100
  cosigner shard --key priv_validator_key.json --threshold 2 --shares 3 --out shards \
    --peer 10.8.0.11:7100 --peer 10.8.0.12:7100 --peer 10.8.0.13:7100 \
    --chain-id kira-1 --node tcp://10.8.0.1:26659 --bech32-prefix kira
  cosigner shard --key osmosis_priv_validator_key.json --add-to shards \
    --chain-id osmosis-1 --node tcp://10.8.0.2:26659 --bech32-prefix osmo`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if noKey && (cmd.Flags().Changed("key") || addTo != "") {
				return usagef("--no-key prepares the homes of a new cluster for 'cosigner dkg' and takes no --key or --add-to")
			}
			if addTo != "" {
				if out != "" || len(peers) > 0 {
					return usagef("--add-to adds to existing homes: --out and --peer belong to a new cluster")
				}
				if err := requireFlags(cmd, "key", "chain-id", "node"); err != nil {
					return err
				}
				return runShardAdd(cmd, keyFile, addTo, share.AddOptions{Threshold: m, Shares: n, ChainID: chainID, Nodes: nodes, Bech32Prefix: prefix, RPC: rpc})
			}
			required := []string{"key", "threshold", "shares", "out"}
			if noKey {
				required = required[1:]
			}
			if err := requireFlags(cmd, required...); err != nil {
				return err
			}
			if 2*m <= n {
				return usagef("--threshold %d of --shares %d: the threshold must be more than half the shares (at least %d), or two quorums could sign different blocks", m, n, n/2+1)
			}
			if err := validateChainFlags(chainID, nodes, rpc); err != nil {
				return err
			}
			so := share.Options{
				Threshold: m, Shares: n, Peers: peers, ChainID: chainID, Nodes: nodes, Bech32Prefix: prefix, RPC: rpc,
			}
			if noKey {
				return prepareNoKey(cmd, out, so)
			}
			key, err := loadShardKey(cmd, keyFile)
			if err != nil {
				return err
			}
			var group *threshold.GroupKey
			if key.Scalar != nil {
				group, err = share.ShardScalar(key.Scalar, out, so)
			} else {
				group, err = share.Shard(key.Seed, out, so)
			}
			if errors.Is(err, share.ErrOutExists) {
				return withHint(err, "shard never overwrites; choose a new --out")
			}
			if err != nil {
				return usageError{err}
			}
			if prefix == "" {
				prefix = config.DefaultBech32Prefix
			}
			info := keys.DescribePubKey(group.PublicKey(), prefix)
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "split validator %s (%s) into %d shares, any %d of which sign\n\n", info.Address, info.Bech32, n, m)
			down, compromised, toSign := threshold.Tolerance(m, n)
			fmt.Fprintf(w, "a %d-of-%d cluster:\n", m, n)
			printTolerance(w, "  ", down, compromised, toSign)
			fmt.Fprintln(w)
			printHomes(w, out, so)
			fmt.Fprintf(w, `
next:
  1. copy each directory to its host (scp -r, keep the modes; share.json and tls/cluster.key are secret)
  2. on each host: cosigner state init --home <dir> --chain-id <chain> --height <current height>
  3. on each host: cosigner start --home <dir>
  4. confirm with 'cosigner keys show --home <dir>' that the key above is the validator's
  5. move %s off-line: with the shares in place, no machine should hold the whole key
`, keyFile)
			warnNoCompromise(cmd.ErrOrStderr(), m, n)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "priv_validator_key.json or TMKMS key to split (required unless --no-key)")
	cmd.Flags().BoolVar(&noKey, "no-key", false, "write the homes without any key, for 'cosigner dkg' to generate it on the hosts")
	cmd.Flags().IntVar(&m, "threshold", 0, "M: cosigners needed to sign (required, more than half of --shares)")
	cmd.Flags().IntVar(&n, "shares", 0, "N: number of cosigners, 2 to 255 (required)")
	cmd.Flags().StringVar(&out, "out", "", "output directory; must not exist (required, unless --add-to)")
	cmd.Flags().StringVar(&addTo, "add-to", "", "add the key for --chain-id to the cluster homes in this directory (an earlier --out)")
	cmd.Flags().StringArrayVar(&peers, "peer", nil, "gRPC host:port of each cosigner, in id order (repeatable)")
	cmd.Flags().StringVar(&chainID, "chain-id", "", "chain to sign for")
	cmd.Flags().StringArrayVar(&nodes, "node", nil, "node priv_validator_laddr: tcp://host:port (no ID@) or unix:///path (repeatable)")
	cmd.Flags().StringVar(&prefix, "bech32-prefix", "", "bech32 account prefix for display and config")
	cmd.Flags().StringArrayVar(&rpc, "rpc", nil, "CometBFT RPC of a node of the chain, http://host:26657: turns the doppelganger watch on (repeatable)")
	return cmd
}

// printHomes lists which home goes to which host.
func printHomes(w io.Writer, out string, so share.Options) {
	for i := 1; i <= so.Shares; i++ {
		host := "127.0.0.1 (loopback cluster)"
		if len(so.Peers) > 0 {
			host = strings.Split(so.Peers[i-1], ":")[0]
		}
		fmt.Fprintf(w, "  %s  ->  cosigner %d on %s\n", share.Dir(out, i), i, host)
	}
}

// prepareNoKey is 'shard --no-key': the homes of a cluster whose key
// 'cosigner dkg' generates on the hosts.
func prepareNoKey(cmd *cobra.Command, out string, so share.Options) error {
	err := share.Prepare(out, so)
	if errors.Is(err, share.ErrOutExists) {
		return withHint(err, "shard never overwrites; choose a new --out")
	}
	if err != nil {
		return usageError{err}
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "prepared the homes of a %d-of-%d cluster, without any key\n\n", so.Threshold, so.Shares)
	down, compromised, toSign := threshold.Tolerance(so.Threshold, so.Shares)
	fmt.Fprintf(w, "a %d-of-%d cluster:\n", so.Threshold, so.Shares)
	printTolerance(w, "  ", down, compromised, toSign)
	fmt.Fprintln(w)
	printHomes(w, out, so)
	fmt.Fprintf(w, `
next:
  1. copy each directory to its host (scp -r, keep the modes; tls/cluster.key is secret)
  2. on every host, within a few minutes of each other: cosigner dkg --home <dir>
  3. check that every host printed the same validator key, and put it in the genesis or a create-validator transaction
  4. on each host: cosigner state init --home <dir> --chain-id <chain> --height <height>, then cosigner start --home <dir>
`)
	warnNoCompromise(cmd.ErrOrStderr(), so.Threshold, so.Shares)
	return nil
}

// runShardAdd is 'shard --add-to': the key for one more chain, split for
// an existing cluster's homes.
func runShardAdd(cmd *cobra.Command, keyFile, dir string, opts share.AddOptions) error {
	if 2*opts.Threshold <= opts.Shares && opts.Threshold != 0 {
		return usagef("--threshold %d of --shares %d: the threshold must be more than half the shares", opts.Threshold, opts.Shares)
	}
	if err := config.ValidateChainID(opts.ChainID); err != nil {
		return usageError{err}
	}
	if err := validateChainFlags(opts.ChainID, opts.Nodes, opts.RPC); err != nil {
		return err
	}
	key, err := loadShardKey(cmd, keyFile)
	if err != nil {
		return err
	}
	var group *threshold.GroupKey
	if key.Scalar != nil {
		group, err = share.AddScalar(key.Scalar, dir, opts)
	} else {
		group, err = share.Add(key.Seed, dir, opts)
	}
	switch {
	case errors.Is(err, share.ErrChainExists):
		return withHint(err, "each chain has one key; give a new --chain-id, or check 'cosigner keys show --home %s' for the key it has", share.Dir(dir, 1))
	case errors.Is(err, share.ErrKeyExists):
		return withHint(err, "the same key for two chains needs no second share")
	case errors.Is(err, share.ErrNotCluster):
		return withHint(err, "--add-to names one cluster's 'cosigner shard --out' directory, every home in it, unchanged in shape")
	case err != nil:
		return err
	}
	prefix := opts.Bech32Prefix
	if prefix == "" {
		prefix = config.DefaultBech32Prefix
	}
	info := keys.DescribePubKey(group.PublicKey(), prefix)
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "added validator %s (%s) for chain %s to the %d-of-%d cluster in %s\n\n", info.Address, info.Bech32, opts.ChainID, group.Threshold(), group.N(), dir)
	for i := 1; i <= group.N(); i++ {
		fmt.Fprintf(w, "  %s: %s, %s, [[chain]] %s in %s\n", share.Dir(dir, i), share.AddedShareFile(opts.ChainID), share.AddedGroupFile(opts.ChainID), opts.ChainID, config.FileName)
	}
	fmt.Fprintf(w, `
next:
  1. copy the two new files and cosigner.toml of each directory to its host (share-%[1]s.json is secret, keep 0600)
  2. on each host: cosigner state init --home <dir> --chain-id %[1]s --height <current height>
  3. restart the cosigners one at a time; %[1]s signs once %[2]d of them run with it
  4. confirm with 'cosigner keys show --home <dir>' which key signs which chain
  5. move %[3]s off-line
`, opts.ChainID, group.Threshold(), keyFile)
	return nil
}

// validateChainFlags checks the flags that fill a new home's [[chain]]
// table (shard, shard --add-to, reshare prepare): a valid chain id, which
// needs at least one --node; valid node addresses; --rpc only with a chain,
// each a valid address.
func validateChainFlags(chainID string, nodes, rpc []string) error {
	if chainID != "" {
		if err := config.ValidateChainID(chainID); err != nil {
			return usageError{err}
		}
		if len(nodes) == 0 {
			return usagef("--chain-id %s needs at least one --node (the node's priv_validator_laddr)", chainID)
		}
	}
	for _, a := range nodes {
		if err := config.ValidateNodeAddress(a); err != nil {
			return usageError{err}
		}
	}
	if len(rpc) > 0 && chainID == "" {
		return usagef("--rpc needs --chain-id: the rpc addresses belong to the chain's [[chain]] table")
	}
	for _, a := range rpc {
		if err := config.ValidateRPCAddress(a); err != nil {
			return usageError{err}
		}
	}
	return nil
}

// loadShardKey reads the key shard splits (any form LoadImportChainKey
// reads), warning when the file is open to group or others.
func loadShardKey(cmd *cobra.Command, keyFile string) (*keys.ChainKey, error) {
	key, warning, err := keys.LoadImportChainKey(keyFile)
	if err != nil {
		return nil, withHint(err, "give a CometBFT priv_validator_key.json, a TMKMS base64 ed25519 key or a key file 'keys reassemble' wrote")
	}
	warnOpenKey(cmd, warning)
	return key, nil
}
