package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skywatch/skywatch/alarms/redisstore"
	"github.com/skywatch/skywatch/cluster"
)

// clusterSettings checks the cluster: section: its own keys, and that the
// nodes have what they share, the Redis store and an external broker.
// Without the section it returns nil. cluster.webrtc_ips defaults to
// webrtc.public_ips.
func clusterSettings(fc *fileConfig) (*cluster.Config, error) {
	if fc.Cluster == nil {
		return nil, nil
	}
	cc := *fc.Cluster
	cc.WebRTCIPs = slices.Clone(cc.WebRTCIPs)
	if len(cc.WebRTCIPs) == 0 {
		cc.WebRTCIPs = slices.Clone(fc.WebRTC.PublicIPs)
	}
	cc.SetDefaults()
	var errs []error
	if err := cc.Validate(); err != nil {
		errs = append(errs, err)
	}
	if fc.Store.RedisURL == "" {
		errs = append(errs, errors.New("store.redis_url: required with cluster: (the nodes share their state and leases in Redis)"))
	}
	if fc.MQTT.URL == "" {
		errs = append(errs, errors.New("mqtt.url: required with cluster: (the nodes share an external broker; the embedded one serves one node)"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &cc, nil
}

// newCluster makes this node's cluster membership on the store's Redis and
// registers its metrics; nil without a cluster: section.
func newCluster(s *settings, reg prometheus.Registerer, logger *slog.Logger) (*cluster.Cluster, error) {
	if s.cluster == nil {
		return nil, nil
	}
	r := s.store.redis
	prefix := r.KeyPrefix
	if prefix == "" {
		prefix = redisstore.DefaultKeyPrefix
	}
	timeout := r.Timeout
	if timeout == 0 {
		timeout = redisstore.DefaultTimeout
	}
	c, err := cluster.New(*s.cluster, r.URL, prefix, timeout, logger)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := reg.Register(c.Collector()); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return c, nil
}

// startCluster registers this node, before anything that claims cameras
// or leads.
func (a *app) startCluster(ctx context.Context) error {
	if a.cluster == nil {
		return nil
	}
	if err := a.cluster.Start(ctx); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}

// closeCluster releases this node's leases and camera claims and removes
// its record, so that the others take over at once.
func (a *app) closeCluster() {
	if a.cluster == nil {
		return
	}
	if err := a.cluster.Close(); err != nil {
		a.logger.Warn("close cluster", "error", err)
	}
}
