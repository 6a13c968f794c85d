package recorder

import "github.com/prometheus/client_golang/prometheus"

// segMetrics exports each recorded camera's recording, computed at scrape
// time from the index:
//
//	skywatch_recording_state{camera,state}                1 for the current state
//	skywatch_recording_bytes{camera}                      segment bytes on disk
//	skywatch_recording_segments{camera}                   segments on disk
//	skywatch_recording_written_bytes_total{camera}        bytes written to segments
//	skywatch_recording_deleted_segments_total{camera,reason}  reason age or space
//	skywatch_recording_write_errors_total{camera}         writes that stopped the camera
//	skywatch_recording_bad_units_total{camera}            units skipped as malformed
type segMetrics struct {
	s                                        *segments
	state, bytes, segments, written, deleted *prometheus.Desc
	writeErrors, badUnits                    *prometheus.Desc
}

var _ prometheus.Collector = (*segMetrics)(nil)

func newSegMetrics(s *segments) *segMetrics {
	cam := []string{"camera"}
	return &segMetrics{
		s: s,
		state: prometheus.NewDesc("skywatch_recording_state",
			"Recording state of the camera: 1 for the current one.", []string{"camera", "state"}, nil),
		bytes: prometheus.NewDesc("skywatch_recording_bytes",
			"Bytes of the camera's segments on disk.", cam, nil),
		segments: prometheus.NewDesc("skywatch_recording_segments",
			"Segments of the camera on disk.", cam, nil),
		written: prometheus.NewDesc("skywatch_recording_written_bytes_total",
			"Bytes written to the camera's segments.", cam, nil),
		deleted: prometheus.NewDesc("skywatch_recording_deleted_segments_total",
			"Segments deleted by retention, by reason (age or space).", []string{"camera", "reason"}, nil),
		writeErrors: prometheus.NewDesc("skywatch_recording_write_errors_total",
			"Disk errors that stopped recording the camera.", cam, nil),
		badUnits: prometheus.NewDesc("skywatch_recording_bad_units_total",
			"Units from the camera skipped because they did not depacketize.", cam, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *segMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.state, m.bytes, m.segments, m.written, m.deleted, m.writeErrors, m.badUnits} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *segMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, st := range m.s.statuses() {
		m.s.mu.Lock()
		ci := m.s.index[st.Camera]
		m.s.mu.Unlock()
		for _, s := range []string{StateOff, StateRecording, StateWaiting, StateStopped} {
			v := 0.0
			if st.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(m.state, prometheus.GaugeValue, v, st.Camera, s)
		}
		ch <- prometheus.MustNewConstMetric(m.bytes, prometheus.GaugeValue, float64(st.Bytes), st.Camera)
		ch <- prometheus.MustNewConstMetric(m.segments, prometheus.GaugeValue, float64(st.Segments), st.Camera)
		ch <- prometheus.MustNewConstMetric(m.written, prometheus.CounterValue, float64(ci.written.Load()), st.Camera)
		ch <- prometheus.MustNewConstMetric(m.deleted, prometheus.CounterValue, float64(ci.deletedAge.Load()), st.Camera, deletedAge)
		ch <- prometheus.MustNewConstMetric(m.deleted, prometheus.CounterValue, float64(ci.deletedSpace.Load()), st.Camera, deletedSpace)
		ch <- prometheus.MustNewConstMetric(m.writeErrors, prometheus.CounterValue, float64(ci.writeErrors.Load()), st.Camera)
		ch <- prometheus.MustNewConstMetric(m.badUnits, prometheus.CounterValue, float64(ci.badUnits.Load()), st.Camera)
	}
}
