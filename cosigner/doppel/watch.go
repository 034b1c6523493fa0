package doppel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Source is where a Watch reads the chain (*Client). Latest returns the
// latest block height, Commit the commit of a height; both may be called
// only from the Watch's Run goroutine, and an error must never stand for
// "nothing found".
type Source interface {
	Latest(ctx context.Context) (int64, error)
	Commit(ctx context.Context, h int64) (*Commit, error)
}

var _ Source = (*Client)(nil)

// RPC-down policies (config doppelganger_rpc_down).
const (
	Refuse = "refuse"
	Warn   = "warn"
)

// Options configure a Watch.
type Options struct {
	// ChainID names the chain in logs, metrics and errors.
	ChainID string
	// Address is our validator's address (keys.Address of its public key).
	Address []byte
	// Heights is how many new heights the start watch follows before the
	// gate opens; 0 opens it at once (the watch while running still runs).
	Heights int
	// Mark is the sign state's height as loaded: commits at or below it
	// may carry signatures this cosigner made before it started, and are
	// not counted.
	Mark int64
	// RecentWithin, when above 0, skips the start watch when Mark is
	// within RecentWithin heights of the latest height: the signer (a
	// threshold cluster whose leader changed) signed just now, so the
	// chain's latest signatures are its own. The watch while running
	// still runs.
	RecentWithin int64
	// RPCDown is Refuse (the gate stays or goes closed while the Source
	// fails) or Warn (failures are logged, signing goes on).
	RPCDown string
	// Poll is how often the Source is asked for the latest height;
	// 0: DefaultPoll.
	Poll    time.Duration
	Log     *slog.Logger
	Metrics *Metrics
}

// DefaultPoll is how often a Watch asks for the latest height.
const DefaultPoll = 500 * time.Millisecond

// ErrWatching is Allow's error while the start watch runs.
var ErrWatching = errors.New("doppelganger watch running: cosigner signs nothing until it has seen the chain's next heights without our validator's signature")

// ErrRPCDown is Allow's error while the Source fails under Refuse.
var ErrRPCDown = errors.New("doppelganger watch cannot read the chain (doppelganger_rpc_down = \"refuse\"): signing resumes once an rpc address answers")

// DetectedError is a commit carrying our validator's signature that this
// cosigner did not make: another signer is live for the key.
type DetectedError struct {
	ChainID string
	Height  int64
	Round   int32
	// Why says what in the commit is not ours.
	Why string
}

func (e *DetectedError) Error() string {
	return fmt.Sprintf("chain %s: doppelganger: another signer is live for this validator's key: the commit of height %d round %d %s; "+
		"cosigner refuses to sign: find and stop the other signer (an old cosigner, TMKMS or Horcrux still running, a restored backup, "+
		"the node's own priv_validator_key.json with priv_validator_laddr unset), then restart cosigner",
		e.ChainID, e.Height, e.Round, e.Why)
}

// Log messages (constant, with chain and height attributes).
const (
	LogDetected = "doppelganger detected: refusing to sign"
	LogWatching = "doppelganger watch: not signing until the chain shows no other signer"
	LogOpen     = "doppelganger watch passed: signing"
	LogRPCError = "doppelganger watch cannot read the chain"
	LogOff      = "doppelganger watch off: nothing sees a second signer left running for this key"
	LogRecent   = "doppelganger start watch skipped: the cluster signed within the last heights"
)

// Watch guards one chain's signing against a second live signer. Allow
// and Signed are safe for concurrent use with Run.
type Watch struct {
	src  Source
	opts Options

	mu sync.Mutex
	// state is what Allow answers.
	state gate
	// tripped is the detection, once made; it never clears.
	tripped *DetectedError
	// signed holds the precommits this process signed since start, by
	// height and round.
	signed map[int64]map[int32]*precommit
	// checked is the highest height whose commit was checked.
	checked int64
	// start is the latest height when Run began watching; 0 before.
	start int64
}

// precommit is what this process signed at one height and round: the
// block (empty for nil) and every signature it released (a same-vote
// retry may be answered with a signature of another timestamp).
type precommit struct {
	block []byte
	sigs  [][]byte
}

type gate int

const (
	gateWatching gate = iota
	gateOpen
	gateRPCDown
	gateTripped
)

// New returns a Watch reading src. Its gate is closed until Run has
// followed opts.Heights new heights.
func New(src Source, opts Options) *Watch {
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.RPCDown == "" {
		opts.RPCDown = Refuse
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	w := &Watch{src: src, opts: opts, signed: map[int64]map[int32]*precommit{}}
	w.opts.Metrics.setGate(opts.ChainID, gateWatching)
	return w
}

// Allow reports why this chain must not sign now (the start watch running,
// a doppelganger detected, the chain unreadable under Refuse), or nil.
// Every sign path calls it before it signs.
func (w *Watch) Allow() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case gateOpen:
		return nil
	case gateTripped:
		return w.tripped
	case gateRPCDown:
		return ErrRPCDown
	default:
		return ErrWatching
	}
}

// Signed records a precommit this process signed, before its signature
// leaves the process; blockHash is empty for a nil precommit. A commit
// carrying our precommit with another signature was made by another
// signer, even for the same block.
func (w *Watch) Signed(height int64, round int32, blockHash, sig []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if height <= w.checked {
		return
	}
	r := w.signed[height]
	if r == nil {
		r = map[int32]*precommit{}
		w.signed[height] = r
	}
	pc := r[round]
	if pc == nil {
		pc = &precommit{block: bytes.Clone(blockHash)}
		r[round] = pc
	}
	pc.sigs = append(pc.sigs, bytes.Clone(sig))
}

func (w *Watch) set(g gate) {
	w.mu.Lock()
	if w.state != gateTripped {
		w.state = g
	}
	w.mu.Unlock()
	w.opts.Metrics.setGate(w.opts.ChainID, g)
}

// Run watches until ctx ends. The start watch takes the latest height h0
// and checks the commits of h0 through h0+Heights (above Mark) for our
// validator's signature; finding one, Run returns the *DetectedError
// (cosigner exits). Then the gate opens and every later commit is compared
// with what Signed recorded: a precommit of ours at a height or round
// this process did not sign, or for another block, trips the gate for
// good and is logged and counted, and Run goes on returning nothing
// until ctx ends (the operator restarts cosigner after investigating).
// Another chain behind the rpc address is returned as an error at any
// time: the configuration is wrong.
func (w *Watch) Run(ctx context.Context) error {
	log := w.opts.Log.With("chain", w.opts.ChainID)
	// A watch that ends (the process stops, or a cluster leader loses
	// leadership) no longer holds signing; a trip stays on the metrics.
	defer func() {
		if w.currentGate() != gateTripped {
			w.opts.Metrics.setGate(w.opts.ChainID, gateOpen)
		}
	}()
	tick := time.NewTicker(w.opts.Poll)
	defer tick.Stop()
	wait := func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			return nil
		}
	}
	// h0 is the latest height at start; 0 while unknown (under Warn the
	// gate may open before it is known, skipping the start watch).
	var h0, end int64
	passed := false
	begin := func(latest int64) {
		h0, end = latest, latest+int64(w.opts.Heights)
		w.mu.Lock()
		w.start = latest
		w.checked = max(w.opts.Mark, latest-1)
		w.mu.Unlock()
		if w.opts.RecentWithin > 0 && w.opts.Mark >= latest-w.opts.RecentWithin {
			log.Info(LogRecent, "height", latest, "mark", w.opts.Mark)
			end = latest
		} else if w.opts.Heights > 0 && !passed {
			log.Warn(LogWatching, "from_height", h0, "to_height", end, "heights", w.opts.Heights, "mark", w.opts.Mark)
		}
	}
	for {
		latest, err := w.src.Latest(ctx)
		if err == nil && h0 == 0 {
			begin(latest)
		}
		if err == nil {
			err = w.check(ctx, log, latest)
		}
		var det *DetectedError
		switch {
		case errors.As(err, &det):
			if !passed {
				return det
			}
		case err != nil:
			if done, err := w.rpcFailed(ctx, log, err, !passed); done {
				return err
			}
			if w.currentGate() == gateOpen {
				passed = true // under Warn
			}
		default:
			if g := w.currentGate(); g != gateOpen && g != gateTripped && w.checkedHeight() >= end {
				if !passed {
					log.Info(LogOpen, "height", w.checkedHeight(), "watched", w.opts.Heights)
				}
				passed = true
				w.set(gateOpen)
			}
		}
		if err := wait(); err != nil {
			return err
		}
	}
}

func (w *Watch) currentGate() gate {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}

func (w *Watch) checkedHeight() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.checked
}

// rpcFailed handles a Source failure: another chain ends Run; otherwise
// it is logged and counted, and under Refuse the gate goes (or stays)
// closed, under Warn it opens. starting says the start watch has not
// passed yet.
func (w *Watch) rpcFailed(ctx context.Context, log *slog.Logger, err error, starting bool) (bool, error) {
	if ctx.Err() != nil {
		return true, ctx.Err()
	}
	w.opts.Metrics.rpcError(w.opts.ChainID)
	if errors.Is(err, ErrWrongChain) {
		return true, fmt.Errorf("chain %s: doppelganger watch: %w", w.opts.ChainID, err)
	}
	if w.opts.RPCDown == Warn {
		log.Error(LogRPCError, "policy", Warn, "signing", true, "err", err)
		if w.currentGate() != gateTripped {
			w.set(gateOpen)
		}
		return false, nil
	}
	log.Error(LogRPCError, "policy", Refuse, "signing", false, "err", err)
	if !starting {
		w.set(gateRPCDown)
	}
	return false, nil
}

// check reads the commits above checked up to latest and compares each
// with what this process signed.
func (w *Watch) check(ctx context.Context, log *slog.Logger, latest int64) error {
	for h := w.checkedHeight() + 1; h <= latest; h++ {
		cm, err := w.src.Commit(ctx, h)
		if err != nil {
			return err
		}
		if cm.Height != h {
			return fmt.Errorf("commit of height %d asked, of %d given: %w", h, cm.Height, ErrMalformed)
		}
		if det := w.compare(cm); det != nil {
			w.mu.Lock()
			first := w.tripped == nil
			if first {
				w.tripped = det
				w.state = gateTripped
			}
			w.checked = h
			w.mu.Unlock()
			if first {
				w.opts.Metrics.detect(w.opts.ChainID)
				w.opts.Metrics.setGate(w.opts.ChainID, gateTripped)
				log.Error(LogDetected, "height", h, "round", cm.Round, "why", det.Why, "err", det)
			}
			return det
		}
		w.mu.Lock()
		w.checked = h
		delete(w.signed, h)
		w.mu.Unlock()
	}
	return nil
}

// compare returns the DetectedError of a commit carrying a precommit of
// ours this process did not sign, or nil.
func (w *Watch) compare(cm *Commit) *DetectedError {
	s, ok := cm.Find(w.opts.Address)
	if !ok || cm.Height <= w.opts.Mark {
		return nil
	}
	w.mu.Lock()
	pc, signed := w.signed[cm.Height][cm.Round]
	w.mu.Unlock()
	det := &DetectedError{ChainID: w.opts.ChainID, Height: cm.Height, Round: cm.Round}
	switch {
	case !signed:
		det.Why = "carries our validator's precommit, which this cosigner did not sign"
	case s.Flag == FlagCommit && !bytes.Equal(pc.block, cm.BlockHash):
		det.Why = fmt.Sprintf("carries our validator's precommit for block %X, this cosigner signed %s", cm.BlockHash, blockName(pc.block))
	case s.Flag == FlagNil && len(pc.block) != 0:
		det.Why = fmt.Sprintf("carries our validator's nil precommit, this cosigner signed block %X", pc.block)
	case !slices.ContainsFunc(pc.sigs, func(sig []byte) bool { return bytes.Equal(sig, s.Signature) }):
		det.Why = "carries our validator's precommit for the block this cosigner signed, with a signature (timestamp) this cosigner did not make"
	default:
		return nil
	}
	return det
}

func blockName(h []byte) string {
	if len(h) == 0 {
		return "nil"
	}
	return fmt.Sprintf("block %X", h)
}

func (w *Watch) startHeight() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.start
}
