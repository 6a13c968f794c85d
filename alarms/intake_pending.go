package alarms

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// pendingMessages tracks the messages the intake has taken from the broker
// and not yet stored (waiting for a store slot, or being stored), for the
// metrics an operator alerts on when the intake falls behind: how many wait
// and how long the oldest has waited. A message's wait starts when the
// broker handed it over, so a retry of a held message counts its whole age.
// Its size is bounded by the messages the broker has in flight.
type pendingMessages struct {
	mu    sync.Mutex
	next  uint64
	since map[uint64]time.Time // by ticket: when each pending message was received

	count  *prometheus.Desc
	oldest *prometheus.Desc
}

var _ prometheus.Collector = (*pendingMessages)(nil)

func newPendingMessages() *pendingMessages {
	return &pendingMessages{
		since: make(map[uint64]time.Time),
		count: prometheus.NewDesc("skywatch_alarms_intake_pending",
			"Messages taken from the broker and not yet stored (waiting for a store slot or being stored), unacknowledged meanwhile.", nil, nil),
		oldest: prometheus.NewDesc("skywatch_alarms_intake_oldest_pending_seconds",
			"Age of the oldest message taken from the broker and not yet stored, since the broker handed it over; 0 when none: the intake's lag.", nil, nil),
	}
}

// begin notes a message received at received as pending; the returned
// func, called once it is stored or given up, ends that.
func (p *pendingMessages) begin(received time.Time) (done func()) {
	p.mu.Lock()
	ticket := p.next
	p.next++
	p.since[ticket] = received
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		delete(p.since, ticket)
		p.mu.Unlock()
	}
}

// Describe implements prometheus.Collector.
func (p *pendingMessages) Describe(ch chan<- *prometheus.Desc) {
	ch <- p.count
	ch <- p.oldest
}

// Collect implements prometheus.Collector.
func (p *pendingMessages) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	p.mu.Lock()
	n := len(p.since)
	var age time.Duration
	for _, t := range p.since {
		age = max(age, now.Sub(t))
	}
	p.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(p.count, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(p.oldest, prometheus.GaugeValue, age.Seconds())
}
