package cluster

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cosigner/cosigner/cosigner/metrics"
)

// String returns the boot id in hex, as logs show it.
func (b BootID) String() string { return hex.EncodeToString(b[:]) }

// bootSeen is what one answer says about the process behind a cosigner id.
type bootSeen int

const (
	// bootSame: the process that answered before.
	bootSame bootSeen = iota
	// bootNew: another process than before, never seen: a restart.
	bootNew
	// bootStale: an answer to a call sent before the current process
	// was first seen, from another process: the one it replaced, late.
	bootStale
	// bootDuplicate: a process that had been replaced answers again:
	// two live processes answer as one id.
	bootDuplicate
)

// maxBootHistory bounds the boot ids remembered per cosigner.
const maxBootHistory = 8

// bootHistory follows the boot ids one cosigner id answers with. A boot id
// is random and new at every process start, and a cosigner's home is
// locked while its process runs, so a restart changes the boot id once (A,
// then B) and never brings an old one back; two live processes behind one
// id (a cloned VM, a restored snapshot, a "standby" copy) alternate: A, B,
// A. The first old boot id that comes back, in an answer to a call sent
// after its successor was seen, is the sign. The zero value is ready.
type bootHistory struct {
	current BootID
	// since is when the first call answered by current was sent.
	since time.Time
	// earlier are the boot ids current replaced, oldest first.
	earlier []BootID
}

// observe records that a call sent at sent was answered by the process
// with boot id b (zero: it did not say). For bootDuplicate it returns the
// boot ids of the live processes: b and those seen after it.
func (h *bootHistory) observe(b BootID, sent time.Time) (bootSeen, []BootID) {
	var zero BootID
	switch {
	case b == zero || b == h.current:
		return bootSame, nil
	case h.current == zero:
		h.current, h.since = b, sent
		return bootSame, nil
	case sent.Before(h.since):
		// Sent before the current process answered first: the answer
		// of the one it replaced, delayed (a restart, not a copy).
		return bootStale, nil
	case slices.Contains(h.earlier, b):
		// The live ones: b and every process seen since it; those
		// before b were restarts.
		i := slices.Index(h.earlier, b)
		return bootDuplicate, append(slices.Clone(h.earlier[i:]), h.current)
	}
	h.earlier = append(h.earlier, h.current)
	if len(h.earlier) > maxBootHistory {
		h.earlier = h.earlier[len(h.earlier)-maxBootHistory:]
	}
	h.current, h.since = b, sent
	return bootNew, nil
}

// Duplicates is the set of cosigner ids found answering as two or more
// live processes at once: two marks for one id, the same exposure as a
// compromised cosigner (two quorums may then overlap only in that id). The
// leader never chooses such an id again. The set lives as long as the
// process: a cosigner that leads again keeps the id out, and only a
// restart of this process, after the copy is gone, clears it. It is safe
// for concurrent use.
type Duplicates struct {
	log     *slog.Logger
	metrics *metrics.Metrics

	// mu guards ids: the boot ids seen for each duplicate id.
	mu  sync.Mutex
	ids map[int][]BootID
}

// NewDuplicates returns an empty set that logs to log and reports to m
// (nil: no metrics).
func NewDuplicates(log *slog.Logger, m *metrics.Metrics) *Duplicates {
	return &Duplicates{log: log, metrics: m, ids: map[int][]BootID{}}
}

// Has reports whether id answers as two live processes.
func (d *Duplicates) Has(id int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.ids[id]
	return ok
}

// add records that id answered with every boot id of boots, alternating.
// The first time, and whenever a further process shows up, it logs an
// error and sets the metric.
func (d *Duplicates) add(id int, boots []BootID) {
	d.mu.Lock()
	known := d.ids[id]
	merged := slices.Clone(known)
	for _, b := range boots {
		if !slices.Contains(merged, b) {
			merged = append(merged, b)
		}
	}
	grew := len(merged) > len(known)
	d.ids[id] = merged
	d.mu.Unlock()
	if !grew {
		return
	}
	d.metrics.SetPeerDuplicate(id, len(merged))
	d.log.Error(LogDuplicateID, "peer", id, "boot_ids", bootList(merged),
		"hint", fmt.Sprintf("find and stop the second process running as cosigner %d (a cloned VM, a restored snapshot, a standby copy): "+
			"each logs its boot_id at start; cosigner %d stays out of every quorum this cosigner leads until this process restarts (docs/operations.md, 'Duplicate cosigner id')", id, id))
}

// describe says why id is not used, for status.
func (d *Duplicates) describe(id int) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return fmt.Sprintf("not used: %d live processes answer as cosigner %d (boot ids %s); stop the copy, then restart this cosigner", len(d.ids[id]), id, bootList(d.ids[id]))
}

func bootList(boots []BootID) string {
	s := make([]string, len(boots))
	for i, b := range boots {
		s[i] = b.String()
	}
	return strings.Join(s, ",")
}
