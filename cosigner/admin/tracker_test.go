package admin

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cosigner/cosigner/cosigner/metrics"
	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/privval"
)

// TestMissedHeightsBaseline: a process that starts serving a chain counts
// the heights skipped since the last height known signed, and none before
// that height is known.
func TestMissedHeightsBaseline(t *testing.T) {
	signed := func(tr *Tracker, h int64) {
		tr.SignAnswered(privval.SignResult{ChainID: testkit.Chain, Step: privval.StepPrecommit, Height: h})
	}
	tests := []struct {
		name     string
		baseline int64
		heights  []int64
		want     float64
	}{
		{"unknown baseline", 0, []int64{100, 101, 102}, 0},
		{"no gap", 99, []int64{100, 101, 102}, 0},
		{"failover gap", 95, []int64{100, 101}, 4},
		{"gaps", 0, []int64{5, 6, 9, 10, 20}, 2 + 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m, err := metrics.New(reg, "test")
			if err != nil {
				t.Fatal(err)
			}
			tr := NewTracker(m)
			tr.ServeNodes(testkit.Chain, nil, tt.baseline)
			for _, h := range tt.heights {
				signed(tr, h)
			}
			if got := testkit.Value(t, reg, "cosigner_sign_missed_heights_total", testkit.Labels("chain", testkit.Chain)); got != tt.want {
				t.Errorf("missed heights = %v, want %v", got, tt.want)
			}
		})
	}
}
