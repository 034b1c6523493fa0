package doppel

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the watch's series. A nil *Metrics records nothing.
type Metrics struct {
	tripped   *prometheus.GaugeVec
	watching  *prometheus.GaugeVec
	detected  *prometheus.CounterVec
	rpcErrors *prometheus.CounterVec
}

// NewMetrics registers the watch's series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		tripped: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cosigner_doppelganger_tripped",
			Help: "1 while signing is stopped because a commit carried our validator's signature that this cosigner did not make; restart after investigating."}, []string{"chain"}),
		watching: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cosigner_doppelganger_watching",
			Help: "1 while the start watch (or an unreadable rpc under doppelganger_rpc_down = refuse) keeps cosigner from signing."}, []string{"chain"}),
		detected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cosigner_doppelganger_detected_total",
			Help: "Commits found carrying our validator's signature that this cosigner did not make."}, []string{"chain"}),
		rpcErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cosigner_doppelganger_rpc_errors_total",
			Help: "Failed or rejected reads of the chain's rpc by the doppelganger watch."}, []string{"chain"}),
	}
	for _, c := range []prometheus.Collector{m.tripped, m.watching, m.detected, m.rpcErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) setGate(chain string, g gate) {
	if m == nil {
		return
	}
	m.detected.WithLabelValues(chain).Add(0)
	m.rpcErrors.WithLabelValues(chain).Add(0)
	b := func(ok bool) float64 {
		if ok {
			return 1
		}
		return 0
	}
	m.tripped.WithLabelValues(chain).Set(b(g == gateTripped))
	m.watching.WithLabelValues(chain).Set(b(g == gateWatching || g == gateRPCDown))
}

func (m *Metrics) detect(chain string) {
	if m != nil {
		m.detected.WithLabelValues(chain).Inc()
	}
}

func (m *Metrics) rpcError(chain string) {
	if m != nil {
		m.rpcErrors.WithLabelValues(chain).Inc()
	}
}
