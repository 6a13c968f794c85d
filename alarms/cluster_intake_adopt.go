package alarms

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// adoptQuiet is how long an adopted session must stay quiet (no message
// arriving, none being stored) before the adoption ends.
const adoptQuiet = 500 * time.Millisecond

// AdoptSession takes over the broker session of a dead node's intake (client
// id {mqtt.client_id}-{node}), so that the messages the broker keeps there
// are not stuck until that node comes back: Mosquitto 2 keeps a dead
// member's unacknowledged messages in its session and goes on routing new
// ones to it (docs/brokers.md). It connects with that client id and clean
// session off, unsubscribes the shared filters at once (the broker stops
// routing to that session; the node subscribes again when it comes back),
// stores and acknowledges everything the broker hands over (duplicates go
// by event ID as always), and disconnects once the session has been quiet
// for adoptQuiet. It returns an error, and leaves the rest in the session,
// when the broker or the store fails or ctx ends first. Only in cluster
// mode, and never for this node itself. If the node comes back meanwhile,
// the broker hands the session back to it, which is safe too.
func (in *Intake) AdoptSession(ctx context.Context, node string) error {
	if in.cluster == nil {
		return errors.New("alarms: AdoptSession is for cluster mode")
	}
	if node == in.cluster.node || !nodePattern.MatchString(node) {
		return fmt.Errorf("alarms: adopt session of node %q: not another node", node)
	}
	if !in.enter() {
		return ErrClosed
	}
	defer in.wg.Done()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	context.AfterFunc(in.life, stop)

	id := in.memberID(node)
	begin := time.Now()
	a := &adopter{in: in, ctx: ctx}
	a.last.Store(begin.UnixNano())
	a.lastStored.Store(begin.UnixNano())
	cfg := &in.cfg.MQTT
	c := paho.NewClient(paho.NewClientOptions().
		AddBroker(cfg.URL).
		SetClientID(id).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetCleanSession(false). // the session, with what it holds, is what we came for
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetAutoAckDisabled(true).
		SetOrderMatters(false).
		SetDefaultPublishHandler(a.onMessage))
	if err := waitToken(ctx, c.Connect()); err != nil {
		return fmt.Errorf("alarms: adopt session %s: connect: %w", id, err)
	}
	in.logger.Info("alarms: adopting a dead node's broker session", "client_id", id, "connect", time.Since(begin).Round(time.Millisecond))
	// Disconnect, then end the stores in progress: a message not
	// acknowledged by then stays in the session (stored twice at worst).
	defer func() {
		c.Disconnect(250)
		stop()
		a.wait()
	}()
	if err := waitToken(ctx, c.Unsubscribe(in.filters()...)); err != nil {
		return fmt.Errorf("alarms: adopt session %s: unsubscribe: %w", id, err)
	}
	t := time.NewTicker(adoptQuiet / 5)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("alarms: adopt session %s: %w (%d messages stored)", id, ctx.Err(), a.stored.Load())
		case <-t.C:
		}
		if !c.IsConnectionOpen() {
			return fmt.Errorf("alarms: adopt session %s: connection lost (taken back?) after %d messages", id, a.stored.Load())
		}
		if a.busy.Load() == 0 && time.Since(time.Unix(0, a.last.Load())) >= adoptQuiet {
			break
		}
	}
	in.logger.Info("alarms: adopted a dead node's broker session", "client_id", id, "messages", a.stored.Load(),
		"took", time.Since(begin).Round(time.Millisecond), "drained", a.drained().Sub(begin).Round(time.Millisecond))
	return nil
}

// adopter stores the messages of an adopted session.
type adopter struct {
	in *Intake
	// ctx is the adoption's: paho's handler has none of its own.
	ctx    context.Context
	busy   atomic.Int32
	last   atomic.Int64 // unix ns of the last message's arrival or end
	stored atomic.Int64
	// lastStored is the unix ns when the last message was stored: with
	// the adoption's start, how long the drain took (the quiet wait aside).
	lastStored atomic.Int64
}

// drained returns when the last message was stored (the adoption's start
// when none was).
func (a *adopter) drained() time.Time {
	return time.Unix(0, a.lastStored.Load())
}

// onMessage stores a message of the adopted session and then acknowledges
// it; it retries a failing store until the adoption's ctx ends (the
// message then stays in the session).
func (a *adopter) onMessage(_ paho.Client, msg paho.Message) {
	a.busy.Add(1)
	defer func() {
		a.last.Store(time.Now().UnixNano())
		a.busy.Add(-1)
	}()
	a.last.Store(time.Now().UnixNano())
	m := message{topic: msg.Topic(), payload: msg.Payload(), replayed: msg.Retained(), received: time.Now()}
	backoff := storeRetryMin
	for {
		if err := a.in.take(a.ctx, m); err == nil {
			msg.Ack()
			a.stored.Add(1)
			a.lastStored.Store(time.Now().UnixNano())
			a.in.metrics.adopted.Inc()
			return
		}
		select {
		case <-time.After(backoff):
		case <-a.ctx.Done():
			return
		}
		backoff = min(2*backoff, storeRetryMax)
	}
}

// wait waits for the messages being stored (their ctx bounds them).
func (a *adopter) wait() {
	for a.busy.Load() > 0 {
		time.Sleep(10 * time.Millisecond)
	}
}

// waitToken waits for a paho token or ctx.
func waitToken(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
