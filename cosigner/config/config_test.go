package config

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestParseConfigGood(t *testing.T) {
	data, err := os.ReadFile("testdata/good.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data)
	if err != nil {
		t.Fatalf("good.toml: %v", err)
	}
	if len(cfg.Chains) != 2 || cfg.Chains[0].ID != "kira-1" || len(cfg.Chains[0].Nodes) != 2 {
		t.Fatalf("chains decoded wrong: %+v", cfg.Chains)
	}
	if got := cfg.Chains[1].Prefix(); got != DefaultBech32Prefix {
		t.Errorf("default prefix = %q, want %q", got, DefaultBech32Prefix)
	}
	if cfg.Metrics.Listen != "127.0.0.1:26680" {
		t.Errorf("metrics.listen = %q", cfg.Metrics.Listen)
	}
}

// TestParseConfigBad runs every testdata/*.bad.toml; its first line says
// "# want: <text the error must contain>".
func TestParseConfigBad(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _ := bufio.NewReader(bytes.NewReader(data)).ReadString('\n')
			want, ok := strings.CutPrefix(strings.TrimSpace(first), "# want: ")
			if !ok {
				t.Fatalf("%s: first line must be '# want: ...'", f)
			}
			_, err = Parse(data)
			if err == nil {
				t.Fatalf("accepted; want error containing %q", want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not contain %q", err, want)
			}
		})
	}
}

func TestConfigMarshalRoundTrip(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Metrics.Listen = "127.0.0.1:9100"
	cfg.Chains = []ChainConfig{{ID: "kira-1", Key: "keys/kira-1.json", Bech32Prefix: "kira",
		Nodes: []string{"tcp://127.0.0.1:26659", "unix:///tmp/pv.sock"}}}
	got, err := Parse(cfg.Marshal())
	if err != nil {
		t.Fatalf("init's own output does not parse: %v\n%s", err, cfg.Marshal())
	}
	if got.Chains[0].Nodes[1] != "unix:///tmp/pv.sock" || got.Metrics.Listen != cfg.Metrics.Listen || got.Chains[0].Bech32Prefix != "kira" {
		t.Fatalf("round trip changed the config: %+v", got)
	}
}

func TestLoadConfigMissing(t *testing.T) {
	_, err := Load(t.TempDir())
	if err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("want a not-exist error, got %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		next := u.Unwrap()
		if next == nil {
			return err
		}
		err = next
	}
}

// TestConfigHeightBound: the height bound keys have safe defaults (on in
// threshold mode, off in softsign mode) and survive init's rendering.
func TestConfigHeightBound(t *testing.T) {
	def := DefaultConfig()
	if def.Threshold.MaxHeightAhead != DefaultMaxHeightAhead || def.Threshold.MaxHeightRate != DefaultMaxHeightRate {
		t.Errorf("threshold defaults = %d, %g", def.Threshold.MaxHeightAhead, def.Threshold.MaxHeightRate)
	}
	if def.Softsign.MaxHeightAhead != 0 || def.Softsign.MaxHeightRate != DefaultMaxHeightRate {
		t.Errorf("softsign defaults = %d, %g; want the bound off", def.Softsign.MaxHeightAhead, def.Softsign.MaxHeightRate)
	}

	soft := DefaultConfig()
	soft.Softsign = SoftsignConfig{MaxHeightAhead: 500, MaxHeightRate: 0.5}
	soft.Chains = []ChainConfig{{ID: "kira-1", Key: "keys/kira-1.json", Nodes: []string{"tcp://127.0.0.1:26659"}}}
	got, err := Parse(soft.Marshal())
	if err != nil {
		t.Fatalf("softsign rendering does not parse: %v\n%s", err, soft.Marshal())
	}
	if got.Softsign != soft.Softsign {
		t.Errorf("softsign bound after a round trip = %+v, want %+v", got.Softsign, soft.Softsign)
	}

	th := DefaultConfig()
	th.Mode = ModeThreshold
	th.Threshold.ID, th.Threshold.Threshold, th.Threshold.Shares = 1, 2, 3
	th.Threshold.MaxHeightAhead, th.Threshold.MaxHeightRate = 2000, 2.5
	for id := 1; id <= 3; id++ {
		th.Threshold.Peers = append(th.Threshold.Peers, PeerConfig{ID: id,
			Address: "127.0.0.1:" + strconv.Itoa(7000+10*id), RaftAddress: "127.0.0.1:" + strconv.Itoa(7001+10*id)})
	}
	th.Chains = []ChainConfig{{ID: "kira-1", Nodes: []string{"tcp://127.0.0.1:26659"}}}
	got, err = Parse(th.Marshal())
	if err != nil {
		t.Fatalf("threshold rendering does not parse: %v\n%s", err, th.Marshal())
	}
	if got.Threshold.MaxHeightAhead != 2000 || got.Threshold.MaxHeightRate != 2.5 {
		t.Errorf("threshold bound after a round trip = %d, %g", got.Threshold.MaxHeightAhead, got.Threshold.MaxHeightRate)
	}
	if strings.Contains(string(th.Marshal()), "[softsign]") {
		t.Error("threshold rendering has a [softsign] section")
	}
}

// TestConfigSignRawBytes: raw-bytes signing is off unless a chain sets
// sign_raw_bytes, and the key survives init's rendering.
func TestConfigSignRawBytes(t *testing.T) {
	good, err := os.ReadFile("testdata/good.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range cfg.Chains {
		if ch.SignRawBytes {
			t.Errorf("chain %q signs raw bytes without sign_raw_bytes", ch.ID)
		}
	}
	soft := DefaultConfig()
	soft.Chains = []ChainConfig{
		{ID: "celestia", Key: "keys/celestia.json", Nodes: []string{"tcp://127.0.0.1:26659"}, SignRawBytes: true},
		{ID: "kira-1", Key: "keys/kira-1.json", Nodes: []string{"tcp://127.0.0.1:26669"}},
	}
	got, err := Parse(soft.Marshal())
	if err != nil {
		t.Fatalf("rendering does not parse: %v\n%s", err, soft.Marshal())
	}
	if !got.Chains[0].SignRawBytes || got.Chains[1].SignRawBytes {
		t.Errorf("sign_raw_bytes after a round trip = %v, %v; want true, false", got.Chains[0].SignRawBytes, got.Chains[1].SignRawBytes)
	}

	// Threshold mode serves it too (each cosigner checks its own setting).
	th := DefaultConfig()
	th.Mode = ModeThreshold
	th.Threshold.ID, th.Threshold.Threshold, th.Threshold.Shares = 1, 2, 3
	for id := 1; id <= 3; id++ {
		th.Threshold.Peers = append(th.Threshold.Peers, PeerConfig{ID: id,
			Address: "127.0.0.1:" + strconv.Itoa(7000+10*id), RaftAddress: "127.0.0.1:" + strconv.Itoa(7001+10*id)})
	}
	th.Chains = []ChainConfig{{ID: "celestia", Nodes: []string{"tcp://127.0.0.1:26659"}, SignRawBytes: true}}
	got, err = Parse(th.Marshal())
	if err != nil {
		t.Fatalf("threshold rendering does not parse: %v\n%s", err, th.Marshal())
	}
	if !got.Chains[0].SignRawBytes {
		t.Error("threshold mode lost sign_raw_bytes in a round trip")
	}
}

// TestConfigDoppelganger: the watch defaults to DefaultDoppelgangerWatch
// heights once rpc is named, is off without rpc or at 0, refuses when the
// RPC is down unless told to warn, and survives init's rendering.
func TestConfigDoppelganger(t *testing.T) {
	zero, five := 0, 5
	for _, tc := range []struct {
		name     string
		ch       ChainConfig
		watch    int
		rpcDown  string
		rendered string
	}{
		{"no rpc", ChainConfig{}, 0, RPCDownRefuse, "# rpc = ["},
		{"rpc, default watch", ChainConfig{RPC: []string{"http://127.0.0.1:26657"}}, DefaultDoppelgangerWatch, RPCDownRefuse, "doppelganger_watch = 3\n"},
		{"watch off", ChainConfig{RPC: []string{"http://127.0.0.1:26657"}, DoppelgangerWatch: &zero}, 0, RPCDownRefuse, "doppelganger_watch = 0\n"},
		{"watch 5, warn", ChainConfig{RPC: []string{"http://a:1", "https://b:443/rpc"}, DoppelgangerWatch: &five, DoppelgangerRPCDown: RPCDownWarn}, 5, RPCDownWarn, `doppelganger_rpc_down = "warn"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			ch := tc.ch
			ch.ID, ch.Key, ch.Nodes = "kira-1", "keys/kira-1.json", []string{"tcp://127.0.0.1:26659"}
			cfg.Chains = []ChainConfig{ch}
			out := cfg.Marshal()
			if !strings.Contains(string(out), tc.rendered) {
				t.Errorf("rendering lacks %q:\n%s", tc.rendered, out)
			}
			got, err := Parse(out)
			if err != nil {
				t.Fatalf("rendering does not parse: %v\n%s", err, out)
			}
			g := got.Chains[0]
			if g.Watch() != tc.watch || g.RPCDown() != tc.rpcDown || len(g.RPC) != len(ch.RPC) {
				t.Errorf("after a round trip: watch %d, rpc_down %q, rpc %v; want %d, %q, %v", g.Watch(), g.RPCDown(), g.RPC, tc.watch, tc.rpcDown, ch.RPC)
			}
		})
	}
}
