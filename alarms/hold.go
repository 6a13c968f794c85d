package alarms

import (
	"context"
	"errors"
	"sync"
	"time"
)

// maxThrottle bounds how long one message waits for its device's turn.
// One connection's messages are handled one after another, so a device
// waits 1/DeviceRate at most; only several connections under one device's
// name could queue longer, and they are disconnected instead.
const maxThrottle = 10 * time.Second

// willGrace is how long after a message of a device was held for the
// store its last will is not taken as the device going offline: a device
// whose keep-alive ran out while the intake held its message closed the
// connection because of Skywatch, not because it is gone. The supervision
// window still catches a device that stays silent.
const willGrace = 5 * time.Second

// errThrottled refuses a message whose device is too far over its rate.
var errThrottled = errors.New("device over its publish rate")

// bucket is a device's token bucket for its publish rate.
type bucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// reserve takes a token at now and tells how long to wait until it is
// due (0: at once). The bucket starts full.
func (b *bucket) reserve(now time.Time, rate float64, burst int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		b.tokens, b.last = float64(burst), now
	}
	if now.After(b.last) {
		b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
		b.last = now
	}
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / rate * float64(time.Second))
}

// unreserve gives back a token that was not used.
func (b *bucket) unreserve() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens++
}

// takeHeld handles a message from the embedded broker before it is
// acknowledged. A device over its rate waits for its turn; while the store
// fails, the message is tried again with backoff (capped at storeRetryMax,
// so that storing resumes soon after the store is back) for up to
// Limits.StoreHold, or until gone reports that the client went away. The
// wait holds only this connection: mochi reads its next packet after this
// returns. An error means nothing was acknowledged; the caller disconnects
// the client so that it sends the message again.
func (in *Intake) takeHeld(ctx context.Context, d *device, gone func() bool, m message) error {
	if d != nil {
		if err := in.throttle(ctx, d); err != nil {
			return err
		}
	}
	var start time.Time
	backoff := storeRetryMin
	for {
		err := in.take(ctx, m)
		if err == nil || ctx.Err() != nil {
			if !start.IsZero() {
				in.held(d, time.Since(start))
			}
			return err
		}
		if start.IsZero() {
			start = time.Now()
			if d != nil {
				d.holding.Add(1)
				defer d.holding.Add(-1)
			}
		}
		left := in.cfg.Limits.StoreHold - time.Since(start)
		if left <= 0 || gone() {
			in.held(d, time.Since(start))
			return err
		}
		t := time.NewTimer(min(backoff, left))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			in.held(d, time.Since(start))
			return ctx.Err()
		}
		backoff = min(2*backoff, storeRetryMax)
	}
}

// throttle waits for the device's turn under its publish rate.
func (in *Intake) throttle(ctx context.Context, d *device) error {
	lim := &in.cfg.Limits
	wait := d.rate.reserve(time.Now(), lim.DeviceRate, lim.DeviceBurst)
	if wait == 0 {
		return nil
	}
	if wait > maxThrottle {
		d.rate.unreserve()
		return errThrottled
	}
	d.costs.throttled.Add(1)
	d.costs.throttledNS.Add(int64(wait))
	in.metrics.throttled.Inc()
	in.metrics.throttledTime.Add(wait.Seconds())
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// held counts a message held while the store failed.
func (in *Intake) held(d *device, dt time.Duration) {
	in.metrics.storeHeld.Inc()
	in.metrics.storeHeldTime.Add(dt.Seconds())
	if d != nil {
		d.costs.storeHeld.Add(1)
		d.costs.storeHeldNS.Add(int64(dt))
		d.heldAt.Store(time.Now().UnixNano())
	}
}

// heldLately reports whether a message of d is being held for the store,
// or was within willGrace.
func (d *device) heldLately(now time.Time) bool {
	return d.holding.Load() > 0 || now.UnixNano()-d.heldAt.Load() < int64(willGrace)
}

// kicked counts a device disconnected by the intake.
func (in *Intake) kicked(d *device, cause string) {
	in.metrics.disconnects.WithLabelValues(cause).Inc()
	if d != nil {
		d.costs.disconnects.Add(1)
	}
}

// deviceOf returns the configured device that authenticated as user, or
// nil (a unit, or no one).
func (in *Intake) deviceOf(user string) *device {
	idn := in.creds.user(user)
	if idn == nil || idn.kind != identityDevice {
		return nil
	}
	return in.live().devices[idn.id]
}
