package harness

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/cluster"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/raft"
)

// ClusterConfig describes a threshold cluster signing for one chain.
type ClusterConfig struct {
	// Bin is the cosigner binary.
	Bin string
	// Threshold is M and Shares is N.
	Threshold, Shares int
	// ChainID is the chain the cluster signs for.
	ChainID string
	// KeyFile is the validator key to shard, for example a Node's
	// ValidatorKeyFile. Empty: the homes are prepared without a key
	// (`shard --no-key`), for RunDKG to generate it.
	KeyFile string
	// Nodes are the priv_validator_laddr of every node the leader dials.
	Nodes []string
	// Proxies routes every link between two cosigners through its own
	// Proxy: one per direction and protocol (gRPC and Raft), so a test can
	// cut any cosigner off from the others. Each cosigner still listens on
	// its real addresses; only the addresses it dials the others at change.
	Proxies bool
	// ProxyProtocols limits Proxies to the links of these protocols
	// (LinkGRPC, LinkRaft); empty: both.
	ProxyProtocols []string
	// LogLevel defaults to "debug", which the share records need.
	LogLevel string
}

// Link protocols.
const (
	LinkGRPC = "grpc"
	LinkRaft = "raft"
)

// Link is one directed connection between two cosigners: From dials To.
type Link struct {
	From, To int
	Proto    string // LinkGRPC or LinkRaft
}

// Cluster is a threshold cluster of `cosigner start` processes set up from
// `cosigner shard` output: DIR/cosigner-i for i in 1..N, each with its own
// free gRPC, Raft and metrics ports on 127.0.0.1 and, when asked, proxies on every
// link between cosigners.
//
// A Cluster is driven from the test goroutine; it is not safe for
// concurrent use.
type Cluster struct {
	Dir     string
	ChainID string
	// Threshold is M.
	Threshold int
	// Members[i] is cosigner i+1.
	Members []*Member

	t       testing.TB
	proxies map[Link]*Proxy
}

// Member is one cosigner of a Cluster (or a copy of one, from CopyMember).
// Each start logs to DIR/<home's name>.run<n>.log; the output of every run is kept, so the
// records of a member span its restarts.
type Member struct {
	ID   int
	Home string
	// GRPCAddr and RaftAddr are where this cosigner listens; MetricsAddr
	// is its Prometheus endpoint.
	GRPCAddr, RaftAddr, MetricsAddr string
	// CLI runs setup and state commands against Home.
	CLI *Cosigner

	t       testing.TB
	bin     string
	runs    []*Process
	dkgRuns int
}

// NewCluster shards cfg.KeyFile with `cosigner shard`, rewrites each
// cosigner.toml (log level, metrics port, peer addresses, proxies) and runs `cosigner
// state init --height 0` in every home. Nothing is started.
func NewCluster(t testing.TB, cfg ClusterConfig) *Cluster {
	t.Helper()
	if cfg.LogLevel == "" {
		cfg.LogLevel = "debug"
	}
	dir := t.TempDir()
	c := &Cluster{Dir: filepath.Join(dir, "shards"), ChainID: cfg.ChainID, Threshold: cfg.Threshold, t: t, proxies: map[Link]*Proxy{}}

	args := []string{"shard", "--key", cfg.KeyFile}
	if cfg.KeyFile == "" {
		args = []string{"shard", "--no-key"}
	}
	args = append(args, "--threshold", strconv.Itoa(cfg.Threshold),
		"--shares", strconv.Itoa(cfg.Shares), "--out", c.Dir, "--chain-id", cfg.ChainID)
	for _, n := range cfg.Nodes {
		args = append(args, "--node", n)
	}
	for id := 1; id <= cfg.Shares; id++ {
		grpcPort, raftPort := freePortPair(t)
		metricsPort, err := FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		m := &Member{
			ID:          id,
			Home:        filepath.Join(c.Dir, fmt.Sprintf("cosigner-%d", id)),
			GRPCAddr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(grpcPort)),
			RaftAddr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(raftPort)),
			MetricsAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(metricsPort)),
			t:           t,
			bin:         cfg.Bin,
		}
		m.CLI = &Cosigner{Bin: cfg.Bin, Home: m.Home, ChainID: cfg.ChainID, t: t}
		c.Members = append(c.Members, m)
		// shard puts Raft on the next port and metrics on the one after;
		// the rewrite below replaces both with free ports.
		args = append(args, "--peer", m.GRPCAddr)
	}
	shard := &Cosigner{Bin: cfg.Bin, Home: dir, ChainID: cfg.ChainID, t: t}
	shard.MustRun(args...)

	if cfg.Proxies {
		protos := cfg.ProxyProtocols
		if len(protos) == 0 {
			protos = []string{LinkGRPC, LinkRaft}
		}
		for _, from := range c.Members {
			for _, to := range c.Members {
				if from == to {
					continue
				}
				for _, proto := range protos {
					l := Link{From: from.ID, To: to.ID, Proto: proto}
					target := to.GRPCAddr
					if proto == LinkRaft {
						target = to.RaftAddr
					}
					c.proxies[l] = NewProxy(t, fmt.Sprintf("%d->%d/%s", from.ID, to.ID, proto), target)
				}
			}
		}
	}
	for _, m := range c.Members {
		peers := c.peerAddrs(m)
		path := filepath.Join(m.Home, "cosigner.toml")
		if err := EditTOMLFile(path, map[string]map[string]string{
			"":        {"log_level": strconv.Quote(cfg.LogLevel)},
			"metrics": {"listen": strconv.Quote(m.MetricsAddr)},
		}); err != nil {
			t.Fatal(err)
		}
		if err := rewritePeers(path, peers); err != nil {
			t.Fatal(err)
		}
		m.CLI.MustRun("state", "init", "--home", m.Home, "--chain-id", cfg.ChainID, "--height", "0")
	}
	return c
}

// peerAddrs returns, by id, the gRPC and Raft addresses member m reaches
// every cosigner at (itself: where it listens), through the proxies if the
// cluster has them.
func (c *Cluster) peerAddrs(m *Member) map[int][2]string {
	peers := map[int][2]string{}
	for _, p := range c.Members {
		addrs := [2]string{p.GRPCAddr, p.RaftAddr}
		if p.ID == m.ID {
			addrs = [2]string{m.GRPCAddr, m.RaftAddr}
		} else {
			for i, proto := range []string{LinkGRPC, LinkRaft} {
				if px := c.proxies[Link{m.ID, p.ID, proto}]; px != nil {
					addrs[i] = px.Addr
				}
			}
		}
		peers[p.ID] = addrs
	}
	return peers
}

// CopyMember copies the home of cosigner id, which must be stopped, as a
// cloned VM or a restored snapshot would hold it (share, certificate,
// sign state, Raft stores, modes kept), into DIR/cosigner-<id>-copy, and
// returns a member for it that is not one of Members. A real clone has the
// same addresses; on loopback the copy cannot bind the original's ports, so
// it listens on its own gRPC, Raft and metrics ports and reaches the others
// as the original does. Route the others to both with a Proxy's
// SetTargets.
func (c *Cluster) CopyMember(id int) *Member {
	c.t.Helper()
	orig := c.Member(id)
	if orig.Running() {
		c.t.Fatalf("cluster: copy cosigner %d: stop it first (its Raft stores are open)", id)
	}
	grpcPort, raftPort := freePortPair(c.t)
	metricsPort, err := FreePort("127.0.0.1")
	if err != nil {
		c.t.Fatal(err)
	}
	m := &Member{
		ID:          id,
		Home:        filepath.Join(c.Dir, fmt.Sprintf("cosigner-%d-copy", id)),
		GRPCAddr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(grpcPort)),
		RaftAddr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(raftPort)),
		MetricsAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(metricsPort)),
		t:           c.t,
		bin:         orig.bin,
	}
	m.CLI = &Cosigner{Bin: orig.bin, Home: m.Home, ChainID: c.ChainID, t: c.t}
	if err := copyHome(orig.Home, m.Home); err != nil {
		c.t.Fatalf("cluster: copy cosigner %d: %v", id, err)
	}
	path := filepath.Join(m.Home, "cosigner.toml")
	if err := EditTOMLFile(path, map[string]map[string]string{"metrics": {"listen": strconv.Quote(m.MetricsAddr)}}); err != nil {
		c.t.Fatal(err)
	}
	if err := rewritePeers(path, c.peerAddrs(m)); err != nil {
		c.t.Fatal(err)
	}
	return m
}

// copyHome copies the regular files and directories under src to dst,
// keeping their modes (cosigner refuses key files readable by others).
// Sockets and other special files are left out.
func copyHome(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm())
		case !d.Type().IsRegular():
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
}

// freePortPair returns two free ports on 127.0.0.1, for a cosigner's gRPC
// service and Raft transport. The gRPC port stays below 65534 because
// `cosigner shard --peer` reserves the next port for Raft.
func freePortPair(t testing.TB) (int, int) {
	t.Helper()
	for range 10 {
		a, err := FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if a >= 65534 {
			continue
		}
		b, err := FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
	t.Fatal("no free port pair on 127.0.0.1")
	return 0, 0
}

// rewritePeers sets the address and raft_address of every
// [[threshold.peer]] table of the cosigner.toml at path from
// addrs[id] = {gRPC, Raft}, keeping the rest of the file (comments
// included) as `cosigner shard` wrote it.
func rewritePeers(path string, addrs map[int][2]string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(string(data), "\n")
	inPeer, id, edits := false, 0, 0
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "[") {
			inPeer, id = trimmed == "[[threshold.peer]]", 0
			continue
		}
		key, val, ok := strings.Cut(trimmed, "=")
		if !inPeer || !ok || strings.HasPrefix(trimmed, "#") {
			continue
		}
		switch strings.TrimSpace(key) {
		case "id":
			if id, err = strconv.Atoi(strings.TrimSpace(val)); err != nil {
				return fmt.Errorf("%s line %d: peer id %q: %w", path, i+1, val, err)
			}
		case "address", "raft_address":
			a, ok := addrs[id]
			if !ok {
				return fmt.Errorf("%s line %d: %s of peer %d before its id, or an unknown peer", path, i+1, key, id)
			}
			v := a[0]
			if strings.TrimSpace(key) == "raft_address" {
				v = a[1]
			}
			lines[i] = strings.TrimSpace(key) + " = " + strconv.Quote(v)
			edits++
		}
	}
	if edits != 2*len(addrs) {
		return fmt.Errorf("%s: rewrote %d peer addresses, want %d (two per peer)", path, edits, 2*len(addrs))
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600)
}

// AddChain runs 'cosigner shard --add-to' on the cluster's homes (which
// must be stopped for the change to take effect at their next start) with
// the key file for chainID and its nodes, plus extra flags, and returns the
// result; on success it runs 'cosigner state init --height 0' for chainID
// in every home.
func (c *Cluster) AddChain(keyFile, chainID string, nodes []string, extra ...string) Result {
	c.t.Helper()
	bin := c.Members[0].bin
	args := []string{"shard", "--key", keyFile, "--add-to", c.Dir, "--chain-id", chainID}
	for _, n := range nodes {
		args = append(args, "--node", n)
	}
	shard := &Cosigner{Bin: bin, Home: filepath.Dir(c.Dir), ChainID: chainID, t: c.t}
	res := shard.Run(append(args, extra...)...)
	if res.Code != 0 {
		return res
	}
	for _, m := range c.Members {
		m.CLI.MustRun("state", "init", "--home", m.Home, "--chain-id", chainID, "--height", "0")
	}
	return res
}

// Member returns cosigner id (1-based).
func (c *Cluster) Member(id int) *Member { return c.Members[id-1] }

// Start starts every cosigner that is not running.
func (c *Cluster) Start() {
	c.t.Helper()
	for _, m := range c.Members {
		if !m.Running() {
			m.Start()
		}
	}
}

// Proxy returns the proxy of link l, or nil without proxies.
func (c *Cluster) Proxy(l Link) *Proxy { return c.proxies[l] }

// Isolate cuts every proxy on a link to or from cosigner id, both
// protocols, and returns them. It fails the test without proxies.
func (c *Cluster) Isolate(id int) []*Proxy {
	c.t.Helper()
	if len(c.proxies) == 0 {
		c.t.Fatal("cluster: Isolate needs ClusterConfig.Proxies")
	}
	var cut []*Proxy
	for l, p := range c.proxies {
		if l.From == id || l.To == id {
			p.Cut()
			cut = append(cut, p)
		}
	}
	return cut
}

// SetDelay adds latency d, both ways, to every proxy of protocol proto
// (LinkGRPC or LinkRaft); 0 removes it.
func (c *Cluster) SetDelay(proto string, d time.Duration) {
	for l, p := range c.proxies {
		if l.Proto == proto {
			p.SetDelay(d)
		}
	}
}

// HealAll heals every proxy.
func (c *Cluster) HealAll() {
	for _, p := range c.proxies {
		p.Heal()
	}
}

// Start starts `cosigner start --home Home` and returns the process, which
// is stopped when the test ends.
func (m *Member) Start() *Process {
	m.t.Helper()
	run := len(m.runs) + 1
	name := filepath.Base(m.Home) // cosigner-<id>, or cosigner-<id>-copy
	logPath := filepath.Join(filepath.Dir(m.Home), fmt.Sprintf("%s.run%d.log", name, run))
	p := StartProcess(m.t, fmt.Sprintf("%s (run %d)", name, run), logPath, nil, m.bin, "start", "--home", m.Home)
	m.runs = append(m.runs, p)
	return p
}

// Current returns the most recently started process, or nil.
func (m *Member) Current() *Process {
	if len(m.runs) == 0 {
		return nil
	}
	return m.runs[len(m.runs)-1]
}

// Runs returns every process started so far, oldest first.
func (m *Member) Runs() []*Process { return append([]*Process(nil), m.runs...) }

// Running reports whether the current process is alive.
func (m *Member) Running() bool {
	p := m.Current()
	return p != nil && !p.Exited()
}

// Kill SIGKILLs the current process and waits for it to die.
func (m *Member) Kill() {
	if p := m.Current(); p != nil {
		p.Kill()
	}
}

// Stop stops the current process with SIGTERM (SIGKILL after a grace
// period).
func (m *Member) Stop() {
	if p := m.Current(); p != nil {
		p.Stop()
	}
}

// Log lines of `cosigner start` in threshold mode the harness follows,
// from the messages cosigner exports.
var (
	msgLeading        = Msg(cluster.LogLeading)
	msgStoppedLeading = Msg(cluster.LogStoppedLeading)
	msgReleasedShare  = Msg(cluster.LogReleasedShare)
	msgRefusedDouble  = Msg(signstate.LogRefusedDoubleSign)
)

// Msg is how message appears in a log line of slog's text handler.
func Msg(message string) string { return fmt.Sprintf("msg=%q", message) }

// IsLeadingLine reports whether line is a cosigner taking the lead.
func IsLeadingLine(line string) bool { return strings.Contains(line, msgLeading) }

// IsFollowingLine reports whether line is a cosigner's Raft node naming a
// leader (itself or another), as it does once it has joined the cluster.
func IsFollowingLine(line string) bool {
	if !strings.Contains(line, Msg(raft.LogLeadership)) {
		return false
	}
	l := ParseSlogText(line)["leader"]
	return l != "" && l != "0"
}

// leadState returns whether p's output shows it leading now (its last
// "leading" line after its last "stopped leading" line) and that term.
func leadState(p *Process) (leading bool, term int64) {
	lead, stop := -1, -1
	lines := p.Lines()
	for i, l := range lines {
		switch {
		case strings.Contains(l, msgLeading):
			lead = i
		case strings.Contains(l, msgStoppedLeading):
			stop = i
		}
	}
	if lead < 0 || lead < stop {
		return false, 0
	}
	term, _ = strconv.ParseInt(ParseSlogText(lines[lead])["term"], 10, 64)
	return true, term
}

// Leader returns the running member whose log says it leads, the one with
// the highest term if a deposed leader has not noticed yet, or nil.
func (c *Cluster) Leader() *Member {
	var best *Member
	var bestTerm int64 = -1
	for _, m := range c.Members {
		if !m.Running() {
			continue
		}
		if ok, term := leadState(m.Current()); ok && term > bestTerm {
			best, bestTerm = m, term
		}
	}
	return best
}

// WaitLeader waits until a running member other than those in exclude
// leads, and returns it.
func (c *Cluster) WaitLeader(ctx context.Context, exclude ...*Member) (*Member, error) {
	isExcluded := func(m *Member) bool {
		for _, e := range exclude {
			if e == m {
				return true
			}
		}
		return false
	}
	for {
		var watch []*Member
		var from []int
		for _, m := range c.Members {
			if m.Running() && !isExcluded(m) {
				watch = append(watch, m)
				from = append(from, len(m.Current().Lines()))
			}
		}
		var best *Member
		var bestTerm int64 = -1
		for _, m := range watch {
			if ok, term := leadState(m.Current()); ok && term > bestTerm {
				best, bestTerm = m, term
			}
		}
		if best != nil {
			return best, nil
		}
		if len(watch) == 0 {
			return nil, errors.New("cluster: no running cosigner to lead")
		}
		if _, _, _, err := waitAny(ctx, watch, from, IsLeadingLine); err != nil {
			return nil, fmt.Errorf("cluster: waiting for a leader: %w", err)
		}
	}
}

// Mark is a position in the output of every running process of a
// cluster, taken with Cluster.Mark and used to wait for lines written
// after it.
type Mark map[*Process]int

// Mark returns the current end of every running member's output.
func (c *Cluster) Mark() Mark {
	mk := Mark{}
	for _, m := range c.Members {
		if m.Running() {
			mk[m.Current()] = len(m.Current().Lines())
		}
	}
	return mk
}

// WaitSigned waits for the first "signed ..." line written after mk by a
// running member other than those in exclude, and returns the member, the
// record and the time the line was logged (from its time= attribute, or
// when it was read).
func (c *Cluster) WaitSigned(ctx context.Context, mk Mark, exclude ...*Member) (*Member, SignRecord, time.Time, error) {
	var watch []*Member
	var from []int
	for _, m := range c.Members {
		skip := !m.Running()
		for _, e := range exclude {
			skip = skip || e == m
		}
		if !skip {
			watch = append(watch, m)
			from = append(from, mk[m.Current()]) // 0 for a process started after mk
		}
	}
	if len(watch) == 0 {
		return nil, SignRecord{}, time.Time{}, errors.New("cluster: no running cosigner to sign")
	}
	isSigned := func(l string) bool { _, ok := ParseSignRecord(l); return ok }
	m, line, at, err := waitAny(ctx, watch, from, isSigned)
	if err != nil {
		return nil, SignRecord{}, time.Time{}, fmt.Errorf("cluster: waiting for a signature: %w", err)
	}
	rec, _ := ParseSignRecord(line)
	if ts, err := time.Parse(time.RFC3339Nano, ParseSlogText(line)["time"]); err == nil {
		at = ts
	}
	return m, rec, at, nil
}

// waitAny waits until the current process of any of ms writes, at or after
// from[i], a line satisfying match, and returns the first such member and
// line and when it was seen. It stops watching the others before
// returning.
func waitAny(ctx context.Context, ms []*Member, from []int, match func(string) bool) (*Member, string, time.Time, error) {
	ctx, cancel := context.WithCancel(ctx)
	type hit struct {
		m    *Member
		line string
		at   time.Time
		err  error
	}
	hits := make(chan hit, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, line, err := m.Current().WaitLine(ctx, from[i], match)
			hits <- hit{m, line, time.Now(), err}
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	var errs []error
	for range ms {
		h := <-hits
		if h.err == nil {
			return h.m, h.line, h.at, nil
		}
		errs = append(errs, h.err)
	}
	return nil, "", time.Time{}, errors.Join(errs...)
}

// ClusterRecord is one signature or signature share a cosigner released,
// from its log.
type ClusterRecord struct {
	SignRecord
	// Member is the cosigner id; Run is SignRecord.Run, its process.
	Member int
	// Share is true for a "released share" line (one cosigner's share),
	// false for a "signed ..." line (the leader's aggregate signature,
	// returned to a node).
	Share bool
}

func (r ClusterRecord) String() string {
	kind := "signature"
	if r.Share {
		kind = "share"
	}
	return fmt.Sprintf("%s of cosigner %d (run %d) for block %s", kind, r.Member, r.Run, r.Block)
}

// ParseShareRecord returns the record of a "released share" line, or false
// for any other line.
func ParseShareRecord(line string) (SignRecord, bool) {
	if !strings.Contains(line, msgReleasedShare) {
		return SignRecord{}, false
	}
	a := ParseSlogText(line)
	h, err := strconv.ParseInt(a["height"], 10, 64)
	if err != nil {
		return SignRecord{}, false
	}
	r, err := strconv.ParseInt(a["round"], 10, 32)
	if err != nil {
		return SignRecord{}, false
	}
	return SignRecord{Step: a["step"], Height: h, Round: int32(r), Block: a["block"], Chain: a["chain"], Line: line}, true
}

// Records returns every signature and share released by every member, all
// runs, in member and log order.
func (c *Cluster) Records() []ClusterRecord {
	var recs []ClusterRecord
	for _, m := range c.Members {
		recs = append(recs, m.Records()...)
	}
	return recs
}

// Records returns the signatures and shares this member released, all runs.
func (m *Member) Records() []ClusterRecord {
	var recs []ClusterRecord
	for i, p := range m.runs {
		for _, line := range p.Lines() {
			r, ok := ParseSignRecord(line)
			share := false
			if !ok {
				r, ok = ParseShareRecord(line)
				share = true
			}
			if ok {
				r.Run = i + 1
				recs = append(recs, ClusterRecord{SignRecord: r, Member: m.ID, Share: share})
			}
		}
	}
	return recs
}

// Refusals returns how many "refused double sign" lines every run of every
// member logged.
func (c *Cluster) Refusals() int {
	n := 0
	for _, m := range c.Members {
		for _, p := range m.runs {
			for _, l := range p.Lines() {
				if strings.Contains(l, msgRefusedDouble) {
					n++
				}
			}
		}
	}
	return n
}

// CheckClusterNoDoubleSign is CheckNoDoubleSign over a whole cluster: it
// reports every (chain, height, round, step) for which the records, pooled
// across cosigners, runs, signatures and shares, carry two different block
// ids. Two quorums share a cosigner whose mark refuses the second block, so
// not even a lone share for a second block should leave any cosigner.
func CheckClusterNoDoubleSign(recs []ClusterRecord) error {
	type hrs struct {
		chain string
		h     int64
		r     int32
		step  string
	}
	seen := map[hrs]ClusterRecord{}
	var errs []error
	for _, rec := range recs {
		k := hrs{rec.Chain, rec.Height, rec.Round, rec.Step}
		if prev, ok := seen[k]; ok && prev.Block != rec.Block {
			errs = append(errs, fmt.Errorf("double sign at %s %d/%d/%s: %s and %s", rec.Chain, rec.Height, rec.Round, rec.Step, prev, rec))
			continue
		}
		if _, ok := seen[k]; !ok {
			seen[k] = rec
		}
	}
	return errors.Join(errs...)
}

// WaitCommitSignedBy waits until a commit at height from or above holds a
// valid precommit by pub, and returns its height. It polls the node's RPC
// and fails the test after timeout.
func (n *Node) WaitCommitSignedBy(ctx context.Context, pub ed25519.PublicKey, from int64, timeout time.Duration) int64 {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	next := from
	var lastErr error
	err := n.poll(ctx, func() (bool, error) {
		top, err := n.Height(ctx)
		if err != nil {
			return false, nil
		}
		// /commit of the latest height may not be canonical yet: look
		// only below it.
		for ; next < top; next++ {
			raw, err := n.CommitJSON(ctx, next)
			if err != nil {
				return false, nil
			}
			switch err := VerifyCommitSignature(raw, n.ChainID, pub); {
			case err == nil:
				return true, nil
			case errors.Is(err, ErrNotInCommit):
				lastErr = err
			default:
				return false, fmt.Errorf("height %d: %w", next, err)
			}
		}
		return false, nil
	})
	if err != nil {
		n.t.Fatalf("node %s: waiting for a commit at or above %d signed by %X (reached %d; last: %v): %v",
			n.Version, from, []byte(pub[:6]), next, lastErr, err)
	}
	return next
}

// NewFullNode initialises, without starting it, a non-validator full node
// of of's chain: of's genesis, of as its persistent peer, and its own
// priv_validator_laddr, which a signer for of's validator key may serve as
// it serves of (the validator-and-sentry layout). Its PubKey,
// ValidatorKeyFile and VoteExtensionsHeight are of's.
func NewFullNode(t testing.TB, of *Node) *Node {
	t.Helper()
	n := NewNode(t, NodeConfig{Version: of.Version, ChainID: of.ChainID, IP: of.IP})
	genesis, err := os.ReadFile(of.genesisPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.genesisPath(), genesis, 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := nodeID(filepath.Join(of.Home, "config", "node_key.json"))
	if err != nil {
		t.Fatal(err)
	}
	n.peers = id + "@" + of.P2PAddr()
	if err := n.writeConfig(); err != nil {
		t.Fatal(err)
	}
	n.PubKey, n.ValidatorKeyFile, n.VoteExtensionsHeight = of.PubKey, of.ValidatorKeyFile, of.VoteExtensionsHeight
	return n
}

// FreePortPair returns two free ports on 127.0.0.1 for a cosigner's gRPC
// service and Raft transport, as NewCluster picks them.
func FreePortPair(t testing.TB) (int, int) { t.Helper(); return freePortPair(t) }

// RewritePeers sets the addresses of every [[threshold.peer]] of the
// cosigner.toml at path from addrs[id] = {gRPC, Raft}.
func RewritePeers(path string, addrs map[int][2]string) error { return rewritePeers(path, addrs) }
