package raft

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"
)

func rec(chain string, h int64, r int32, s int8, sig string) Record {
	return Record{
		ChainID:   chain,
		Height:    h,
		Round:     r,
		Step:      s,
		SignBytes: []byte("bytes-" + sig),
		Signature: []byte(sig),
		Timestamp: time.Date(2026, 11, 23, 12, 0, 0, int(h), time.UTC),
	}
}

func applyRecord(t *testing.T, f *FSM, index uint64, r Record) any {
	t.Helper()
	data, err := encodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	return f.Apply(&hraft.Log{Index: index, Type: hraft.LogCommand, Data: data})
}

func TestFSMOnlyMovesForward(t *testing.T) {
	steps := []struct {
		name    string
		rec     Record
		applied bool
		wantSig string // the chain's signature afterwards
	}{
		{"first", rec("a", 10, 0, 2, "s1"), true, "s1"},
		{"next step", rec("a", 10, 0, 3, "s2"), true, "s2"},
		{"same HRS again", rec("a", 10, 0, 3, "other"), false, "s2"},
		{"lower step", rec("a", 10, 0, 2, "low"), false, "s2"},
		{"next round, lower step", rec("a", 10, 1, 1, "s3"), true, "s3"},
		{"lower round", rec("a", 10, 0, 3, "low"), false, "s3"},
		{"lower height", rec("a", 9, 5, 3, "low"), false, "s3"},
		{"next height", rec("a", 11, 0, 1, "s4"), true, "s4"},
		{"other chain is independent", rec("b", 1, 0, 1, "b1"), true, "s4"},
	}
	f := NewFSM(FSMOptions{})
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			changed := f.Changed()
			res := applyRecord(t, f, uint64(i+1), st.rec)
			got, ok := res.(ApplyResult)
			if !ok {
				t.Fatalf("Apply returned %#v", res)
			}
			if got.Applied != st.applied {
				t.Errorf("Applied = %v, want %v", got.Applied, st.applied)
			}
			select {
			case <-changed:
				if !st.applied {
					t.Error("Changed fired for an ignored record")
				}
			default:
				if st.applied {
					t.Error("Changed did not fire for an applied record")
				}
			}
			last, ok := f.Last("a")
			if !ok || string(last.Signature) != st.wantSig {
				t.Errorf("Last(a) = %q, %v; want %q", last.Signature, ok, st.wantSig)
			}
		})
	}
	if _, ok := f.Last("nope"); ok {
		t.Error("Last of an unknown chain reported a record")
	}
	// Last returns a copy.
	last, _ := f.Last("a")
	last.Signature[0] = 'X'
	if again, _ := f.Last("a"); string(again.Signature) != "s4" {
		t.Error("mutating Last's result changed the FSM")
	}
}

func TestFSMRejectsMalformedEntries(t *testing.T) {
	f := NewFSM(FSMOptions{})
	good, err := encodeRecord(rec("a", 1, 0, 1, "s"))
	if err != nil {
		t.Fatal(err)
	}
	noChain, err := encodeRecord(Record{Height: 1})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty log entry"},
		{"unknown type", append([]byte{9}, good[1:]...), "unknown log entry type 9"},
		{"bad json", []byte{entryRecordV1, '{'}, "decode sign state record"},
		{"unknown field", append([]byte{entryRecordV1}, []byte(`{"chain_id":"a","height":1,"evil":1}`)...), "unknown field"},
		{"no chain", noChain, "without chain id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.Apply(&hraft.Log{Index: 7, Type: hraft.LogCommand, Data: tt.data})
			err, ok := res.(error)
			if !ok || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Apply = %v, want an error containing %q", res, tt.want)
			}
		})
	}
	if _, ok := f.Last("a"); ok {
		t.Error("a malformed entry changed the state")
	}
}

func TestFSMSnapshotRestore(t *testing.T) {
	f := NewFSM(FSMOptions{})
	applyRecord(t, f, 1, rec("a", 5, 1, 3, "sa"))
	b := rec("b", 7, 0, 2, "sb")
	b.ExtensionSignature = []byte("ext")
	applyRecord(t, f, 2, b)

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// A record applied after Snapshot is not in it.
	applyRecord(t, f, 3, rec("a", 6, 0, 1, "later"))

	store := hraft.NewInmemSnapshotStore()
	sink, err := store.Create(hraft.SnapshotVersionMax, 2, 1, hraft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	_, rc, err := store.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	g := NewFSM(FSMOptions{})
	applyRecord(t, g, 1, rec("stale", 1, 0, 1, "gone")) // replaced by Restore
	changed := g.Changed()
	if err := g.Restore(rc); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Error("Restore did not signal Changed")
	}
	if _, ok := g.Last("stale"); ok {
		t.Error("Restore kept state that was not in the snapshot")
	}
	for _, want := range []Record{rec("a", 5, 1, 3, "sa"), b} {
		got, ok := g.Last(want.ChainID)
		if !ok || got.Compare(want) != 0 || !bytes.Equal(got.Signature, want.Signature) ||
			!bytes.Equal(got.SignBytes, want.SignBytes) || !bytes.Equal(got.ExtensionSignature, want.ExtensionSignature) ||
			!got.Timestamp.Equal(want.Timestamp) {
			t.Errorf("restored %q = %+v, want %+v", want.ChainID, got, want)
		}
	}

	for _, bad := range []string{`{"version":2,"records":[]}`, `{"version":1,"records":[{"chain_id":""}]}`, `{`} {
		if err := NewFSM(FSMOptions{}).Restore(io.NopCloser(strings.NewReader(bad))); err == nil {
			t.Errorf("Restore(%s) succeeded", bad)
		}
	}
}

// FuzzDecodeRecord: decoding never panics, and what decodes survives an
// encode/decode round trip unchanged.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range []Record{rec("a", 1, 0, 1, "s"), {ChainID: "kira-1", Height: 1 << 40, Round: 3, Step: 3, ExtensionSignature: []byte{1, 2}}} {
		data, err := encodeRecord(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{entryRecordV1, '{', '}'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeRecord(data)
		if err != nil {
			return
		}
		again, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := decodeRecord(again)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if r2.ChainID != r.ChainID || r2.Compare(r) != 0 || !bytes.Equal(r2.SignBytes, r.SignBytes) ||
			!bytes.Equal(r2.Signature, r.Signature) || !bytes.Equal(r2.ExtensionSignature, r.ExtensionSignature) ||
			!r2.Timestamp.Equal(r.Timestamp) {
			t.Fatalf("round trip changed the record: %+v -> %+v", r, r2)
		}
	})
}

// TestFSMCheck: a record the check refuses is not stored, by Apply or by
// Restore, and the replica's own record stays; records not above the
// stored one are not even checked.
func TestFSMCheck(t *testing.T) {
	var checked []int64
	refuseAbove := func(r Record) error {
		checked = append(checked, r.Height)
		if r.Height > 1000 {
			return fmt.Errorf("height %d is above 1000", r.Height)
		}
		return nil
	}
	f := NewFSM(FSMOptions{Check: refuseAbove})
	steps := []struct {
		name    string
		rec     Record
		applied bool
		refused bool
		want    int64 // chain a's height afterwards
	}{
		{"within", rec("a", 10, 0, 2, "s10"), true, false, 10},
		{"far ahead", rec("a", 5000, 0, 2, "far"), false, true, 10},
		{"far ahead again", rec("a", 1<<40, 0, 2, "far"), false, true, 10},
		{"below the stored one: not checked", rec("a", 9, 0, 2, "old"), false, false, 10},
		{"within again", rec("a", 11, 0, 1, "s11"), true, false, 11},
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			changed := f.Changed()
			res, ok := applyRecord(t, f, uint64(i+1), st.rec).(ApplyResult)
			if !ok || res.Applied != st.applied || (res.Refused != nil) != st.refused {
				t.Fatalf("Apply = %+v, want applied %v, refused %v", res, st.applied, st.refused)
			}
			select {
			case <-changed:
				if !st.applied {
					t.Error("Changed fired for a record not applied")
				}
			default:
			}
			if last, _ := f.Last("a"); last.Height != st.want {
				t.Fatalf("Last(a) at height %d, want %d", last.Height, st.want)
			}
		})
	}
	if want := []int64{10, 5000, 1 << 40, 11}; !slices.Equal(checked, want) {
		t.Errorf("checked heights %v, want %v", checked, want)
	}

	// A snapshot from a replica that took far records: this replica keeps
	// its own record of a, takes b, and has none of c.
	src := NewFSM(FSMOptions{})
	applyRecord(t, src, 1, rec("a", 5000, 0, 2, "far"))
	applyRecord(t, src, 2, rec("b", 20, 0, 2, "b20"))
	applyRecord(t, src, 3, rec("c", 1<<40, 0, 2, "far"))
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	store := hraft.NewInmemSnapshotStore()
	sink, err := store.Create(hraft.SnapshotVersionMax, 3, 1, hraft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	_, rc, err := store.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Restore(rc); err != nil {
		t.Fatal(err)
	}
	if a, _ := f.Last("a"); a.Height != 11 || string(a.Signature) != "s11" {
		t.Errorf("after Restore a = %d %q, want this replica's 11", a.Height, a.Signature)
	}
	if b, ok := f.Last("b"); !ok || b.Height != 20 {
		t.Errorf("after Restore b = %d, %v, want 20", b.Height, ok)
	}
	if c, ok := f.Last("c"); ok {
		t.Errorf("after Restore c = %d, want none", c.Height)
	}
}
