package ingest

import "github.com/prometheus/client_golang/prometheus"

// collector exports the cameras' states as Prometheus metrics, computed at
// scrape time.
type collector struct {
	m          *Manager
	status     *prometheus.Desc
	viewers    *prometheus.Desc
	bytes      *prometheus.Desc
	packets    *prometheus.Desc
	lost       *prometheus.Desc
	dropped    *prometheus.Desc
	reconnects *prometheus.Desc
	bitrate    *prometheus.Desc
}

var _ prometheus.Collector = (*collector)(nil)

// Collector returns a Prometheus collector of the cameras' metrics, to be
// registered by the caller:
//
//	skywatch_camera_status{camera,status}         1 for the current status
//	skywatch_camera_viewers{camera}
//	skywatch_camera_received_bytes_total{camera}
//	skywatch_camera_received_packets_total{camera}
//	skywatch_camera_lost_packets_total{camera}     RTP sequence gaps
//	skywatch_camera_dropped_units_total{camera}    dropped by slow readers
//	skywatch_camera_reconnects_total{camera}
//	skywatch_camera_bitrate_kbps{camera}
func (m *Manager) Collector() prometheus.Collector {
	cam := []string{"camera"}
	return &collector{
		m: m,
		status: prometheus.NewDesc("skywatch_camera_status",
			"Camera connection status: 1 for the current one.", []string{"camera", "status"}, nil),
		viewers: prometheus.NewDesc("skywatch_camera_viewers",
			"Readers of the camera.", cam, nil),
		bytes: prometheus.NewDesc("skywatch_camera_received_bytes_total",
			"RTP bytes received from the camera.", cam, nil),
		packets: prometheus.NewDesc("skywatch_camera_received_packets_total",
			"RTP packets received from the camera.", cam, nil),
		lost: prometheus.NewDesc("skywatch_camera_lost_packets_total",
			"RTP packets from the camera that never arrived.", cam, nil),
		dropped: prometheus.NewDesc("skywatch_camera_dropped_units_total",
			"Units dropped by readers that could not keep up.", cam, nil),
		reconnects: prometheus.NewDesc("skywatch_camera_reconnects_total",
			"Sessions started after a failed one.", cam, nil),
		bitrate: prometheus.NewDesc("skywatch_camera_bitrate_kbps",
			"Bitrate received over the last seconds.", cam, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.status, c.viewers, c.bytes, c.packets, c.lost, c.dropped, c.reconnects, c.bitrate} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.m.Cameras() {
		for _, s := range []Status{StatusOffline, StatusConnecting, StatusOnline, StatusRetrying} {
			v := 0.0
			if st.Status == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.status, prometheus.GaugeValue, v, st.ID, string(s))
		}
		ch <- prometheus.MustNewConstMetric(c.viewers, prometheus.GaugeValue, float64(st.Viewers), st.ID)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(st.BytesReceived), st.ID)
		ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(st.PacketsReceived), st.ID)
		ch <- prometheus.MustNewConstMetric(c.lost, prometheus.CounterValue, float64(st.PacketsLost), st.ID)
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.Dropped), st.ID)
		ch <- prometheus.MustNewConstMetric(c.reconnects, prometheus.CounterValue, float64(st.Reconnects), st.ID)
		ch <- prometheus.MustNewConstMetric(c.bitrate, prometheus.GaugeValue, st.BitrateKbps, st.ID)
	}
}
