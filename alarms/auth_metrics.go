package alarms

import "github.com/prometheus/client_golang/prometheus"

// authMetrics counts device and unit logins that were refused and the
// bcrypt work they cost.
type authMetrics struct {
	refused   *prometheus.CounterVec // by via (mqtt, patrol) and reason
	bcrypts   prometheus.Counter
	cacheHits prometheus.Counter
}

func newAuthMetrics() *authMetrics {
	return &authMetrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skywatch_alarms_logins_refused_total",
			Help: "Device and unit logins refused, by where (mqtt, patrol) and reason " +
				"(wrong, busy, busy_address, backoff_user_address, backoff_address, backoff_user).",
		}, []string{"via", "reason"}),
		bcrypts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_alarms_login_bcrypt_total",
			Help: "bcrypt comparisons made for device and unit logins (unknown user names included).",
		}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_alarms_login_cache_hits_total",
			Help: "Logins accepted from the verified-credential cache, without bcrypt.",
		}),
	}
}

func (m *authMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.refused, m.bcrypts, m.cacheHits}
}
