package alarms

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// message is one device message as the broker hands it over.
type message struct {
	topic   string
	payload []byte
	// replayed is true for a retained message that the broker sent because
	// the intake subscribed, not because the device published it now.
	replayed bool
	received time.Time
}

// take handles one message with bounded concurrency (unit messages apart). A nil error means
// everything the message carries is stored and it may be acknowledged.
func (in *Intake) take(ctx context.Context, m message) error {
	defer in.metrics.pending.begin(m.received)()
	sem := in.sem
	if _, _, ok := in.topics.unitTopic(m.topic); ok {
		sem = in.unitSem // they wait for the engine: not in the alarms' way
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-sem }()
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	return in.handle(ctx, m)
}

// handle routes a message by its topic. Messages that cannot be used are
// kept as rejected; only a store failure returns an error.
func (in *Intake) handle(ctx context.Context, m message) error {
	id, kind, ok := in.topics.deviceTopic(m.topic)
	if !ok {
		if unit, ukind, isUnit := in.topics.unitTopic(m.topic); isUnit && in.engine != nil {
			return in.handleUnit(ctx, unit, ukind, m)
		}
		in.metrics.received.WithLabelValues("other").Inc()
		return nil
	}
	switch kind {
	case kindEvent, kindHeartbeat, kindState:
		in.metrics.received.WithLabelValues(kind).Inc()
	default:
		in.metrics.received.WithLabelValues("other").Inc()
	}
	d := in.live().devices[id]
	if d == nil {
		return in.reject(ctx, id, m, causeUnknownDevice, "unknown device")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if in.cluster == nil {
		return in.handleDevice(ctx, d, kind, m)
	}
	// Another node may handle the device's next message at the same time:
	// handle this one on the stored state, again if that state moved
	// (events are stored once by their IDs, so the second pass stores
	// only what the first did not).
	var err error
	for range stateRetries {
		if err = in.refresh(ctx, d); err != nil {
			return err
		}
		if err = in.handleDevice(ctx, d, kind, m); !errors.Is(err, errStateMoved) {
			return err
		}
		in.metrics.stateMoved.Inc()
	}
	return err
}

// handleDevice handles a message of a configured device. d.mu is held.
func (in *Intake) handleDevice(ctx context.Context, d *device, kind string, m message) error {
	switch kind {
	case kindEvent:
		return in.handleEvent(ctx, d, m)
	case kindHeartbeat:
		return in.handleHeartbeat(ctx, d, m)
	case kindState:
		return in.handleState(ctx, d, m)
	default:
		return in.reject(ctx, d.id, m, causeUnknownTopic, fmt.Sprintf("unknown topic kind %q", kind))
	}
}

// handleEvent decodes and stores a device's events. d.mu is held.
func (in *Intake) handleEvent(ctx context.Context, d *device, m message) error {
	// The spec of this message: a reload applies to the next one.
	sp := d.spec()
	var evs []Event
	err := fmt.Errorf("payload of %d bytes is over mqtt.max_payload.event (%d)", len(m.payload), in.cfg.MQTT.MaxPayload.Event)
	cause := causeTooLarge
	if len(m.payload) <= in.cfg.MQTT.MaxPayload.Event {
		evs, err = decode(sp.decoder, m.payload)
		cause = causeDecode
	}
	if err != nil {
		// An oversized event is kept (truncated) and acknowledged like any
		// that does not decode: refusing it would make the device send it
		// again for ever, and the operator would never see why.
		if rerr := in.reject(ctx, d.id, m, cause, err.Error()); rerr != nil {
			return rerr
		}
		// An undecodable message still shows the device is alive.
		next := d.state
		return in.seen(ctx, d, &next, m.received)
	}
	next := d.state
	for i := range evs {
		e := &evs[i]
		e.Device = d.id
		e.Area = sp.cfg.Area
		e.ReceivedAt = m.received
		e.Source = sp.source
		e.Offset = ""
		if e.ID == "" {
			e.ID = contentID(m.payload, i)
			e.SyntheticID = true
		}
		if err := e.Validate(); err != nil {
			if rerr := in.reject(ctx, d.id, m, causeInvalid, err.Error()); rerr != nil {
				return rerr
			}
			continue
		}
		if _, err := in.append(ctx, e, m.received); err != nil {
			return err
		}
		next.LastEvent = m.received
		switch {
		case e.BatteryLow:
			next.BatteryLow = true
		case e.Qualifier == QualifierRestore && (e.Code == "302" || e.Code == "384"):
			next.BatteryLow = false
		}
		if e.RSSI != nil {
			next.RSSI = e.RSSI
		}
	}
	return in.seen(ctx, d, &next, m.received)
}

// heartbeat is the optional JSON body of a heartbeat.
type heartbeat struct {
	BatteryLow *bool    `json:"battery_low"`
	Battery    *float64 `json:"battery"` // percent; 20 or less is low
	RSSI       *int     `json:"rssi"`
}

// lowBattery is the battery percentage at or below which a heartbeat's
// battery counts as low.
const lowBattery = 20

// handleHeartbeat notes a heartbeat; its body may be empty. d.mu is held.
func (in *Intake) handleHeartbeat(ctx context.Context, d *device, m message) error {
	next := d.state
	next.LastHeartbeat = m.received
	if body := bytes.TrimSpace(m.payload); len(body) > 0 {
		var hb heartbeat
		if err := json.Unmarshal(body, &hb); err != nil {
			// The device is alive all the same; keep the body for a look.
			if rerr := in.reject(ctx, d.id, m, causeHeartbeat, "heartbeat: "+err.Error()); rerr != nil {
				return rerr
			}
		} else {
			if hb.BatteryLow != nil {
				next.BatteryLow = *hb.BatteryLow
			} else if hb.Battery != nil {
				next.BatteryLow = *hb.Battery <= lowBattery
			}
			if hb.RSSI != nil {
				next.RSSI = hb.RSSI
			}
		}
	}
	return in.seen(ctx, d, &next, m.received)
}

// handleState takes the retained online/offline state. d.mu is held.
func (in *Intake) handleState(ctx context.Context, d *device, m message) error {
	switch string(bytes.TrimSpace(m.payload)) {
	case stateOnline:
		next := d.state
		next.Online = true
		if m.replayed {
			// A retained "online" from before says nothing about now: it
			// must not restore a device that is silent.
			return in.save(ctx, d, next)
		}
		return in.seen(ctx, d, &next, m.received)
	case stateOffline:
		return in.offline(ctx, d, m.received)
	default:
		return in.reject(ctx, d.id, m, causeInvalid, `state: must be "online" or "offline"`)
	}
}

// seen records that the device was heard at t: a new supervision window,
// and a restore if a supervision trouble was open. d.mu is held.
func (in *Intake) seen(ctx context.Context, d *device, next *DeviceState, t time.Time) error {
	d.extend(t)
	next.LastSeen = t
	next.Online = true
	if next.Supervision {
		e := d.supervisionEvent(*next, QualifierRestore, "heard again", t)
		stored, err := in.append(ctx, &e, t)
		if err != nil {
			return err
		}
		if stored {
			in.metrics.restores.Inc()
		}
		next.Supervision = false
		next.SupervisedAt = time.Time{}
	}
	return in.save(ctx, d, *next)
}

// offline raises a supervision trouble at once, for a device's last will
// (or its own "offline"). d.mu is held.
func (in *Intake) offline(ctx context.Context, d *device, t time.Time) error {
	next := d.state
	next.Online = false
	if !next.Supervision {
		if err := in.raise(ctx, d, &next, causeOffline, "went offline (last will)", t); err != nil {
			return err
		}
	}
	return in.save(ctx, d, next)
}

// raise stores a supervision trouble and marks next. d.mu is held.
func (in *Intake) raise(ctx context.Context, d *device, next *DeviceState, cause, text string, t time.Time) error {
	e := d.supervisionEvent(*next, QualifierNew, text, t)
	stored, err := in.append(ctx, &e, t)
	if err != nil {
		return err
	}
	if stored {
		in.metrics.troubles.WithLabelValues(cause).Inc()
	}
	next.Supervision = true
	next.SupervisedAt = t
	return nil
}

// save writes the device's state and then makes it current. d.mu is held.
func (in *Intake) save(ctx context.Context, d *device, next DeviceState) error {
	next.ID = d.id
	if in.cluster != nil {
		ok, err := in.cluster.cas.PutDeviceIf(ctx, next, d.state.Rev)
		in.storeDone(err)
		if err != nil {
			return fmt.Errorf("device %s: save state: %w", d.id, err)
		}
		if !ok {
			return fmt.Errorf("device %s: %w", d.id, errStateMoved)
		}
		next.Rev = d.state.Rev + 1
		d.commit(next)
		return nil
	}
	err := in.store.PutDevice(ctx, next)
	in.storeDone(err)
	if err != nil {
		return fmt.Errorf("device %s: save state: %w", d.id, err)
	}
	d.commit(next)
	return nil
}

// append stores e, counts it, and offers it to live subscribers when new.
func (in *Intake) append(ctx context.Context, e *Event, received time.Time) (bool, error) {
	stored, err := in.store.AppendEvent(ctx, e, in.cfg.DedupWindow)
	in.storeDone(err)
	if err != nil {
		in.uncertain.failed(e.Key())
		return false, fmt.Errorf("device %s: store event %s: %w", e.Device, e.ID, err)
	}
	if !stored && !in.uncertain.uncertain(e.Key()) {
		in.metrics.duplicates.Inc()
		return false, nil
	}
	in.uncertain.announced(e.Key())
	in.metrics.stored.Inc()
	in.metrics.storeTime.Observe(time.Since(received).Seconds())
	if in.cluster == nil {
		// In cluster mode the log's tail announces every node's events.
		in.hub.publish(*e)
		if in.engine != nil {
			in.engine.notify()
		}
	}
	return true, nil
}

// reject keeps a message that cannot be used, with the reason.
func (in *Intake) reject(ctx context.Context, device string, m message, cause, reason string) error {
	r := Rejected{Device: device, Topic: m.topic, Reason: reason, ReceivedAt: m.received}
	p := m.payload
	if len(p) > MaxRejectedPayload {
		p = p[:MaxRejectedPayload]
		r.Truncated = true
	}
	r.Payload = bytes.Clone(p)
	dropped, err := in.store.AddRejected(ctx, &r, in.cfg.Limits.rejectedLimits())
	in.storeDone(err)
	if err != nil {
		return fmt.Errorf("device %s: store rejected message: %w", device, err)
	}
	in.metrics.rejected.WithLabelValues(cause).Inc()
	if dropped > 0 {
		in.metrics.rejectedDropped.Add(float64(dropped))
		if d := in.live().devices[device]; d != nil {
			d.costs.rejDropped.Add(int64(dropped))
		}
	}
	return nil
}

// storeDone notes the outcome of a store operation for Status and metrics.
func (in *Intake) storeDone(err error) {
	in.health.storeResult(err)
	if err != nil {
		in.metrics.storeErrors.Inc()
	}
}

// decode runs a decoder, turning a panic (which a decoder must not do)
// into an error so that one payload cannot stop the intake.
func decode(dec Decoder, payload []byte) (evs []Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			evs, err = nil, fmt.Errorf("decoder panicked: %v", r)
		}
	}()
	return dec.Decode(payload)
}

// contentID derives the ID of the i-th event of a payload that carried no
// id: "c-" and the hex of the first 16 bytes of the SHA-256 of the payload
// and i. A device resending the same bytes gets the same ID.
func contentID(payload []byte, i int) string {
	h := sha256.New()
	h.Write(payload)
	if i > 0 {
		h.Write([]byte{0})
		h.Write([]byte(strconv.Itoa(i)))
	}
	sum := h.Sum(nil)
	return "c-" + hex.EncodeToString(sum[:16])
}
