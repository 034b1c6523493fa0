package raft

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
)

// Record is the cluster's last signed state for one chain: what the leader
// signed at the highest height/round/step so far, so that a new leader can
// answer a duplicate request with the same signature and refuse a
// conflicting one.
type Record struct {
	ChainID string
	Height  int64
	Round   int32
	// Step uses CometBFT FilePV numbering: 1 proposal, 2 prevote,
	// 3 precommit. The FSM only orders by it.
	Step               int8
	SignBytes          []byte
	Signature          []byte
	ExtensionSignature []byte // empty unless a non-nil precommit
	Timestamp          time.Time
}

// Compare orders records by height, then round, then step, and returns -1,
// 0 or +1. Chain ids are not compared.
func (r Record) Compare(o Record) int {
	if c := cmpInt(r.Height, o.Height); c != 0 {
		return c
	}
	if c := cmpInt(r.Round, o.Round); c != 0 {
		return c
	}
	return cmpInt(r.Step, o.Step)
}

func cmpInt[T int64 | int32 | int8](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (r Record) clone() Record {
	r.SignBytes = bytes.Clone(r.SignBytes)
	r.Signature = bytes.Clone(r.Signature)
	r.ExtensionSignature = bytes.Clone(r.ExtensionSignature)
	return r
}

func (r Record) validate() error {
	switch {
	case r.ChainID == "":
		return errors.New("sign state record without chain id")
	case r.Height < 0 || r.Round < 0 || r.Step < 0:
		return fmt.Errorf("sign state record of %q with negative height/round/step %d/%d/%d", r.ChainID, r.Height, r.Round, r.Step)
	}
	return nil
}

// Log entry encoding: one type byte, then the payload. The type byte lets
// later versions add entry kinds; an FSM that meets an unknown one fails the
// entry (every replica the same way) instead of guessing.
const entryRecordV1 byte = 1

// recordJSON is the stable on-log and in-snapshot form of a Record. JSON
// keeps the log and snapshots readable with standard tools; entries are a few
// hundred bytes and replicate off the signing hot path.
type recordJSON struct {
	ChainID            string    `json:"chain_id"`
	Height             int64     `json:"height"`
	Round              int32     `json:"round"`
	Step               int8      `json:"step"`
	SignBytes          []byte    `json:"sign_bytes,omitempty"`
	Signature          []byte    `json:"signature,omitempty"`
	ExtensionSignature []byte    `json:"extension_signature,omitempty"`
	Timestamp          time.Time `json:"timestamp"`
}

func encodeRecord(r Record) ([]byte, error) {
	b, err := json.Marshal(recordJSON(r))
	if err != nil {
		return nil, fmt.Errorf("encode sign state record: %w", err)
	}
	return append([]byte{entryRecordV1}, b...), nil
}

func decodeRecord(data []byte) (Record, error) {
	if len(data) == 0 {
		return Record{}, errors.New("empty log entry")
	}
	if data[0] != entryRecordV1 {
		return Record{}, fmt.Errorf("unknown log entry type %d", data[0])
	}
	var j recordJSON
	dec := json.NewDecoder(bytes.NewReader(data[1:]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Record{}, fmt.Errorf("decode sign state record: %w", err)
	}
	r := Record(j)
	if err := r.validate(); err != nil {
		return Record{}, err
	}
	return r, nil
}

// RecordCheck decides whether this replica takes a record that is above
// its stored one: nil takes it, an error (saying why) leaves the stored
// record in place. The cosigner passes the height bound its own shares are
// held to, so that a record far above the chain, from a buggy or hostile
// leader, raises nothing here. It is called from Raft's FSM goroutine and
// must be quick and safe for concurrent use.
type RecordCheck func(Record) error

// FSMOptions are an FSM's dependencies.
type FSMOptions struct {
	// Check, if set, vets every record before it replaces the stored one,
	// in Apply and in Restore.
	Check RecordCheck
	// Logger receives a warning for every record Check refuses; nil
	// discards them.
	Logger *slog.Logger
}

// FSM is the replicated state machine of the cluster's sign state: the last
// Record per chain. A record only moves forward: applying one whose
// height/round/step is not above the stored one for its chain leaves the
// state unchanged and is not an error (two leaders racing, a retried
// proposal, or log replay after a restart all produce such entries).
//
// A record that FSMOptions.Check refuses is not stored either. Unlike the
// rules above, a check may differ between replicas (each cosigner's bound
// counts from its own mark and clock), so a replica that refused a record
// may hold an older one than the others until the next record it takes;
// that costs it only the leader's duplicate cache for that height, never
// a signature, since every cosigner still checks each share itself.
//
// Raft calls Apply, Snapshot and Restore from its FSM goroutine, one at a
// time; Last and Changed may be called from any goroutine.
type FSM struct {
	check RecordCheck
	log   *slog.Logger

	mu      sync.RWMutex
	records map[string]Record // chain id -> last record
	changed chan struct{}     // closed and replaced on every change
}

var _ hraft.FSM = (*FSM)(nil)

// NewFSM returns an empty FSM.
func NewFSM(opts FSMOptions) *FSM {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &FSM{check: opts.Check, log: log, records: make(map[string]Record), changed: make(chan struct{})}
}

// ApplyResult is what Apply returns for a well-formed entry.
type ApplyResult struct {
	// Applied is false when the entry was not above the stored record or
	// was refused.
	Applied bool
	// Refused is FSMOptions.Check's error for a record it refused, else
	// nil.
	Refused error
}

// Apply applies a log entry. It returns ApplyResult, or an error for an
// entry it cannot decode (deterministically on every replica; the state is
// unchanged).
func (f *FSM) Apply(l *hraft.Log) any {
	if l.Type != hraft.LogCommand {
		return ApplyResult{}
	}
	r, err := decodeRecord(l.Data)
	if err != nil {
		return fmt.Errorf("apply raft log entry %d: %w", l.Index, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if last, ok := f.records[r.ChainID]; ok && r.Compare(last) <= 0 {
		return ApplyResult{Applied: false}
	}
	if err := f.vet(r); err != nil {
		return ApplyResult{Refused: err}
	}
	f.records[r.ChainID] = r
	f.notifyLocked()
	return ApplyResult{Applied: true}
}

// vet runs the check on r and logs a refusal.
func (f *FSM) vet(r Record) error {
	if f.check == nil {
		return nil
	}
	err := f.check(r)
	if err != nil {
		f.log.Warn(LogRecordRefused, "chain", r.ChainID, "height", r.Height, "round", r.Round, "step", r.Step, "err", err)
	}
	return err
}

// LogRecordRefused is what an FSM logs (at warn, with the chain, height,
// round, step and the check's error) for a replicated record its check
// refused.
const LogRecordRefused = "replicated sign state record refused"

func (f *FSM) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Last returns a copy of the last record of chainID, and false if the
// cluster has signed nothing for it.
func (f *FSM) Last(chainID string) (Record, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.records[chainID]
	if !ok {
		return Record{}, false
	}
	return r.clone(), true
}

// Changed returns a channel that is closed at the next change of the state
// (an applied record or a restore). To wait for a condition without missing
// a change, take the channel first, then check the condition, then wait.
func (f *FSM) Changed() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.changed
}

// snapshotV1 is the snapshot format.
type snapshotV1 struct {
	Version int          `json:"version"`
	Records []recordJSON `json:"records"` // sorted by chain id
}

const snapshotVersion = 1

// Snapshot captures the state. The records are immutable once stored, so a
// shallow copy of the map is a consistent, cheap point-in-time view.
func (f *FSM) Snapshot() (hraft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &fsmSnapshot{records: maps.Clone(f.records)}, nil
}

// Restore replaces the state with a snapshot written by Persist.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var s snapshotV1
	dec := json.NewDecoder(rc)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("restore sign state snapshot: %w", err)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("restore sign state snapshot: version %d, this build reads %d", s.Version, snapshotVersion)
	}
	records := make(map[string]Record, len(s.Records))
	for _, j := range s.Records {
		r := Record(j)
		if err := r.validate(); err != nil {
			return fmt.Errorf("restore sign state snapshot: %w", err)
		}
		if _, dup := records[r.ChainID]; dup {
			return fmt.Errorf("restore sign state snapshot: chain %q appears twice", r.ChainID)
		}
		records[r.ChainID] = r
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, r := range records {
		// A refused record of the snapshot leaves this replica's own
		// record of the chain, if any, in place.
		if old, ok := f.records[id]; ok && r.Compare(old) <= 0 {
			continue
		}
		if f.vet(r) != nil {
			if old, ok := f.records[id]; ok {
				records[id] = old
			} else {
				delete(records, id)
			}
		}
	}
	f.records = records
	f.notifyLocked()
	return nil
}

type fsmSnapshot struct {
	records map[string]Record
}

// Persist writes the snapshot; raft calls it concurrently with Apply.
func (s *fsmSnapshot) Persist(sink hraft.SnapshotSink) error {
	out := snapshotV1{Version: snapshotVersion, Records: make([]recordJSON, 0, len(s.records))}
	for _, id := range slices.Sorted(maps.Keys(s.records)) {
		out.Records = append(out.Records, recordJSON(s.records[id]))
	}
	if err := json.NewEncoder(sink).Encode(out); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist sign state snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
