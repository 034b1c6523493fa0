package softsign

import (
	"context"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/privval"
)

// BenchmarkSoftsignSign is one softsign signature with its durable state
// write: the signer's share of what a node waits for.
func BenchmarkSoftsignSign(b *testing.B) {
	path := signstate.StatePath(b.TempDir(), testkit.Chain)
	if err := signstate.WriteMark(path, testkit.Chain, signstate.Mark{Height: 1}, false); err != nil {
		b.Fatal(err)
	}
	st, err := signstate.LoadSignState(path, testkit.Chain)
	if err != nil {
		b.Fatal(err)
	}
	ss := New(testkit.Log, nil, Options{})
	ss.AddChain(testkit.Chain, testkit.Key, st)
	t0 := time.Unix(1700000000, 0).UTC()
	reqs := make([]*privval.SignRequest, b.N)
	for i := range reqs {
		reqs[i] = testkit.Vote(int64(i+2), 0, privval.StepPrevote, "A", t0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ss.Sign(context.Background(), reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
}
