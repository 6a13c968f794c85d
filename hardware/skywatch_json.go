package hardware

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"

	"github.com/skywatch/skywatch/alarms"
)

// SkywatchJSON decodes Skywatch's own event JSON (the event schema of the
// design): one object with "class" (required), "id", "seq", "ts" (RFC 3339
// text, or a number of Unix seconds, or of milliseconds when it is 1e11 or
// more), "qualifier" ("new" when absent), "code", "zone", "partition"
// (strings or integers), "battery_low" and "rssi" (dBm). Unknown fields are
// ignored so that devices can send more than Skywatch reads; a known field
// of the wrong type or out of range is an error.
type SkywatchJSON struct{}

var _ alarms.Decoder = SkywatchJSON{}

// Limits of the text fields, so that a device cannot make Skywatch keep
// kilobytes per event.
const (
	maxIDLen    = 128
	maxFieldLen = 64
)

// skywatchPayload mirrors the wire object; pointers tell absent from zero.
type skywatchPayload struct {
	ID         flexString      `json:"id"`
	Seq        *uint64         `json:"seq"`
	TS         json.RawMessage `json:"ts"`
	Class      *string         `json:"class"`
	Qualifier  *string         `json:"qualifier"`
	Code       flexString      `json:"code"`
	Zone       flexString      `json:"zone"`
	Partition  flexString      `json:"partition"`
	BatteryLow *bool           `json:"battery_low"`
	RSSI       *int            `json:"rssi"`
}

// Decode implements alarms.Decoder; it returns exactly one event.
func (SkywatchJSON) Decode(payload []byte) ([]alarms.Event, error) {
	ev, err := decodeSkywatch(payload)
	if err != nil {
		return nil, fmt.Errorf("skywatch json: %w", err)
	}
	return []alarms.Event{ev}, nil
}

func decodeSkywatch(payload []byte) (alarms.Event, error) {
	if err := checkSize(payload); err != nil {
		return alarms.Event{}, err
	}
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return alarms.Event{}, fmt.Errorf("not a JSON object")
	}
	var p skywatchPayload
	if err := json.Unmarshal(trimmed, &p); err != nil {
		return alarms.Event{}, err
	}

	var ev alarms.Event
	if p.Class == nil {
		return ev, fmt.Errorf("class: missing")
	}
	ev.Class = alarms.Class(*p.Class)
	if !ev.Class.Valid() {
		return ev, fmt.Errorf("class %q: unknown", truncate(*p.Class))
	}
	ev.Qualifier = alarms.QualifierNew
	if p.Qualifier != nil {
		ev.Qualifier = alarms.Qualifier(*p.Qualifier)
		if ev.Qualifier != alarms.QualifierNew && ev.Qualifier != alarms.QualifierRestore {
			return ev, fmt.Errorf("qualifier %q: not new or restore", truncate(*p.Qualifier))
		}
	}

	var err error
	if ev.ID, err = p.ID.text("id", maxIDLen); err != nil {
		return ev, err
	}
	if ev.Code, err = p.Code.text("code", maxFieldLen); err != nil {
		return ev, err
	}
	if ev.Zone, err = p.Zone.text("zone", maxFieldLen); err != nil {
		return ev, err
	}
	if ev.Partition, err = p.Partition.text("partition", maxFieldLen); err != nil {
		return ev, err
	}
	if p.Seq != nil {
		ev.Seq = *p.Seq
	}
	if ev.DeviceTime, err = parseDeviceTime(p.TS); err != nil {
		return ev, fmt.Errorf("ts: %w", err)
	}
	if p.BatteryLow != nil {
		ev.BatteryLow = *p.BatteryLow
	}
	if p.RSSI != nil {
		if *p.RSSI < -150 || *p.RSSI > 0 {
			return ev, fmt.Errorf("rssi %d: not a dBm value in [-150, 0]", *p.RSSI)
		}
		rssi := *p.RSSI
		ev.RSSI = &rssi
	}
	return ev, nil
}

// maxDeviceUnix bounds a device time (9999-12-31T23:59:59Z): JSON (RFC
// 3339) cannot carry a later year. The lower bound is the Unix epoch.
const maxDeviceUnix = 253402300799

// parseDeviceTime reads "ts": absent or null is the zero time, text is RFC
// 3339, a number is Unix seconds, or milliseconds from 1e11 up (1e11
// seconds would be the year 5138, 1e11 milliseconds is 1973).
func parseDeviceTime(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	var t time.Time
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, err
		}
		var err error
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return time.Time{}, fmt.Errorf("%q is not RFC 3339", truncate(s))
		}
	} else {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return time.Time{}, fmt.Errorf("neither RFC 3339 text nor a number")
		}
		f, err := n.Float64()
		if err != nil || math.IsNaN(f) || f < 0 || f > maxDeviceUnix*1000 {
			return time.Time{}, fmt.Errorf("%s is out of range", truncate(n.String()))
		}
		if f >= 1e11 {
			t = time.UnixMilli(int64(f))
		} else {
			sec, frac := math.Modf(f)
			t = time.Unix(int64(sec), int64(frac*1e9))
		}
	}
	t = t.UTC()
	if t.Unix() < 0 || t.Unix() > maxDeviceUnix {
		return time.Time{}, fmt.Errorf("%s is out of range", t.Format(time.RFC3339))
	}
	return t, nil
}

// flexString is a JSON string or integer: devices send zones and codes
// both ways.
type flexString struct {
	s   string
	set bool
	err error
}

// UnmarshalJSON keeps a bad value's error for text, which names the field.
func (f *flexString) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = flexString{}
		return nil
	}
	f.set = true
	if len(b) > 0 && b[0] == '"' {
		f.err = json.Unmarshal(b, &f.s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		f.err = fmt.Errorf("not a string or a number")
		return nil
	}
	if _, err := n.Int64(); err != nil {
		f.err = fmt.Errorf("%s is not an integer", truncate(n.String()))
		return nil
	}
	f.s = n.String()
	return nil
}

// text returns the value, checked: no longer than max bytes, and no
// control characters (it ends up in keys, logs and the console).
func (f flexString) text(field string, max int) (string, error) {
	switch {
	case f.err != nil:
		return "", fmt.Errorf("%s: %w", field, f.err)
	case len(f.s) > max:
		return "", fmt.Errorf("%s: longer than %d bytes", field, max)
	case strings.IndexFunc(f.s, unicode.IsControl) >= 0:
		return "", fmt.Errorf("%s: contains control characters", field)
	}
	return f.s, nil
}

// truncate shortens device text quoted in an error message.
func truncate(s string) string {
	const n = 32
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
