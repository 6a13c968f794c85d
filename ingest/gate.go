package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ErrPulledElsewhere is returned (wrapped in an *UnavailableError by
// AddReader and AddSubReader) when the camera's Gate refuses this node: in
// a cluster, another node pulls the camera, and a viewer should be sent to
// that node instead.
var ErrPulledElsewhere = errors.New("camera pulled by another node")

// Gate decides, when several Skywatch nodes share the cameras, whether this
// node may pull a camera: each camera is pulled by one node at a time, the
// holder of its lease, so that the camera's few RTSP sessions are not
// multiplied. Manager.UseGate installs one; without a gate every camera is
// pulled as asked.
//
// The Manager claims a camera before any of its streams connects, keeps
// the claim while one of them is pulled, and releases it when the last one
// stops. It calls one camera's Claim and Release one at a time.
type Gate interface {
	// Claim takes the camera's lease for this node, or confirms that this
	// node holds it. It returns false when another node holds it or, by the
	// gate's own rule, should (a camera pulled without viewers belongs to
	// its preferred node).
	Claim(ctx context.Context, camera string) (bool, error)
	// Release gives the camera's lease back.
	Release(ctx context.Context, camera string) error
}

// gateTimeout bounds one call of a Gate.
const gateTimeout = 5 * time.Second

// DefaultGateRetry is how often, with a Gate, the cameras whose mode is
// "always" and that are not pulled try to claim their lease again.
const DefaultGateRetry = 2 * time.Second

// lease is a camera's claim through the Gate. It is held while any of the
// camera's sources runs (each run holds a reference) or a claim is being
// turned into a run (the claimer holds a reference meanwhile), and released
// when the last reference goes. Lock order: a source's mu, then lease.mu;
// the gate is called with mu held, which serialises the camera's claims
// and releases.
type lease struct {
	gate   Gate
	camera string
	logger *slog.Logger

	mu   sync.Mutex
	held bool
	// leaving: the lease is being handed over (Handover): no new run
	// starts, and the last run to end releases it.
	leaving bool
	refs    int
}

// claim takes a reference, claiming the lease through the gate first when
// it is not held. It fails with ErrPulledElsewhere when the gate refuses.
func (l *lease) claim(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.leaving {
		return ErrPulledElsewhere
	}
	if !l.held {
		ctx, cancel := context.WithTimeout(ctx, gateTimeout)
		ok, err := l.gate.Claim(ctx, l.camera)
		cancel()
		if err != nil {
			return fmt.Errorf("camera %s: claim lease: %w", l.camera, err)
		}
		if !ok {
			return ErrPulledElsewhere
		}
		l.held = true
		l.logger.Info("camera lease claimed")
	}
	l.refs++
	return nil
}

// ref takes a reference on a lease already held (a run starting on behalf
// of a claimer); it reports false when the lease was lost meanwhile.
func (l *lease) ref() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held || l.leaving {
		return false
	}
	l.refs++
	return true
}

// unref gives a reference back; the last one releases the lease.
func (l *lease) unref() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refs--
	if l.refs > 0 || !l.held {
		return
	}
	l.held, l.leaving = false, false
	ctx, cancel := context.WithTimeout(context.Background(), gateTimeout)
	defer cancel()
	if err := l.gate.Release(ctx, l.camera); err != nil {
		// The lease expires by itself: nobody renews it any more.
		l.logger.Warn("camera lease not released", "err", err)
		return
	}
	l.logger.Info("camera lease released")
}

// lost forgets the lease: another node holds it now, so it must not be
// released (that would delete the other node's).
func (l *lease) lost() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held, l.leaving = false, false
}

// handover marks a held lease as leaving: its runs are about to stop, and
// the last one to end releases it. False when it is not held.
func (l *lease) handover() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held || l.leaving {
		return false
	}
	l.leaving = true
	return true
}

// UseGate makes the manager pull a camera only while gate grants this node
// its lease (see Gate). Cameras whose mode is "always" are pulled from Start
// on only when their claim succeeds; those that are not pulled claim again
// every retry (DefaultGateRetry when 0) and at each Rebalance. UseGate must
// be called before Start, AddReader and Hold.
func (m *Manager) UseGate(gate Gate, retry time.Duration) {
	if retry <= 0 {
		retry = DefaultGateRetry
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gate, m.gateRetry = gate, retry
	// Before Start nobody reads the cameras yet: they can be changed in
	// place.
	set := m.set.Load()
	for _, id := range set.ids {
		c := set.byID[id]
		c.lease = m.newLease(id)
		for _, s := range c.sources() {
			s.lease = c.lease
		}
	}
}

func (m *Manager) newLease(id string) *lease {
	return &lease{gate: m.gate, camera: id, logger: m.logger.With("camera", id)}
}

// Rebalance makes the cameras whose mode is "always" and that are not
// pulled claim their lease now, for example when a node of the cluster
// died. It does not wait.
func (m *Manager) Rebalance() {
	select {
	case m.rebalance <- struct{}{}:
	default:
	}
}

// LeaseLost stops pulling a camera at once: its lease is gone or held by
// another node. Its readers are closed (their Read returns
// ErrReaderClosed), so that viewers reconnect, through the node that holds
// it now. A camera whose mode is "always" claims its lease again later.
func (m *Manager) LeaseLost(cameraID string) {
	c, err := m.lookup(cameraID)
	if err != nil || c.lease == nil {
		return
	}
	c.lease.lost()
	m.logger.Warn("camera lease lost, stopping camera", "camera", cameraID)
	for _, s := range c.sources() {
		s.evict()
	}
}

// Handover stops pulling a camera so that another node may take it: its
// readers are closed (viewers reconnect through the node that pulls it
// next), and its lease is released through the Gate once its RTSP sessions
// are closed, never before, so that the camera never sees two nodes' sessions.
// Until then the camera cannot be claimed here again. It reports false,
// doing nothing, when this node does not hold the camera's lease.
func (m *Manager) Handover(cameraID string) bool {
	c, err := m.lookup(cameraID)
	if err != nil || c.lease == nil || !c.lease.handover() {
		return false
	}
	m.logger.Info("camera handed over, stopping camera", "camera", cameraID)
	for _, s := range c.sources() {
		s.evict()
	}
	return true
}

// claimLoop claims, until ctx ends, the leases of the always-on cameras
// that are not pulled: every gateRetry and on Rebalance.
func (m *Manager) claimLoop(ctx context.Context) {
	t := time.NewTicker(m.gateRetry)
	defer t.Stop()
	for {
		m.claimAlways(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.rebalance:
		}
	}
}

func (m *Manager) claimAlways(ctx context.Context) {
	// A camera that an Apply removes or changes meanwhile has closed
	// sources: start does nothing on them, and the claim taken for them
	// is released by unref below.
	set := m.set.Load()
	for _, id := range set.ids {
		c := set.byID[id]
		var idle []*source
		for _, s := range c.sources() {
			if !s.onDemand() && !s.pulling() && !s.isClosed() {
				idle = append(idle, s)
			}
		}
		if len(idle) == 0 {
			continue
		}
		if err := c.lease.claim(ctx); err != nil {
			if !errors.Is(err, ErrPulledElsewhere) && ctx.Err() == nil {
				m.logger.Warn("camera lease", "camera", id, "err", err)
			}
			continue
		}
		for _, s := range idle {
			s.start()
		}
		c.lease.unref()
		if ctx.Err() != nil {
			return
		}
	}
}
