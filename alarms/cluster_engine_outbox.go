package alarms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// The outbox's publisher: a goroutine per term that publishes the units'
// messages the term committed, in the order it committed them, and removes
// each from the outbox once the broker has it (PUBACK).
//
// Why not on the engine's goroutine: the intake's MQTT connection carries
// the events' acknowledgements too, so on a busy node a PUBACK can queue
// behind a flood for seconds; the engine waiting for it would hold back
// every offer deadline, command and event behind it. Here a slow or
// failing broker only delays the messages themselves (kept in the outbox,
// in order, and retried with backoff); deadlines and commits go on.

// Limits of the publisher.
const (
	// outboxQueueMax bounds the committed messages waiting in memory; past
	// it the queue is dropped and the publisher reads the outbox from the
	// store again (which holds them all, in order).
	outboxQueueMax = 10000
	// publishWindow is how many messages are handed to the broker's client
	// before waiting for their PUBACKs (in order).
	publishWindow = 32
	// outboxRetryMax caps the backoff between attempts after a failure
	// (from outboxRetry, doubling).
	outboxRetryMax = 10 * time.Second
)

// outboxPublisher publishes a term's messages to units. The engine's
// goroutine hands it committed messages with enqueue, which never blocks;
// run is the goroutine, owned by the term (Lead waits for it).
type outboxPublisher struct {
	e    *Engine
	wake chan struct{}

	mu sync.Mutex
	// queue: committed messages (Entry set), in commit order, not yet taken
	// by run.
	queue []OutboxMessage
	// reload: read the store's outbox before the queue: at the start of a
	// term (what a previous term left), after the queue overflowed, or when
	// a commit's entries were not known.
	reload bool
}

func newOutboxPublisher(e *Engine) *outboxPublisher {
	return &outboxPublisher{e: e, wake: make(chan struct{}, 1), reload: true}
}

// enqueue hands committed messages to the publisher, in order. It never
// blocks.
func (p *outboxPublisher) enqueue(msgs []OutboxMessage) {
	if len(msgs) == 0 {
		return
	}
	p.mu.Lock()
	switch {
	case p.reload:
		// Already saved in the outbox, which the reload reads.
	case len(p.queue)+len(msgs) > outboxQueueMax:
		p.queue, p.reload = nil, true
	default:
		p.queue = append(p.queue, msgs...)
	}
	p.mu.Unlock()
	p.poke()
}

// reloadOutbox asks the publisher to read the store's outbox again (a
// commit whose entries are not known).
func (p *outboxPublisher) reloadOutbox() {
	p.mu.Lock()
	p.queue, p.reload = nil, true
	p.mu.Unlock()
	p.poke()
}

func (p *outboxPublisher) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run publishes until ctx ends (the term's end). What it did not publish
// stays in the outbox for the next term.
func (p *outboxPublisher) run(ctx context.Context) {
	backoff := outboxRetry
	// pause waits after a failure; false when ctx ended.
	pause := func() bool {
		t := time.NewTimer(backoff)
		defer t.Stop()
		backoff = min(2*backoff, outboxRetryMax)
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	var work []OutboxMessage
	// seen: entries read by the last reload, which may be enqueued too (a
	// commit between the reload's start and its read); skipped once.
	var seen map[string]bool
	for ctx.Err() == nil {
		p.mu.Lock()
		if p.reload {
			// What is queued is in the store's outbox too.
			p.queue, p.reload = nil, false
			p.mu.Unlock()
			sctx, cancel := storeCtx(ctx)
			left, err := p.e.fstore.Outbox(sctx)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				p.e.logger.Warn("alarms: incident engine: read the outbox; retrying", "err", err, "in", backoff)
				p.mu.Lock()
				p.queue, p.reload = nil, true
				p.mu.Unlock()
				if !pause() {
					return
				}
				continue
			}
			work, seen = left, make(map[string]bool, len(left))
			for _, m := range left {
				seen[m.Entry] = true
			}
			p.mu.Lock()
		}
		for _, m := range p.queue {
			if seen[m.Entry] {
				delete(seen, m.Entry)
				continue
			}
			work = append(work, m)
		}
		p.queue = nil
		p.mu.Unlock()

		if len(work) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-p.wake:
			}
			continue
		}
		n, err := p.publish(ctx, work[:min(len(work), publishWindow)])
		if n > 0 {
			entries := make([]string, n)
			for i := range n {
				entries[i] = work[i].Entry
			}
			// Not under the term's ctx: a message the broker has should
			// leave the outbox even as the term ends.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
			if rerr := p.e.fstore.RemoveOutbox(rctx, entries); rerr != nil {
				// They would be sent again by a later term (same ids).
				p.e.logger.Warn("alarms: outbox: remove published messages", "err", rerr)
			}
			cancel()
			work = work[n:]
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m := work[0]
			p.e.logger.Warn("alarms: dispatch message not sent; kept in the outbox, retrying", "unit", m.Unit,
				"type", m.Msg.Type, "incident", m.Msg.Incident, "err", err, "in", backoff, "waiting", len(work))
			if !pause() {
				return
			}
			continue
		}
		backoff = outboxRetry
	}
}

// publish hands msgs to the broker, in order, then waits for their
// PUBACKs in order; it returns how many of the first ones the broker has,
// and the error that stopped it. After an error the messages following
// may have reached the broker too: they are sent again (same ids).
func (p *outboxPublisher) publish(ctx context.Context, msgs []OutboxMessage) (int, error) {
	waits := make([]func(context.Context) error, 0, len(msgs))
	var startErr error
	for _, m := range msgs {
		w, err := p.e.startPublish(m.Unit, m.Msg)
		if err != nil {
			startErr = err
			break
		}
		waits = append(waits, w)
	}
	for i, w := range waits {
		if err := w(ctx); err != nil {
			return i, err
		}
	}
	return len(waits), startErr
}

// startPublish hands a message for the unit's dispatch topic to the broker
// (QoS 1) and returns a function that waits for the broker to have it
// (PUBACK), up to pubackWait, within ctx.
func (e *Engine) startPublish(unit string, m DispatchMessage) (func(ctx context.Context) error, error) {
	data, err := json.Marshal(&m)
	if err != nil {
		return nil, err
	}
	topic := e.in.topics.unitDispatch(unit)
	in := e.in
	switch {
	case in.broker != nil:
		err := in.broker.server.Publish(topic, data, false, 1)
		return func(context.Context) error { return err }, nil
	case in.client != nil:
		// While the client reconnects, paho keeps the message and sends it
		// on reconnection; the outbox sends it again too (same ID).
		tok := in.client.c.Publish(topic, 1, false, data)
		return func(ctx context.Context) error {
			wait := time.NewTimer(pubackWait)
			defer wait.Stop()
			select {
			case <-tok.Done():
				return tok.Error()
			case <-wait.C:
				return fmt.Errorf("publish to %s: no PUBACK within %s", unit, pubackWait)
			case <-ctx.Done():
				return fmt.Errorf("publish to %s: no PUBACK: %w", unit, ctx.Err())
			}
		}, nil
	}
	return nil, errors.New("no broker")
}
