package testkit

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// matching returns the series of the family name in g whose labels include
// want.
func matching(t testing.TB, g prometheus.Gatherer, name string, want map[string]string) []*dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []*dto.Metric
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, want) {
				out = append(out, m)
			}
		}
	}
	return out
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// Value returns the sum of the gauge or counter series of the family name
// whose labels include want (0 when there is none).
func Value(t testing.TB, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	var v float64
	for _, m := range matching(t, g, name, want) {
		v += m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	return v
}

// Series returns how many series of the family name have labels including
// want.
func Series(t testing.TB, g prometheus.Gatherer, name string, want map[string]string) int {
	t.Helper()
	return len(matching(t, g, name, want))
}

// HistogramCount returns the sample count of the histogram name whose
// labels include want.
func HistogramCount(t testing.TB, g prometheus.Gatherer, name string, want map[string]string) uint64 {
	t.Helper()
	var n uint64
	for _, m := range matching(t, g, name, want) {
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

// Labels is a shorthand for a label set: Labels("chain", "c", "type", "prevote").
func Labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}
