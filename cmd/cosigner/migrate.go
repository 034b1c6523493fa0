package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/cosigner/migrate"
	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/internal/fsutil"
	"github.com/cosigner/cosigner/threshold"
)

// migrateDoc is where the migrations are explained step by step.
const migrateDoc = "docs/operations.md, \"Migrate a running validator\""

func newMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Move a validator from another signer, keeping its keys, shares and sign state",
		Long: `migrate turns the files of the signer you run today into a cosigner home that
starts where that signer stopped. See ` + migrateDoc + `.`,
		Example: `  cosigner migrate tmkms --config /etc/tmkms/tmkms.toml --home ~/.cosigner
  cosigner migrate horcrux export --horcrux-home ~/.horcrux          # every Horcrux host
  cosigner migrate horcrux tls --out cluster-tls --shares 3             # one host
  cosigner migrate horcrux --home ~/.cosigner --public horcrux-1.public.json ... --tls cluster-tls/cosigner-1`,
	}
	cmd.AddCommand(newMigrateHorcruxCmd(), newMigrateTMKMSCmd())
	return cmd
}

func defaultHorcruxHome() string {
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".horcrux")
	}
	return ".horcrux"
}

func newMigrateHorcruxCmd() *cobra.Command {
	var horcruxHome, tlsDir, prefix, metrics string
	var public, chainIDs, nodeFlags, peerFlags, raftFlags []string
	cmd := &cobra.Command{
		Use:   "horcrux",
		Short: "Turn a Horcrux v3 cluster into a cosigner cluster with the shards it has",
		Long: `horcrux creates a threshold cosigner home (--home, which must not exist) from this
host's Horcrux v3 home (--horcrux-home, only read): the same shard, so the key is
never reassembled and nothing is re-dealt; the threshold, cosigner ids and
addresses of config.yaml; its chainNodes as each chain's nodes; and for each
chain a sign state at the higher of Horcrux's two state files
(state/{chain}_priv_validator_state.json and {chain}_share_sign_state.json), so
nothing below what the cluster or this cosigner signed is signed again.

Horcrux keeps no Feldman commitments, which cosigner checks every share against,
and a host holds only its own shard. So, with Horcrux stopped on every host:

  1. on every host:  cosigner migrate horcrux export   (a public file: id, s_i·G)
  2. on one host:    cosigner migrate horcrux tls --out DIR --shares N
                     (the cluster's TLS certificates; the CA key is discarded)
  3. copy every public file to every host, and DIR/cosigner-<id> to host <id> only
  4. on every host:  cosigner migrate horcrux --public ... --tls DIR/cosigner-<id>

Step 4 rebuilds the group key from the public shares and refuses a set in which
any M of them do not interpolate to the validator key (naming the odd share),
a public file whose id is this host's but whose share is not, duplicate ids and
missing ones. Every host prints the same group fingerprint: compare them.

Each cosigner's gRPC service takes the port of Horcrux's p2pAddr and its Raft
transport the next port (Horcrux runs both on one); --peer and --raft-peer
change them. Several chains become one [[chain]] each (give each chain's nodes
with --node CHAIN=ADDR); chains with different keys become one cluster signing
with several keys: the first key (by chain id) in [threshold]'s share.json, each
other one in share-<chain>.json and group-<chain>.json named by its chains,
each printed with its own fingerprint. --chain-id migrates only some chains.
See ` + migrateDoc + `.`,
		Example: `  # on every host, Horcrux stopped (systemctl stop horcrux):
  cosigner migrate horcrux export --horcrux-home ~/.horcrux --out horcrux-2.public.json
  # on one host:
  cosigner migrate horcrux tls --out cluster-tls --shares 3
  # on host 2, with the three public files and cluster-tls/cosigner-2:
  cosigner migrate horcrux --horcrux-home ~/.horcrux --home ~/.cosigner \
    --public horcrux-1.public.json --public horcrux-2.public.json --public horcrux-3.public.json \
    --tls cluster-tls/cosigner-2 --bech32-prefix kira
  cosigner start --home ~/.cosigner`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "public", "tls"); err != nil {
				return err
			}
			opts := migrate.HorcruxOptions{
				HorcruxHome: horcruxHome, Home: homeFlag(cmd), ChainIDs: chainIDs, Public: public, TLSDir: tlsDir,
				Bech32Prefix: prefix,
			}
			var err error
			if opts.Nodes, err = parseChainNodes(nodeFlags); err != nil {
				return err
			}
			if opts.Peers, err = parseIDAddrs("--peer", peerFlags); err != nil {
				return err
			}
			if opts.RaftPeers, err = parseIDAddrs("--raft-peer", raftFlags); err != nil {
				return err
			}
			if cmd.Flags().Changed("metrics-listen") {
				opts.MetricsListen = &metrics
			}
			rep, err := migrate.MigrateHorcrux(opts)
			if err != nil {
				return horcruxHint(err, opts)
			}
			printHorcruxReport(cmd.OutOrStdout(), opts, rep)
			warnNoCompromise(cmd.ErrOrStderr(), rep.M, rep.N)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&horcruxHome, "horcrux-home", defaultHorcruxHome(), "this host's Horcrux home (config.yaml, shards, state/); only read")
	f.StringArrayVar(&public, "public", nil, "public share file of a cosigner, from 'migrate horcrux export' (one per cosigner, repeatable; required)")
	f.StringVar(&tlsDir, "tls", "", "this cosigner's directory from 'migrate horcrux tls' (required)")
	f.StringArrayVar(&chainIDs, "chain-id", nil, "chain to migrate (repeatable; default: every chain with a shard)")
	f.StringArrayVar(&nodeFlags, "node", nil, "[CHAIN=]tcp://host:port or unix:///path: nodes instead of config.yaml's chainNodes (repeatable)")
	f.StringArrayVar(&peerFlags, "peer", nil, "ID=host:port: gRPC address of cosigner ID instead of its p2pAddr (repeatable)")
	f.StringArrayVar(&raftFlags, "raft-peer", nil, "ID=host:port: Raft address of cosigner ID instead of its gRPC port + 1 (repeatable)")
	f.StringVar(&prefix, "bech32-prefix", "", "bech32 account prefix of the chains, for display and config")
	f.StringVar(&metrics, "metrics-listen", "", "host:port for /metrics (default: config.yaml's debugAddr, or 127.0.0.1 on the gRPC port + 2)")
	cmd.AddCommand(newMigrateHorcruxExportCmd(), newMigrateHorcruxTLSCmd())
	return cmd
}

// parseChainNodes parses --node [CHAIN=]ADDR flags into the map
// HorcruxOptions.Nodes takes.
func parseChainNodes(flags []string) (map[string][]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	out := map[string][]string{}
	for _, f := range flags {
		chain, addr := "", f
		if c, a, ok := strings.Cut(f, "="); ok && !strings.Contains(c, "://") {
			chain, addr = c, a
			if err := config.ValidateChainID(chain); err != nil {
				return nil, usagef("--node %s: %v", f, err)
			}
		}
		if err := config.ValidateNodeAddress(addr); err != nil {
			return nil, usageError{fmt.Errorf("--node %s: %w", f, err)}
		}
		out[chain] = append(out[chain], addr)
	}
	return out, nil
}

// parseIDAddrs parses ID=host:port flags.
func parseIDAddrs(name string, flags []string) (map[int]string, error) {
	out := map[int]string{}
	for _, f := range flags {
		idStr, addr, ok := strings.Cut(f, "=")
		id, err := strconv.Atoi(idStr)
		if !ok || err != nil || id < 1 || addr == "" {
			return nil, usagef("%s %q: want ID=host:port, like 2=10.8.0.12:7100", name, f)
		}
		out[id] = addr
	}
	return out, nil
}

// horcruxHint adds what to do to a refused migration.
func horcruxHint(err error, opts migrate.HorcruxOptions) error {
	switch {
	case errors.Is(err, migrate.ErrHomeExists):
		return withHint(err, "migrate never overwrites: choose a new --home (the Horcrux home is only read)")
	case errors.Is(err, migrate.ErrNotHorcruxHome):
		return withHint(err, "give --horcrux-home the directory 'horcrux start --home' uses (default ~/.horcrux)")
	case errors.Is(err, migrate.ErrHorcruxRunning):
		return withHint(err, "stop horcrux on every host first ('systemctl stop horcrux' or kill -TERM): two signers on one key double sign")
	case errors.Is(err, migrate.ErrHorcruxStateMissing):
		return withHint(err, "restore it from a backup; if this host never signed that chain, create both files at the chain's current height with "+
			"'horcrux --home %s state set CHAIN HEIGHT', or leave the chain out with --chain-id", opts.HorcruxHome)
	}
	return err
}

func printHorcruxReport(w io.Writer, opts migrate.HorcruxOptions, rep *migrate.HorcruxReport) {
	prefix := opts.Bech32Prefix
	if prefix == "" {
		prefix = config.DefaultBech32Prefix
	}
	fmt.Fprintf(w, "migrated Horcrux home %s to %s: cosigner %d of a %d-of-%d cluster\n", opts.HorcruxHome, opts.Home, rep.ID, rep.M, rep.N)
	for i, k := range rep.Keys {
		info := keys.DescribePubKey(k.PubKey, prefix)
		if len(rep.Keys) > 1 {
			fmt.Fprintf(w, "key %d of %d, signs %s (%s):\n  ", i+1, len(rep.Keys), strings.Join(k.Chains, ", "), k.Source)
		}
		fmt.Fprintf(w, "validator %s (%s), the same shard as in Horcrux (%s%s)\n", info.Address, info.Bech32, k.KeyChain, "_shard.json")
		if len(rep.Keys) > 1 {
			fmt.Fprintf(w, "  ")
		}
		fmt.Fprintf(w, "group fingerprint %s: every host must print the same\n", k.Fingerprint)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "cosigners:\n")
	for _, p := range rep.Config.Threshold.Peers {
		self := ""
		if p.ID == rep.ID {
			self = "  (this host)"
		}
		fmt.Fprintf(w, "  %d  gRPC %s  Raft %s%s\n", p.ID, p.Address, p.RaftAddress, self)
	}
	fmt.Fprintf(w, "\nsign state imported from Horcrux (height/round/step):\n")
	for _, c := range rep.Chains {
		ch, _ := rep.Config.Chain(c.ID)
		fmt.Fprintf(w, "  %s: cluster %s, this cosigner's share %s -> signs only above %s\n",
			c.ID, markString(c.Cluster), markString(c.Share), markString(c.Start))
		fmt.Fprintf(w, "    nodes %s\n", strings.Join(ch.Nodes, ", "))
		if c.OtherDealing {
			fmt.Fprintf(w, "    its Horcrux shard is another dealing of the same key: it signs with %s's share\n", c.KeyChain)
		}
	}
	if len(rep.NotCarried) > 0 {
		fmt.Fprintf(w, "\nnot carried over:\n")
		for _, n := range rep.NotCarried {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
	fmt.Fprintf(w, "\na %d-of-%d cluster:\n", rep.M, rep.N)
	down, compromised, toSign := threshold.Tolerance(rep.M, rep.N)
	printTolerance(w, "  ", down, compromised, toSign)
	fmt.Fprintf(w, `
next:
  1. migrate every host the same way, and check that each prints the same fingerprint(s)
  2. on every host: cosigner start --home %s   (Horcrux stays stopped; keep its home unchanged)
  3. cosigner status --home %s shows the leader and the chains it signs, each with its key
`, opts.Home, opts.Home)
	fmt.Fprint(w, doppelgangerAdvice)
}

// doppelgangerAdvice is what a migration says about the first start: the
// moment two signers for one key are most likely.
const doppelgangerAdvice = `for the first start, turn the doppelganger watch on: list a node's CometBFT RPC in each
[[chain]] of cosigner.toml (rpc = ["http://host:26657"]); start then watches 3 heights and
refuses to sign while the old signer still signs (docs/operations.md, "Doppelganger watch")
`

// markString renders a mark as height/round/step (step name).
func markString(m signstate.Mark) string {
	if m.Step == 0 {
		return fmt.Sprintf("%d/%d/0 (nothing signed at %d)", m.Height, m.Round, m.Height)
	}
	return fmt.Sprintf("%d/%d/%d (%s)", m.Height, m.Round, m.Step, m.Step)
}

func newMigrateHorcruxExportCmd() *cobra.Command {
	var horcruxHome, out string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write this Horcrux host's public share file (no secret in it)",
		Long: `export reads this host's Horcrux v3 home (only read) and writes a small public
file: the host's cosigner id, the cluster's M-of-N, and per chain the validator
key and this host's public share s_i·G. Copy the files of every host to every
host; 'cosigner migrate horcrux --public' checks them against each other and
against the validator key. It refuses to run while Horcrux runs.`,
		Example: `  cosigner migrate horcrux export --horcrux-home ~/.horcrux --out horcrux-2.public.json`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := migrate.ExportHorcrux(horcruxHome)
			if err != nil {
				return horcruxHint(err, migrate.HorcruxOptions{HorcruxHome: horcruxHome})
			}
			if out == "" {
				out = fmt.Sprintf("horcrux-%d.public.json", e.ID)
			}
			if err := fsutil.WriteNew(out, e.JSON); err != nil {
				if errors.Is(err, os.ErrExist) {
					return withHint(fmt.Errorf("%s already exists", out), "choose another --out")
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: cosigner %d of a %d-of-%d cluster, chains %s\n", out, e.ID, e.M, e.N, strings.Join(e.Chains, ", "))
			fmt.Fprintf(cmd.OutOrStdout(), "next: copy it to every host, with the files of the other %d hosts\n", e.N-1)
			return nil
		},
	}
	cmd.Flags().StringVar(&horcruxHome, "horcrux-home", defaultHorcruxHome(), "this host's Horcrux home; only read")
	cmd.Flags().StringVar(&out, "out", "", "file to write (default horcrux-<id>.public.json); never overwritten")
	return cmd
}

func newMigrateHorcruxTLSCmd() *cobra.Command {
	var out string
	var n int
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "Issue the migrated cluster's mutual-TLS certificates from a one-off CA",
		Long: `tls issues the cluster certificates a cosigner cluster's gRPC and Raft links need
(Horcrux's ECIES or RSA keys do not carry over): a one-off CA signs one
certificate per cosigner into DIR/cosigner-1 ... DIR/cosigner-N, and its key is
discarded before tls returns, as 'cosigner shard' does, so no certificate can be
added to the cluster later. Run it once, on one host; copy DIR/cosigner-<id> to
host <id> only (cluster.key is that cosigner's secret) and delete DIR.`,
		Example: `  cosigner migrate horcrux tls --out cluster-tls --shares 3
  scp -r cluster-tls/cosigner-2 host-2:   # and so on, one directory per host`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "out", "shares"); err != nil {
				return err
			}
			dirs, err := migrate.IssueHorcruxTLS(out, n)
			if errors.Is(err, share.ErrOutExists) {
				return withHint(err, "tls never overwrites; choose a new --out")
			}
			if err != nil {
				return usageError{err}
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "issued %d cluster certificates from a one-off CA (its key is discarded):\n", n)
			for i, d := range dirs {
				fmt.Fprintf(w, "  %s  ->  host of cosigner %d only\n", d, i+1)
			}
			fmt.Fprintf(w, "next: on each host, 'cosigner migrate horcrux --tls <its directory> ...'; then delete %s\n", out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "output directory; must not exist (required)")
	cmd.Flags().IntVar(&n, "shares", 0, "N: number of cosigners, thresholdMode.cosigners in config.yaml (required)")
	return cmd
}
