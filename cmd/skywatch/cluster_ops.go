package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/skywatch/skywatch/alarms/redisstore"
	"github.com/skywatch/skywatch/cluster"
	"github.com/skywatch/skywatch/internal/nodestats"
	"github.com/skywatch/skywatch/viewer"
)

// nodeMeter measures this node's figures (viewer.NodeStats) from its own
// Prometheus registry, so that it needs no hook in the parts it measures:
// events stored per second since the last measure, WHEP sessions, camera
// streams pulled, the intake's broker connection and store errors.
type nodeMeter struct {
	gather prometheus.Gatherer

	mu         sync.Mutex
	lastAt     time.Time
	lastEvents float64
}

func (m *nodeMeter) measure(now time.Time) viewer.NodeStats {
	st := viewer.NodeStats{At: now.UTC()}
	families, err := m.gather.Gather()
	if err != nil && len(families) == 0 {
		return st
	}
	var events float64
	for _, f := range families {
		for _, x := range f.GetMetric() {
			switch f.GetName() {
			case "skywatch_alarms_events_stored_total":
				events += x.GetCounter().GetValue()
			case "skywatch_alarms_store_errors_total":
				st.StoreErrors += uint64(x.GetCounter().GetValue())
			case "skywatch_alarms_broker_connected":
				st.IntakeConnected = x.GetGauge().GetValue() == 1
			case "skywatch_viewer_sessions":
				st.Viewers = int(x.GetGauge().GetValue())
			case "skywatch_camera_status":
				if x.GetGauge().GetValue() == 1 && pulled(label(x, "status")) {
					st.CamerasPulled++
				}
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.lastAt.IsZero() && now.After(m.lastAt) && events >= m.lastEvents {
		st.EventsPerSecond = (events - m.lastEvents) / now.Sub(m.lastAt).Seconds()
	}
	m.lastAt, m.lastEvents = now, events
	return st
}

// now measures at the current time (viewer.Deps.NodeStats).
func (m *nodeMeter) now() viewer.NodeStats { return m.measure(time.Now()) }

// pulled says whether a camera stream in this status holds an RTSP
// session or is trying to.
func pulled(status string) bool {
	return status == "online" || status == "connecting" || status == "retrying"
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// nodeRecord is what a node publishes beside its figures: enough to show
// a node that has died (its cluster record is gone with its heartbeat).
type nodeRecord struct {
	HTTPURL   string           `json:"http_url"`
	WebRTCIPs []string         `json:"webrtc_ips"`
	Started   time.Time        `json:"started"`
	Stats     viewer.NodeStats `json:"stats"`
}

// clusterOps shows the cluster to admins (GET /api/cluster) and publishes
// this node's figures with each heartbeat interval, so that every node
// shows every node's.
type clusterOps struct {
	c       *cluster.Cluster
	stats   *nodestats.Store
	meter   *nodeMeter
	logger  *slog.Logger
	every   time.Duration
	started time.Time

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

var _ viewer.ClusterView = (*clusterOps)(nil)

// newClusterOps opens the figures' store with the store's Redis settings
// and registers skywatch_node_info{node,http_url} in reg, so that a
// Prometheus scraping every node tells their series apart (join on
// instance). Start publishes; Close stops.
func newClusterOps(ctx context.Context, c *cluster.Cluster, redisURL, keyPrefix string, timeout time.Duration,
	reg *prometheus.Registry, logger *slog.Logger) (*clusterOps, error) {
	st, err := nodestats.Open(ctx, redisURL, keyPrefix, timeout)
	if err != nil {
		return nil, fmt.Errorf("store.redis_url: %w", err)
	}
	cfg := c.Config()
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "skywatch_node_info",
		Help:        "1, labelled with this node's cluster.node and cluster.http_url.",
		ConstLabels: prometheus.Labels{"node": cfg.Node, "http_url": cfg.HTTPURL},
	})
	info.Set(1)
	if err := reg.Register(info); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &clusterOps{c: c, stats: st, meter: &nodeMeter{gather: reg}, logger: logger,
		every: cfg.RenewInterval(), started: time.Now().UTC(), done: make(chan struct{})}, nil
}

// Start publishes this node's figures now and every renew interval until
// Close.
func (o *clusterOps) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	go o.run(ctx)
}

func (o *clusterOps) run(ctx context.Context) {
	defer close(o.done)
	t := time.NewTicker(o.every)
	defer t.Stop()
	failing := false
	for {
		err := o.publish(ctx, time.Now())
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			o.logger.Warn("node figures not published", "err", err)
			failing = true
		case err == nil && failing:
			o.logger.Info("node figures published again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (o *clusterOps) publish(ctx context.Context, now time.Time) error {
	cfg := o.c.Config()
	data, err := json.Marshal(nodeRecord{HTTPURL: cfg.HTTPURL, WebRTCIPs: cfg.WebRTCIPs, Started: o.started,
		Stats: o.meter.measure(now)})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.every)
	defer cancel()
	return o.stats.Put(ctx, nodestats.Record{Node: o.c.Node(), At: now.UTC(), Data: data})
}

// Close stops publishing and closes the figures' store. It is idempotent.
func (o *clusterOps) Close() error {
	var err error
	o.closeOnce.Do(func() {
		if o.cancel != nil {
			o.cancel()
			<-o.done
		}
		err = o.stats.Close()
	})
	return err
}

// ClusterStatus reads the cluster now: the live nodes from their
// registrations, nodes seen lately but gone from their last published
// figures, the engine's lease and the leases the nodes hold.
func (o *clusterOps) ClusterStatus(ctx context.Context) (viewer.ClusterStatus, error) {
	now := time.Now()
	live, err := o.c.Nodes(ctx)
	if err != nil {
		return viewer.ClusterStatus{}, err
	}
	recs, err := o.stats.All(ctx, now)
	if err != nil {
		// The figures are extra: the nodes and leases are still shown.
		o.logger.Warn("read the nodes' figures", "err", err)
	}
	// Figures older than a few intervals are not current.
	current := func(at time.Time) bool { return now.Sub(at) <= 3*o.every }
	st := viewer.ClusterStatus{Node: o.c.Node()}
	names := []string{engineLease}
	for _, n := range live {
		cn := viewer.ClusterNode{ID: n.ID, HTTPURL: n.HTTPURL, WebRTCIPs: n.WebRTCIPs, Started: n.Started.UTC(),
			Seen: n.Seen.UTC(), Alive: true, Cameras: slices.Sorted(slices.Values(n.Cameras)), Leases: n.Leases}
		if r, ok := recs[n.ID]; ok && current(r.At) {
			var nr nodeRecord
			if json.Unmarshal(r.Data, &nr) == nil {
				cn.Stats = &nr.Stats
			}
		}
		st.Nodes = append(st.Nodes, cn)
		for _, l := range n.Leases {
			if !slices.Contains(names, l) {
				names = append(names, l)
			}
		}
	}
	for id, r := range recs {
		if slices.ContainsFunc(live, func(n cluster.NodeInfo) bool { return n.ID == id }) {
			continue
		}
		var nr nodeRecord
		if json.Unmarshal(r.Data, &nr) != nil {
			continue
		}
		st.Nodes = append(st.Nodes, viewer.ClusterNode{ID: id, HTTPURL: nr.HTTPURL, WebRTCIPs: nr.WebRTCIPs,
			Started: nr.Started, Seen: r.At, Alive: false})
	}
	slices.SortFunc(st.Nodes, func(a, b viewer.ClusterNode) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	slices.Sort(names[1:])
	var errs []error
	for _, name := range names {
		node, token, expires, err := o.c.LeaseHolder(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if node == "" {
			continue
		}
		if name == engineLease {
			st.Engine = node
		}
		st.Leases = append(st.Leases, viewer.ClusterLease{Name: name, Holder: node, Token: token, Expires: expires.UTC()})
	}
	if err := errors.Join(errs...); err != nil {
		return viewer.ClusterStatus{}, err
	}
	return st, nil
}

// sharedLogins is the records store as the viewer's shared logins (the
// Redis store is; a file store is not, and a cluster needs Redis).
func sharedLogins(r records) (viewer.SharedLogins, error) {
	s, ok := r.(viewer.SharedLogins)
	if !ok {
		return nil, errors.New("cluster: the operators' records are not in Redis (store.redis_url)")
	}
	return s, nil
}

// wireClusterOps gives the viewer, in a cluster, the operators' shared
// sessions and login limits, the patrol page's shared sessions and the
// cluster's view (GET /api/cluster); without a cluster it does nothing.
// Call it after the records store opens and before viewer.New.
func (a *app) wireClusterOps(ctx context.Context, s *settings, reg *prometheus.Registry, deps *viewer.Deps) error {
	if a.cluster == nil {
		return nil
	}
	shared, err := sharedLogins(a.records)
	if err != nil {
		return err
	}
	patrol, ok := a.records.(viewer.SharedPatrolSessions)
	if !ok {
		return errors.New("cluster: the patrol page's sessions cannot be kept in the records store")
	}
	r := s.store.redis
	prefix := r.KeyPrefix
	if prefix == "" {
		prefix = redisstore.DefaultKeyPrefix
	}
	a.ops, err = newClusterOps(ctx, a.cluster, r.URL, prefix, r.Timeout, reg, a.logger.With("component", "cluster"))
	if err != nil {
		return err
	}
	deps.Shared, deps.SharedPatrol, deps.Cluster = shared, patrol, a.ops
	return nil
}

// startClusterOps publishes this node's figures; after the cluster has
// started.
func (a *app) startClusterOps() {
	if a.ops != nil {
		a.ops.Start()
	}
}

// closeClusterOps stops publishing this node's figures.
func (a *app) closeClusterOps() {
	if a.ops == nil {
		return
	}
	if err := a.ops.Close(); err != nil {
		a.logger.Warn("close cluster figures", "error", err)
	}
}
