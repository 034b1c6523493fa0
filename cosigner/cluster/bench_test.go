package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/privval"
)

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
					reqs[i] = testkit.PrecommitWithExt(int64(i+2), 0, "A", t0)
				} else {
					reqs[i] = testkit.Vote(int64(i+2), 0, privval.StepPrevote, "A", t0)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tc.clock.Advance(time.Second) // a height a second: within the bound
				if _, err := tc.coord.Sign(context.Background(), reqs[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
