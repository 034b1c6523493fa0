package main

// TEMPORARY: the parent command 'cosigner migrate' is built in another
// branch (cmd/cosigner/migrate.go, with 'migrate horcrux'). This stand-in
// registers 'migrate tmkms' until the two branches merge; delete this file
// then, and add newMigrateTMKMSCmd() to the real newMigrateCmd.

import "github.com/spf13/cobra"

func newMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Make a cosigner home from another signer's configuration, keys and state",
	}
	cmd.AddCommand(newMigrateTMKMSCmd())
	return cmd
}
