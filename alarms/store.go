package alarms

import (
	"context"
	"errors"
	"time"
)

// Store is the storage the alarm intake needs. Two implementations pass the
// conformance suite in storetest: Redis (RedisStore) and an embedded bbolt
// file (BoltStore).
//
// Every write is durable when it returns nil: the intake acknowledges a
// device's message only after that. A write that returns an error stored
// nothing that a retry would duplicate.
type Store interface {
	// AppendEvent stores e unless an event with the same Key is already
	// stored, and reports whether it was new. The store sets e.Offset.
	// Events with SyntheticID deduplicate only for window (after that the
	// same content is a new event); others deduplicate for ever (or at least
	// for the store's retention).
	AppendEvent(ctx context.Context, e *Event, window time.Duration) (stored bool, err error)

	// Events lists stored events, newest first, matching q.
	Events(ctx context.Context, q EventQuery) (EventPage, error)

	// AddRejected keeps a message that did not decode and sets r.Offset.
	// To stay within lim it drops the oldest rejected messages, first of
	// r.Device past lim.PerDevice, then of any device past lim.Total, and
	// reports how many it dropped. A zero limit does not bound.
	AddRejected(ctx context.Context, r *Rejected, lim RejectedLimits) (dropped int, err error)
	// Rejected lists rejected messages, newest first.
	Rejected(ctx context.Context, q RejectedQuery) ([]Rejected, error)

	// PutDevice saves a device's state, replacing what was there.
	PutDevice(ctx context.Context, d DeviceState) error
	// Device returns a device's saved state, or ErrNotFound.
	Device(ctx context.Context, id string) (DeviceState, error)
	// Devices returns every saved device state, by ID.
	Devices(ctx context.Context) ([]DeviceState, error)

	// Ping tells whether the store is reachable now.
	Ping(ctx context.Context) error
	// Close releases the store; it is idempotent.
	Close() error
}

// StoreDurability says in plain words what a store keeps of acknowledged
// writes when its process or machine crashes. Stores that can tell have a
// method Durability() StoreDurability; the intake logs Warning at start and
// shows both in its status.
type StoreDurability struct {
	Summary string // e.g. "appendonly yes, appendfsync always: ..."
	Warning string // non-empty when acknowledged alarms can be lost
}

// durabilityTeller is a store that can say what a crash loses.
type durabilityTeller interface {
	Durability() StoreDurability
}

// RejectedLimits bound the rejected messages a store keeps.
type RejectedLimits struct {
	PerDevice int // messages of one device
	Total     int // messages of all devices
}

// ErrNotFound is returned for a device or record that is not stored.
var ErrNotFound = errors.New("not found")

// EventQuery filters and pages Events. Zero fields do not filter.
type EventQuery struct {
	Device string
	// Area filters to an area and everything under it: the intake
	// resolves it into Areas (an area its tree does not know matches
	// itself only).
	Area string
	// Areas, set by the intake for the store, matches any of these exact
	// areas; it takes the place of Area when set.
	Areas []string
	Class Class
	// Since and Until bound ReceivedAt: Since <= ReceivedAt < Until.
	Since, Until time.Time
	// Limit is the page size; 0 means 100, the maximum is 1000.
	Limit int
	// Cursor continues a previous page (EventPage.Next).
	Cursor string
}

// AreaFilter returns the exact areas q matches (Areas, or Area alone), or
// nil when q does not filter by area. Stores use it.
func (q EventQuery) AreaFilter() []string {
	switch {
	case len(q.Areas) > 0:
		return q.Areas
	case q.Area != "":
		return []string{q.Area}
	}
	return nil
}

// EventPage is one page of events, newest first. Next is empty on the last
// page.
type EventPage struct {
	Events []Event `json:"events"`
	Next   string  `json:"next,omitempty"`
}

// RejectedQuery pages Rejected.
type RejectedQuery struct {
	Device string
	Limit  int    // 0 means 100, the maximum is 1000
	Before string // an Offset: list older records only
}

// DeviceState is what Skywatch knows about a device between events.
type DeviceState struct {
	ID            string    `json:"id"`
	Online        bool      `json:"online"`                  // from the retained state topic / last will
	LastSeen      time.Time `json:"last_seen,omitzero"`      // last message of any kind
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"` // last heartbeat
	LastEvent     time.Time `json:"last_event,omitzero"`     // last stored event
	BatteryLow    bool      `json:"battery_low"`             // from the last event that said
	RSSI          *int      `json:"rssi,omitempty"`          // from the last message that said
	Supervision   bool      `json:"supervision_lost"`        // a supervision trouble is open
	SupervisedAt  time.Time `json:"supervision_since,omitzero"`
	// Rev counts the state's saves in cluster mode, where nodes save it
	// only if nobody did since they read it (DeviceStateSetter); 0 outside.
	Rev int64 `json:"rev,omitempty"`
}
