package latency

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cosigner/cosigner/test/harness"
)

// profileDir is $COSIGNER_CPUPROFILE. When it names a directory, the
// harness writes CPU profiles there: latency-test.pprof of the test process
// (the node's side), cometbft-filepv-<pid>.pprof of the reference signer's
// process and cosigner-<pid>.pprof of every `cosigner start` it runs, built with
// testdata/cpuprofile.go overlaid onto ./cmd/cosigner. Read them with
// `go tool pprof -top FILE` (the profiles carry their symbols).
func profileDir() string { return os.Getenv("COSIGNER_CPUPROFILE") }

// buildProfiledCosigner builds ./cmd/cosigner into dir with the profiling
// hook of testdata/cpuprofile.go added through `go build -overlay`; the
// product's sources are not touched.
func buildProfiledCosigner(dir string) (string, error) {
	root, err := harness.ModuleRoot()
	if err != nil {
		return "", err
	}
	hook, err := filepath.Abs(filepath.Join("testdata", "cpuprofile.go"))
	if err != nil {
		return "", err
	}
	overlay, err := json.Marshal(map[string]map[string]string{
		"Replace": {filepath.Join(root, "cmd", "cosigner", "zz_latency_cpuprofile.go"): hook},
	})
	if err != nil {
		return "", err
	}
	overlayPath := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayPath, overlay, 0o600); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "cosigner")
	cmd := exec.Command("go", "build", "-overlay", overlayPath, "-o", bin, "./cmd/cosigner")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build -overlay ./cmd/cosigner: %w\n%s", err, out.String())
	}
	return bin, nil
}

// profileSelf starts a CPU profile of this process into path and returns
// the function that stops it.
func profileSelf(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// flushProfilesAtEnd makes every process in procs write its CPU profile
// when the test ends, before the processes are stopped (cleanups run last
// registered first), and logs where each went. It does nothing unless
// profiling.
func flushProfilesAtEnd(tb testing.TB, name string, procs func() []*harness.Process) {
	if profileDir() == "" {
		return
	}
	tb.Cleanup(func() {
		for _, p := range procs() {
			if p.Exited() {
				continue
			}
			from := len(p.Lines())
			if err := p.Signal(syscall.SIGUSR1); err != nil {
				tb.Logf("%s %s: %v", name, p.Name, err)
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, line, err := p.WaitLine(ctx, from, func(l string) bool { return strings.HasPrefix(l, "cpuprofile written") })
			cancel()
			if err != nil {
				tb.Logf("%s %s: no CPU profile: %v", name, p.Name, err)
				continue
			}
			role := "never led"
			if slices.ContainsFunc(p.Lines(), harness.IsLeadingLine) {
				role = "led"
			}
			tb.Logf("%s %s (%s): %s", name, p.Name, role, line)
		}
	})
}
