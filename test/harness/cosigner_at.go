package harness

import (
	"testing"
)

// CosignerAt drives the cosigner binary for a home that some other command
// creates (for example 'cosigner migrate'), where NewCosigner would run
// 'cosigner init'. Nothing is run yet.
func CosignerAt(t testing.TB, bin, home, chainID string) *Cosigner {
	return &Cosigner{Bin: bin, Home: home, ChainID: chainID, t: t}
}
