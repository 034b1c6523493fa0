package fsutil

import (
	"path/filepath"
	"testing"
)

// BenchmarkReplace is a whole-file durable replacement (temp file, fsync,
// rename, directory fsync), for comparison with the sign state's in-place
// slot write (signstate.BenchmarkSlotWrite).
func BenchmarkReplace(b *testing.B) {
	path := filepath.Join(b.TempDir(), "state.json")
	data := make([]byte, 400) // about a state file's JSON
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := Replace(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
}
