package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cosigner/cosigner/cosigner/admin"
	"github.com/cosigner/cosigner/cosigner/config"
)

func newStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Ask a running cosigner how it and its cluster are doing",
		Long: `status asks the cosigner running with --home, over its admin socket
(<home>/admin.sock, open to the cosigner's user only), and prints its role, the
leader and term, each cosigner with reachability and round-trip time (the
leader's view on the leader; a follower pings the others itself), whether a
quorum can sign, what the cluster's shape withstands (cosigners that may be
down, cosigners that may be compromised without a double sign, shares an
attacker needs to sign on its own; softsign is a cluster of one: 0, 0, 1), each
chain's last signature, how long ago, the validator key that signs it and the
highest height this process signs now (max_height_ahead and max_height_rate, a
cluster's [threshold] or softsign's [softsign] bound), nonce pools and node
connections.

Exit status: 0 when the cosigner answers and (threshold mode) a quorum is
available; 1 when no quorum is available or no cosigner runs with --home.`,
		Example: `  cosigner status --home ~/.cosigner
  cosigner status --home ~/.cosigner --json | jq .leader_id`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			home := homeFlag(cmd)
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			st, err := admin.GetStatus(ctx, home)
			if errors.Is(err, admin.ErrUnreachable) {
				return withHint(err, "start it with 'cosigner start --home %s', or check --home", home)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(st); err != nil {
					return err
				}
			} else {
				printStatus(out, st)
			}
			if !st.Quorum {
				return fmt.Errorf("no quorum: fewer than %d of the %d cosigners can sign together", st.Threshold, st.Shares)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func printStatus(w io.Writer, st admin.Status) {
	if st.Mode == config.ModeSoftsign {
		fmt.Fprintf(w, "softsign cosigner, version %s\n", st.Version)
	} else {
		leader := "none known"
		if st.LeaderID != 0 {
			leader = "cosigner " + strconv.Itoa(st.LeaderID)
		}
		fmt.Fprintf(w, "cosigner %d of a %d-of-%d cluster, version %s\n", st.ID, st.Threshold, st.Shares, st.Version)
		if st.Epoch != 0 {
			fmt.Fprintf(w, "epoch:   %d (group %s)\n", st.Epoch, st.Group)
		}
		fmt.Fprintf(w, "role:    %s (term %d, leader: %s)\n", st.Role, st.Term, leader)
		fmt.Fprintf(w, "quorum:  %s\n", yesNo(st.Quorum))
	}
	ready := "yes"
	if !st.Ready {
		ready = "no: " + st.NotReady
	}
	fmt.Fprintf(w, "ready:   %s\n", ready)
	if st.Mode == config.ModeThreshold {
		fmt.Fprintf(w, "nonces:  %d in this cosigner's pool\n", st.NoncePool)
	}
	fmt.Fprintf(w, "\nwhat a %d-of-%d cluster withstands:\n", st.Threshold, st.Shares)
	printTolerance(w, "  ", st.DownTolerated, st.CompromisedTolerated, st.SharesToSign)
	if st.Mode == config.ModeThreshold {
		view := "as the leader sees them"
		if st.PeersView == "ping" {
			view = "pinged from this cosigner"
		}
		fmt.Fprintf(w, "\ncosigners (%s):\n", view)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tADDRESS\tREACHABLE\tRTT\tSHARE RTT\tCOMMITMENTS\tNOTE")
		for _, p := range st.Peers {
			var note []string
			if p.Self {
				note = append(note, "this cosigner")
			}
			if p.ID == st.LeaderID {
				note = append(note, "leader")
			}
			if p.Error != "" {
				note = append(note, p.Error)
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Address, yesNo(p.Reachable),
				ms(p.RTTMillis), ms(p.ShareRTTMillis), commitments(st, p), strings.Join(note, "; "))
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nchains:\n")
	for _, c := range st.Chains {
		when := "not signed since this process started"
		if c.SinceSeconds != nil {
			when = fmt.Sprintf("%s ago", (time.Duration(*c.SinceSeconds * float64(time.Second))).Round(100*time.Millisecond))
		}
		fmt.Fprintf(w, "  %s: last signed %d/%d/%s, %s (%s)\n", c.ID, c.Height, c.Round, c.Step, when, c.Source)
		if c.Address != "" {
			fmt.Fprintf(w, "    key: %s (address %s)\n", c.PubKey, c.Address)
		}
		if c.MaxHeight != nil {
			fmt.Fprintf(w, "    signs up to height %d now (max_height_ahead, max_height_rate)\n", *c.MaxHeight)
		} else {
			fmt.Fprintf(w, "    no height bound (max_height_ahead = 0)\n")
		}
	}
	fmt.Fprintf(w, "\nnode connections:\n")
	if len(st.Nodes) == 0 {
		fmt.Fprintf(w, "  none (only the leader dials the nodes)\n")
	}
	for _, n := range st.Nodes {
		fmt.Fprintf(w, "  %s %s: %s\n", n.Chain, n.Address, map[bool]string{true: "connected", false: "not connected"}[n.Connected])
	}
}

func ms(v float64) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + " ms"
}

func commitments(st admin.Status, p admin.PeerReport) string {
	if st.PeersView != "leader" {
		return "-"
	}
	return strconv.Itoa(p.Commitments)
}

func newLeaderCmd() *cobra.Command {
	leader := &cobra.Command{
		Use:     "leader",
		Short:   "Cluster leadership, for maintenance",
		Example: `  cosigner leader transfer 2 --home ~/.cosigner`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("name a subcommand; see 'cosigner leader --help'")
		},
	}
	transfer := &cobra.Command{
		Use:   "transfer <id>",
		Short: "Hand cluster leadership to cosigner <id>",
		Long: `transfer asks the cosigner running with --home, over its admin socket, to
make cosigner <id> the leader. Run it on the leader's host: only the leader
hands leadership over, and it takes the request from its own admin socket
only, never from another cosigner over the cluster network, so one compromised
cosigner or a stolen cluster certificate cannot move the leadership. On a
follower it refuses and names the leader and its address ('cosigner status'
shows them too). Use it before stopping the leader's host for maintenance: the
new leader dials the nodes at once, so at most a block's signatures are
delayed.`,
		Example: `  cosigner leader transfer 2 --home ~/.cosigner
  cosigner status --home ~/.cosigner`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.Atoi(args[0])
			if err != nil || id < 1 {
				return usagef("cosigner id %q: want a number from 1 to the number of shares", args[0])
			}
			home := homeFlag(cmd)
			ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
			defer cancel()
			now, err := admin.RequestTransfer(ctx, home, id)
			if errors.Is(err, admin.ErrUnreachable) {
				return withHint(err, "start it with 'cosigner start --home %s', or check --home", home)
			}
			if err != nil {
				return withHint(err, "check the cluster with 'cosigner status --home %s'", home)
			}
			if now == id {
				fmt.Fprintf(cmd.OutOrStdout(), "cosigner %d now leads\n", id)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "leadership handed over; the old leader now sees cosigner %d as leader (0: election under way)\n", now)
			}
			return nil
		},
	}
	leader.AddCommand(transfer)
	return leader
}
