package ceremony

import (
	"fmt"
	"testing"
)

// BenchmarkRunFreshDKG: a whole ceremony (every participant in this
// process, over loopback mutual TLS), from the first dial to the last done.
func BenchmarkRunFreshDKG(b *testing.B) {
	for _, tc := range []struct{ m, n int }{{2, 3}, {3, 5}} {
		b.Run(fmt.Sprintf("%d-of-%d", tc.m, tc.n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				c := newClusterTB(b, tc.n)
				opts, protos := fresh(c, tc.m)
				b.StartTimer()
				for i, r := range runAll(opts, protos) {
					if r.err != nil {
						b.Fatalf("cosigner %d: %v", i+1, r.err)
					}
				}
			}
		})
	}
}
