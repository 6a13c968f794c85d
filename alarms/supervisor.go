package alarms

import (
	"context"
	"errors"
	"time"
)

// supervise raises a supervision trouble for each device silent past its
// window, scanning the devices' deadlines on one ticker (10,000 devices
// cost a few microseconds per tick). A trouble that cannot be stored is
// tried again on the next tick; its ID keeps a retry from doubling it.
// While the store fails, supervise pings it so that Status shows when it is
// back.
func (in *Intake) supervise(ctx context.Context) {
	tick := in.live().tick
	t := time.NewTicker(tick)
	defer t.Stop()
	var lastPing time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r := in.live()
			if r.tick != tick {
				// A reload changed the shortest supervision window.
				tick = r.tick
				t.Reset(tick)
			}
			for _, d := range r.order {
				if ctx.Err() != nil {
					return
				}
				if !d.lost.Load() && now.UnixNano() >= d.due() {
					in.superviseDevice(ctx, d)
				}
			}
			if in.health.storeFailing() && now.Sub(lastPing) >= pingInterval {
				lastPing = now
				pctx, cancel := context.WithTimeout(ctx, storeTimeout)
				err := in.store.Ping(pctx)
				cancel()
				if err == nil {
					in.health.storeResult(nil)
				}
			}
		}
	}
}

// superviseDevice raises the trouble of a silent device. Close does not
// cancel it halfway: the trouble and the device's state are saved together
// (within storeTimeout), so that a restart does not find a stored trouble
// whose device is not marked.
func (in *Intake) superviseDevice(ctx context.Context, d *device) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if now.UnixNano() < d.due() {
		return // heard meanwhile
	}
	if heard, err := in.heardElsewhere(ctx, d, now); heard || err != nil {
		return // by another node, or the store failed: next tick
	}
	if d.state.Supervision {
		return
	}
	next := d.state
	if err := in.raise(ctx, d, &next, causeSilent, "silent past its supervision window", now); err != nil {
		return // counted; tried again next tick
	}
	// On failure, the next tick raises the same trouble again: a duplicate.
	// In cluster mode another node may have saved the device's state since
	// it was read (it heard the device just now): the trouble is stored, so
	// mark it on that newer state; the device's next message restores it.
	err := in.save(ctx, d, next)
	for range stateRetries {
		if !errors.Is(err, errStateMoved) || in.refresh(ctx, d) != nil || d.state.Supervision {
			return
		}
		next = d.state
		next.Supervision, next.SupervisedAt = true, now
		err = in.save(ctx, d, next)
	}
}
