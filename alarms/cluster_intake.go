package alarms

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Cluster mode of the intake (issue 12): every node is one member of the
// broker's shared subscription group mqtt.client_id, with client id
// {mqtt.client_id}-{node}; a device's messages may reach any node, so its
// state is read from the shared store before each message; live events come
// from the store's log (every node's), and the supervision of silent devices
// runs on one node (Supervise, under the engine's lease).

// ClusterOptions make an intake one node of several sharing a store and an
// external broker.
type ClusterOptions struct {
	// Node is this node's ID (cluster.node): the intake's client id at the
	// broker is {mqtt.client_id}-{Node}.
	Node string
	// Group is the shared subscription's group name, the same on every
	// node and unknown to devices ("" means mqtt.client_id).
	Group string
}

// EventTail is a store whose event log other nodes write too, and that can
// follow it. The intake of a cluster node needs its store to be one
// (redisstore.Store is).
type EventTail interface {
	// TailEvents returns up to count events stored after the offset after,
	// in log order, waiting up to block (> 0) for the first one, and the
	// offset to continue from (after itself when none came). after ""
	// returns no event and the offset of the log's current end at once.
	TailEvents(ctx context.Context, after string, count int, block time.Duration) (events []Event, next string, err error)
}

// DeviceStateSetter is a store that saves a device's state only if it was
// not saved since it was read: in cluster mode two nodes may handle one
// device's messages at once, and the second write must not undo the first
// (a supervision trouble marked by one and lost under the other's
// heartbeat). redisstore.Store is one.
type DeviceStateSetter interface {
	// PutDeviceIf saves d, with Rev rev+1, if the stored state's Rev is
	// rev (0: none stored, or stored without a Rev); ok is false when it
	// was not.
	PutDeviceIf(ctx context.Context, d DeviceState, rev int64) (ok bool, err error)
}

// errStateMoved: another node saved the device's state since this one read
// it; the message is handled again on the newer state.
var errStateMoved = errors.New("device state saved meanwhile by another node")

// stateRetries bounds the handlings of one message whose device state
// keeps moving; past it the message is stored again later like after any
// store failure.
const stateRetries = 5

// Tailing the event log.
const (
	// tailBatch is the most events one read of the log takes: no more
	// than a live subscriber's queue, which a batch must not overrun.
	tailBatch = subscriberQueue
	// tailBlock is how long one read of the log waits for an event; Close
	// waits for the read in progress, so it is short.
	tailBlock = time.Second
)

// clusterNode is the intake's cluster mode, set before Start.
type clusterNode struct {
	node  string
	group string // the shared subscription's group
	tail  EventTail
	cas   DeviceStateSetter
}

var nodePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// SetCluster puts the intake in cluster mode; call it before Start. It
// needs an external broker (mqtt.url) and a store that is an EventTail.
// In cluster mode Start does not supervise silent devices: run Supervise
// on one node at a time.
func (in *Intake) SetCluster(opts ClusterOptions) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.started {
		return errors.New("alarms: SetCluster after Start")
	}
	if !nodePattern.MatchString(opts.Node) {
		return fmt.Errorf("cluster.node: %q must match %s", opts.Node, nodePattern)
	}
	if in.embedded {
		return errors.New("mqtt.url: cluster mode needs an external broker")
	}
	if strings.ContainsAny(opts.Group, "/+#") {
		return fmt.Errorf("alarms: shared subscription group %q must not contain /, + or #", opts.Group)
	}
	if opts.Group == "" {
		opts.Group = in.cfg.MQTT.ClientID
	}
	tail, ok := in.store.(EventTail)
	cas, ok2 := in.store.(DeviceStateSetter)
	if !ok || !ok2 {
		return errors.New("store.redis_url: cluster mode needs the Redis store")
	}
	in.cluster = &clusterNode{node: opts.Node, group: opts.Group, tail: tail, cas: cas}
	return nil
}

// clientID is the intake's client id at the external broker.
func (in *Intake) clientID() string {
	return in.memberID(in.cluster.nodeID())
}

// memberID is the client id of node's intake ("" outside cluster mode).
func (in *Intake) memberID(node string) string {
	if node == "" {
		return in.cfg.MQTT.ClientID
	}
	return in.cfg.MQTT.ClientID + "-" + node
}

func (c *clusterNode) nodeID() string {
	if c == nil {
		return ""
	}
	return c.node
}

// filters are the intake's subscriptions: the device and unit filters,
// shared in the cluster's group in cluster mode.
func (in *Intake) filters() []string {
	fs := in.topics.deviceFilters()
	if in.cluster != nil {
		for i, f := range fs {
			fs[i] = "$share/" + in.cluster.group + "/" + f
		}
	}
	return fs
}

// refresh makes the stored state of d current, in cluster mode: another
// node may have handled the device's last message. d.mu is held.
func (in *Intake) refresh(ctx context.Context, d *device) error {
	if in.cluster == nil {
		return nil
	}
	st, err := in.store.Device(ctx, d.id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	in.storeDone(err)
	if err != nil {
		return fmt.Errorf("device %s: read state: %w", d.id, err)
	}
	d.commit(st)
	return nil
}

// startTail finds the end of the event log and follows it from there
// until the intake closes.
func (in *Intake) startTail(ctx context.Context) error {
	_, from, err := in.cluster.tail.TailEvents(ctx, "", 0, tailBlock)
	in.health.storeResult(err)
	if err != nil {
		return fmt.Errorf("alarms: find the end of the event log: %w", err)
	}
	in.spawn(func() { in.tailLog(in.life, from) })
	return nil
}

// tailLog hands every node's stored events, in log order, to the live
// subscribers and wakes the engine; after a store failure it resumes from
// the last event it saw, so a Redis blip loses nothing.
func (in *Intake) tailLog(ctx context.Context, after string) {
	backoff := storeRetryMin
	failing := false
	for ctx.Err() == nil {
		evs, next, err := in.cluster.tail.TailEvents(ctx, after, tailBatch, tailBlock)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing { // once per outage
				failing = true
				in.logger.Warn("alarms: live events: cannot read the event log; resuming where it stopped when the store is back", "error", err)
			}
			select {
			case <-time.After(jitter(backoff)):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, storeRetryMax)
			continue
		}
		if failing {
			failing = false
			in.logger.Info("alarms: live events: reading the event log again")
		}
		backoff = storeRetryMin
		after = next
		for i := range evs {
			in.noteSupervision(&evs[i])
			in.hub.publish(evs[i])
		}
		if len(evs) > 0 && in.engine != nil {
			in.engine.notify()
		}
	}
}

// noteSupervision keeps the supervisor's view of a device current when
// another node raised or restored its supervision trouble (the device
// state itself is read from the store before it is used).
func (in *Intake) noteSupervision(e *Event) {
	if e.Class != ClassSupervision {
		return
	}
	d := in.live().devices[e.Device]
	if d == nil {
		return
	}
	if e.Qualifier == QualifierRestore {
		d.lost.Store(false)
		d.extend(e.ReceivedAt)
	} else {
		d.lost.Store(true)
	}
}

// Supervise raises a supervision trouble for each device silent past its
// window until ctx ends. In cluster mode Start does not run it: run it on
// one node at a time (the engine's leader). It first learns every
// device's deadline from its stored LastSeen (a device heard by another
// node is not silent), giving devices at least a full window from this
// node's start, and before raising a trouble reads the device's stored
// state again. Outside cluster mode it returns an error at once.
func (in *Intake) Supervise(ctx context.Context) error {
	if in.cluster == nil {
		return errors.New("alarms: Supervise is for cluster mode (Start supervises otherwise)")
	}
	if !in.enter() {
		return ErrClosed
	}
	defer in.wg.Done()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	context.AfterFunc(in.life, stop)
	backoff := storeRetryMin
	for {
		states, err := in.store.Devices(ctx)
		in.storeDone(err)
		if err == nil {
			in.learnDeadlines(states)
			break
		}
		select {
		case <-time.After(jitter(backoff)):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, time.Second)
	}
	in.supervise(ctx)
	return nil
}

// learnDeadlines sets each device's state and deadline from the store.
func (in *Intake) learnDeadlines(states []DeviceState) {
	for _, st := range states {
		d := in.live().devices[st.ID]
		if d == nil {
			continue
		}
		d.mu.Lock()
		d.commit(st)
		d.extend(latest(st.LastSeen, in.startedAt))
		d.mu.Unlock()
	}
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// heardElsewhere reads d's stored state in cluster mode and reports
// whether another node heard the device within its window (then its
// deadline moves). d.mu is held.
func (in *Intake) heardElsewhere(ctx context.Context, d *device, now time.Time) (bool, error) {
	if in.cluster == nil {
		return false, nil
	}
	if err := in.refresh(ctx, d); err != nil {
		return false, err
	}
	if seen := latest(d.state.LastSeen, in.startedAt); now.Before(seen.Add(d.spec().window)) {
		d.extend(seen)
		return true, nil
	}
	return false, nil
}
