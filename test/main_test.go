package test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/cosigner/cosigner/test/harness"
)

// cosignerBin is the cosigner binary built by TestMain; cosignerErr says
// why there is none.
var (
	cosignerBin string
	cosignerErr error
)

// TestMain builds ./cmd/cosigner once for the whole package, or uses the
// binary named by $COSIGNER_BIN.
func TestMain(m *testing.M) {
	flag.Parse()
	var dir string
	switch {
	case testing.Short():
	case os.Getenv("COSIGNER_BIN") != "":
		// A prebuilt binary, for example one built from a clean checkout.
		cosignerBin = os.Getenv("COSIGNER_BIN")
	default:
		var err error
		dir, err = os.MkdirTemp("", "cosigner-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cosignerBin, cosignerErr = harness.BuildCosigner(dir)
	}
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// requireCosigner returns the cosigner binary. It skips the test under
// -short; a failed build fails the test.
func requireCosigner(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: runs CometBFT nodes and the cosigner binary")
	}
	if cosignerErr != nil {
		t.Fatalf("build cosigner: %v", cosignerErr)
	}
	return cosignerBin
}
