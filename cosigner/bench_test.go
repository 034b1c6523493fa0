package cosigner

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cosigner/cosigner/privval"
)

// BenchmarkSoftsignSign is one softsign signature with its durable state
// write: the signer's share of what a node waits for.
func BenchmarkSoftsignSign(b *testing.B) {
	path := StatePath(b.TempDir(), testChain)
	if err := WriteMark(path, testChain, Mark{Height: 1}, false); err != nil {
		b.Fatal(err)
	}
	st, err := LoadSignState(path, testChain)
	if err != nil {
		b.Fatal(err)
	}
	ss := NewSoftsign(discard)
	ss.AddChain(testChain, testKey, st)
	t0 := time.Unix(1700000000, 0).UTC()
	reqs := make([]*privval.SignRequest, b.N)
	for i := range reqs {
		reqs[i] = vote(int64(i+2), 0, privval.StepPrevote, "A", t0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ss.Sign(context.Background(), reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteFileDurable is the durable state write alone.
func BenchmarkWriteFileDurable(b *testing.B) {
	path := filepath.Join(b.TempDir(), "state.json")
	data := encodeState(testChain, Mark{Height: 12345, Round: 0, Step: privval.StepPrecommit,
		SignBytes: make([]byte, 120), Signature: make([]byte, 64)})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := writeFileDurable(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCoordinatorSign is a whole threshold signature in one process: M
// share signers (each with its own durable mark written before its share
// leaves), the coordinator's aggregation and verification. The network is
// left out; the latency harness in test/latency adds it.
func BenchmarkCoordinatorSign(b *testing.B) {
	for _, c := range []struct {
		name string
		m, n int
		ext  bool
	}{{"2of3/prevote", 2, 3, false}, {"2of3/precommit+ext", 2, 3, true}, {"3of5/prevote", 3, 5, false}} {
		b.Run(c.name, func(b *testing.B) {
			tc := newTestCluster(b, c.m, c.n)
			t0 := time.Unix(1700000000, 0).UTC()
			reqs := make([]*privval.SignRequest, b.N)
			for i := range reqs {
				if c.ext {
					reqs[i] = precommitWithExt(int64(i+2), 0, "A", t0)
				} else {
					reqs[i] = vote(int64(i+2), 0, privval.StepPrevote, "A", t0)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := tc.coord.Sign(context.Background(), reqs[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
