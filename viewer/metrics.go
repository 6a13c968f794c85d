package viewer

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the viewer's Prometheus metrics, registered in the registry
// the caller injects (never the global one).
type metrics struct {
	sessionsStarted prometheus.Counter
	sessionErrors   *prometheus.CounterVec // by reason
	whepRequests    *prometheus.CounterVec // by code
	packetsSent     prometheus.Counter
	writeErrors     prometheus.Counter
	keyframeReqs    prometheus.Counter
	auditErrors     prometheus.Counter
	loginsFailed    *prometheus.CounterVec // by reason
	auditSummarised *prometheus.CounterVec // by action
	tokenRequests   *prometheus.CounterVec // by result
	sharedErrors    *prometheus.CounterVec // by operation
}

// Reasons of viewer_session_errors_total.
const (
	reasonNoCodec        = "no_common_codec"
	reasonUnavailable    = "camera_unavailable"
	reasonNegotiation    = "negotiation"
	reasonConnectTimeout = "connect_timeout"
	reasonICEFailed      = "ice_failed"
	reasonStreamEnded    = "stream_ended"
	// The camera was removed from the configuration, or its settings
	// changed, while the session played (a reload).
	reasonCameraRemoved = "camera_removed"
	reasonCameraChanged = "camera_changed"
	reasonTooMany       = "too_many_sessions"
)

func newMetrics(reg prometheus.Registerer, sessions func() float64) (*metrics, error) {
	m := &metrics{
		sessionsStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_viewer_sessions_started_total",
			Help: "WHEP sessions created.",
		}),
		sessionErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skywatch_viewer_session_errors_total",
			Help: "WHEP sessions refused or ended by an error, by reason.",
		}, []string{"reason"}),
		whepRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skywatch_viewer_whep_requests_total",
			Help: "WHEP requests, by method and status code.",
		}, []string{"method", "code"}),
		packetsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_viewer_rtp_packets_sent_total",
			Help: "RTP packets written to viewers.",
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_viewer_rtp_write_errors_total",
			Help: "RTP packets that could not be written to a viewer.",
		}),
		keyframeReqs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_viewer_keyframe_requests_total",
			Help: "PLI and FIR received from viewers (a camera cannot be asked for a keyframe; this shows loss).",
		}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_viewer_audit_errors_total",
			Help: "Audit records that could not be stored (each is logged as an error).",
		}),
		loginsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skywatch_viewer_logins_refused_total",
			Help: "Operator logins refused, by reason (wrong_password, locked, bad_name).",
		}, []string{"reason"}),
		auditSummarised: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skywatch_viewer_audit_summarised_total",
			Help: "Audit records of requests without a session that were counted in a summary record instead of written, by action.",
		}, []string{"action"}),
		tokenRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skywatch_viewer_token_requests_total",
			Help: "Requests with an API token, by result (ok, refused_change, invalid, expired, throttled).",
		}, []string{"result"}),
		sharedErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skywatch_viewer_shared_errors_total",
			Help: "Calls to the store that the nodes of a cluster share for sessions and login limits that failed, by operation; the node then decides alone.",
		}, []string{"op"}),
	}
	viewers := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "skywatch_viewer_sessions",
		Help: "WHEP sessions open now.",
	}, sessions)
	var errs []error
	for _, c := range []prometheus.Collector{
		viewers, m.sessionsStarted, m.sessionErrors, m.whepRequests,
		m.packetsSent, m.writeErrors, m.keyframeReqs, m.auditErrors, m.loginsFailed,
		m.auditSummarised, m.tokenRequests, m.sharedErrors,
	} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	return m, nil
}
