package recorder

import "github.com/prometheus/client_golang/prometheus"

// evidenceMetrics are the evidence part's metrics:
//
//	skywatch_recorder_clips{status}                 clips on disk by status
//	skywatch_recorder_evidence_bytes                bytes of clips on disk
//	skywatch_recorder_clip_write_errors_total       clips failed by a write error
//	skywatch_recorder_prealarm_bytes{camera}        memory held by the pre-alarm ring
type evidenceMetrics struct {
	clips       *prometheus.GaugeVec
	bytes       prometheus.GaugeFunc
	writeErrors prometheus.Counter
	ring        *prometheus.GaugeVec
}

func newEvidenceMetrics(reg prometheus.Registerer, bytes func() float64) (*evidenceMetrics, error) {
	m := &evidenceMetrics{
		clips: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "skywatch_recorder_clips",
			Help: "Evidence clips on disk, by status."}, []string{"status"}),
		bytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "skywatch_recorder_evidence_bytes",
			Help: "Bytes of evidence clips on disk."}, bytes),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "skywatch_recorder_clip_write_errors_total",
			Help: "Evidence clips that failed because their file could not be written."}),
		ring: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "skywatch_recorder_prealarm_bytes",
			Help: "Memory held by a camera's pre-alarm ring."}, []string{"camera"}),
	}
	for _, s := range []ClipStatus{ClipRecording, ClipComplete, ClipFailed} {
		m.clips.WithLabelValues(string(s))
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.clips, m.bytes, m.writeErrors, m.ring} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
