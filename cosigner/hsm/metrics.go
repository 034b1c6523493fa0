package hsm

import (
	"errors"
	"time"

	"github.com/certusone/yubihsm-go/commands"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cosigner/cosigner/cosigner/metrics"
)

// Metrics are the YubiHSM2 client's metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	requests       *prometheus.HistogramVec
	errors         *prometheus.CounterVec
	sessionsOpened prometheus.Counter
}

// NewMetrics registers the YubiHSM2 metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cosigner_hsm_request_duration_seconds",
			Help:    "Device commands answered by the YubiHSM2, by command (sign_eddsa is one signature; about 0.1 s on real hardware).",
			Buckets: metrics.LatencyBuckets}, []string{"command"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cosigner_hsm_request_errors_total",
			Help: "Failed YubiHSM2 requests, by kind: unreachable, auth, not_found, permission, exists, other."}, []string{"kind"}),
		sessionsOpened: prometheus.NewCounter(prometheus.CounterOpts{Name: "cosigner_hsm_sessions_opened_total",
			Help: "Authenticated sessions opened with the YubiHSM2 (more than one means sessions were lost and reopened)."}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.errors, m.sessionsOpened} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observe(cmd commands.CommandType, d time.Duration) {
	if m == nil {
		return
	}
	name, ok := commandNames[cmd]
	if !ok {
		name = "other"
	}
	m.requests.WithLabelValues(name).Observe(d.Seconds())
}

func (m *Metrics) failed(err error) {
	if m == nil {
		return
	}
	kind := "other"
	switch {
	case errors.Is(err, ErrUnreachable):
		kind = "unreachable"
	case errors.Is(err, ErrAuth):
		kind = "auth"
	case errors.Is(err, ErrNotFound):
		kind = "not_found"
	case errors.Is(err, ErrPermission):
		kind = "permission"
	case errors.Is(err, ErrExists):
		kind = "exists"
	}
	m.errors.WithLabelValues(kind).Inc()
}

func (m *Metrics) opened() {
	if m != nil {
		m.sessionsOpened.Inc()
	}
}

var commandNames = map[commands.CommandType]string{
	commands.CommandTypeEcho:                  "echo",
	commands.CommandTypeSignDataEddsa:         "sign_eddsa",
	commands.CommandTypeGetPubKey:             "get_public_key",
	commands.CommandTypePutAsymmetric:         "put_asymmetric_key",
	commands.CommandTypeGenerateAsymmetricKey: "generate_asymmetric_key",
	commands.CommandTypePutOpaque:             "put_opaque",
	commands.CommandTypeGetOpaque:             "get_opaque",
	commands.CommandTypeListObjects:           "list_objects",
	commands.CommandTypeGetObjectInfo:         "get_object_info",
	commands.CommandTypeDeleteObject:          "delete_object",
}
