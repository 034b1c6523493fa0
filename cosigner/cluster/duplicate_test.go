package cluster

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/threshold"
)

func TestBootHistory(t *testing.T) {
	var a, b, c BootID
	a[0], b[0], c[0] = 'a', 'b', 'c'
	t0 := time.Unix(1700000000, 0)
	type obs struct {
		boot BootID
		sent int // seconds after t0
		want bootSeen
	}
	for _, tt := range []struct {
		name string
		seq  []obs
		dup  []BootID // boot ids reported with the last bootDuplicate
	}{
		{"one process", []obs{{a, 0, bootSame}, {a, 1, bootSame}, {a, 2, bootSame}}, nil},
		{"no boot id said", []obs{{a, 0, bootSame}, {BootID{}, 1, bootSame}, {a, 2, bootSame}}, nil},
		{"restart", []obs{{a, 0, bootSame}, {b, 2, bootNew}, {b, 3, bootSame}}, nil},
		{"late answer of the process replaced", []obs{{a, 0, bootSame}, {b, 2, bootNew}, {a, 1, bootStale}, {b, 3, bootSame}}, nil},
		{"two restarts", []obs{{a, 0, bootSame}, {b, 1, bootNew}, {c, 2, bootNew}}, nil},
		{"two live processes", []obs{{a, 0, bootSame}, {b, 1, bootNew}, {a, 2, bootDuplicate}}, []BootID{a, b}},
		{"a restart, then a copy", []obs{{a, 0, bootSame}, {b, 1, bootNew}, {c, 2, bootNew}, {b, 3, bootDuplicate}}, []BootID{b, c}},
		{"three live processes", []obs{{a, 0, bootSame}, {b, 1, bootNew}, {c, 2, bootNew}, {a, 3, bootDuplicate}}, []BootID{a, b, c}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var h bootHistory
			var dup []BootID
			for i, o := range tt.seq {
				got, d := h.observe(o.boot, t0.Add(time.Duration(o.sent)*time.Second))
				if got != o.want {
					t.Fatalf("observation %d (%c sent at %d s): %v, want %v", i, o.boot[0], o.sent, got, o.want)
				}
				if got == bootDuplicate {
					dup = d
				}
			}
			if !slices.Equal(dup, tt.dup) {
				t.Errorf("duplicate boot ids %v, want %v", dup, tt.dup)
			}
		})
	}
}

// clonedPeer is one cosigner id served by two live processes holding the
// same share, each with its own sign state and boot id (a cloned VM, a
// restored snapshot): each call reaches the other one in turn, as
// connections to an address that two hosts answer do.
type clonedPeer struct {
	copies [2]*faultyPeer
	next   atomic.Int64
	// probes receives a value (without blocking) at every probe.
	probes chan struct{}
}

var (
	_ PeerClient = (*clonedPeer)(nil)
	_ Prober     = (*clonedPeer)(nil)
)

func (c *clonedPeer) pick() *faultyPeer { return c.copies[c.next.Add(1)%2] }

func (c *clonedPeer) Commitments(ctx context.Context, key ed25519.PublicKey, n int) ([]PublishedCommitment, error) {
	return c.pick().Commitments(ctx, key, n)
}

func (c *clonedPeer) Sign(ctx context.Context, req *ShareRequest) ([]threshold.SignatureShare, error) {
	return c.pick().Sign(ctx, req)
}

func (c *clonedPeer) Probe(ctx context.Context) (time.Duration, BootID, error) {
	select {
	case c.probes <- struct{}{}:
	default:
	}
	return c.pick().Probe(ctx)
}

func (c *clonedPeer) signs() int64 { return c.copies[0].signs.Load() + c.copies[1].signs.Load() }

// logRecorder is a slog.Handler that keeps every record, with its
// attributes as text.
type logRecorder struct {
	mu      sync.Mutex
	records []loggedRecord
}

type loggedRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := loggedRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, rec)
	return nil
}

// find returns the records with message msg.
func (l *logRecorder) find(msg string) []loggedRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []loggedRecord
	for _, r := range l.records {
		if r.msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// TestCoordinatorStopsUsingDuplicateID: cosigner 2 of a 2-of-3 cluster
// runs twice (two share signers with the same share, each its own mark and
// boot id) behind one peer, answering in turn. The leader notices the two
// boot ids alternating, logs an error naming both, reports the id as a
// duplicate, and never chooses it again: with cosigner 3 down nothing is
// signed, and with 3 back every signature is made by cosigners 1 and 3.
// Before, the leader went on using cosigner 2.
func TestCoordinatorStopsUsingDuplicateID(t *testing.T) {
	mt, reg := newTestMetrics(t)
	logs := &logRecorder{}
	clone := &clonedPeer{probes: make(chan struct{}, 1)}
	tc := newTestClusterOpts(t, 2, 3, testClusterOptions{
		Metrics: mt,
		Log:     slog.New(logs),
		Configure: func(cfg *CoordinatorConfig) {
			smallPools(cfg)
			cfg.ProbeInterval = 5 * time.Millisecond
		},
		Client: func(tc *testCluster, id int, share *threshold.KeyShare, f *faultyPeer) PeerClient {
			if id != 2 {
				return f
			}
			twin := &faultyPeer{PeerClient: LocalPeer{keyringOf(tc.newShareSigner(t, share, signstate.Mark{Height: 1}, nil))}}
			clone.copies = [2]*faultyPeer{f, twin}
			return clone
		},
	})
	ctx := context.Background()
	pub := tc.key.Public().(ed25519.PublicKey)
	boots := []string{tc.signers[1].Pool().BootID().String(), clone.copies[1].PeerClient.(LocalPeer).Keys.BootID().String()}

	deadline := time.After(10 * time.Second)
	duplicate := func() bool { return tc.coord.Peers()[1].Duplicate }
	for !duplicate() {
		select {
		case <-clone.probes:
		case <-deadline:
			t.Fatal("the leader did not notice two processes answering as cosigner 2")
		}
	}
	// A few more probes see the two alternate again: still one error.
	for range 5 {
		select {
		case <-clone.probes:
		case <-deadline:
			t.Fatal("no probe")
		}
	}
	recs := logs.find(LogDuplicateID)
	if len(recs) != 1 {
		t.Fatalf("%d %q records, want 1", len(recs), LogDuplicateID)
	}
	if r := recs[0]; r.level != slog.LevelError || r.attrs["peer"] != "2" ||
		!strings.Contains(r.attrs["boot_ids"], boots[0]) || !strings.Contains(r.attrs["boot_ids"], boots[1]) || r.attrs["hint"] == "" {
		t.Errorf("duplicate logged as %+v, want an error naming peer 2, boot ids %v and a hint", r, boots)
	}
	if got := testkit.Value(t, reg, "cosigner_peer_duplicate_boot_ids", testkit.Labels("peer", "2")); got != 2 {
		t.Errorf("cosigner_peer_duplicate_boot_ids{peer=2} = %v, want 2", got)
	}
	st := tc.coord.Peers()[1]
	if st.Healthy || !strings.Contains(st.LastError, "2 live processes answer as cosigner 2") {
		t.Errorf("status of cosigner 2: %+v, want unhealthy with the reason", st)
	}

	signs := clone.signs()
	tc.peers[2].set(true, false) // cosigner 3 down: only the duplicate is left
	if _, err := tc.coord.Sign(ctx, vote(5, 0, privval.StepPrevote, "A", testkit.T0)); err == nil {
		t.Fatal("signed with a duplicate cosigner id")
	} else if !strings.Contains(err.Error(), "two live processes") {
		t.Errorf("err = %v, want it to name the duplicate", err)
	}
	tc.peers[2].set(false, false)
	for h := int64(6); h < 11; h++ {
		req := vote(h, 0, privval.StepPrevote, "A", testkit.T0)
		resp, err := tc.coord.Sign(ctx, req)
		if err != nil {
			t.Fatalf("height %d with cosigners 1 and 3: %v", h, err)
		}
		if !ed25519.Verify(pub, req.SignBytes, resp.Signature) {
			t.Fatalf("height %d: signature does not verify", h)
		}
	}
	if n := clone.signs() - signs; n != 0 {
		t.Errorf("cosigner 2 was asked for %d shares after it was found duplicate", n)
	}
	for i, c := range clone.copies {
		if m, _ := c.PeerClient.(LocalPeer).Keys.Mark(testChain); m.Height >= 5 {
			t.Errorf("copy %d of cosigner 2 signed height %d", i+1, m.Height)
		}
	}
	if m, _ := tc.signers[2].Mark(testChain); m.Height != 10 {
		t.Errorf("cosigner 3 at height %d, want 10", m.Height)
	}
}

// TestDuplicatesSurviveCoordinators: a cosigner that leads again (a new
// coordinator, given the process's Duplicates) never chooses an id found
// duplicate in an earlier term, before it has seen anything itself.
func TestDuplicatesSurviveCoordinators(t *testing.T) {
	dups := NewDuplicates(discard, nil)
	var a, b BootID
	a[0], b[0] = 'a', 'b'
	dups.add(2, []BootID{a, b})
	tc := newTestClusterOpts(t, 2, 3, testClusterOptions{Configure: func(cfg *CoordinatorConfig) {
		smallPools(cfg)
		cfg.Duplicates = dups
	}})
	ctx := context.Background()
	for h := int64(2); h < 6; h++ {
		if _, err := tc.coord.Sign(ctx, vote(h, 0, privval.StepPrevote, "A", testkit.T0)); err != nil {
			t.Fatal(err)
		}
	}
	if n := tc.peers[1].signs.Load(); n != 0 {
		t.Errorf("cosigner 2, a duplicate of an earlier term, was asked %d times", n)
	}
	if !dups.Has(2) || dups.Has(1) || dups.Has(3) {
		t.Errorf("duplicates: 1 %v, 2 %v, 3 %v; want only 2", dups.Has(1), dups.Has(2), dups.Has(3))
	}
}
