package alarms

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// device is a configured device and what the intake knows about it.
type device struct {
	id string
	// sp is the device's configuration: Apply replaces it (a reload), so
	// that the device keeps its state, its lock and its counters.
	sp atomic.Pointer[deviceSpec]

	// mu serialises the handling of the device's messages and its
	// supervision, so that its state is written in order.
	mu    sync.Mutex
	state DeviceState // guarded by mu

	// since (unix ns) starts the supervision window, which ends at due;
	// lost mirrors state.Supervision: the supervisor scans them without
	// taking mu. The window's length is the spec's, so that a reload that
	// changes it takes effect at once.
	since atomic.Int64
	lost  atomic.Bool
	// snap is a copy of state for readers that must not wait for mu, which
	// is held during store writes.
	snap atomic.Pointer[DeviceState]

	// rate is the device's publish rate at the embedded broker.
	rate bucket
	// costs counts what the device cost, for DeviceView.
	costs deviceCosts
	// holding counts the device's messages being held for the store, and
	// heldAt (unix ns) is when the last hold ended: see heldLately.
	holding atomic.Int32
	heldAt  atomic.Int64
}

// deviceSpec is a device's configuration, never modified once built.
type deviceSpec struct {
	cfg     DeviceConfig
	window  time.Duration // supervision window of its model
	decoder Decoder
	source  string // the decoder's name, for Event.Source
}

func newDevice(sp *deviceSpec) *device {
	d := &device{id: sp.cfg.ID}
	d.sp.Store(sp)
	d.commit(DeviceState{ID: sp.cfg.ID})
	return d
}

// spec returns the device's current configuration.
func (d *device) spec() *deviceSpec { return d.sp.Load() }

// due is when the device's supervision window ends (unix ns).
func (d *device) due() int64 { return d.since.Load() + int64(d.spec().window) }

// deviceCosts counts, since the start, what the intake did to bound a
// device.
type deviceCosts struct {
	throttled, throttledNS  atomic.Int64
	storeHeld, storeHeldNS  atomic.Int64
	disconnects, rejDropped atomic.Int64
}

// DeviceCosts tells what the intake did, since it started, to bound a
// device: its messages held for its publish rate or while the store
// failed, the times it was disconnected by Skywatch, and its older
// rejected messages dropped to keep the rejected list bounded.
type DeviceCosts struct {
	// Throttled counts messages held back (unacknowledged) because the
	// device was over alarms.device_rate; ThrottledSeconds is their wait.
	Throttled        int64   `json:"throttled"`
	ThrottledSeconds float64 `json:"throttled_seconds"`
	// StoreHeld counts messages held unacknowledged while the store failed;
	// StoreHeldSeconds is how long.
	StoreHeld        int64   `json:"store_held"`
	StoreHeldSeconds float64 `json:"store_held_seconds"`
	// Disconnects counts the device's connections that Skywatch closed
	// (the store failed past alarms.store_hold, or far over its rate).
	Disconnects int64 `json:"disconnects"`
	// RejectedDropped counts older rejected messages dropped to keep this
	// device's (or all devices') rejected list within its bound.
	RejectedDropped int64 `json:"rejected_dropped"`
}

func (c *deviceCosts) view() DeviceCosts {
	return DeviceCosts{
		Throttled:        c.throttled.Load(),
		ThrottledSeconds: time.Duration(c.throttledNS.Load()).Seconds(),
		StoreHeld:        c.storeHeld.Load(),
		StoreHeldSeconds: time.Duration(c.storeHeldNS.Load()).Seconds(),
		Disconnects:      c.disconnects.Load(),
		RejectedDropped:  c.rejDropped.Load(),
	}
}

// commit makes next the device's state, after it was saved. mu is held.
func (d *device) commit(next DeviceState) {
	d.state = next
	d.lost.Store(next.Supervision)
	d.snap.Store(&next)
}

// extend starts a new supervision window at t.
func (d *device) extend(t time.Time) {
	d.since.Store(t.UnixNano())
}

// Supervision causes, as metric labels.
const (
	causeSilent  = "silent"
	causeOffline = "offline"
)

// supervisionCode is the Contact ID code of a supervision loss.
const supervisionCode = "381"

// supervisionEvent builds a supervision trouble (QualifierNew) or restore.
// The IDs derive from the saved state, so that raising the same event again
// after a crash or a failed write is a duplicate, not a second event: a
// trouble is named after the last time the device was heard, a restore
// after the time its trouble was raised.
func (d *device) supervisionEvent(st DeviceState, q Qualifier, text string, now time.Time) Event {
	id := "sup-never"
	if !st.LastSeen.IsZero() {
		id = "sup-" + strconv.FormatInt(st.LastSeen.UnixMilli(), 10)
	}
	if q == QualifierRestore {
		id = "sup-" + strconv.FormatInt(st.SupervisedAt.UnixMilli(), 10) + "-restore"
	}
	return Event{
		ID:         id,
		Class:      ClassSupervision,
		Qualifier:  q,
		Code:       supervisionCode,
		Text:       text,
		Device:     d.id,
		Area:       d.spec().cfg.Area,
		ReceivedAt: now,
		Source:     "supervisor",
	}
}

// DeviceView is a configured device with its state, for the API.
type DeviceView struct {
	ID    string  `json:"id"`
	Name  string  `json:"name"`
	Model string  `json:"model"`
	Area  string  `json:"area,omitempty"`
	Lat   float64 `json:"lat"`
	Lon   float64 `json:"lon"`
	// State is the device's current state (State.ID is ID).
	State DeviceState `json:"state"`
	// Costs tells what bounding the device cost it since the start.
	Costs DeviceCosts `json:"costs"`
	// LastEvents are the device's latest events, newest first; only Device
	// fills them.
	LastEvents []Event `json:"last_events,omitempty"`
}

func (d *device) view() DeviceView {
	st := *d.snap.Load()
	c := &d.spec().cfg
	return DeviceView{ID: c.ID, Name: c.Name, Model: c.Model, Area: c.Area,
		Lat: c.Lat, Lon: c.Lon, State: st, Costs: d.costs.view()}
}
