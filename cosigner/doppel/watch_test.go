package doppel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cosigner/cosigner/internal/testkit"
)

var (
	ourAddr   = bytes.Repeat([]byte{0xaa}, 20)
	otherAddr = bytes.Repeat([]byte{0xbb}, 20)
)

// memChain is a Source the test grows height by height; fail makes every
// read fail with that error.
type memChain struct {
	mu      sync.Mutex
	commits []*Commit // commits[i] is height i+1
	fail    error
}

func (c *memChain) Latest(context.Context) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return 0, c.fail
	}
	return int64(len(c.commits)), nil
}

func (c *memChain) Commit(_ context.Context, h int64) (*Commit, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return nil, c.fail
	}
	if h < 1 || h > int64(len(c.commits)) {
		return nil, fmt.Errorf("no commit at %d", h)
	}
	return c.commits[h-1], nil
}

func blockHash(h int64) []byte { return bytes.Repeat([]byte{byte(h)}, 32) }

// sigAt is the signature our validator's entry carries at height h.
func sigAt(h int64) []byte { return bytes.Repeat([]byte{byte(h) + 0x80}, 64) }

// add appends a commit of the next height, round 0, for blockHash(h), in
// which other validators sign and ours signs with flag (0: absent).
func (c *memChain) add(ours int) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := int64(len(c.commits) + 1)
	cm := &Commit{Height: h, BlockHash: blockHash(h), Sigs: []CommitSig{{Address: otherAddr, Flag: FlagCommit, Signature: sigAt(0)}}}
	if ours != 0 {
		cm.Sigs = append(cm.Sigs, CommitSig{Address: ourAddr, Flag: ours, Signature: sigAt(h)})
	} else {
		cm.Sigs = append(cm.Sigs, CommitSig{Flag: FlagAbsent})
	}
	c.commits = append(c.commits, cm)
	return h
}

func (c *memChain) setFail(err error) {
	c.mu.Lock()
	c.fail = err
	c.mu.Unlock()
}

type running struct {
	w    *Watch
	reg  *prometheus.Registry
	done chan error
}

func startWatch(t *testing.T, chain *memChain, opts Options) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	opts.ChainID, opts.Address, opts.Metrics, opts.Poll = "kira-1", ourAddr, m, time.Millisecond
	w := New(chain, opts)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, reg: reg, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	if chain.fail == nil {
		waitFor(t, "the watch to take its start height", func() bool { return w.startHeight() > 0 || len(r.done) > 0 })
	}
	return r
}

// waitFor waits up to 5 s for cond, checking each millisecond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func (r *running) value(t *testing.T, name string) float64 {
	return testkit.Value(t, r.reg, name, testkit.Labels("chain", "kira-1"))
}

// TestStartWatchPasses: the gate stays closed until Heights new heights
// have been checked, then opens.
func TestStartWatchPasses(t *testing.T) {
	chain := &memChain{}
	for range 10 {
		chain.add(0)
	}
	r := startWatch(t, chain, Options{Heights: 3, Mark: 5})
	if err := r.w.Allow(); !errors.Is(err, ErrWatching) {
		t.Fatalf("Allow before the watch = %v, want ErrWatching", err)
	}
	waitFor(t, "the watch to check height 10", func() bool { return r.w.checkedHeight() >= 10 })
	chain.add(0)
	chain.add(0)
	waitFor(t, "height 12 checked", func() bool { return r.w.checkedHeight() >= 12 })
	if err := r.w.Allow(); !errors.Is(err, ErrWatching) {
		t.Fatalf("Allow after 2 of 3 heights = %v, want ErrWatching", err)
	}
	if r.value(t, "cosigner_doppelganger_watching") != 1 {
		t.Error("cosigner_doppelganger_watching is not 1 while watching")
	}
	chain.add(0)
	waitFor(t, "the gate to open", func() bool { return r.w.Allow() == nil })
	if r.value(t, "cosigner_doppelganger_watching") != 0 || r.value(t, "cosigner_doppelganger_tripped") != 0 {
		t.Error("gauges not cleared after the watch passed")
	}
}

// TestStartWatchDetects: our signature in the window (at the start height
// or a new one) ends Run with a DetectedError; below the mark it does not.
func TestStartWatchDetects(t *testing.T) {
	for _, tc := range []struct {
		name string
		mark int64
		// at is the height (of 1..14) our signature is at; 0 none
		at   int64
		want bool
	}{
		{"at the start height", 5, 10, true},
		{"at a new height", 5, 12, true},
		{"at the mark", 10, 10, false},
		{"before the start height", 5, 9, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chain := &memChain{}
			for h := int64(1); h <= 10; h++ {
				chain.add(flagAt(h, tc.at))
			}
			r := startWatch(t, chain, Options{Heights: 3, Mark: tc.mark})
			for h := int64(11); h <= 14; h++ {
				chain.add(flagAt(h, tc.at))
			}
			if !tc.want {
				waitFor(t, "the gate to open", func() bool { return r.w.Allow() == nil })
				return
			}
			var err error
			select {
			case err = <-r.done:
				r.done <- nil // for the cleanup
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not return")
			}
			var det *DetectedError
			if !errors.As(err, &det) || det.Height != tc.at {
				t.Fatalf("Run = %v, want a DetectedError at height %d", err, tc.at)
			}
			if !errors.As(r.w.Allow(), &det) {
				t.Fatalf("Allow after detection = %v", r.w.Allow())
			}
			if r.value(t, "cosigner_doppelganger_detected_total") != 1 || r.value(t, "cosigner_doppelganger_tripped") != 1 {
				t.Error("detection not counted")
			}
		})
	}
}

func flagAt(h, at int64) int {
	if h == at {
		return FlagCommit
	}
	return 0
}

// TestRunningWatch: after the gate opened, a commit carrying our precommit
// must match what Signed recorded; anything else trips the gate for good,
// and Run goes on.
func TestRunningWatch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		signed func(w *Watch, h int64) // what this process signed at h
		flag   int
		trips  string
	}{
		{"ours, signed", func(w *Watch, h int64) { w.Signed(h, 0, blockHash(h), sigAt(h)) }, FlagCommit, ""},
		{"ours, signed twice (a retry answered with the first signature)", func(w *Watch, h int64) {
			w.Signed(h, 0, blockHash(h), sigAt(h))
			w.Signed(h, 0, blockHash(h), sigAt(h))
		}, FlagCommit, ""},
		{"ours nil, signed nil", func(w *Watch, h int64) { w.Signed(h, 0, nil, sigAt(h)) }, FlagNil, ""},
		{"absent, signed", func(w *Watch, h int64) { w.Signed(h, 0, blockHash(h), sigAt(h)) }, 0, ""},
		{"not signed", func(*Watch, int64) {}, FlagCommit, "which this cosigner did not sign"},
		{"signed another round", func(w *Watch, h int64) { w.Signed(h, 1, blockHash(h), sigAt(h)) }, FlagCommit, "which this cosigner did not sign"},
		{"signed another block", func(w *Watch, h int64) { w.Signed(h, 0, blockHash(99), sigAt(h)) }, FlagCommit, "this cosigner signed block 6363"},
		{"signed nil, block in commit", func(w *Watch, h int64) { w.Signed(h, 0, nil, sigAt(h)) }, FlagCommit, "this cosigner signed nil"},
		{"signed a block, nil in commit", func(w *Watch, h int64) { w.Signed(h, 0, blockHash(h), sigAt(h)) }, FlagNil, "nil precommit, this cosigner signed block"},
		{"same block, another signature", func(w *Watch, h int64) { w.Signed(h, 0, blockHash(h), sigAt(h+1)) }, FlagCommit, "with a signature (timestamp) this cosigner did not make"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chain := &memChain{}
			chain.add(0)
			r := startWatch(t, chain, Options{Heights: 1})
			chain.add(0)
			waitFor(t, "the gate to open", func() bool { return r.w.Allow() == nil })
			tc.signed(r.w, 3)
			chain.add(tc.flag)
			waitFor(t, "height 3 checked", func() bool { return r.w.checkedHeight() >= 3 })
			err := r.w.Allow()
			if tc.trips == "" {
				if err != nil {
					t.Fatalf("Allow = %v, want nil", err)
				}
				return
			}
			var det *DetectedError
			if !errors.As(err, &det) || det.Height != 3 || !bytes.Contains([]byte(det.Why), []byte(tc.trips)) {
				t.Fatalf("Allow = %v, want a DetectedError at 3 saying %q", err, tc.trips)
			}
			chain.add(0)
			waitFor(t, "height 4 checked", func() bool { return r.w.checkedHeight() >= 4 })
			if !errors.As(r.w.Allow(), &det) {
				t.Fatalf("the trip cleared: Allow = %v", r.w.Allow())
			}
			if len(r.done) != 0 {
				t.Fatal("Run returned after a trip while running; it must latch and go on")
			}
			if r.value(t, "cosigner_doppelganger_tripped") != 1 || r.value(t, "cosigner_doppelganger_detected_total") != 1 {
				t.Error("trip not in the metrics")
			}
		})
	}
}

// TestRPCDown: under refuse an unreadable chain keeps (or makes) the gate
// closed and is counted; under warn signing goes on; another chain ends
// Run.
func TestRPCDown(t *testing.T) {
	down := errors.New("connection refused")
	t.Run("refuse at start", func(t *testing.T) {
		chain := &memChain{}
		chain.add(0)
		chain.setFail(down)
		r := startWatch(t, chain, Options{Heights: 1})
		waitFor(t, "rpc errors counted", func() bool { return r.value(t, "cosigner_doppelganger_rpc_errors_total") >= 3 })
		if err := r.w.Allow(); !errors.Is(err, ErrWatching) {
			t.Fatalf("Allow = %v, want ErrWatching", err)
		}
		chain.setFail(nil)
		waitFor(t, "the watch to take its start height", func() bool { return r.w.startHeight() == 1 })
		if err := r.w.Allow(); !errors.Is(err, ErrWatching) {
			t.Fatalf("Allow once the rpc answers = %v, want ErrWatching until a new height", err)
		}
		chain.add(0)
		waitFor(t, "the gate to open", func() bool { return r.w.Allow() == nil })
	})
	t.Run("refuse while running", func(t *testing.T) {
		chain := &memChain{}
		chain.add(0)
		r := startWatch(t, chain, Options{})
		waitFor(t, "the gate to open", func() bool { return r.w.Allow() == nil })
		chain.setFail(down)
		waitFor(t, "the gate to close", func() bool { return errors.Is(r.w.Allow(), ErrRPCDown) })
		chain.setFail(nil)
		waitFor(t, "the gate to reopen", func() bool { return r.w.Allow() == nil })
	})
	t.Run("warn", func(t *testing.T) {
		chain := &memChain{}
		chain.add(0)
		chain.setFail(down)
		r := startWatch(t, chain, Options{Heights: 3, RPCDown: Warn})
		waitFor(t, "the gate to open", func() bool { return r.w.Allow() == nil })
		if r.value(t, "cosigner_doppelganger_rpc_errors_total") < 1 {
			t.Error("rpc error not counted")
		}
	})
	t.Run("another chain", func(t *testing.T) {
		chain := &memChain{}
		chain.setFail(fmt.Errorf("network kira-2: %w", ErrWrongChain))
		r := startWatch(t, chain, Options{Heights: 3, RPCDown: Warn})
		select {
		case err := <-r.done:
			r.done <- nil
			if !errors.Is(err, ErrWrongChain) {
				t.Fatalf("Run = %v, want ErrWrongChain", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return")
		}
	})
}

// TestStartWatchRecent: a mark within RecentWithin of the latest height (a
// leader change inside one cluster) opens the gate without waiting, and
// its own recent signatures do not trip it; an older mark waits.
func TestStartWatchRecent(t *testing.T) {
	chain := &memChain{}
	for h := int64(1); h <= 10; h++ {
		chain.add(flagAt(h, 9))
	}
	r := startWatch(t, chain, Options{Heights: 3, Mark: 9, RecentWithin: 3})
	waitFor(t, "the gate to open", func() bool { return r.w.Allow() == nil })

	old := startWatch(t, chain, Options{Heights: 3, Mark: 5, RecentWithin: 3})
	waitFor(t, "height 10 checked", func() bool { return old.w.checkedHeight() >= 9 })
	if err := old.w.Allow(); !errors.Is(err, ErrWatching) {
		t.Fatalf("an old mark: Allow = %v, want ErrWatching", err)
	}
}

// TestWatchEndClearsGauge: a watch that ends while holding signing (a
// leader that loses leadership mid-watch) leaves no "watching" series
// behind to page someone; a trip stays.
func TestWatchEndClearsGauge(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	chain := &memChain{}
	chain.setFail(errors.New("connection refused"))
	w := New(chain, Options{ChainID: "kira-1", Address: ourAddr, Heights: 3, Metrics: m, Poll: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	labels := testkit.Labels("chain", "kira-1")
	waitFor(t, "an rpc error", func() bool { return testkit.Value(t, reg, "cosigner_doppelganger_rpc_errors_total", labels) > 0 })
	if testkit.Value(t, reg, "cosigner_doppelganger_watching", labels) != 1 {
		t.Fatal("not watching")
	}
	cancel()
	<-done
	if testkit.Value(t, reg, "cosigner_doppelganger_watching", labels) != 0 {
		t.Fatal("cosigner_doppelganger_watching still 1 after the watch ended")
	}
}
