package ceremony

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/edwards25519"

	"github.com/cosigner/cosigner/cosigner/clustertls"
	"github.com/cosigner/cosigner/threshold"
)

// cluster is n cosigners' identities of one CA and a listener each on
// loopback.
type cluster struct {
	ids   []*clustertls.Identity
	lns   []net.Listener
	parts []Participant
}

func newCluster(t *testing.T, n int) *cluster { return newClusterTB(t, n) }

func newClusterTB(t testing.TB, n int) *cluster {
	t.Helper()
	ca, err := clustertls.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{}
	for i := 1; i <= n; i++ {
		c.ids = append(c.ids, identity(t, ca, i))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		c.lns = append(c.lns, ln)
		c.parts = append(c.parts, Participant{ID: i, Address: ln.Addr().String()})
	}
	return c
}

func identity(t testing.TB, ca *clustertls.CA, id int) *clustertls.Identity {
	t.Helper()
	cert, err := ca.Issue(id)
	if err != nil {
		t.Fatal(err)
	}
	ident, err := clustertls.New(ca.CertPEM(), cert.CertPEM, cert.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return ident
}

func (c *cluster) opts(i int, params []byte) Options {
	return Options{Self: i, Participants: c.parts, TLS: c.ids[i-1], Params: params,
		Timeout: time.Minute, Listener: c.lns[i-1], DialInterval: 20 * time.Millisecond}
}

type result struct {
	share *threshold.KeyShare
	group *threshold.GroupKey
	err   error
}

// runAll runs every participant's options concurrently and returns their
// results in order.
func runAll(opts []Options, protos []NewProtocol) []result {
	out := make([]result, len(opts))
	var wg sync.WaitGroup
	for i := range opts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ks, g, err := Run(context.Background(), opts[i], protos[i])
			out[i] = result{ks, g, err}
		}()
	}
	wg.Wait()
	return out
}

func fresh(c *cluster, m int) ([]Options, []NewProtocol) {
	n := len(c.parts)
	params, proto := FreshDKG(m, n)
	var opts []Options
	var protos []NewProtocol
	for i := 1; i <= n; i++ {
		opts = append(opts, c.opts(i, params))
		protos = append(protos, proto)
	}
	return opts, protos
}

func TestRunFreshDKG(t *testing.T) {
	for _, tc := range []struct{ m, n int }{{2, 3}, {3, 4}} {
		t.Run("", func(t *testing.T) {
			c := newCluster(t, tc.n)
			opts, protos := fresh(c, tc.m)
			res := runAll(opts, protos)
			var shares []*threshold.KeyShare
			for i, r := range res {
				if r.err != nil {
					t.Fatalf("cosigner %d: %v", i+1, r.err)
				}
				if int(r.share.ID()) != i+1 {
					t.Fatalf("cosigner %d got share %d", i+1, r.share.ID())
				}
				if !r.group.Equal(res[0].group) {
					t.Fatalf("cosigner %d derived another group", i+1)
				}
				if err := threshold.VerifyShare(r.share, res[0].group.PublicKey()); err != nil {
					t.Fatal(err)
				}
				shares = append(shares, r.share)
			}
			// Any M shares rebuild the key the group publishes.
			for lo := 0; lo+tc.m <= tc.n; lo++ {
				s, err := threshold.Reassemble(shares[lo : lo+tc.m])
				if err != nil {
					t.Fatal(err)
				}
				pub := new(edwards25519.Point).ScalarBaseMult(s).Bytes()
				if !ed25519.PublicKey(pub).Equal(res[0].group.PublicKey()) {
					t.Fatalf("shares %d..%d rebuild another key", lo+1, lo+tc.m)
				}
			}
		})
	}
}

// wantAllFail checks every participant failed with an *Error whose text
// contains want[i] (empty: anything).
func wantAllFail(t *testing.T, res []result, want ...string) {
	t.Helper()
	for i, r := range res {
		if r.err == nil {
			t.Errorf("cosigner %d completed, want an abort", i+1)
			continue
		}
		if r.share != nil || r.group != nil {
			t.Errorf("cosigner %d got a share with its error", i+1)
		}
		var ce *Error
		if !errors.As(r.err, &ce) {
			t.Errorf("cosigner %d: %v is not a *ceremony.Error", i+1, r.err)
		}
		if i < len(want) && !strings.Contains(r.err.Error(), want[i]) {
			t.Errorf("cosigner %d: %v\nwant it to contain %q", i+1, r.err, want[i])
		}
	}
}

func TestRunMismatchedParams(t *testing.T) {
	c := newCluster(t, 3)
	opts, protos := fresh(c, 2)
	opts[2].Params, protos[2] = FreshDKG(3, 3)
	res := runAll(opts, protos)
	wantAllFail(t, res, `"threshold: 3", we have "threshold: 2"`, `threshold`, `"threshold: 2", we have "threshold: 3"`)
}

func TestRunWrongPeerSet(t *testing.T) {
	c := newCluster(t, 3)
	opts, protos := fresh(c, 2)
	// Cosigner 3 believes in a fourth participant.
	parts := append(append([]Participant(nil), c.parts...), Participant{ID: 4, Address: "127.0.0.1:1"})
	opts[2].Participants = parts
	opts[2].Params, protos[2] = FreshDKG(3, 4)
	res := runAll(opts, protos)
	wantAllFail(t, res, "cosigner 3", "", "participant 4")
}

func TestRunReplay(t *testing.T) {
	c := newCluster(t, 3)
	opts, protos := fresh(c, 2)
	var once sync.Once
	testHookSend = func(self, to int, f frame) []frame {
		if self == 1 && to == 2 && f.typ == frameDKG {
			dup := false
			once.Do(func() { dup = true })
			if dup {
				return []frame{f, f}
			}
		}
		return []frame{f}
	}
	t.Cleanup(func() { testHookSend = nil })
	res := runAll(opts, protos)
	wantAllFail(t, res, "replay", "replay", "replay")
}

func TestRunMessageOfAnotherRun(t *testing.T) {
	c := newCluster(t, 3)
	opts, protos := fresh(c, 2)
	var mu sync.Mutex
	var old []frame
	testHookSend = func(self, to int, f frame) []frame {
		mu.Lock()
		defer mu.Unlock()
		if self == 1 && to == 2 && f.typ == frameDKG {
			old = append(old, f)
		}
		return []frame{f}
	}
	t.Cleanup(func() { testHookSend = nil })
	for i, r := range runAll(opts, protos) {
		if r.err != nil {
			t.Fatalf("first run, cosigner %d: %v", i+1, r.err)
		}
	}
	// Second run: cosigner 1 also sends 2 its first run's deal.
	c2 := newCluster(t, 3)
	c2.ids = c.ids
	opts, protos = fresh(c2, 2)
	testHookSend = func(self, to int, f frame) []frame {
		if self == 1 && to == 2 && f.typ == frameDKG {
			mu.Lock()
			defer mu.Unlock()
			if old != nil {
				f0 := old[0]
				old = nil
				return []frame{f0, f}
			}
		}
		return []frame{f}
	}
	res := runAll(opts, protos)
	wantAllFail(t, res, "another session", "another session", "another session")
}

// TestRunPeerLeaves: cosigner 3 says hello and its process dies (its
// connections close): the others abort at once, naming it, long before the
// timeout.
func TestRunPeerLeaves(t *testing.T) {
	c := newCluster(t, 3)
	opts, protos := fresh(c, 2)
	for i := range opts {
		opts[i].Timeout = 10 * time.Minute // the test would hang if only the timeout ended it
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		leaver(t, c, 3)
	}()
	res := runAll(opts[:2], protos[:2])
	wg.Wait()
	wantAllFail(t, res, "cosigner 3: left the ceremony", "cosigner 3: left the ceremony")
}

// leaver plays cosigner id: it dials every other participant, sends a valid
// hello (with the params of a 2-of-3 DKG) and closes.
func leaver(t *testing.T, c *cluster, id int) {
	params, _ := FreshDKG(2, len(c.parts))
	r, err := newRun(Options{Self: id, Participants: c.parts, TLS: c.ids[id-1], Params: params})
	if err != nil {
		t.Error(err)
		return
	}
	h := &hello{from: uint16(id), nonce: r.nonce, params: r.params}
	copy(h.longterm[:], r.longPub)
	var conns []net.Conn
	for _, p := range c.parts {
		if p.ID == id {
			continue
		}
		conn, err := tls.Dial("tcp", p.Address, c.ids[id-1].ClientTLSConfig(p.ID))
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := conn.Write(h.encode().bytes()); err != nil {
			t.Error(err)
		}
		conns = append(conns, conn)
	}
	// Wait until both peers sent their hello to us (they dial our
	// listener), so they are past the hello phase when we vanish.
	ln := c.lns[id-1]
	for range 2 {
		raw, err := ln.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		tc := tls.Server(raw, c.ids[id-1].ServerTLSConfig())
		if _, err := readFrame(tc); err != nil {
			t.Error(err)
		}
		defer tc.Close()
	}
	for _, conn := range conns {
		conn.Close()
	}
}

func TestRunTimeoutNamesTheMissing(t *testing.T) {
	c := newCluster(t, 3)
	opts, protos := fresh(c, 2)
	c.lns[2].Close() // cosigner 3 never starts
	for i := range opts {
		opts[i].Timeout = 500 * time.Millisecond
	}
	res := runAll(opts[:2], protos[:2])
	wantAllFail(t, res, "hello of cosigner 3 at "+c.parts[2].Address, "hello of cosigner 3 at ")
	if !errors.Is(res[0].err, context.DeadlineExceeded) && !errors.Is(res[1].err, context.DeadlineExceeded) {
		t.Errorf("neither %v nor %v wraps context.DeadlineExceeded", res[0].err, res[1].err)
	}
	wantAllFail(t, res, "start 'cosigner dkg' on every host", "start 'cosigner dkg' on every host")

	// A resharing names its own command in the hint.
	c = newCluster(t, 3)
	opts, protos = fresh(c, 2)
	c.lns[2].Close()
	for i := range opts {
		opts[i].Timeout = 500 * time.Millisecond
		opts[i].Command = "cosigner reshare"
	}
	res = runAll(opts[:2], protos[:2])
	wantAllFail(t, res, "start 'cosigner reshare' on every host", "start 'cosigner reshare' on every host")
}

func TestRunForeignCluster(t *testing.T) {
	c := newCluster(t, 3)
	opts, protos := fresh(c, 2)
	other, err := clustertls.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	opts[2].TLS = identity(t, other, 3)
	for i := range opts {
		opts[i].Timeout = 5 * time.Second
	}
	for i, r := range runAll(opts, protos) {
		if r.err == nil {
			t.Fatalf("cosigner %d completed with a foreign cluster member", i+1)
		}
		t.Logf("cosigner %d: %v", i+1, r.err)
	}
}

func TestRunBadOptions(t *testing.T) {
	c := newCluster(t, 3)
	params, proto := FreshDKG(2, 3)
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"self not listed", func(o *Options) { o.Participants = c.parts[1:]; o.Self = 1 }, "not among the participants"},
		{"certificate of another id", func(o *Options) { o.TLS = c.ids[1] }, "certificate names cosigner 2"},
		{"duplicate id", func(o *Options) { o.Participants = append(o.Participants, c.parts[0]) }, "listed twice"},
		{"bad address", func(o *Options) { o.Participants = []Participant{c.parts[0], {ID: 2, Address: "nowhere"}} }, `address "nowhere"`},
		{"no timeout", func(o *Options) { o.Timeout = 0 }, "timeout"},
		{"no tls", func(o *Options) { o.TLS = nil }, "no cluster TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			o := Options{Self: 1, Participants: c.parts, TLS: c.ids[0], Params: params, Timeout: time.Second, Listener: ln}
			tc.edit(&o)
			_, _, err = Run(context.Background(), o, proto)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestFreshDKGNeedsOneToN(t *testing.T) {
	ca, err := clustertls.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	// Cosigners 1, 2 and 4: not a fresh DKG's 1..3.
	var opts []Options
	var protos []NewProtocol
	params, proto := FreshDKG(2, 3)
	var parts []Participant
	var lns []net.Listener
	for _, id := range []int{1, 2, 4} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		parts = append(parts, Participant{ID: id, Address: ln.Addr().String()})
	}
	for i, id := range []int{1, 2, 4} {
		opts = append(opts, Options{Self: id, Participants: parts, TLS: identity(t, ca, id), Params: params,
			Timeout: 10 * time.Second, Listener: lns[i], DialInterval: 20 * time.Millisecond})
		protos = append(protos, proto)
	}
	wantAllFail(t, runAll(opts, protos), "cosigner 3 is missing", "cosigner 3 is missing", "cosigner 3 is missing")
}

// TestRunExtras: every participant's Extra reaches every other one's
// Setup, the same everywhere, its own included.
func TestRunExtras(t *testing.T) {
	c := newCluster(t, 3)
	opts, protos := fresh(c, 2)
	var mu sync.Mutex
	seen := map[int]map[int][]byte{}
	for i := range opts {
		opts[i].Extra = []byte{byte(10 + i)}
		inner := protos[i]
		protos[i] = func(s Setup) (*Protocol, error) {
			mu.Lock()
			seen[s.Self] = s.Extras
			mu.Unlock()
			return inner(s)
		}
	}
	for i, r := range runAll(opts, protos) {
		if r.err != nil {
			t.Fatalf("cosigner %d: %v", i+1, r.err)
		}
	}
	for self := 1; self <= 3; self++ {
		for id := 1; id <= 3; id++ {
			if got := seen[self][id]; len(got) != 1 || got[0] != byte(9+id) {
				t.Fatalf("cosigner %d holds extra %x of cosigner %d, want %x", self, got, id, 9+id)
			}
		}
	}
}
