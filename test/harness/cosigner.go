package harness

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cosigner drives the `cosigner` binary for one home directory: the setup
// commands, and `cosigner start` as a process that can be killed and
// restarted. Each start logs to its own file, cosigner-<run>.log beside the
// home directory.
type Cosigner struct {
	Bin     string
	Home    string
	ChainID string
	// MetricsAddr is the [metrics] listen address init was given.
	MetricsAddr string

	t    testing.TB
	runs []*Process
}

// Result is the outcome of one CLI command.
type Result struct {
	Args   []string
	Stdout string
	Stderr string
	Code   int // exit code; -1 if it did not exit by itself
}

func (r Result) String() string {
	return fmt.Sprintf("cosigner %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// NewCosigner runs `cosigner init` for chainID and the given node addresses
// in a fresh home under t.TempDir(), with metrics on a free loopback port
// (MetricsAddr) so that parallel tests do not share init's default.
func NewCosigner(t testing.TB, bin, chainID string, nodes ...string) *Cosigner {
	t.Helper()
	port, err := FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cosigner{Bin: bin, Home: filepath.Join(t.TempDir(), "cosigner"), ChainID: chainID, t: t,
		MetricsAddr: fmt.Sprintf("127.0.0.1:%d", port)}
	args := []string{"init", "--home", c.Home, "--chain-id", chainID, "--metrics-listen", c.MetricsAddr}
	for _, n := range nodes {
		args = append(args, "--node", n)
	}
	c.MustRun(args...)
	return c
}

// SetupSoftsign prepares a softsign cosigner for node: init with the node's
// signer address, import the node's moved validator key, check that `keys
// show` reports its public key, and create the sign state at height 0.
func SetupSoftsign(t testing.TB, bin string, node *Node) *Cosigner {
	t.Helper()
	c := NewCosigner(t, bin, node.ChainID, node.SignerAddr)
	c.MustRun("keys", "import", "--home", c.Home, "--chain-id", node.ChainID, node.ValidatorKeyFile)
	out := c.MustRun("keys", "show", "--home", c.Home, "--chain-id", node.ChainID, "--json")
	if !strings.Contains(strings.ToLower(out), hex.EncodeToString(node.PubKey)) &&
		!strings.Contains(out, base64.StdEncoding.EncodeToString(node.PubKey)) {
		t.Fatalf("cosigner keys show does not report the imported key %x:\n%s", []byte(node.PubKey), out)
	}
	c.MustRun("state", "init", "--home", c.Home, "--chain-id", node.ChainID)
	return c
}

// Run runs a cosigner CLI command to completion (at most a minute).
func (c *Cosigner) Run(args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	r := Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Code: 0}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		r.Code = exitErr.ExitCode()
	default:
		r.Code = -1
		r.Stderr += "\n(harness: " + err.Error() + ")"
	}
	return r
}

// MustRun runs a cosigner CLI command, fails the test unless it exits 0,
// and returns its stdout.
func (c *Cosigner) MustRun(args ...string) string {
	c.t.Helper()
	r := c.Run(args...)
	if r.Code != 0 {
		c.t.Fatal(r.String())
	}
	return r.Stdout
}

// Start starts `cosigner start --home Home` and returns the process. It is
// stopped when the test ends.
func (c *Cosigner) Start() *Process {
	c.t.Helper()
	run := len(c.runs) + 1
	logPath := filepath.Join(filepath.Dir(c.Home), fmt.Sprintf("cosigner-%d.log", run))
	p := StartProcess(c.t, fmt.Sprintf("cosigner (run %d)", run), logPath, nil, c.Bin, "start", "--home", c.Home)
	c.runs = append(c.runs, p)
	return p
}

// Current returns the most recently started process, or nil.
func (c *Cosigner) Current() *Process {
	if len(c.runs) == 0 {
		return nil
	}
	return c.runs[len(c.runs)-1]
}

// Kill SIGKILLs the current process and waits for it to die.
func (c *Cosigner) Kill() {
	if p := c.Current(); p != nil {
		p.Kill()
	}
}

// Stop stops the current process with SIGTERM (SIGKILL after a grace
// period).
func (c *Cosigner) Stop() {
	if p := c.Current(); p != nil {
		p.Stop()
	}
}

// Records returns the "signed ..." lines of every run so far, in order.
func (c *Cosigner) Records() []SignRecord {
	var recs []SignRecord
	for i, p := range c.runs {
		for _, line := range p.Lines() {
			if r, ok := ParseSignRecord(line); ok {
				r.Run = i + 1
				recs = append(recs, r)
			}
		}
	}
	return recs
}

// SignState is `cosigner state show --json`'s CometBFT-style view of the
// high-water mark.
type SignState struct {
	Height int64
	Round  int32
	Step   int8
	Raw    string
}

// StateShow runs `cosigner state show --json` and parses it.
func (c *Cosigner) StateShow() SignState {
	c.t.Helper()
	out := c.MustRun("state", "show", "--home", c.Home, "--chain-id", c.ChainID, "--json")
	st, err := ParseSignState(out)
	if err != nil {
		c.t.Fatalf("cosigner state show --json: %v\n%s", err, out)
	}
	return st
}

// ParseSignState parses {"height":"N","round":R,"step":S,...}; the height
// may also be a bare number.
func ParseSignState(out string) (SignState, error) {
	var raw struct {
		Height json.RawMessage `json:"height"`
		Round  int32           `json:"round"`
		Step   int8            `json:"step"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		return SignState{}, err
	}
	hs := strings.Trim(string(raw.Height), `"`)
	h, err := strconv.ParseInt(hs, 10, 64)
	if err != nil {
		return SignState{}, fmt.Errorf("height %s: %w", raw.Height, err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(out)); err != nil {
		return SignState{}, err
	}
	return SignState{Height: h, Round: raw.Round, Step: raw.Step, Raw: compact.String()}, nil
}

// CheckNoDoubleSign reports every (height, round, step) that recs sign for
// two different block ids.
func CheckNoDoubleSign(recs []SignRecord) error {
	type hrs struct {
		h    int64
		r    int32
		step string
	}
	seen := map[hrs]SignRecord{}
	var errs []error
	for _, rec := range recs {
		k := hrs{rec.Height, rec.Round, rec.Step}
		if prev, ok := seen[k]; ok && prev.Block != rec.Block {
			errs = append(errs, fmt.Errorf("double sign at %d/%d/%s: block %q (run %d) and %q (run %d)",
				rec.Height, rec.Round, rec.Step, prev.Block, prev.Run, rec.Block, rec.Run))
			continue
		}
		seen[k] = rec
	}
	return errors.Join(errs...)
}

// CLI returns a Cosigner that only runs commands, for those that create
// their home themselves (such as `cosigner migrate`).
func CLI(t testing.TB, bin string) *Cosigner { return &Cosigner{Bin: bin, t: t} }
