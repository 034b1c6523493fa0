package main

import "github.com/spf13/cobra"

func newMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Make a cosigner home from another signer's configuration, keys and state",
		Long: `migrate turns what another remote signer runs today into a cosigner home,
keeping its keys (or key shares), its node addresses and its sign state, so
the validator moves without a new key and without signing below what the old
signer signed. Stop the old signer first and keep it stopped.`,
		Example: `  cosigner migrate tmkms --config /etc/tmkms/tmkms.toml --home ~/.cosigner`,
	}
	cmd.AddCommand(newMigrateTMKMSCmd())
	return cmd
}
