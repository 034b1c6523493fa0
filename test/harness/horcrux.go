package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/config"
)

// HorcruxConfig describes a Horcrux v3 threshold cluster signing for one
// chain.
type HorcruxConfig struct {
	// Bin is the horcrux binary (Horcrux(t)).
	Bin string
	// Threshold is M and Shares is N.
	Threshold, Shares int
	// ChainID is the chain; KeyFile the validator key to shard.
	ChainID, KeyFile string
	// Nodes are the priv_validator_laddr every cosigner dials.
	Nodes []string
}

// HorcruxCluster is a Horcrux cluster of `horcrux start` processes, one
// home per cosigner under Dir, set up with Horcrux's own commands.
type HorcruxCluster struct {
	Dir     string
	ChainID string
	Members []*HorcruxMember

	t   testing.TB
	bin string
}

// HorcruxMember is one Horcrux cosigner.
type HorcruxMember struct {
	ID   int
	Home string
	// P2PAddr is its p2pAddr (gRPC and Raft on one port, on 127.0.0.1);
	// the next port was free too when it was chosen, for the cosigner
	// that replaces it. DebugAddr serves its metrics.
	P2PAddr, DebugAddr string

	proc *Process
}

// NewHorcruxCluster writes the homes of an M-of-N Horcrux cluster with
// Horcrux's commands: `horcrux create-ed25519-shards` and
// `create-ecies-shards` deal the shards and link keys, and `horcrux config
// init` writes each config.yaml (p2pAddr tcp://127.0.0.1:P with P and P+1
// free, a debug address, the nodes, 2 s gRPC and Raft timeouts: the
// defaults of 500 ms make Horcrux miss signatures at this chain's block
// rate, which halts a single-validator chain). Nothing is started.
func NewHorcruxCluster(t testing.TB, cfg HorcruxConfig) *HorcruxCluster {
	t.Helper()
	dir := t.TempDir()
	c := &HorcruxCluster{Dir: dir, ChainID: cfg.ChainID, t: t, bin: cfg.Bin}
	shards := filepath.Join(dir, "shards")
	c.run("create-ed25519-shards", "--chain-id", cfg.ChainID, "--key-file", cfg.KeyFile,
		"--threshold", strconv.Itoa(cfg.Threshold), "--shards", strconv.Itoa(cfg.Shares), "--out", shards)
	c.run("create-ecies-shards", "--shards", strconv.Itoa(cfg.Shares), "--out", shards)
	for id := 1; id <= cfg.Shares; id++ {
		p2p := consecutivePorts(t, "127.0.0.1")
		debug, err := FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		c.Members = append(c.Members, &HorcruxMember{ID: id, Home: filepath.Join(dir, fmt.Sprintf("horcrux-%d", id)),
			P2PAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(p2p)), DebugAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(debug))})
	}
	for _, m := range c.Members {
		args := []string{"config", "init", "--home", m.Home, "--threshold", strconv.Itoa(cfg.Threshold),
			"--debug-addr", m.DebugAddr, "--grpc-timeout", "2s", "--raft-timeout", "2s"}
		for _, p := range c.Members {
			args = append(args, "--cosigner", "tcp://"+p.P2PAddr)
		}
		for _, n := range cfg.Nodes {
			args = append(args, "--node", n)
		}
		c.run(args...)
		from := filepath.Join(shards, fmt.Sprintf("cosigner_%d", m.ID))
		for _, name := range []string{cfg.ChainID + "_shard.json", "ecies_keys.json"} {
			data, err := os.ReadFile(filepath.Join(from, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(m.Home, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return c
}

// consecutivePorts returns a port P on ip such that P and P+1 were free a
// moment ago.
func consecutivePorts(t testing.TB, ip string) int {
	t.Helper()
	for range 20 {
		p, err := FreePort(ip)
		if err != nil {
			t.Fatal(err)
		}
		if p >= 65534 {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p+1)))
		if err != nil {
			continue
		}
		ln.Close()
		portsMu.Lock()
		taken := usedPorts[p+1]
		usedPorts[p+1] = true
		portsMu.Unlock()
		if !taken {
			return p
		}
	}
	t.Fatalf("no two consecutive free ports on %s", ip)
	return 0
}

// run runs a horcrux command to completion (HOME set to the cluster's
// directory, so that no ~/.horcrux is read), failing the test on error,
// and returns its output.
func (c *HorcruxCluster) run(args ...string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+c.Dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("horcrux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Start starts `horcrux start` for every member; they are stopped when
// the test ends.
func (c *HorcruxCluster) Start() {
	c.t.Helper()
	for _, m := range c.Members {
		logPath := filepath.Join(c.Dir, fmt.Sprintf("horcrux-%d.log", m.ID))
		m.proc = StartProcess(c.t, fmt.Sprintf("horcrux-%d", m.ID), logPath, []string{"HOME=" + c.Dir}, c.bin, "start", "--home", m.Home)
	}
}

// Current returns the member's `horcrux start` process, or nil before
// Start.
func (m *HorcruxMember) Current() *Process { return m.proc }

var horcruxLeader = regexp.MustCompile(`Current leader: (-?\d+)`)

// WaitLeader waits until `horcrux leader` on member 1 names a leader: a
// node asks for signatures soon after it starts, and Horcrux fails every
// one until its Raft cluster has a leader, which halts a single-validator
// chain. Horcrux logs no election, so this asks, every 200 ms.
func (c *HorcruxCluster) WaitLeader(ctx context.Context) (int, error) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		cmd := exec.CommandContext(ctx, c.bin, "leader", "--home", c.Members[0].Home)
		cmd.Env = append(os.Environ(), "HOME="+c.Dir)
		out, _ := cmd.CombinedOutput()
		if m := horcruxLeader.FindStringSubmatch(string(out)); m != nil {
			if id, _ := strconv.Atoi(m[1]); id >= 1 {
				return id, nil
			}
		}
		for _, m := range c.Members {
			if m.proc.Exited() {
				return 0, fmt.Errorf("horcrux-%d exited: %w\n%s", m.ID, ErrExited, m.proc.Tail(20))
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("horcrux: waiting for a Raft leader: %w (last answer %q)", ctx.Err(), strings.TrimSpace(string(out)))
		case <-tick.C:
		}
	}
}

// Stop stops every member with SIGTERM, as `systemctl stop` does, and
// checks that each stopped cleanly: Horcrux removes its pid file when it
// stops on a signal, after its state files are written.
func (c *HorcruxCluster) Stop() error {
	var errs []error
	for _, m := range c.Members {
		if m.proc == nil {
			continue
		}
		m.proc.Stop()
		if _, err := os.Stat(filepath.Join(m.Home, "horcrux.pid")); err == nil {
			errs = append(errs, fmt.Errorf("horcrux-%d left its pid file: it did not stop cleanly\n%s", m.ID, m.proc.Tail(10)))
		}
	}
	return errors.Join(errs...)
}

// Signed returns how many signatures the members' logs report ("Signed"
// lines of type proposal, prevote or precommit), all members together.
func (c *HorcruxCluster) Signed() int {
	n := 0
	for _, m := range c.Members {
		if m.proc == nil {
			continue
		}
		for _, l := range m.proc.Lines() {
			if strings.Contains(l, "] Signed ") && strings.Contains(l, " type=") {
				n++
			}
		}
	}
	return n
}

// OpenCluster returns the Cluster of existing cosigner homes (cosigner
// i+1 at homes[i]), such as `cosigner migrate horcrux` writes, with each
// member's addresses read from its cosigner.toml. Nothing is started.
func OpenCluster(t testing.TB, bin, chainID string, homes []string) *Cluster {
	t.Helper()
	c := &Cluster{Dir: filepath.Dir(homes[0]), ChainID: chainID, t: t, proxies: map[Link]*Proxy{}}
	for i, home := range homes {
		cfg, err := config.Load(home)
		if err != nil {
			t.Fatal(err)
		}
		self, ok := cfg.Threshold.Self()
		if !ok || cfg.Threshold.ID != i+1 {
			t.Fatalf("%s is cosigner %d, want %d", home, cfg.Threshold.ID, i+1)
		}
		c.Threshold = cfg.Threshold.Threshold
		m := &Member{ID: i + 1, Home: home, GRPCAddr: self.Address, RaftAddr: self.RaftAddress, MetricsAddr: cfg.Metrics.Listen, t: t, bin: bin}
		m.CLI = &Cosigner{Bin: bin, Home: home, ChainID: chainID, t: t}
		c.Members = append(c.Members, m)
	}
	return c
}
