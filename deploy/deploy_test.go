// Package deploy holds no Go code: it checks the deployment files beside it
// (Docker, compose, systemd, WireGuard firewall rules, Prometheus rules and
// the Grafana dashboard) so that they stay loadable and consistent with the
// code as both change.
//
// The checks that need an outside tool (promtool from Debian's prometheus
// package, systemd-analyze, nft) skip with a message when it is missing;
// everything else runs everywhere.
package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"gopkg.in/yaml.v3"

	"github.com/cosigner/cosigner/cosigner/config"
)

// metricNames is the fixed list of metrics cosigner exports. Dashboards and
// alert rules may query only these (and Prometheus's own "up" in rules).
var metricNames = []string{
	"cosigner_cluster_peers_reachable",
	"cosigner_cluster_threshold",
	"cosigner_cluster_quorum_available",
	"cosigner_raft_is_leader",
	"cosigner_raft_term",
	"cosigner_raft_leader_id",
	"cosigner_sign_last_height",
	"cosigner_sign_last_round",
	"cosigner_sign_signatures_total",
	"cosigner_sign_refusals_total",
	"cosigner_sign_missed_heights_total",
	"cosigner_sign_request_duration_seconds",
	"cosigner_peer_share_rpc_duration_seconds",
	"cosigner_peer_refusals_total",
	"cosigner_peer_duplicate_boot_ids",
	"cosigner_peer_epoch_mismatches_total",
	"cosigner_state_write_duration_seconds",
	"cosigner_raft_apply_duration_seconds",
	"cosigner_nonce_pool_size",
	"cosigner_node_connected",
	"cosigner_build_info",
	"cosigner_doppelganger_tripped",
	"cosigner_doppelganger_watching",
	"cosigner_doppelganger_detected_total",
	"cosigner_doppelganger_rpc_errors_total",
}

// histograms are exported as <name>_bucket, _sum and _count series.
var histograms = []string{
	"cosigner_sign_request_duration_seconds",
	"cosigner_peer_share_rpc_duration_seconds",
	"cosigner_state_write_duration_seconds",
	"cosigner_raft_apply_duration_seconds",
}

// knownMetric reports whether name is an exported series name: a listed
// metric, or a bucket, sum or count series of a listed histogram.
func knownMetric(name string) bool {
	if slices.Contains(metricNames, name) && !slices.Contains(histograms, name) {
		return true
	}
	for _, h := range histograms {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if name == h+suffix {
				return true
			}
		}
	}
	return false
}

// promtool returns the path of promtool, or skips the test.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed: install Debian's prometheus package (apt-get install -y --no-install-recommends prometheus) to check the alert rules")
	}
	return p
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPromtoolCheck(t *testing.T) {
	p := promtool(t)
	t.Run("rules", func(t *testing.T) { runTool(t, p, "check", "rules", "prometheus/rules.yml") })
	t.Run("config", func(t *testing.T) { runTool(t, p, "check", "config", "prometheus/prometheus.yml") })
	t.Run("tryout config", func(t *testing.T) { runTool(t, p, "check", "config", "prometheus/tryout.yml") })
}

func TestPromtoolTestRules(t *testing.T) {
	p := promtool(t)
	runTool(t, p, "test", "rules", "prometheus/rules_test.yml")
}

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestAlertRules(t *testing.T) {
	data, err := os.ReadFile("prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("rules.yml: %v", err)
	}
	docs, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := markdownAnchors(string(docs))
	alerts := map[string]bool{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			t.Run(r.Alert, func(t *testing.T) {
				for _, m := range queriedMetrics(r.Expr) {
					if !knownMetric(m) && m != "up" {
						t.Errorf("queries %q, which cosigner does not export", m)
					}
				}
				if s := r.Labels["severity"]; s != "critical" && s != "warning" {
					t.Errorf("severity %q: want critical or warning", s)
				}
				if r.Annotations["summary"] == "" {
					t.Error("no summary annotation")
				}
				u := r.Annotations["runbook_url"]
				_, anchor, ok := strings.Cut(u, "docs/operations.md#")
				if !ok || !anchors[anchor] {
					t.Errorf("runbook_url %q: want a link to a heading of docs/operations.md", u)
				}
			})
		}
	}
	// The alerts the issue asks for.
	for _, a := range []string{
		"CosignerNoQuorum", "CosignerDown", "CosignerNoSignature",
		"CosignerDoubleSignRefused", "CosignerNoncePoolEmpty", "CosignerNodeDisconnected",
		"CosignerPeerRefusing", "CosignerDuplicateID",
		"CosignerDoppelganger", "CosignerDoppelgangerWatchHolding",
	} {
		if !alerts[a] {
			t.Errorf("rules.yml has no alert %s", a)
		}
	}
}

// markdownAnchors returns the GitHub anchors of the headings in md.
func markdownAnchors(md string) map[string]bool {
	anchors := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		h = drop.ReplaceAllString(h, "")
		anchors[strings.ReplaceAll(h, " ", "-")] = true
	}
	return anchors
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^{}]*\}|\[[^\[\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	grafanaVar   = regexp.MustCompile(`\$\{?\w+\}?`)
	promToken    = regexp.MustCompile(`[0-9][0-9a-zA-Z.+]*|[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`)
	promKeywords = []string{"and", "or", "unless", "by", "without", "on", "ignoring",
		"group_left", "group_right", "offset", "bool", "atan2", "inf", "nan", "Inf", "NaN"}
)

// queriedMetrics returns the metric names a PromQL expression selects. It
// drops strings, label matchers, ranges, grouping clauses and Grafana
// variables, then keeps the identifiers that are neither functions,
// aggregations nor keywords.
func queriedMetrics(expr string) []string {
	s := promString.ReplaceAllString(expr, `""`)
	s = grafanaVar.ReplaceAllString(s, "")
	s = promMatchers.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	var names []string
	for _, tok := range promToken.FindAllString(s, -1) {
		if tok[0] >= '0' && tok[0] <= '9' || strings.HasSuffix(tok, "(") {
			continue // a number or duration; a function or aggregation
		}
		tok = strings.TrimSpace(tok)
		if slices.Contains(promKeywords, tok) || slices.Contains(names, tok) {
			continue
		}
		names = append(names, tok)
	}
	return names
}

func TestQueriedMetrics(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up{job="cosigner"} == 0`, []string{"up"}},
		{`max by (job) (cosigner_cluster_quorum_available{job=~"$job"}) == 0 or sum by (job) (up) == 0`,
			[]string{"cosigner_cluster_quorum_available", "up"}},
		{`histogram_quantile(0.99, sum by (le, chain) (rate(cosigner_sign_request_duration_seconds_bucket{chain=~"$chain"}[$__rate_interval]))) > 0.5`,
			[]string{"cosigner_sign_request_duration_seconds_bucket"}},
		{`x_total > 0 unless x_total offset 10m`, []string{"x_total"}},
		{`a and on (job, instance) b == 1`, []string{"a", "b"}},
		{`1e9 * foo{reason="conflict", x='a{b}'}`, []string{"foo"}},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			if got := queriedMetrics(tc.expr); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"` // a collapsed row's panels
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

var labelValues = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)

func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("grafana/cosigner.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("cosigner.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both must be set", d.UID, d.Title)
	}

	// Every query, by panel title.
	exprs := map[string][]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q: a target without expr", p.Title)
					continue
				}
				exprs[p.Title] = append(exprs[p.Title], tg.Expr)
			}
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q queries nothing", p.Title)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				t.Errorf("variable %s: query is neither an object nor a string", v.Name)
			}
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("variable %s: query %q: want label_values(<metric>, <label>)", v.Name, q.Query)
			continue
		}
		if !knownMetric(m[1]) {
			t.Errorf("variable %s queries %q, which cosigner does not export", v.Name, m[1])
		}
	}

	used := map[string]bool{}
	for title, es := range exprs {
		for _, e := range es {
			for _, m := range queriedMetrics(e) {
				used[m] = true
				if !knownMetric(m) {
					t.Errorf("panel %q queries %q, which cosigner does not export", title, m)
				}
			}
		}
	}
	// What the dashboard must show: quorum, heights, signatures by
	// outcome, latency percentiles, peer round trips, nonce pools.
	for _, m := range []string{
		"cosigner_cluster_quorum_available", "cosigner_sign_last_height", "cosigner_sign_signatures_total",
		"cosigner_sign_request_duration_seconds_bucket", "cosigner_peer_share_rpc_duration_seconds_bucket",
		"cosigner_nonce_pool_size",
	} {
		if !used[m] {
			t.Errorf("no panel queries %s", m)
		}
	}

	// With promtool at hand, check that every query parses: as the
	// expression of a recording rule, with Grafana's variables filled in.
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed: dashboard queries not parsed")
		return
	}
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	titles := make([]string, 0, len(exprs))
	for title := range exprs {
		titles = append(titles, title)
	}
	sort.Strings(titles)
	fill := strings.NewReplacer("$__rate_interval", "1m", "$job", "cosigner", "$chain", ".*", "${datasource}", "")
	for _, title := range titles {
		for _, e := range exprs[title] {
			q, _ := json.Marshal(fill.Replace(e))
			b.WriteString("      - record: dashboard:query\n        expr: " + string(q) + "\n")
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard_rules.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	runTool(t, p, "check", "rules", path)
}

func TestCompose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Only the file's own defaults: no .env, no environment of the test.
	opts, err := cli.NewProjectOptions([]string{"docker-compose.yml"},
		cli.WithWorkingDirectory("."), cli.WithEnv(nil), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(ctx)
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}

	want := []string{"cosigner-1", "cosigner-2", "cosigner-3", "node"}
	got := project.ServiceNames()
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("services %q, want %q", got, want)
	}
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	shardDirs := map[string]string{}
	for _, name := range want[:3] {
		t.Run(name, func(t *testing.T) {
			s := project.Services[name]
			if s.Build == nil || filepath.Base(s.Build.Dockerfile) != "Dockerfile" || s.Build.Context != abs("..") {
				t.Errorf("build %+v: want deploy/Dockerfile with the repository root as context", s.Build)
			}
			if s.User == "" || strings.HasPrefix(s.User, "0:") || s.User == "root" {
				t.Errorf("user %q: want the unprivileged owner of the shard directory", s.User)
			}
			if len(s.Command) == 0 || s.Command[0] != "start" {
				t.Errorf("command %q: want start", s.Command)
			}
			var home string
			for _, v := range s.Volumes {
				if v.Target == "/var/lib/cosigner" {
					home = v.Source
					if v.Type != "bind" || v.ReadOnly {
						t.Errorf("/var/lib/cosigner: type %s read-only %v: want a writable bind mount (state and Raft live there)", v.Type, v.ReadOnly)
					}
				}
			}
			if wantHome := abs(filepath.Join(".tryout", "shards", name)); home != wantHome {
				t.Errorf("/var/lib/cosigner is mounted from %q, want this cosigner's own shard directory %q", home, wantHome)
			}
			if other, ok := shardDirs[home]; ok {
				t.Errorf("mounts the shard directory of %s", other)
			}
			shardDirs[home] = name
		})
	}

	t.Run("node", func(t *testing.T) {
		n := project.Services["node"]
		if !strings.HasPrefix(n.Image, "cometbft/cometbft:") {
			t.Errorf("image %q: want cometbft/cometbft", n.Image)
		}
		var home string
		for _, v := range n.Volumes {
			if v.Target == "/cometbft" {
				home = v.Source
			}
		}
		if home != abs(filepath.Join(".tryout", "node")) {
			t.Errorf("/cometbft is mounted from %q, want .tryout/node", home)
		}
		for _, c := range want[:3] {
			if _, ok := n.DependsOn[c]; !ok {
				t.Errorf("node does not depend on %s: the signer must be dialing when the node starts", c)
			}
		}
		if n.Restart != "on-failure" && n.Restart != "always" && n.Restart != "unless-stopped" {
			t.Errorf("restart %q: the node exits when no signer answers at start, so it must be restarted", n.Restart)
		}
	})

	// The monitoring profile: Prometheus with the production rules and a
	// scrape target per cosigner service, Grafana with the dashboard.
	t.Run("monitoring", func(t *testing.T) {
		opts, err := cli.NewProjectOptions([]string{"docker-compose.yml"},
			cli.WithWorkingDirectory("."), cli.WithEnv(nil), cli.WithResolvedPaths(true), cli.WithProfiles([]string{"monitoring"}))
		if err != nil {
			t.Fatal(err)
		}
		project, err := opts.LoadProject(ctx)
		if err != nil {
			t.Fatalf("load docker-compose.yml --profile monitoring: %v", err)
		}
		mounts := func(service string) map[string]string {
			m := map[string]string{}
			for _, v := range project.Services[service].Volumes {
				m[v.Target] = v.Source
			}
			return m
		}
		for service, want := range map[string]map[string]string{
			"prometheus": {
				"/etc/prometheus/prometheus.yml": abs("prometheus/tryout.yml"),
				"/etc/prometheus/rules.yml":      abs("prometheus/rules.yml"),
			},
			"grafana": {
				"/etc/grafana/provisioning":                 abs("grafana/provisioning"),
				"/var/lib/grafana/dashboards/cosigner.json": abs("grafana/cosigner.json"),
			},
		} {
			got := mounts(service)
			for target, source := range want {
				if got[target] != source {
					t.Errorf("%s mounts %q at %s, want %q", service, got[target], target, source)
				}
				if _, err := os.Stat(source); err != nil {
					t.Errorf("%s: %v", service, err)
				}
			}
		}
		cfg, err := os.ReadFile("prometheus/tryout.yml")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range want[:3] {
			if !bytes.Contains(cfg, []byte(`"`+c+`:7102"`)) {
				t.Errorf("prometheus/tryout.yml does not scrape %s:7102", c)
			}
		}
	})

	// tryout.sh prepares exactly what the compose file mounts.
	script, err := os.ReadFile("tryout.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"--peer cosigner-1:7100 --peer cosigner-2:7100 --peer cosigner-3:7100",
		"--node tcp://node:26659", "OUT=.tryout", `listen = "0.0.0.0:7102"`} {
		if !bytes.Contains(script, []byte(s)) {
			t.Errorf("tryout.sh does not contain %q", s)
		}
	}
}

// unitFile returns the keys of a systemd unit file, each with its values in
// order (a key given several times, like SystemCallFilter, accumulates).
func unitFile(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: line %q is not key=value", path, line)
		}
		keys[strings.TrimSpace(k)] = append(keys[strings.TrimSpace(k)], strings.TrimSpace(v))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestSystemdUnit(t *testing.T) {
	const path = "systemd/cosigner.service"
	keys := unitFile(t, path)
	for _, tc := range []struct{ key, want string }{
		{"User", "cosigner"},
		{"NoNewPrivileges", "yes"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"StateDirectory", "cosigner"},
		{"ReadWritePaths", "/var/lib/cosigner"},
		{"CapabilityBoundingSet", ""},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"MemoryDenyWriteExecute", "yes"},
		{"SystemCallFilter", "@system-service"},
		{"Restart", "on-failure"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			vals, ok := keys[tc.key]
			if !ok {
				t.Fatalf("%s is not set", tc.key)
			}
			if !slices.Contains(vals, tc.want) {
				t.Errorf("%s = %q, want %q among them", tc.key, vals, tc.want)
			}
		})
	}
	if exec := keys["ExecStart"]; len(exec) != 1 || !strings.Contains(exec[0], "--home /var/lib/cosigner") {
		t.Errorf("ExecStart %q: want one command with --home /var/lib/cosigner", exec)
	}

	// systemd-analyze reads the unit as systemd would. It wants ExecStart
	// to exist: point it at a binary that does.
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit not verified")
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "cosigner.service")
	data = bytes.ReplaceAll(data, []byte("/usr/local/bin/cosigner"), []byte(self))
	if err := os.WriteFile(unit, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// verify exits 0 on some complaints and prints them: any output fails.
	if out := runTool(t, sa, "verify", unit); strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify:\n%s", out)
	}
}

func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile("systemd/cosigner.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		t.Fatalf("systemd/cosigner.toml: %v", err)
	}
	if cfg.Mode != config.ModeThreshold {
		t.Errorf("mode %q, want threshold", cfg.Mode)
	}
	if cfg.Metrics.Listen == "" {
		t.Error("[metrics] listen is empty")
	}
	// Prometheus scrapes each cosigner where the example says it listens.
	prom, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(prom, []byte(`"`+cfg.Metrics.Listen+`"`)) {
		t.Errorf("prometheus.yml does not scrape %s", cfg.Metrics.Listen)
	}
	// The firewall opens what cosigner.toml listens on.
	nft, err := os.ReadFile("wireguard/signer.nft")
	if err != nil {
		t.Fatal(err)
	}
	self, _ := cfg.Threshold.Self()
	for _, addr := range []string{self.Address, self.RaftAddress, cfg.Metrics.Listen} {
		_, port, _ := strings.Cut(addr, ":")
		if !bytes.Contains(nft, []byte(port)) {
			t.Errorf("signer.nft does not mention port %s (%s)", port, addr)
		}
	}
}

func TestNftables(t *testing.T) {
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Skip("nft not installed: firewall rules not checked")
	}
	for _, f := range []string{"wireguard/validator.nft", "wireguard/signer.nft"} {
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, err := exec.Command(nft, "--check", "--file", f).CombinedOutput()
			var ee *exec.ExitError
			if errors.As(err, &ee) && bytes.Contains(out, []byte("Operation not permitted")) {
				t.Skipf("nft --check needs CAP_NET_ADMIN here: %s", out)
			}
			if err != nil {
				t.Fatalf("nft --check --file %s: %v\n%s", f, err, out)
			}
		})
	}
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, users, volumes []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, f[1])
			users = nil // USER and VOLUME of the final stage count
			volumes = nil
		case "USER":
			users = append(users, f[1])
		case "VOLUME":
			volumes = append(volumes, strings.Join(f[1:], " "))
		}
	}
	if len(froms) < 2 {
		t.Errorf("%d stages, want a multi-stage build", len(froms))
	}
	if !bytes.Contains(data, []byte("CGO_ENABLED=0")) {
		t.Error("the binary is not built with CGO_ENABLED=0")
	}
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1], "root") || strings.HasPrefix(users[len(users)-1], "0") {
		t.Errorf("final stage USER %q: want a non-root user", users)
	}
	if !slices.ContainsFunc(volumes, func(v string) bool { return strings.Contains(v, "/var/lib/cosigner") }) {
		t.Errorf("final stage VOLUME %q: want /var/lib/cosigner", volumes)
	}
}
