package harness

import (
	"context"
	"fmt"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape is one scrape of a cosigner's /metrics.
type Scrape map[string]*dto.MetricFamily

// ScrapeMetrics fetches and parses http://addr/metrics.
func ScrapeMetrics(ctx context.Context, addr string) (Scrape, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", addr, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	return Scrape(mfs), nil
}

// Value returns the value of the gauge or counter name whose labels
// include the given name/value pairs, and whether there is one.
func (s Scrape) Value(name string, labels ...string) (float64, bool) {
	mf, ok := s[name]
	if !ok {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if !labelsMatch(m, labels) {
			continue
		}
		switch {
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetUntyped() != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// HistogramCount returns the sample count of the histogram name whose
// labels include the given pairs, summed over matching series.
func (s Scrape) HistogramCount(name string, labels ...string) uint64 {
	var n uint64
	for _, m := range s[name].GetMetric() {
		if labelsMatch(m, labels) {
			n += m.GetHistogram().GetSampleCount()
		}
	}
	return n
}

func labelsMatch(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// WaitMetric scrapes addr every 200 ms until the series name{labels} exists
// and ok accepts its value, or ctx ends; it returns the last scrape. A
// cosigner's metrics offer nothing to wait on, so this polls, as waits on a
// node's RPC do.
func WaitMetric(ctx context.Context, addr, name string, ok func(float64) bool, labels ...string) (Scrape, error) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		s, err := ScrapeMetrics(ctx, addr)
		if err == nil {
			v, found := s.Value(name, labels...)
			if found && ok(v) {
				return s, nil
			}
			last = fmt.Sprintf("%v (present: %v)", v, found)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return s, fmt.Errorf("waiting for %s%v on %s: %w; last: %s", name, labels, addr, ctx.Err(), last)
		case <-tick.C:
		}
	}
}
