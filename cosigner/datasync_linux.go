package cosigner

import (
	"os"
	"syscall"
)

// datasync flushes f's data (and the metadata needed to read it back) to
// stable storage: fdatasync(2). The state file never changes size, so that
// is all a slot write needs.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
