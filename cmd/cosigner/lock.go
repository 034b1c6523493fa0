package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
)

// lockFileName is the file in a home that 'cosigner start' holds locked
// while it runs.
const lockFileName = "cosigner.lock"

// lockHome takes the exclusive lock on <home>/cosigner.lock (flock, not
// waiting). 'cosigner start' holds it until it exits, so that two cosigners
// never sign from the same keys and state (the second would not see the
// first's marks), and every command that writes key or state files into a
// home takes it (lockHomeToWrite), so that none replaces a file under a
// running cosigner. When another process holds the lock, the error names
// the home and carries hint. The lock dies with the process, so a killed
// cosigner never leaves a home locked.
func lockHome(home, hint string) (unlock func(), err error) {
	path := filepath.Join(home, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, withHint(fmt.Errorf("another cosigner is running with home %s (%s is locked)", home, path), "%s", hint)
	}
	return func() { f.Close() }, nil
}

// lockHomeToWrite takes the home's lock for a command that creates or
// replaces key or state files (keys import, state init, state import, hsm
// share import), with or without --force: it refuses while cosigner runs on
// the home. A running cosigner goes on writing its marks to the state file
// it opened at start; a file replaced (or removed and created again) under
// it is a different file, and the marks written to the old one since are
// gone at the next start, which could then sign a conflicting vote.
func lockHomeToWrite(cmd *cobra.Command, home string) (unlock func(), err error) {
	return lockHome(home, fmt.Sprintf("stop it first (for example 'systemctl stop cosigner'), then run '%s' again: "+
		"a running cosigner keeps writing to the key and state files it opened, and what it writes after a file is replaced under it is lost at its next start, so it could sign twice",
		cmd.CommandPath()))
}
