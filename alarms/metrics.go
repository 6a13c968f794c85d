package alarms

import "github.com/prometheus/client_golang/prometheus"

// metrics counts what the intake does. Counters are updated on the hot path
// (atomic adds); gauges of the intake's state are computed at scrape time.
type metrics struct {
	received    *prometheus.CounterVec // by kind: event, hb, state, other
	stored      prometheus.Counter
	duplicates  prometheus.Counter
	rejected    *prometheus.CounterVec // by cause
	storeErrors prometheus.Counter
	troubles    *prometheus.CounterVec // by cause: silent, offline
	restores    prometheus.Counter
	storeTime   prometheus.Histogram

	throttled       prometheus.Counter
	throttledTime   prometheus.Counter
	storeHeld       prometheus.Counter
	storeHeldTime   prometheus.Counter
	disconnects     *prometheus.CounterVec // by cause: store, rate
	rejectedDropped prometheus.Counter
	willsIgnored    prometheus.Counter
	stateMoved      prometheus.Counter // cluster mode: see errStateMoved
	adopted         prometheus.Counter // cluster mode: messages of adopted sessions

	connected   *prometheus.Desc
	storeOK     *prometheus.Desc
	supervision *prometheus.Desc
	dropped     *prometheus.Desc
	subscribers *prometheus.Desc

	broker  *brokerMetrics
	pending *pendingMessages
}

// Causes of rejected messages, as metric labels.
const (
	causeUnknownDevice = "unknown_device"
	causeUnknownTopic  = "unknown_topic"
	causeDecode        = "decode"
	causeInvalid       = "invalid"
	causeHeartbeat     = "heartbeat"
	causeTooLarge      = "too_large"
)

func newMetrics() *metrics {
	return &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skywatch_alarms_messages_received_total",
			Help: "Device messages taken by the intake, by topic kind (redeliveries included).",
		}, []string{"kind"}),
		stored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_alarms_events_stored_total",
			Help: "Events stored (new, not duplicates), supervision events included.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_alarms_events_duplicate_total",
			Help: "Events that were already stored (same device and id, or same content within the window).",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skywatch_alarms_rejected_total",
			Help: "Messages kept in the rejected list, by cause.",
		}, []string{"cause"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_alarms_store_errors_total",
			Help: "Store writes that failed; the message was not acknowledged.",
		}),
		troubles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skywatch_alarms_supervision_troubles_total",
			Help: "Supervision trouble events raised, by cause (silent, offline).",
		}, []string{"cause"}),
		stateMoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_alarms_device_state_moved_total",
			Help: "Cluster mode: device states saved by another node while this one handled a message (the message was handled again).",
		}),
		adopted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_alarms_adopted_messages_total",
			Help: "Cluster mode: messages stored from a dead node's adopted broker session.",
		}),
		restores: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_alarms_supervision_restores_total",
			Help: "Supervision restore events raised.",
		}),
		storeTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "skywatch_alarms_store_seconds",
			Help:    "Time from taking an event message to having it stored.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_alarms_throttled_total",
			Help: "Device messages held unacknowledged because the device was over alarms.device_rate.",
		}),
		throttledTime: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_alarms_throttled_seconds_total",
			Help: "Time device messages were held for their device's publish rate.",
		}),
		storeHeld: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_alarms_store_held_total",
			Help: "Device messages held unacknowledged while the store failed.",
		}),
		storeHeldTime: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_alarms_store_held_seconds_total",
			Help: "Time device messages were held while the store failed.",
		}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skywatch_alarms_disconnects_total",
			Help: "Device connections closed by the intake, without PUBACK, by cause (store: failing past alarms.store_hold; rate: far over alarms.device_rate).",
		}, []string{"cause"}),
		rejectedDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_alarms_rejected_dropped_total",
			Help: "Older rejected messages dropped to keep the rejected list within alarms.rejected_per_device and alarms.rejected_max.",
		}),
		willsIgnored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skywatch_alarms_wills_ignored_total",
			Help: "Last wills of devices that gave up while the intake held their message for a failing store: no offline trouble raised.",
		}),
		connected: prometheus.NewDesc("skywatch_alarms_broker_connected",
			"1 when the intake is connected to its broker (or the embedded broker serves).", nil, nil),
		storeOK: prometheus.NewDesc("skywatch_alarms_store_ok",
			"1 when the last store operation succeeded.", nil, nil),
		supervision: prometheus.NewDesc("skywatch_alarms_devices_supervision_lost",
			"Devices with an open supervision trouble.", nil, nil),
		dropped: prometheus.NewDesc("skywatch_alarms_subscriber_dropped_total",
			"Events that slow live subscribers missed.", nil, nil),
		subscribers: prometheus.NewDesc("skywatch_alarms_subscribers",
			"Live event subscribers.", nil, nil),
		broker:  newBrokerMetrics(),
		pending: newPendingMessages(),
	}
}

// collector exports the intake's metrics.
type collector struct {
	in *Intake
}

var _ prometheus.Collector = collector{}

// Collector returns a Prometheus collector of the intake's metrics, to be
// registered by the caller:
//
//	skywatch_alarms_messages_received_total{kind}
//	skywatch_alarms_events_stored_total
//	skywatch_alarms_events_duplicate_total
//	skywatch_alarms_rejected_total{cause}
//	skywatch_alarms_store_errors_total
//	skywatch_alarms_supervision_troubles_total{cause}
//	skywatch_alarms_supervision_restores_total
//	skywatch_alarms_store_seconds              message taken to event stored
//	skywatch_alarms_intake_pending             messages taken, not yet stored
//	skywatch_alarms_intake_oldest_pending_seconds  the intake's lag
//	skywatch_alarms_throttled_total
//	skywatch_alarms_throttled_seconds_total
//	skywatch_alarms_store_held_total
//	skywatch_alarms_store_held_seconds_total
//	skywatch_alarms_disconnects_total{cause}
//	skywatch_alarms_rejected_dropped_total
//	skywatch_alarms_wills_ignored_total
//	skywatch_alarms_device_state_moved_total   cluster mode
//	skywatch_alarms_adopted_messages_total     cluster mode
//	skywatch_alarms_broker_connected
//	skywatch_alarms_store_ok
//	skywatch_alarms_devices_supervision_lost
//	skywatch_alarms_subscriber_dropped_total
//	skywatch_alarms_subscribers
//	skywatch_alarms_mqtt_*                     the embedded broker's limits (see brokerMetrics)
//	skywatch_alarms_logins_refused_total{via,reason}
//	skywatch_alarms_login_bcrypt_total
//	skywatch_alarms_login_cache_hits_total
func (in *Intake) Collector() prometheus.Collector { return collector{in} }

func (c collector) cs() []prometheus.Collector {
	m := c.in.metrics
	return append([]prometheus.Collector{m.received, m.stored, m.duplicates, m.rejected, m.storeErrors, m.troubles, m.restores, m.storeTime,
		m.throttled, m.throttledTime, m.storeHeld, m.storeHeldTime, m.disconnects, m.rejectedDropped, m.willsIgnored, m.stateMoved, m.adopted, m.pending},
		c.in.creds.metrics.collectors()...)
}

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, x := range c.cs() {
		x.Describe(ch)
	}
	m := c.in.metrics
	for _, d := range []*prometheus.Desc{m.connected, m.storeOK, m.supervision, m.dropped, m.subscribers} {
		ch <- d
	}
	m.broker.describe(ch)
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, x := range c.cs() {
		x.Collect(ch)
	}
	m := c.in.metrics
	st := c.in.Status()
	ch <- prometheus.MustNewConstMetric(m.connected, prometheus.GaugeValue, b2f(st.Connected))
	ch <- prometheus.MustNewConstMetric(m.storeOK, prometheus.GaugeValue, b2f(st.StoreOK))
	ch <- prometheus.MustNewConstMetric(m.supervision, prometheus.GaugeValue, float64(st.SupervisionLost))
	ch <- prometheus.MustNewConstMetric(m.dropped, prometheus.CounterValue, float64(c.in.hub.dropped.Load()))
	ch <- prometheus.MustNewConstMetric(m.subscribers, prometheus.GaugeValue, float64(c.in.hub.count()))
	m.broker.collect(ch, c.in.limiter())
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
