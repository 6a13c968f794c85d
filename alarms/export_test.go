package alarms

import dto "github.com/prometheus/client_model/go"

// BcryptPeak is the most bcrypt comparisons that ran at once for in's
// logins.
func BcryptPeak(in *Intake) int64 { return in.creds.peak.Load() }

// HoldBcryptWorkers keeps every bcrypt worker of in's logins busy until
// release is called.
func HoldBcryptWorkers(in *Intake) (release func()) {
	n := cap(in.creds.workers)
	for range n {
		in.creds.workers <- struct{}{}
	}
	return func() {
		for range n {
			<-in.creds.workers
		}
	}
}

// StoredCount is how many new events in stored (this intake, not others).
func StoredCount(in *Intake) float64 { return counter(in.metrics.stored) }

// StateRetries is how many messages in handled again because another
// node saved their device's state meanwhile.
func StateRetries(in *Intake) float64 { return counter(in.metrics.stateMoved) }

func counter(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
