package latency

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cosigner/cosigner/test/harness"
)

// The reference signer, CometBFT's privval.SignerServer with a FilePV, runs
// in a process of its own so that its CPU time is read from /proc/PID/stat
// like a cosigner's, apart from the fake node's. That process is this test
// binary run again with only TestReferenceSignerProcess selected and these
// variables set: refSignerAddrEnv is the node's address, refSignerKeyEnv
// the priv_validator_key.json to sign with.
const (
	refSignerAddrEnv = "COSIGNER_LATENCY_REFSIGNER_ADDR"
	refSignerKeyEnv  = "COSIGNER_LATENCY_REFSIGNER_KEY"
)

// refSignerChild reports whether this process is the reference signer's.
func refSignerChild() bool { return os.Getenv(refSignerAddrEnv) != "" }

// TestReferenceSignerProcess is not a test: it is the body of the reference
// signer's process (see startFilePV) and skips in any other. It serves
// until SIGTERM. Its name does not contain "Latency", so -run Latency never
// selects it.
func TestReferenceSignerProcess(t *testing.T) {
	if !refSignerChild() {
		t.Skip("runs only as the reference signer's process of the latency harness")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	harness.StartReferenceSigner(t, os.Getenv(refSignerAddrEnv), chainID, os.Getenv(refSignerKeyEnv))
	<-ctx.Done()
}

// startFilePV runs CometBFT v0.38.17's own remote signer with a FilePV (an
// empty sign state, a fresh key) in its own process, which dials addr.
func startFilePV(tb testing.TB, addr string) started {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatalf("reference signer: find the test binary: %v", err)
	}
	dir := tb.TempDir()
	keyFile := filepath.Join(dir, "priv_validator_key.json")
	pub, err := harness.WriteNewValidatorKey(keyFile)
	if err != nil {
		tb.Fatal(err)
	}
	// -test.timeout=0: the child lives as long as the measurement, which
	// may exceed go test's default of 10 minutes.
	p := harness.StartProcess(tb, "cometbft-filepv", filepath.Join(dir, "refsigner.log"),
		[]string{refSignerAddrEnv + "=" + addr, refSignerKeyEnv + "=" + keyFile},
		exe, "-test.run=^TestReferenceSignerProcess$", "-test.timeout=0")
	return started{pub: pub, procs: func() []*harness.Process { return []*harness.Process{p} }}
}
