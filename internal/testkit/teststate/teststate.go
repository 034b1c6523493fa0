// Package teststate gives tests a real, durable sign state on a temporary
// directory. It is apart from testkit because it imports signstate, whose
// own tests use testkit.
package teststate

import (
	"testing"

	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/internal/testkit"
)

// New writes a state file of testkit.Chain at m under a temporary
// directory and opens it; it is closed when the test ends.
func New(t testing.TB, m signstate.Mark) *signstate.SignState {
	t.Helper()
	return NewOf(t, testkit.Chain, m)
}

// NewOf is New for chainID.
func NewOf(t testing.TB, chainID string, m signstate.Mark) *signstate.SignState {
	t.Helper()
	path := signstate.StatePath(t.TempDir(), chainID)
	if err := signstate.WriteMark(path, chainID, m, false); err != nil {
		t.Fatal(err)
	}
	s, err := signstate.LoadSignState(path, chainID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
