package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// onlyFiles fails unless dir holds exactly names (no temporary file left).
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if len(got) != len(names) {
		t.Fatalf("%s holds %q, want %q", dir, got, names)
	}
	for i := range names {
		if got[i] != names[i] {
			t.Fatalf("%s holds %q, want %q", dir, got, names)
		}
	}
}

func TestWriteNew(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.json")
	if err := WriteNew(path, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "first" {
		t.Fatalf("read %q, %v; want first", b, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	onlyFiles(t, dir, "key.json")

	// Never over an existing file, and nothing left behind.
	err := WriteNew(path, []byte("second"))
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second WriteNew: %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Fatalf("existing file now %q", b)
	}
	onlyFiles(t, dir, "key.json")

	// A dangling symlink is something there too.
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), link); err != nil {
		t.Fatal(err)
	}
	if err := WriteNew(link, []byte("x")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("WriteNew over a dangling symlink: %v, want fs.ErrExist", err)
	}
	onlyFiles(t, dir, "key.json", "link.json")

	if err := WriteNew(filepath.Join(dir, "missing", "f"), []byte("x")); err == nil {
		t.Fatal("WriteNew into a missing directory succeeded")
	}
}
