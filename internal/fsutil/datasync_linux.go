package fsutil

import (
	"os"
	"syscall"
)

// Datasync flushes f's data (and the metadata needed to read it back) to
// stable storage: fdatasync(2). The state file never changes size, so that
// is all a slot write needs.
func Datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
