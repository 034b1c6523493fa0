package admin

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cosigner/cosigner/cosigner/metrics"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/privval"
)

// Tracker is what status and readiness read: the nodes this process dials
// and whether each is connected, and the last signature it made for each
// chain's nodes. It observes the privval clients (privval.Observer) and
// passes what it sees on to the Prometheus metrics, if any. It is safe for
// concurrent use; the zero value is not usable, call NewTracker.
type Tracker struct {
	metrics *metrics.Metrics // nil: no metrics

	// mu guards chains and nodes.
	mu     sync.Mutex
	chains map[string]*chainActivity
	nodes  map[nodeKey]bool // present while dialled; value: connected
}

var _ privval.Observer = (*Tracker)(nil)

// chainActivity is what this process last signed for a chain's nodes.
type chainActivity struct {
	height int64
	round  int32
	step   privval.Step
	at     time.Time
	// baseline is the height the missed-heights count starts from: the
	// last height known signed (by anyone) when this process began to
	// serve the chain's nodes; 0 when unknown.
	baseline int64
}

type nodeKey struct{ chain, address string }

// NewTracker returns a tracker that feeds m (nil: none).
func NewTracker(m *metrics.Metrics) *Tracker {
	return &Tracker{metrics: m, chains: map[string]*chainActivity{}, nodes: map[nodeKey]bool{}}
}

// NodeConnected implements privval.Observer.
func (t *Tracker) NodeConnected(chainID, address string, up bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := nodeKey{chainID, address}
	if _, ok := t.nodes[k]; !ok {
		return // no longer dialled: a late report of a closed client
	}
	t.nodes[k] = up
	t.metrics.SetNodeConnected(chainID, address, up)
}

// ServeNodes records that this process now dials the nodes of chainID,
// none connected yet, and that the chain's last known signed height is
// baseline (0: unknown).
func (t *Tracker) ServeNodes(chainID string, nodes []string, baseline int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range nodes {
		t.nodes[nodeKey{chainID, a}] = false
		t.metrics.SetNodeConnected(chainID, a, false)
	}
	a := t.chainLocked(chainID)
	a.baseline = max(baseline, a.height)
}

// StopServing forgets every node: this process no longer answers nodes (a
// leader that stepped down).
func (t *Tracker) StopServing() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.nodes {
		t.metrics.RemoveNode(k.chain, k.address)
		delete(t.nodes, k)
	}
	t.metrics.ResetLastSigned()
}

func (t *Tracker) chainLocked(chainID string) *chainActivity {
	a, ok := t.chains[chainID]
	if !ok {
		a = &chainActivity{}
		t.chains[chainID] = a
	}
	return a
}

// SignAnswered implements privval.Observer: a signature above the last one
// moves the chain's last signature and counts the heights skipped since the
// previous one (or the baseline).
func (t *Tracker) SignAnswered(r privval.SignResult) {
	if r.Step == 0 {
		return
	}
	var p metrics.Progress
	if r.Code == 0 {
		t.mu.Lock()
		a := t.chainLocked(r.ChainID)
		if signstate.Above(r.Height, r.Round, r.Step, a.height, a.round, a.step) {
			p.Fresh = true
			prev := max(a.height, a.baseline)
			if prev > 0 && r.Height > prev+1 {
				p.Missed = r.Height - prev - 1
			}
			a.height, a.round, a.step, a.at = r.Height, r.Round, r.Step, time.Now()
		}
		t.mu.Unlock()
	}
	t.metrics.Answered(r, p)
}

// ChainActivity is the last signature this process made for a chain's
// nodes.
type ChainActivity struct {
	ChainID  string
	Height   int64
	Round    int32
	Step     privval.Step
	SignedAt time.Time // zero if none since the process started
}

// NodeState is one node connection.
type NodeState struct {
	ChainID, Address string
	Connected        bool
}

// Activity returns the last signature per chain, sorted by chain id.
func (t *Tracker) Activity() []ChainActivity {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []ChainActivity
	for id, a := range t.chains {
		out = append(out, ChainActivity{ChainID: id, Height: a.height, Round: a.round, Step: a.step, SignedAt: a.at})
	}
	slices.SortFunc(out, func(a, b ChainActivity) int { return cmp.Compare(a.ChainID, b.ChainID) })
	return out
}

// Nodes returns the nodes this process dials, sorted.
func (t *Tracker) Nodes() []NodeState {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []NodeState
	for k, up := range t.nodes {
		out = append(out, NodeState{ChainID: k.chain, Address: k.address, Connected: up})
	}
	slices.SortFunc(out, func(a, b NodeState) int {
		if c := cmp.Compare(a.ChainID, b.ChainID); c != 0 {
			return c
		}
		return cmp.Compare(a.Address, b.Address)
	})
	return out
}

// NodesDown reports the first node not connected, or nil when all are.
func (t *Tracker) NodesDown() error {
	for _, n := range t.Nodes() {
		if !n.Connected {
			return fmt.Errorf("node %s of chain %s is not connected", n.Address, n.ChainID)
		}
	}
	return nil
}

// NodeReports returns the node connections as a Status lists them.
func (t *Tracker) NodeReports() []NodeReport {
	out := []NodeReport{}
	for _, n := range t.Nodes() {
		out = append(out, NodeReport{Chain: n.ChainID, Address: n.Address, Connected: n.Connected})
	}
	return out
}
