package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/cluster"
)

// engineLease is the name of the incident engine's lease: its Redis key is
// {prefix}cluster:lease:engine.
const engineLease = "engine"

// forwardMargin is added to the failover time for a request waiting for the
// engine's leader: a takeover takes up to the failover time and one poll.
const forwardMargin = 5 * time.Second

// clusterEngineOptions puts the engine's options in cluster mode when this
// node is in a cluster: the Redis store carries the command stream and the
// feed.
func clusterEngineOptions(opts *alarms.EngineOptions, store alarmStore, cc *cluster.Config) error {
	if cc == nil {
		return nil
	}
	ec, ok := store.(alarms.EngineCluster)
	if !ok {
		return errors.New("cluster: the incident engine needs the Redis store (store.redis_url)")
	}
	opts.Cluster = ec
	opts.ForwardTimeout = cc.Failover + forwardMargin
	return nil
}

// engineLeader runs the incident engine's terms on this node whenever it
// holds the engine's lease, with the other work that belongs to the
// engine's node (also: e.g. the supervision of silent devices).
type engineLeader struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startEngineLeader competes for the engine's lease until close.
func startEngineLeader(c *cluster.Cluster, eng *alarms.Engine, logger *slog.Logger, also ...func(context.Context)) *engineLeader {
	ctx, cancel := context.WithCancel(context.Background())
	l := &engineLeader{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		c.Lead(ctx, engineLease, func(ctx context.Context, f cluster.Fence) {
			// The term's other work ends with the engine's term.
			tctx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			for _, fn := range also {
				wg.Go(func() { fn(tctx) })
			}
			if err := eng.Lead(tctx, alarms.Fence{Key: f.Key, Value: f.Value}); err != nil {
				logger.Warn("incident engine: term", "error", err)
				// Give the lease up after a pause: another node may do better.
				select {
				case <-tctx.Done():
				case <-time.After(time.Second):
				}
			}
			stop()
			wg.Wait()
		})
	}()
	return l
}

// close stops competing (ending a running term, which releases the lease)
// and waits. It is idempotent.
func (l *engineLeader) close() {
	if l == nil {
		return
	}
	l.cancel()
	<-l.done
}
