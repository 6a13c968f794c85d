package main

import (
	"context"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/cluster"
)

// clusterIntake ties the alarm intake to the cluster: the intake joins the
// broker's shared subscription as this node, a dead node's broker session
// is adopted by one live node (its unacknowledged and queued messages would
// otherwise wait for it: docs/brokers.md), and the supervision of silent
// devices runs in the engine's lease term (LeaderTerm).
type clusterIntake struct {
	in     *alarms.Intake
	c      *cluster.Cluster
	logger *slog.Logger

	ctx    context.Context // ended by Close; the OnChange callback has none
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	live     map[string]bool               // as of the last OnChange
	adopting map[string]context.CancelFunc // dead node -> its adoption
}

// adoptRetry is the wait between two attempts to adopt a dead node's
// session that failed (the broker or the store down).
const adoptRetry = 2 * time.Second

// newClusterIntake puts in in cluster mode as c's node; call it before
// in.Start, and Start after in.Start.
func newClusterIntake(ctx context.Context, in *alarms.Intake, c *cluster.Cluster, logger *slog.Logger) (*clusterIntake, error) {
	group, err := c.ShareGroup(ctx)
	if err != nil {
		return nil, err
	}
	if err := in.SetCluster(alarms.ClusterOptions{Node: c.Node(), Group: group}); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &clusterIntake{in: in, c: c, logger: logger, ctx: ctx, cancel: cancel,
		live: map[string]bool{}, adopting: map[string]context.CancelFunc{}}, nil
}

// Start watches the live nodes for deaths; nil does nothing.
func (ci *clusterIntake) Start() {
	if ci == nil {
		return
	}
	ci.mu.Lock()
	for _, n := range ci.c.Live() {
		ci.live[n.ID] = true
	}
	ci.mu.Unlock()
	ci.c.OnChange(ci.changed)
}

// LeaderTerm supervises silent devices until ctx ends: run it inside the
// engine's lease term, so that one node at a time raises supervision
// troubles.
func (ci *clusterIntake) LeaderTerm(ctx context.Context) {
	if err := ci.in.Supervise(ctx); err != nil {
		ci.logger.Warn("alarms: supervision", "error", err)
	}
}

// changed is OnChange's callback (on the heartbeat's goroutine: it only
// starts or stops adoptions). A node that left the live set is adopted by
// the live node that rendezvous hashing picks for it; one that came back
// is left alone (it takes its own session back).
func (ci *clusterIntake) changed(live []cluster.NodeInfo) {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	if ci.ctx.Err() != nil {
		return
	}
	now := map[string]bool{}
	ids := make([]string, 0, len(live))
	for _, n := range live {
		now[n.ID] = true
		ids = append(ids, n.ID)
	}
	for id := range now {
		if stop, ok := ci.adopting[id]; ok {
			stop() // back: its own intake resumes the session
			delete(ci.adopting, id)
		}
	}
	for id := range ci.live {
		if now[id] || id == ci.c.Node() || ci.adopting[id] != nil {
			continue
		}
		if adopterOf(id, ids) != ci.c.Node() {
			continue
		}
		ctx, stop := context.WithCancel(ci.ctx)
		ci.adopting[id] = stop
		ci.wg.Add(1)
		go ci.adopt(ctx, id)
	}
	ci.live = now
}

// adopt takes over the dead node's session, trying again while it fails
// and the node stays dead.
func (ci *clusterIntake) adopt(ctx context.Context, node string) {
	defer ci.wg.Done()
	defer func() {
		ci.mu.Lock()
		if stop := ci.adopting[node]; stop != nil {
			stop()
			delete(ci.adopting, node)
		}
		ci.mu.Unlock()
	}()
	for {
		err := ci.in.AdoptSession(ctx, node)
		if err == nil || ctx.Err() != nil {
			return
		}
		ci.logger.Warn("alarms: adopt a dead node's broker session", "node", node, "error", err)
		select {
		case <-time.After(adoptRetry):
		case <-ctx.Done():
			return
		}
	}
}

// adopterOf picks the live node that adopts dead's session: the highest
// rendezvous hash, so that every node picks the same one from the same
// live set (a node with a stale view may adopt too: that is harmless,
// events are stored once by their IDs).
func adopterOf(dead string, live []string) string {
	var (
		best  string
		score uint64
	)
	for _, id := range live {
		h := fnv.New64a()
		h.Write([]byte(dead))
		h.Write([]byte{0})
		h.Write([]byte(id))
		if s := h.Sum64(); best == "" || s > score {
			best, score = id, s
		}
	}
	return best
}

// Close stops the adoptions in progress and waits for them. It is
// idempotent; nil does nothing.
func (ci *clusterIntake) Close() {
	if ci == nil {
		return
	}
	ci.mu.Lock()
	ci.cancel()
	ci.mu.Unlock()
	ci.wg.Wait()
}
