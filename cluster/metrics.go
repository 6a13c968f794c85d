package cluster

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are this node's cluster counters; the live figures are read from
// the Cluster when scraped.
type metrics struct {
	c               *Cluster
	liveNodes       atomic.Int64
	camerasClaimed  atomic.Int64
	camerasLost     atomic.Int64
	heartbeatErrors atomic.Int64

	mu           sync.Mutex
	acquisitions map[string]int64 // by lease name
	losses       map[string]int64
}

func newMetrics(c *Cluster) *metrics {
	return &metrics{c: c, acquisitions: map[string]int64{}, losses: map[string]int64{}}
}

// lead makes the lease's series appear (at 0) as soon as a node leads for
// it, before its first term.
func (m *metrics) lead(lease string) {
	m.mu.Lock()
	m.acquisitions[lease] += 0
	m.losses[lease] += 0
	m.mu.Unlock()
}

func (m *metrics) acquired(lease string) {
	m.mu.Lock()
	m.acquisitions[lease]++
	m.mu.Unlock()
}

func (m *metrics) lost(lease string) {
	m.mu.Lock()
	m.losses[lease]++
	m.mu.Unlock()
}

// Collector returns a Prometheus collector of this node's cluster figures:
// live nodes, leases held, lease acquisitions and losses, cameras claimed
// and lost, heartbeat errors and whether Redis answers.
func (c *Cluster) Collector() prometheus.Collector {
	return collector{
		m:            c.metrics,
		live:         prometheus.NewDesc("skywatch_cluster_live_nodes", "Live nodes as of this node's last heartbeat.", nil, nil),
		held:         prometheus.NewDesc("skywatch_cluster_lease_held", "1 when this node holds the lease.", []string{"lease"}, nil),
		acquisitions: prometheus.NewDesc("skywatch_cluster_lease_acquisitions_total", "Terms of a lease this node began.", []string{"lease"}, nil),
		losses:       prometheus.NewDesc("skywatch_cluster_lease_losses_total", "Terms of a lease this node lost (taken by another or not renewed in time).", []string{"lease"}, nil),
		cameras:      prometheus.NewDesc("skywatch_cluster_cameras_claimed", "Cameras this node holds the claim of.", nil, nil),
		camerasLost:  prometheus.NewDesc("skywatch_cluster_camera_claims_lost_total", "Camera claims this node lost.", nil, nil),
		hbErrors:     prometheus.NewDesc("skywatch_cluster_heartbeat_errors_total", "Heartbeats that failed (Redis did not answer).", nil, nil),
		redisUp:      prometheus.NewDesc("skywatch_cluster_redis_up", "1 while the cluster's last Redis command succeeded.", nil, nil),
	}
}

type collector struct {
	m                                                                         *metrics
	live, held, acquisitions, losses, cameras, camerasLost, hbErrors, redisUp *prometheus.Desc
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.live, c.held, c.acquisitions, c.losses, c.cameras, c.camerasLost, c.hbErrors, c.redisUp} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	ch <- prometheus.MustNewConstMetric(c.live, prometheus.GaugeValue, float64(m.liveNodes.Load()))
	ch <- prometheus.MustNewConstMetric(c.cameras, prometheus.GaugeValue, float64(m.camerasClaimed.Load()))
	ch <- prometheus.MustNewConstMetric(c.camerasLost, prometheus.CounterValue, float64(m.camerasLost.Load()))
	ch <- prometheus.MustNewConstMetric(c.hbErrors, prometheus.CounterValue, float64(m.heartbeatErrors.Load()))

	m.c.mu.Lock()
	up := 0.0
	if m.c.down.IsZero() {
		up = 1
	}
	held := map[string]bool{}
	for name := range m.c.leases {
		held[name] = true
	}
	m.c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.redisUp, prometheus.GaugeValue, up)

	m.mu.Lock()
	defer m.mu.Unlock()
	names := []string{}
	for name := range m.acquisitions {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v := 0.0
		if held[name] {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, v, name)
		ch <- prometheus.MustNewConstMetric(c.acquisitions, prometheus.CounterValue, float64(m.acquisitions[name]), name)
		ch <- prometheus.MustNewConstMetric(c.losses, prometheus.CounterValue, float64(m.losses[name]), name)
	}
}
