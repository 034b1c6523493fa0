package reshare

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/edwards25519"

	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/threshold"
)

const chain = testkit.Chain

// oldCluster shards a fresh key 2-of-3 under dir/old with one chain and
// gives each home a sign state: cosigner 1 at 100/0/precommit of block A,
// cosigner 2 at 101/0/prevote of block B (the highest), cosigner 3 at 99.
func oldCluster(t *testing.T, dir string) (string, ed25519.PublicKey, map[int]signstate.Mark) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	out := filepath.Join(dir, "old")
	if _, err := share.Shard(key, out, share.Options{Threshold: 2, Shares: 3, ChainID: chain, Nodes: []string{"tcp://127.0.0.1:1"}}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1700000000, 0).UTC()
	marks := map[int]signstate.Mark{
		1: markOf(100, privval.StepPrecommit, "A", t0),
		2: markOf(101, privval.StepPrevote, "B", t0),
		3: markOf(99, privval.StepPrecommit, "C", t0),
	}
	for id, m := range marks {
		if err := signstate.WriteMark(signstate.StatePath(filepath.Join(share.Dir(out, id), "state"), chain), chain, m, false); err != nil {
			t.Fatal(err)
		}
	}
	return out, key.Public().(ed25519.PublicKey), marks
}

func markOf(h int64, s privval.Step, block string, ts time.Time) signstate.Mark {
	v := testkit.Vote(h, 0, s, block, ts)
	return signstate.Mark{Height: h, Step: s, SignBytes: v.SignBytes}
}

// listeners opens n loopback listeners and returns them with their
// addresses.
func listeners(t *testing.T, n int) ([]net.Listener, []string) {
	t.Helper()
	var lns []net.Listener
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return lns, addrs
}

// relisten reopens a listener on ln's address (a ceremony closes its
// listener when it ends).
func relisten(t *testing.T, ln net.Listener) net.Listener {
	t.Helper()
	n, err := net.Listen("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

type host struct {
	opts Options
	res  *Result
	err  error
}

func runHosts(hosts []*host) {
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Go(func() { h.res, h.err = Run(context.Background(), h.opts) })
	}
	wg.Wait()
}

// TestReshare2of3To3of5: old hosts 1 and 2 continue as cosigners 1 and 2,
// old host 3 deals and retires, cosigners 3..5 are newcomers. Every member
// gets a share of epoch 2 of the same validator key (any 3 rebuild it),
// sign state at the dealers' highest mark; the old homes are retired and
// otherwise untouched; an old share does not load with the new group; a
// second run refuses to replace anything.
func TestReshare2of3To3of5(t *testing.T) {
	dir := t.TempDir()
	old, pub, marks := oldCluster(t, dir)
	oldShares := map[int][]byte{}
	for id := 1; id <= 3; id++ {
		oldShares[id], _ = os.ReadFile(filepath.Join(share.Dir(old, id), "share.json"))
	}
	lns, addrs := listeners(t, 6)
	out := filepath.Join(dir, "new")
	plan, err := Prepare(out, PrepareOptions{
		Options:  share.Options{Threshold: 3, Shares: 5, Peers: addrs[:5], ChainID: chain, Nodes: []string{"tcp://127.0.0.1:1"}},
		OldGroup: filepath.Join(share.Dir(old, 1), "group.json"),
		Keep:     map[int]int{1: 1, 2: 2},
		Retire:   map[int]string{3: addrs[5]},
	})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Epoch != 2 || len(plan.Participants) != 6 {
		t.Fatalf("plan: %+v", plan)
	}
	var hosts []*host
	for i := 1; i <= 5; i++ {
		o := Options{Home: share.Dir(out, i), Timeout: time.Minute, Listener: lns[i-1], DialInterval: 20 * time.Millisecond}
		if i <= 2 {
			o.OldHome = share.Dir(old, i)
		}
		hosts = append(hosts, &host{opts: o})
	}
	hosts = append(hosts, &host{opts: Options{Home: RetiringDir(out, 3), OldHome: share.Dir(old, 3), Timeout: time.Minute,
		Listener: lns[5], DialInterval: 20 * time.Millisecond}})
	runHosts(hosts)

	want := signstate.Highest([]signstate.Mark{marks[1], marks[2], marks[3]})
	var shares []*threshold.KeyShare
	for i, h := range hosts {
		if h.err != nil {
			t.Fatalf("host %d: %v", i+1, h.err)
		}
		if i == 5 {
			if !h.res.Retired {
				t.Fatal("the retiring host did not retire")
			}
			continue
		}
		home := share.Dir(out, i+1)
		ks, err := share.Load(filepath.Join(home, "share.json"), filepath.Join(home, "group.json"))
		if err != nil {
			t.Fatalf("cosigner %d: %v", i+1, err)
		}
		_, e, _ := share.LoadGroupEpoch(filepath.Join(home, "group.json"))
		if e.Number != 2 || !ks.Group().PublicKey().Equal(pub) || ks.Group().Threshold() != 3 || ks.Group().N() != 5 {
			t.Fatalf("cosigner %d: epoch %d, %d-of-%d", i+1, e.Number, ks.Group().Threshold(), ks.Group().N())
		}
		shares = append(shares, ks)
		m, err := signstate.ReadMark(signstate.StatePath(filepath.Join(home, "state"), chain), chain)
		if err != nil || m.Height != want.Height || m.Step != want.Step || !bytes.Equal(m.SignBytes, want.SignBytes) {
			t.Fatalf("cosigner %d's carried mark %d/%d/%d, %v; want 101/0/prevote of B", i+1, m.Height, m.Round, m.Step, err)
		}
	}
	for lo := 0; lo+3 <= 5; lo++ {
		s, err := threshold.Reassemble(shares[lo : lo+3])
		if err != nil {
			t.Fatal(err)
		}
		if !ed25519.PublicKey(new(edwards25519.Point).ScalarBaseMult(s).Bytes()).Equal(pub) {
			t.Fatalf("new shares %d..%d rebuild another key", lo+1, lo+3)
		}
	}
	for id := 1; id <= 3; id++ {
		home := share.Dir(old, id)
		if err := share.CheckRetired(home); !errors.Is(err, share.ErrRetired) {
			t.Fatalf("old home %d not retired: %v", id, err)
		}
		if now, _ := os.ReadFile(filepath.Join(home, "share.json")); !bytes.Equal(now, oldShares[id]) {
			t.Fatalf("old share %d changed", id)
		}
	}
	if _, err := share.Load(filepath.Join(share.Dir(old, 1), "share.json"), filepath.Join(share.Dir(out, 1), "group.json")); err == nil ||
		!strings.Contains(err.Error(), "another epoch") {
		t.Fatalf("an old share with the new group: %v", err)
	}
	// Nothing is replaced by a second run.
	ln, _ := listeners(t, 1)
	if _, err := Run(context.Background(), Options{Home: share.Dir(out, 3), Timeout: time.Second, Listener: ln[0]}); !errors.Is(err, ErrHasShare) {
		t.Fatalf("second run: %v", err)
	}
}

// TestReshareRefusals: bad inputs are refused before any ceremony, and a
// participant with another plan aborts the ceremony for all, with nothing
// written and no old home retired.
func TestReshareRefusals(t *testing.T) {
	dir := t.TempDir()
	old, _, _ := oldCluster(t, dir)
	lns, addrs := listeners(t, 3)
	prep := func(name string) string {
		out := filepath.Join(dir, name)
		if _, err := Prepare(out, PrepareOptions{
			Options:  share.Options{Threshold: 2, Shares: 3, Peers: addrs, ChainID: chain, Nodes: []string{"tcp://127.0.0.1:1"}},
			OldGroup: filepath.Join(share.Dir(old, 1), "group.json"),
			Keep:     map[int]int{1: 1, 2: 2},
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := prep("new")
	run := func(o Options) error {
		o.Timeout = 5 * time.Second
		_, err := Run(context.Background(), o)
		return err
	}
	t.Run("prepare", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			o    PrepareOptions
			want string
		}{
			{"too few dealers", PrepareOptions{Options: share.Options{Threshold: 2, Shares: 3, Peers: addrs}, Keep: map[int]int{1: 1}}, "at least 2"},
			{"kept and retired", PrepareOptions{Options: share.Options{Threshold: 2, Shares: 3, Peers: addrs}, Keep: map[int]int{1: 1, 2: 2},
				Retire: map[int]string{2: "127.0.0.1:9"}}, "both kept and retired"},
			{"new id out of range", PrepareOptions{Options: share.Options{Threshold: 2, Shares: 3, Peers: addrs}, Keep: map[int]int{1: 4, 2: 2}}, "1 to 3"},
			{"unknown old share", PrepareOptions{Options: share.Options{Threshold: 2, Shares: 3, Peers: addrs}, Keep: map[int]int{1: 1, 7: 2}}, "old_id = 7"},
			{"1 of 2 is no threshold", PrepareOptions{Options: share.Options{Threshold: 1, Shares: 2, Peers: addrs[:2]}, Keep: map[int]int{1: 1, 2: 2}}, "threshold"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.o.OldGroup = filepath.Join(share.Dir(old, 1), "group.json")
				if _, err := Prepare(filepath.Join(t.TempDir(), "x"), tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want %q", err, tc.want)
				}
			})
		}
		if _, err := Prepare(out, PrepareOptions{Options: share.Options{Threshold: 2, Shares: 3, Peers: addrs},
			OldGroup: filepath.Join(share.Dir(old, 1), "group.json"), Keep: map[int]int{1: 1, 2: 2}}); !errors.Is(err, share.ErrOutExists) {
			t.Fatalf("existing output: %v", err)
		}
	})
	t.Run("old host without its old home", func(t *testing.T) {
		if err := run(Options{Home: share.Dir(out, 1)}); err == nil || !strings.Contains(err.Error(), "--old-home") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("newcomer with an old home", func(t *testing.T) {
		if err := run(Options{Home: share.Dir(out, 3), OldHome: share.Dir(old, 3)}); err == nil || !strings.Contains(err.Error(), "newcomer") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("old home of another share", func(t *testing.T) {
		if err := run(Options{Home: share.Dir(out, 1), OldHome: share.Dir(old, 2)}); err == nil || !strings.Contains(err.Error(), "holds share 2") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("old home of another cluster", func(t *testing.T) {
		other, _, _ := oldCluster(t, t.TempDir())
		if err := run(Options{Home: share.Dir(out, 1), OldHome: share.Dir(other, 1)}); err == nil || !strings.Contains(err.Error(), "the plan reshares") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("edited plan", func(t *testing.T) {
		p := filepath.Join(share.Dir(out, 2), PlanFile)
		orig, _ := os.ReadFile(p)
		defer os.WriteFile(p, orig, 0o600)
		os.WriteFile(p, []byte(strings.Replace(string(orig), "epoch = 2", "epoch = 3", 1)), 0o600)
		if err := run(Options{Home: share.Dir(out, 2), OldHome: share.Dir(old, 2)}); err == nil || !strings.Contains(err.Error(), "the new one is 2") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a dealer does not come", func(t *testing.T) {
		// Cosigners 1 and 3 run, dealer 2 never starts: the ceremony times
		// out, nothing is written, no old home is retired.
		hosts := []*host{
			{opts: Options{Home: share.Dir(out, 1), OldHome: share.Dir(old, 1), Timeout: 2 * time.Second, Listener: lns[0], DialInterval: 20 * time.Millisecond}},
			{opts: Options{Home: share.Dir(out, 3), Timeout: 2 * time.Second, Listener: lns[2], DialInterval: 20 * time.Millisecond}},
		}
		runHosts(hosts)
		for i, h := range hosts {
			if h.err == nil || !strings.Contains(h.err.Error(), "hello of cosigner 2") {
				t.Fatalf("host %d: %v, want a timeout naming cosigner 2", i+1, h.err)
			}
		}
		for _, home := range []string{share.Dir(out, 1), share.Dir(out, 3)} {
			if _, err := os.Stat(filepath.Join(home, "share.json")); err == nil {
				t.Fatalf("%s holds a share after a timeout", home)
			}
		}
		if err := share.CheckRetired(share.Dir(old, 1)); err != nil {
			t.Fatalf("old home 1 retired after a timeout: %v", err)
		}
		lns[0], lns[2] = relisten(t, lns[0]), relisten(t, lns[2])
	})
	t.Run("participants with different plans", func(t *testing.T) {
		// A second preparation of the same shape: other certificates, so
		// each side refuses the other's TLS; the ceremony cannot complete.
		other := prep("other")
		hosts := []*host{
			{opts: Options{Home: share.Dir(out, 1), OldHome: share.Dir(old, 1), Timeout: 3 * time.Second, Listener: lns[0], DialInterval: 20 * time.Millisecond}},
			{opts: Options{Home: share.Dir(other, 2), OldHome: share.Dir(old, 2), Timeout: 3 * time.Second, Listener: lns[1], DialInterval: 20 * time.Millisecond}},
			{opts: Options{Home: share.Dir(out, 3), Timeout: 3 * time.Second, Listener: lns[2], DialInterval: 20 * time.Millisecond}},
		}
		runHosts(hosts)
		for i, h := range hosts {
			if h.err == nil {
				t.Fatalf("host %d completed", i+1)
			}
		}
		for _, home := range []string{share.Dir(out, 1), share.Dir(other, 2), share.Dir(out, 3)} {
			if _, err := os.Stat(filepath.Join(home, "share.json")); err == nil {
				t.Fatalf("%s holds a share after an aborted ceremony", home)
			}
			if st, _ := filepath.Glob(filepath.Join(home, "state", "*.json")); len(st) > 0 {
				t.Fatalf("%s holds state after an aborted ceremony", home)
			}
		}
		for id := 1; id <= 2; id++ {
			if err := share.CheckRetired(share.Dir(old, id)); err != nil {
				t.Fatalf("old home %d retired after an aborted ceremony: %v", id, err)
			}
		}
	})
}

// TestReshareIncomplete: the ceremony completes but one member cannot
// write its files (its group file's directory is missing): it reports an
// *IncompleteError listing what it wrote, the others hold their new
// shares, and every old home, the failing member's included, is retired.
func TestReshareIncomplete(t *testing.T) {
	dir := t.TempDir()
	old, _, _ := oldCluster(t, dir)
	lns, addrs := listeners(t, 3)
	out := filepath.Join(dir, "new")
	if _, err := Prepare(out, PrepareOptions{
		Options:  share.Options{Threshold: 2, Shares: 3, Peers: addrs, ChainID: chain, Nodes: []string{"tcp://127.0.0.1:1"}},
		OldGroup: filepath.Join(share.Dir(old, 1), "group.json"),
		Keep:     map[int]int{1: 1, 2: 2},
	}); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(share.Dir(out, 2), "cosigner.toml")
	data, _ := os.ReadFile(cfgPath)
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(string(data), `group_file = "group.json"`, `group_file = "missing/group.json"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	var hosts []*host
	for i := 1; i <= 3; i++ {
		o := Options{Home: share.Dir(out, i), Timeout: time.Minute, Listener: lns[i-1], DialInterval: 20 * time.Millisecond}
		if i <= 2 {
			o.OldHome = share.Dir(old, i)
		}
		hosts = append(hosts, &host{opts: o})
	}
	runHosts(hosts)
	var ie *IncompleteError
	if !errors.As(hosts[1].err, &ie) || !ie.OldHomeRetired || len(ie.Files) != 1 {
		t.Fatalf("member 2: %v, want an *IncompleteError with its state file written and its old home retired", hosts[1].err)
	}
	for _, i := range []int{0, 2} {
		if hosts[i].err != nil {
			t.Fatalf("member %d: %v", i+1, hosts[i].err)
		}
	}
	for id := 1; id <= 2; id++ {
		if err := share.CheckRetired(share.Dir(old, id)); !errors.Is(err, share.ErrRetired) {
			t.Fatalf("old home %d not retired: %v", id, err)
		}
	}
}
