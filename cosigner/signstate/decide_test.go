package signstate

import (
	"errors"
	"testing"
	"time"

	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/privval"
)

// TestDecide is every case of the one copy of the double-sign rules.
func TestDecide(t *testing.T) {
	t0 := testkit.T0
	t1 := t0.Add(time.Second)
	markOf := func(r *privval.SignRequest) Mark {
		return Mark{Height: r.Height, Round: r.Round, Step: r.Step, SignBytes: r.SignBytes, Signature: make([]byte, 64)}
	}
	prevote := vote(10, 1, privval.StepPrevote, "A", t0)
	proposal := vote(10, 1, privval.StepProposal, "A", t0)
	nilPrevote := vote(10, 1, privval.StepPrevote, "", t0)
	tests := []struct {
		name    string
		mark    Mark
		req     *privval.SignRequest
		want    Verdict
		wantTS  time.Time // for Resend
		wantErr error     // a sentinel, or errAny for any error
	}{
		{"fresh state, first vote", Mark{Height: 10}, prevote, Fresh, time.Time{}, nil},
		{"higher height", markOf(prevote), vote(11, 0, privval.StepProposal, "A", t0), Fresh, time.Time{}, nil},
		{"higher round", markOf(prevote), vote(10, 2, privval.StepProposal, "A", t0), Fresh, time.Time{}, nil},
		{"higher step", markOf(prevote), vote(10, 1, privval.StepPrecommit, "B", t0), Fresh, time.Time{}, nil},
		{"lower height", markOf(prevote), vote(9, 5, privval.StepPrecommit, "A", t0), 0, time.Time{}, ErrRegression},
		{"lower round", markOf(prevote), vote(10, 0, privval.StepPrecommit, "A", t0), 0, time.Time{}, ErrRegression},
		{"lower step", markOf(prevote), vote(10, 1, privval.StepProposal, "A", t0), 0, time.Time{}, ErrRegression},
		{"same vote", markOf(prevote), prevote, Resend, t0, nil},
		{"same vote, later timestamp", markOf(prevote), vote(10, 1, privval.StepPrevote, "A", t1), Resend, t0, nil},
		{"same proposal", markOf(proposal), proposal, Resend, t0, nil},
		{"same proposal, later timestamp", markOf(proposal), vote(10, 1, privval.StepProposal, "A", t1), Resign, time.Time{}, nil},
		{"other block", markOf(prevote), vote(10, 1, privval.StepPrevote, "B", t0), 0, time.Time{}, ErrConflict},
		{"nil after a block", markOf(prevote), nilPrevote, 0, time.Time{}, ErrConflict},
		{"block after nil", markOf(nilPrevote), prevote, 0, time.Time{}, ErrConflict},
		{"other proposal", markOf(proposal), vote(10, 1, privval.StepProposal, "B", t1), 0, time.Time{}, ErrConflict},
		{"marked signed without sign bytes", Mark{Height: 10, Round: 1, Step: privval.StepPrevote}, prevote, 0, time.Time{}, ErrConflict},
		{"unreadable stored payload", Mark{Height: 10, Round: 1, Step: privval.StepPrevote, SignBytes: []byte{1, 2, 3}}, prevote, 0, time.Time{}, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decide(tt.mark, tt.req)
			switch {
			case tt.wantErr == errAny:
				if err == nil {
					t.Fatalf("Decide = %v, want an error", d.Verdict)
				}
				return
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Decide = %v, %v; want %v", d.Verdict, err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatalf("Decide: %v", err)
			}
			if d.Verdict != tt.want {
				t.Fatalf("verdict %v, want %v", d.Verdict, tt.want)
			}
			if tt.want == Resend && !d.Timestamp.Equal(tt.wantTS) {
				t.Fatalf("resend timestamp %v, want %v", d.Timestamp, tt.wantTS)
			}
		})
	}
}

var errAny = errors.New("any error")
