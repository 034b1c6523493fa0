package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/cosigner/reshare"
	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/threshold"
)

// reshareDoc is where operators read the procedure.
const reshareDoc = `docs/threshold.md, "Resharing"`

func newReshareCmd() *cobra.Command {
	var oldHome string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "reshare",
		Short: "Move the validator key to new shares (M'-of-N', next epoch) without ever assembling it",
		Long: `reshare takes this host's part in a resharing: at least M cosigners of the old
cluster deal fresh shares of the same validator key to a new member set
(M'-of-N'), over mutual TLS among the homes 'cosigner reshare prepare' wrote.
The validator key and address stay the same; the shares are new (epoch + 1):
an old share is of no use with them, and the new cluster refuses a cosigner
of another epoch.

Stop the old cluster first. Then run, within --timeout of each other:
  on a host that continues or retires:  cosigner reshare --old-home OLD --home NEW
  on a newcomer:                        cosigner reshare --home NEW
OLD is the host's home in the old cluster (its share, group and sign state
are read, never changed until the end); NEW is the directory prepare wrote
for the host (cosigner-<id> for a member, retiring-<old id> for a host that
deals and leaves).

Each dealer sends its sign-state marks in the ceremony; every new member
starts at the highest of them, so nothing the old cluster signed can be
signed again differently. Only once every participant has completed does a
member write its state, group and share files into NEW (new files only,
never replacing one), and then the old home is retired: it holds
retired.json and 'cosigner start' refuses it. If the ceremony fails, nothing
is written and no old home is retired: rerun on every host. If it completed
but this host could not write its files, the error says so and what to do
(do not rerun: the others hold their new shares).
See ` + reshareDoc + `.`,
		Example: `  # continuing host (old share 1, new cosigner 1)
  cosigner reshare --old-home /var/lib/cosigner --home /var/lib/cosigner-e2
  # newcomer
  cosigner reshare --home /var/lib/cosigner-e2
  # host that deals and retires
  cosigner reshare --old-home /var/lib/cosigner --home /root/retiring-3`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("home") {
				return usagef("give --home: the new home 'cosigner reshare prepare' wrote for this host")
			}
			home := homeFlag(cmd)
			if oldHome != "" {
				if a, b := absPath(oldHome), absPath(home); a == b {
					return usagef("--old-home and --home are both %s: the new shares go into the new home prepare wrote", a)
				}
			}
			unlock, err := lockHomeToWrite(cmd, home)
			if err != nil {
				return err
			}
			defer unlock()
			if oldHome != "" {
				unlockOld, err := lockHome(oldHome, "stop the old cosigner first (for example 'systemctl stop cosigner'): its sign state must be final before the marks are carried to the new cluster")
				if err != nil {
					return err
				}
				defer unlockOld()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := newLogger(cmd.ErrOrStderr(), "info")
			res, err := reshare.Run(ctx, reshare.Options{Home: home, OldHome: oldHome, Timeout: timeout, Log: log})
			var incomplete *reshare.IncompleteError
			switch {
			case errors.Is(err, share.ErrRetired):
				return usageError{withHint(err, "this old home was already reshared; its share must not deal again")}
			case errors.As(err, &incomplete):
				hint := "the other participants hold their new shares: do not rerun the ceremony. Fix the cause, remove the files listed, " +
					"and once the new cluster runs without this host, add it back by resharing the new cluster (" + reshareDoc + ")"
				if oldHome != "" && !incomplete.OldHomeRetired {
					hint = "never start " + oldHome + " again: its shares were replaced. " + hint
				}
				return withHint(err, "%s", hint)
			case errors.Is(err, reshare.ErrHasShare):
				return usageError{withHint(err, "a resharing never replaces key or state files; if this home completed an earlier run, it is done")}
			case err != nil:
				return withHint(err, "nothing was written and no old home was retired; fix the cause and run 'cosigner reshare' again on every host (%s)", reshareDoc)
			}
			w := cmd.OutOrStdout()
			if res.Retired {
				fmt.Fprintf(w, "cosigner %d dealt its old share and retires: it holds no share of the new cluster\n", res.Self)
				fmt.Fprintf(w, "retired %s ('cosigner start' refuses it); once the new cluster signs, wipe that home's share\n", oldHome)
				return nil
			}
			prefix := config.DefaultBech32Prefix
			if cfg, err := config.LoadForKeys(home); err == nil && len(cfg.Chains) > 0 {
				prefix = cfg.Chains[0].Prefix()
			}
			info := keys.DescribePubKey(res.Group.PublicKey(), prefix)
			fmt.Fprintf(w, "cosigner %d: share %d of a %d-of-%d key, %s, validator %s (%s), unchanged\n",
				res.Self, res.Self, res.Group.Threshold(), res.Group.N(), res.Epoch, info.Address, info.Bech32)
			chains := make([]string, 0, len(res.Marks))
			for id := range res.Marks {
				chains = append(chains, id)
			}
			sort.Strings(chains)
			for _, id := range chains {
				m := res.Marks[id]
				fmt.Fprintf(w, "sign state of %s carried at %d/%d/%d (the highest mark of the old cosigners that dealt)\n", id, m.Height, m.Round, m.Step)
			}
			if oldHome != "" {
				fmt.Fprintf(w, "retired %s ('cosigner start' refuses it)\n", oldHome)
			}
			fmt.Fprintf(w, "next: once every host reports completion, 'cosigner start --home %s'\n", home)
			return nil
		},
	}
	cmd.Flags().StringVar(&oldHome, "old-home", "", "this host's home in the old cluster (hosts that held a share)")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for every participant, from start to end")
	cmd.AddCommand(newResharePrepareCmd())
	return cmd
}

func absPath(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

func newResharePrepareCmd() *cobra.Command {
	var oldGroup, out, chainID, prefix string
	var m, n int
	var peers, nodes, rpc, keep, retire []string
	cmd := &cobra.Command{
		Use:   "prepare",
		Short: "Write the homes of a resharing's new cluster (fresh CA, no share yet)",
		Long: `prepare writes, under --out, the homes a resharing runs among: a new cluster
(the old cluster's CA key was discarded after 'shard', so a newcomer cannot be
given an old certificate). DIR/cosigner-1 ... DIR/cosigner-N' are complete
cosigner homes of the new cluster without a share; DIR/retiring-<old id>, for
each host that deals and leaves, holds its certificate only. Every home
carries the plan (reshare.toml) and a copy of the old group file; the CA key
is discarded before prepare returns.

--keep OLD=NEW names an old share whose host continues as new cosigner NEW;
--retire OLD@host:port an old share whose host deals and leaves (the ceremony
listens there); every other new cosigner is a newcomer. At least M of the old
shares must deal. --peer, --chain-id, --node, --rpc and --bech32-prefix are
as for 'cosigner shard', for the new cluster.
See ` + reshareDoc + `.`,
		Example: `  # 2-of-3 to 3-of-5: old hosts 1 and 2 stay, old host 3 retires
  cosigner reshare prepare --old-group /var/lib/cosigner/group.json --threshold 3 --shares 5 \
    --keep 1=1 --keep 2=2 --retire 3@10.8.0.13:7100 \
    --peer 10.8.0.11:7200 --peer 10.8.0.12:7200 --peer 10.8.0.14:7200 --peer 10.8.0.15:7200 --peer 10.8.0.16:7200 \
    --chain-id kira-1 --node tcp://10.8.0.1:26659 --out epoch2`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "old-group", "threshold", "shares", "out"); err != nil {
				return err
			}
			if err := threshold.CheckThreshold(m, n); err != nil {
				return usagef("--threshold %d --shares %d: %v", m, n, err)
			}
			if err := validateChainFlags(chainID, nodes, rpc); err != nil {
				return err
			}
			kept := map[int]int{}
			for _, k := range keep {
				o, nw, ok := strings.Cut(k, "=")
				oi, err1 := strconv.Atoi(o)
				ni, err2 := strconv.Atoi(nw)
				if !ok || err1 != nil || err2 != nil {
					return usagef("--keep %q: want OLD=NEW, old share id = new cosigner id (--keep 1=1)", k)
				}
				if _, dup := kept[oi]; dup {
					return usagef("--keep %d=...: old share %d is kept twice", oi, oi)
				}
				kept[oi] = ni
			}
			retired := map[int]string{}
			for _, r := range retire {
				o, addr, ok := strings.Cut(r, "@")
				oi, err := strconv.Atoi(o)
				if !ok || err != nil || addr == "" {
					return usagef("--retire %q: want OLD@host:port, the old share id and where its host listens for the ceremony", r)
				}
				if _, dup := retired[oi]; dup {
					return usagef("--retire %d@...: old share %d is retired twice", oi, oi)
				}
				retired[oi] = addr
			}
			plan, err := reshare.Prepare(out, reshare.PrepareOptions{
				Options:  share.Options{Threshold: m, Shares: n, Peers: peers, ChainID: chainID, Nodes: nodes, Bech32Prefix: prefix, RPC: rpc},
				OldGroup: oldGroup, Keep: kept, Retire: retired,
			})
			if errors.Is(err, share.ErrOutExists) {
				return withHint(err, "prepare never overwrites; choose a new --out")
			}
			if err != nil {
				return usageError{err}
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "resharing %d-of-%d to %d-of-%d, epoch %d; homes under %s:\n", plan.OldThreshold, plan.OldShares, plan.Threshold, plan.Shares, plan.Epoch, out)
			for _, q := range plan.Participants {
				switch {
				case q.ID > plan.Shares:
					fmt.Fprintf(w, "  %s  ->  host of old share %d: deals and retires (ceremony on %s)\n", reshare.RetiringDir(out, q.OldID), q.OldID, q.Address)
					fmt.Fprintf(w, "      cosigner reshare --old-home <its old home> --home <this directory>\n")
				case q.OldID != 0:
					fmt.Fprintf(w, "  %s  ->  host of old share %d, continues as cosigner %d (%s)\n", share.Dir(out, q.ID), q.OldID, q.ID, q.Address)
					fmt.Fprintf(w, "      cosigner reshare --old-home <its old home> --home <this directory>\n")
				default:
					fmt.Fprintf(w, "  %s  ->  newcomer, cosigner %d (%s)\n", share.Dir(out, q.ID), q.ID, q.Address)
					fmt.Fprintf(w, "      cosigner reshare --home <this directory>\n")
				}
			}
			fmt.Fprintf(w, `
next:
  1. copy each directory to its host (keep the modes; tls/cluster.key is secret)
  2. stop the old cluster on every host
  3. run the command above on every host, all within 'cosigner reshare --timeout' (2m)
  4. once all report completion: 'cosigner start --home <new home>' on each new member
`)
			warnNoCompromise(cmd.ErrOrStderr(), m, n)
			return nil
		},
	}
	cmd.Flags().StringVar(&oldGroup, "old-group", "", "the old cluster's group file (group.json of any old home) (required)")
	cmd.Flags().IntVar(&m, "threshold", 0, "M': cosigners needed to sign in the new cluster (required, more than half of --shares)")
	cmd.Flags().IntVar(&n, "shares", 0, "N': cosigners of the new cluster, 2 to 255 (required)")
	cmd.Flags().StringVar(&out, "out", "", "output directory; must not exist (required)")
	cmd.Flags().StringArrayVar(&keep, "keep", nil, "OLD=NEW: old share OLD's host continues as new cosigner NEW (repeatable)")
	cmd.Flags().StringArrayVar(&retire, "retire", nil, "OLD@host:port: old share OLD's host deals and leaves, listening there (repeatable)")
	cmd.Flags().StringArrayVar(&peers, "peer", nil, "gRPC host:port of each new cosigner, in id order (repeatable)")
	cmd.Flags().StringVar(&chainID, "chain-id", "", "chain to sign for")
	cmd.Flags().StringArrayVar(&nodes, "node", nil, "node priv_validator_laddr: tcp://host:port or unix:///path (repeatable)")
	cmd.Flags().StringVar(&prefix, "bech32-prefix", "", "bech32 account prefix for display and config")
	cmd.Flags().StringArrayVar(&rpc, "rpc", nil, "CometBFT RPC of a node of the chain, http://host:26657 (repeatable)")
	return cmd
}
