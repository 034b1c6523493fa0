// Command cosigner is a remote signer for CometBFT validators: in softsign
// mode one process holds the whole key, as TMKMS does; in threshold mode M of
// N cosigners sign with FROST shares of it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// usageError marks errors in flags, arguments or configuration: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// hintError carries a sentence telling the operator what to do.
type hintError struct {
	err  error
	hint string
}

func (e hintError) Error() string { return e.err.Error() }
func (e hintError) Unwrap() error { return e.err }

func withHint(err error, format string, args ...any) error {
	return hintError{err: err, hint: fmt.Sprintf(format, args...)}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

// runContext runs the command line args with ctx (which stops 'start'
// when done, as SIGINT does) and returns the exit status.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "cosigner: error: %v\n", err)
	var h hintError
	if errors.As(err, &h) {
		fmt.Fprintf(stderr, "cosigner: hint: %s\n", h.hint)
	}
	var u usageError
	if errors.As(err, &u) || isFlagError(err) {
		return 2
	}
	return 1
}

// isFlagError recognises cobra's own argument and flag errors, which it
// returns as plain errors.
func isFlagError(err error) bool {
	var fe flagErr
	return errors.As(err, &fe)
}

type flagErr struct{ error }

func defaultHome() string {
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cosigner")
	}
	return ".cosigner"
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "cosigner",
		Short: "Remote signer for CometBFT validators",
		Long: `cosigner signs votes and proposals for CometBFT validators from outside the node.
It dials each node's priv_validator_laddr and never signs twice for one
height, round and step.

Softsign mode: one process holds the whole key (cosigner init, keys import).
Threshold mode: M of N cosigners each hold a FROST share of the key and sign
together; no machine holds the key. 'cosigner shard' splits an existing key;
'cosigner shard --no-key' then 'cosigner dkg' makes one that no machine ever
held; 'cosigner reshare' moves it to other hosts or another M-of-N; 'cosigner
migrate horcrux|tmkms' keeps what a Horcrux or TMKMS setup already has.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("home", defaultHome(), "cosigner home directory (holds cosigner.toml)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return flagErr{err} })
	root.AddCommand(newInitCmd(), newShardCmd(), newDKGCmd(), newReshareCmd(), newMigrateCmd(), newKeysCmd(), newHSMCmd(), newStateCmd(), newStartCmd(), newStatusCmd(), newLeaderCmd(), newVersionCmd())
	return root
}

func homeFlag(cmd *cobra.Command) string {
	h, _ := cmd.Flags().GetString("home")
	return h
}

// requireFlags reports the named flags that were not given, as a usage
// error.
func requireFlags(cmd *cobra.Command, names ...string) error {
	var missing []string
	for _, n := range names {
		if !cmd.Flags().Changed(n) {
			missing = append(missing, "--"+n)
		}
	}
	if len(missing) > 0 {
		return usagef("required flag(s) %s not set; see 'cosigner %s --help'", strings.Join(missing, ", "), cmd.Name())
	}
	return nil
}

// exactArgs is cobra.ExactArgs with an exit status of 2.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), Version)
			return nil
		},
	}
}
