package signstate

import (
	"errors"
	"testing"
	"time"

	"github.com/cosigner/cosigner/privval"
)

// TestHighest: the highest height/round/step wins; equal ones with the same
// block (or only the timestamp differing) keep their content; equal ones
// with different blocks keep no content, and the result then refuses every
// request at that height/round/step while allowing the next.
func TestHighest(t *testing.T) {
	t0 := time.Unix(1700000000, 0).UTC()
	mark := func(h int64, r int32, s privval.Step, block string, ts time.Time) Mark {
		v := vote(h, r, s, block, ts)
		return Mark{Height: h, Round: r, Step: s, SignBytes: v.SignBytes, Signature: []byte("dropped")}
	}
	a10 := mark(10, 0, privval.StepPrecommit, "A", t0)
	a10later := mark(10, 0, privval.StepPrecommit, "A", t0.Add(time.Second))
	b10 := mark(10, 0, privval.StepPrecommit, "B", t0)
	a9 := mark(9, 2, privval.StepPrecommit, "A", t0)
	a10prevote := mark(10, 0, privval.StepPrevote, "A", t0)
	tests := []struct {
		name       string
		marks      []Mark
		want       Mark
		keepsBytes bool
	}{
		{"none", nil, Mark{}, false},
		{"one", []Mark{a9}, a9, true},
		{"height wins over round", []Mark{a9, a10prevote}, a10prevote, true},
		{"step wins", []Mark{a10, a10prevote}, a10, true},
		{"same block", []Mark{a10, a10}, a10, true},
		{"only the timestamp differs", []Mark{a10, a10later}, a10, true},
		{"different blocks", []Mark{a9, a10, b10}, Mark{Height: 10, Step: privval.StepPrecommit}, false},
		{"fresh state", []Mark{{Height: 50}}, Mark{Height: 50}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Highest(tt.marks)
			if got.Height != tt.want.Height || got.Round != tt.want.Round || got.Step != tt.want.Step {
				t.Fatalf("Highest = %d/%d/%d, want %d/%d/%d", got.Height, got.Round, got.Step, tt.want.Height, tt.want.Round, tt.want.Step)
			}
			if got.Signature != nil {
				t.Fatal("a signature was carried")
			}
			if (len(got.SignBytes) > 0) != tt.keepsBytes {
				t.Fatalf("sign bytes kept = %v, want %v", len(got.SignBytes) > 0, tt.keepsBytes)
			}
		})
	}
	// The disagreeing case refuses both blocks at 10/0/precommit, allows 11.
	got := Highest([]Mark{a10, b10})
	for _, block := range []string{"A", "B"} {
		if _, err := Decide(got, vote(10, 0, privval.StepPrecommit, block, t0)); !errors.Is(err, ErrConflict) {
			t.Fatalf("block %s at the disputed mark: %v, want a conflict", block, err)
		}
	}
	if _, err := Decide(got, vote(11, 0, privval.StepPrevote, "C", t0)); err != nil {
		t.Fatalf("the next height: %v", err)
	}
	// Resending what was signed stays possible when the dealers agree.
	if d, err := Decide(Highest([]Mark{a10, a10later}), vote(10, 0, privval.StepPrecommit, "A", t0)); err != nil || d.Verdict != Resend {
		t.Fatalf("resend of the agreed block: %v %v", d, err)
	}
}

// TestMarksRoundTrip: EncodeMarks and DecodeMarks keep every field but the
// signature; bad input is refused.
func TestMarksRoundTrip(t *testing.T) {
	t0 := time.Unix(1700000000, 0).UTC()
	v := vote(12, 1, privval.StepPrecommit, "A", t0)
	in := map[string]Mark{
		"chain-a": {Height: 12, Round: 1, Step: privval.StepPrecommit, SignBytes: v.SignBytes, Signature: make([]byte, 64)},
		"chain-b": {Height: 40},
	}
	out, err := DecodeMarks(EncodeMarks(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out["chain-a"].Height != 12 || out["chain-a"].Step != privval.StepPrecommit ||
		string(out["chain-a"].SignBytes) != string(v.SignBytes) || out["chain-a"].Signature != nil || out["chain-b"].Height != 40 {
		t.Fatalf("round trip: %+v", out)
	}
	if m, err := DecodeMarks(EncodeMarks(nil)); err != nil || len(m) != 0 {
		t.Fatalf("no marks: %v %v", m, err)
	}
	for _, bad := range []string{``, `null`, `{}`, `[{"chain_id":"../x","height":"1","round":0,"step":0}]`,
		`[{"chain_id":"a","height":"1","round":0,"step":0},{"chain_id":"a","height":"2","round":0,"step":0}]`,
		`[{"chain_id":"a","height":"-1","round":0,"step":0}]`, `[{"chain_id":"a","height":"1","round":0,"step":0,"extra":1}]`} {
		if _, err := DecodeMarks([]byte(bad)); err == nil {
			t.Errorf("DecodeMarks(%s) accepted", bad)
		}
	}
}

// FuzzDecodeMarks: no panic, and what decodes re-encodes to what decodes
// the same.
func FuzzDecodeMarks(f *testing.F) {
	v := vote(12, 1, privval.StepPrecommit, "A", time.Unix(1700000000, 0).UTC())
	f.Add(EncodeMarks(map[string]Mark{"c": {Height: 12, Round: 1, Step: privval.StepPrecommit, SignBytes: v.SignBytes}}))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMarks(b)
		if err != nil {
			return
		}
		again, err := DecodeMarks(EncodeMarks(m))
		if err != nil || len(again) != len(m) {
			t.Fatalf("re-decoding: %v", err)
		}
		for id, mk := range m {
			g := again[id]
			if g.Height != mk.Height || g.Round != mk.Round || g.Step != mk.Step || string(g.SignBytes) != string(mk.SignBytes) {
				t.Fatalf("chain %s changed: %+v -> %+v", id, mk, g)
			}
		}
	})
}
