package alarms

import "github.com/prometheus/client_golang/prometheus"

// brokerMetrics counts what the embedded broker's limits refused. The
// connection counts are the limiter's, read at scrape time.
type brokerMetrics struct {
	clientIDRefused      prometheus.Counter
	publishRefused       prometheus.Counter
	retainCleared        prometheus.Counter
	subscriptionsRefused prometheus.Counter
	willsDropped         prometheus.Counter
	inflightDropped      prometheus.Counter

	connections     *prometheus.Desc
	maxConnections  *prometheus.Desc
	connRefused     *prometheus.Desc
	connectTimeouts *prometheus.Desc
}

func newBrokerMetrics() *brokerMetrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "skywatch_alarms_mqtt_" + name, Help: help})
	}
	return &brokerMetrics{
		clientIDRefused: counter("client_id_refused_total",
			"Authenticated clients refused because their client id is not their device or unit id."),
		publishRefused: counter("publish_refused_total",
			"Publishes refused because their payload or topic exceeds its cap."),
		retainCleared: counter("retain_cleared_total",
			"Publishes and wills whose retain flag was cleared (only a device's state is retained)."),
		subscriptionsRefused: counter("subscriptions_refused_total",
			"Subscriptions refused past mqtt.max_subscriptions_per_client or too long."),
		willsDropped: counter("wills_dropped_total",
			"Last wills dropped at connect: a topic the client may not publish, or too large."),
		inflightDropped: counter("inflight_dropped_total",
			"Queued messages dropped from a resumed session because its client may not read them."),
		connections: prometheus.NewDesc("skywatch_alarms_mqtt_connections",
			"Open connections of the embedded broker, those that have not sent CONNECT included.", nil, nil),
		maxConnections: prometheus.NewDesc("skywatch_alarms_mqtt_max_connections",
			"The embedded broker's connection limit in effect: mqtt.max_connections, lowered at start to leave mqtt.reserved_fds of the open file limit.", nil, nil),
		connRefused: prometheus.NewDesc("skywatch_alarms_mqtt_connections_refused_total",
			"Connections closed at accept, by cap: total (mqtt.max_connections) or address (mqtt.max_connections_per_address).",
			[]string{"cap"}, nil),
		connectTimeouts: prometheus.NewDesc("skywatch_alarms_mqtt_connect_timeouts_total",
			"Connections closed for sending no CONNECT within mqtt.connect_timeout.", nil, nil),
	}
}

func (m *brokerMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.clientIDRefused, m.publishRefused, m.retainCleared,
		m.subscriptionsRefused, m.willsDropped, m.inflightDropped}
}

func (m *brokerMetrics) describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
	ch <- m.connections
	ch <- m.maxConnections
	ch <- m.connRefused
	ch <- m.connectTimeouts
}

// collect exports the counters, and the limiter's counts when the embedded
// broker runs.
func (m *brokerMetrics) collect(ch chan<- prometheus.Metric, lim *connLimiter) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
	if lim == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(m.connections, prometheus.GaugeValue, float64(lim.count()))
	ch <- prometheus.MustNewConstMetric(m.maxConnections, prometheus.GaugeValue, float64(lim.max))
	ch <- prometheus.MustNewConstMetric(m.connRefused, prometheus.CounterValue, float64(lim.refusedTotal.Load()), "total")
	ch <- prometheus.MustNewConstMetric(m.connRefused, prometheus.CounterValue, float64(lim.refusedAddr.Load()), "address")
	ch <- prometheus.MustNewConstMetric(m.connectTimeouts, prometheus.CounterValue, float64(lim.timedOut.Load()))
}
