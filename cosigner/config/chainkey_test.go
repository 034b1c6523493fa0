package config

import (
	"os"
	"strings"
	"testing"
)

// TestChainShare: a [[chain]] naming its own group_file and share_file is
// signed with them, the others with [threshold]'s; Marshal renders them
// and the rendering parses back the same.
func TestChainShare(t *testing.T) {
	data, err := os.ReadFile("testdata/threshold_key.bad.toml")
	if err != nil {
		t.Fatal(err)
	}
	base := string(data[:strings.Index(string(data), "[[chain]]")])
	text := base + `[[chain]]
id = "a"
nodes = ["tcp://1.2.3.4:1"]
[[chain]]
id = "b"
group_file = "group-b.json"
share_file = "share-b.json"
nodes = ["tcp://1.2.3.4:2"]
[[chain]]
id = "c"
nodes = ["tcp://1.2.3.4:3"]
`
	cfg, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	def := ShareSource{GroupFile: "group.json", ShareFile: "share.json"}
	b := ShareSource{GroupFile: "group-b.json", ShareFile: "share-b.json"}
	for id, want := range map[string]ShareSource{"a": def, "b": b, "c": def} {
		ch, _ := cfg.Chain(id)
		if got := cfg.ChainShare(ch); got != want {
			t.Errorf("chain %s: %v, want %v", id, got, want)
		}
	}
	srcs, chains := cfg.ShareSources()
	if len(srcs) != 2 || srcs[0] != def || srcs[1] != b || strings.Join(chains[def], ",") != "a,c" || strings.Join(chains[b], ",") != "b" {
		t.Errorf("ShareSources = %v %v", srcs, chains)
	}
	again, err := Parse(cfg.Marshal())
	if err != nil {
		t.Fatalf("Marshal does not parse: %v\n%s", err, cfg.Marshal())
	}
	if ch, _ := again.Chain("b"); again.ChainShare(ch) != b {
		t.Errorf("after Marshal chain b: %v", again.ChainShare(ch))
	}
}
