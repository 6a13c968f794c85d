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
	split      *prometheus.Desc
	unsplit    *prometheus.Desc
	reconnects *prometheus.Desc
	bitrate    *prometheus.Desc
	held       *prometheus.Desc
}

var _ prometheus.Collector = (*collector)(nil)

// Collector returns a Prometheus collector of the cameras' metrics, to be
// registered by the caller. Label stream is "main" or "sub"; a camera
// without a sub stream has only "main" series.
//
//	skywatch_camera_status{camera,stream,status}         1 for the current status
//	skywatch_camera_viewers{camera,stream}
//	skywatch_camera_received_bytes_total{camera,stream}
//	skywatch_camera_received_packets_total{camera,stream}
//	skywatch_camera_lost_packets_total{camera,stream}     RTP sequence gaps
//	skywatch_camera_dropped_units_total{camera,stream}    dropped by slow readers
//	skywatch_camera_split_packets_total{camera,stream}    video packets re-packetized to MaxPacketSize
//	skywatch_camera_unsplit_packets_total{camera,stream}  large video packets that could not be (dropped)
//	skywatch_camera_reconnects_total{camera,stream}
//	skywatch_camera_bitrate_kbps{camera,stream}
//	skywatch_camera_held{camera,stream}                   1 while a hold keeps it pulled
func (m *Manager) Collector() prometheus.Collector {
	labels := []string{"camera", "stream"}
	return &collector{
		m: m,
		status: prometheus.NewDesc("skywatch_camera_status",
			"Camera stream connection status: 1 for the current one.", []string{"camera", "stream", "status"}, nil),
		viewers: prometheus.NewDesc("skywatch_camera_viewers",
			"Readers of the camera stream.", labels, nil),
		bytes: prometheus.NewDesc("skywatch_camera_received_bytes_total",
			"RTP bytes received from the camera stream.", labels, nil),
		packets: prometheus.NewDesc("skywatch_camera_received_packets_total",
			"RTP packets received from the camera stream.", labels, nil),
		lost: prometheus.NewDesc("skywatch_camera_lost_packets_total",
			"RTP packets from the camera stream that never arrived.", labels, nil),
		dropped: prometheus.NewDesc("skywatch_camera_dropped_units_total",
			"Units dropped by readers that could not keep up.", labels, nil),
		split: prometheus.NewDesc("skywatch_camera_split_packets_total",
			"Video packets from the camera stream larger than 1,200 bytes, re-packetized.", labels, nil),
		unsplit: prometheus.NewDesc("skywatch_camera_unsplit_packets_total",
			"Video packets from the camera stream larger than 1,200 bytes that could not be re-packetized and were dropped.", labels, nil),
		reconnects: prometheus.NewDesc("skywatch_camera_reconnects_total",
			"Sessions started after a failed one.", labels, nil),
		bitrate: prometheus.NewDesc("skywatch_camera_bitrate_kbps",
			"Bitrate received over the last seconds.", labels, nil),
		held: prometheus.NewDesc("skywatch_camera_held",
			"1 while a hold (such as an alarm's warm-up) keeps the camera stream pulled without readers.", labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.status, c.viewers, c.bytes, c.packets, c.lost, c.dropped, c.split, c.unsplit, c.reconnects, c.bitrate, c.held} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, cam := range c.m.Cameras() {
		c.collectStream(ch, cam.ID, streamMain, cam.Main())
		if cam.Sub != nil {
			c.collectStream(ch, cam.ID, streamSub, *cam.Sub)
		}
	}
}

func (c *collector) collectStream(ch chan<- prometheus.Metric, id, stream string, st StreamState) {
	for _, s := range []Status{StatusOffline, StatusConnecting, StatusOnline, StatusRetrying} {
		v := 0.0
		if st.Status == s {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.status, prometheus.GaugeValue, v, id, stream, string(s))
	}
	ch <- prometheus.MustNewConstMetric(c.viewers, prometheus.GaugeValue, float64(st.Viewers), id, stream)
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(st.BytesReceived), id, stream)
	ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(st.PacketsReceived), id, stream)
	ch <- prometheus.MustNewConstMetric(c.lost, prometheus.CounterValue, float64(st.PacketsLost), id, stream)
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.Dropped), id, stream)
	ch <- prometheus.MustNewConstMetric(c.split, prometheus.CounterValue, float64(st.PacketsSplit), id, stream)
	ch <- prometheus.MustNewConstMetric(c.unsplit, prometheus.CounterValue, float64(st.PacketsUnsplit), id, stream)
	ch <- prometheus.MustNewConstMetric(c.reconnects, prometheus.CounterValue, float64(st.Reconnects), id, stream)
	ch <- prometheus.MustNewConstMetric(c.bitrate, prometheus.GaugeValue, st.BitrateKbps, id, stream)
	held := 0.0
	if !st.Held.IsZero() {
		held = 1
	}
	ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, held, id, stream)
}
