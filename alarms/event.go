package alarms

import (
	"fmt"
	"time"
)

// Class is what an event is about.
type Class string

// Event classes.
const (
	ClassAlarm       Class = "alarm"
	ClassPanic       Class = "panic"
	ClassFire        Class = "fire"
	ClassTamper      Class = "tamper"
	ClassTrouble     Class = "trouble"
	ClassSupervision Class = "supervision"
	ClassArm         Class = "arm"
	ClassDisarm      Class = "disarm"
	ClassTest        Class = "test"
)

// Classes lists every class, in a stable order.
func Classes() []Class {
	return []Class{ClassAlarm, ClassPanic, ClassFire, ClassTamper, ClassTrouble, ClassSupervision, ClassArm, ClassDisarm, ClassTest}
}

// Valid reports whether c is a known class.
func (c Class) Valid() bool {
	for _, k := range Classes() {
		if c == k {
			return true
		}
	}
	return false
}

// Qualifier tells a new condition from its end.
type Qualifier string

// Qualifiers.
const (
	QualifierNew     Qualifier = "new"
	QualifierRestore Qualifier = "restore"
)

// Event is one alarm event as Skywatch keeps it. The device's fields come
// from its payload; the server's are set by the intake.
type Event struct {
	// Device's fields (the event schema of the design).
	ID         string    `json:"id"`                  // unique per device: the dedup key
	Seq        uint64    `json:"seq,omitempty"`       // the device's own counter, if it has one
	DeviceTime time.Time `json:"ts,omitzero"`         // the device's clock; may be wrong by hours
	Class      Class     `json:"class"`               // alarm, panic, fire, ...
	Qualifier  Qualifier `json:"qualifier"`           // new or restore
	Code       string    `json:"code,omitempty"`      // Contact ID or SIA code
	Zone       string    `json:"zone,omitempty"`      // zone or sensor
	Partition  string    `json:"partition,omitempty"` // partition or area of the panel
	BatteryLow bool      `json:"battery_low,omitempty"`
	RSSI       *int      `json:"rssi,omitempty"` // dBm, when the device reports it
	Text       string    `json:"text,omitempty"` // a human description from the decoder

	// Server's fields.
	Device     string    `json:"device"`           // device ID from the topic
	Area       string    `json:"area,omitempty"`   // the device's area from the config
	ReceivedAt time.Time `json:"received_at"`      // when the intake took it
	Source     string    `json:"source,omitempty"` // decoder that produced it: skywatch, contactid, zigbee2mqtt, supervisor
	// SyntheticID is true when the device sent no id and ID was derived
	// from the payload's content; such IDs deduplicate only within the
	// intake's content window.
	SyntheticID bool `json:"synthetic_id,omitempty"`

	// Offset is the event's position in the store's log, set by the store.
	Offset string `json:"offset,omitempty"`
}

// Key is the event's dedup key: device and event id.
func (e *Event) Key() string { return e.Device + "/" + e.ID }

// Validate checks the fields a decoder must fill.
func (e *Event) Validate() error {
	switch {
	case e.ID == "":
		return fmt.Errorf("event: no id")
	case len(e.ID) > 128:
		return fmt.Errorf("event: id longer than 128 bytes")
	case !e.Class.Valid():
		return fmt.Errorf("event: unknown class %q", e.Class)
	case e.Qualifier != QualifierNew && e.Qualifier != QualifierRestore:
		return fmt.Errorf("event: qualifier %q is not new or restore", e.Qualifier)
	}
	return nil
}

// Rejected is a device message that could not be decoded, kept with the
// reason so that nothing is dropped silently.
type Rejected struct {
	Device     string    `json:"device"`
	Topic      string    `json:"topic"`
	Payload    []byte    `json:"payload"` // at most MaxRejectedPayload bytes
	Truncated  bool      `json:"truncated,omitempty"`
	Reason     string    `json:"reason"`
	ReceivedAt time.Time `json:"received_at"`
	Offset     string    `json:"offset,omitempty"` // set by the store
}

// MaxRejectedPayload bounds the bytes kept of a rejected payload.
const MaxRejectedPayload = 4096
