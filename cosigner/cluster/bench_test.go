package cluster

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/privval"
)

// BenchmarkCoordinatorSign is a whole threshold signature in one process: M
// share signers (each with its own durable mark written before its share
// leaves), the coordinator's aggregation and verification. The network is
// left out; the latency harness in test/latency adds it. Besides the wall
// time, which the fdatasyncs of the marks dominate, it reports the process's
// CPU time (user + system, getrusage) per signature as cpu-ns/op: the figure
// to compare on a shared machine.
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
			cpu0 := processCPU(b)
			for i := 0; i < b.N; i++ {
				tc.clock.Advance(time.Second) // a height a second: within the bound
				if _, err := tc.coord.Sign(context.Background(), reqs[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkCoordinatorSignGRPC is BenchmarkCoordinatorSign with the other
// cosigners behind the real Cosigner gRPC service over mutual TLS on
// loopback, as a cluster runs (Raft left out): the leader's share RPCs,
// their framing, encryption and decoding, the followers' point checks of the
// leader's commitments, and the commitment top-ups. cpu-ns/op is every
// cosigner's CPU together, all in this process.
func BenchmarkCoordinatorSignGRPC(b *testing.B) {
	for _, c := range []struct {
		name string
		m, n int
		ext  bool
	}{{"2of3/prevote", 2, 3, false}, {"2of3/precommit+ext", 2, 3, true}} {
		b.Run(c.name, func(b *testing.B) {
			gc := newGRPCCluster(b, c.m, c.n)
			t0 := time.Unix(1700000000, 0).UTC()
			// One signature untimed: the first top-up and the connections.
			if _, err := gc.coord.Sign(context.Background(), testkit.Vote(2, 0, privval.StepPrevote, "A", t0)); err != nil {
				b.Fatal(err)
			}
			// Height 3, one round after the other: the share signers
			// bound heights, without a clock, to 100 above their start.
			reqs := make([]*privval.SignRequest, b.N)
			for i := range reqs {
				if c.ext {
					reqs[i] = testkit.PrecommitWithExt(3, int32(i), "A", t0)
				} else {
					reqs[i] = testkit.Vote(3, int32(i), privval.StepPrevote, "A", t0)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU(b)
			for i := 0; i < b.N; i++ {
				if _, err := gc.coord.Sign(context.Background(), reqs[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU returns the user + system CPU time of this process so far, in
// nanoseconds.
func processCPU(b *testing.B) int64 {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
