package hardware

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/skywatch/skywatch/alarms"
)

// Zigbee2MQTT decodes Zigbee2MQTT-style state reports: one JSON object of
// attributes, of which Skywatch reads
//
//   - contact: false (opened) is an alarm, true (closed) its restore;
//   - occupancy: true is an alarm, false its restore;
//   - tamper: true is a tamper, false its restore;
//   - smoke: true is a fire, false its restore;
//   - water_leak: true is a trouble, false its restore;
//   - battery_low: true is a trouble with BatteryLow set; false raises no
//     event (full-state reports repeat it every time), but every event of
//     a report carries the report's battery_low;
//   - sos: true is a panic; false is the button at rest: no event;
//   - action: "emergency", "sos" or "panic" is a panic, "arm_all_zones",
//     "arm_day_zones" or "arm_night_zones" an arm, "disarm" a disarm
//     (keypads); other actions (button clicks) raise no event.
//
// Each event's Zone names the attribute that raised it (a Zigbee sensor
// has no zone number) and Code stays empty: the device sends none. battery
// (percent) and linkquality (an LQI, not dBm) are not events; a report
// with nothing else, such as a periodic one, decodes to no events and no
// error. One report can raise several events, in the order listed above.
// A payload that is not a JSON object, or a listed attribute of the wrong
// type, is an error. Zigbee2MQTT reports carry no event id.
type Zigbee2MQTT struct{}

var _ alarms.Decoder = Zigbee2MQTT{}

// zigbeeCondition is a boolean attribute that raises an event when it
// starts and a restore when it ends.
type zigbeeCondition struct {
	attr            string
	class           alarms.Class
	activeWhen      bool // the attribute's value while the condition holds
	onText, offText string
}

// Decode implements alarms.Decoder.
func (Zigbee2MQTT) Decode(payload []byte) ([]alarms.Event, error) {
	evs, err := decodeZigbee(payload)
	if err != nil {
		return nil, fmt.Errorf("zigbee2mqtt: %w", err)
	}
	return evs, nil
}

func decodeZigbee(payload []byte) ([]alarms.Event, error) {
	if err := checkSize(payload); err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	var attrs map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &attrs); err != nil {
		return nil, err
	}
	if err := zigbeeNumber(attrs, "battery"); err != nil {
		return nil, err
	}
	batteryLow, err := zigbeeBool(attrs, "battery_low")
	if err != nil {
		return nil, err
	}
	low := batteryLow != nil && *batteryLow

	var evs []alarms.Event
	add := func(class alarms.Class, q alarms.Qualifier, zone, text string) {
		evs = append(evs, alarms.Event{Class: class, Qualifier: q, Zone: zone, Text: text, BatteryLow: low})
	}
	for _, c := range []zigbeeCondition{
		{"contact", alarms.ClassAlarm, false, "Contact open", "Contact closed"},
		{"occupancy", alarms.ClassAlarm, true, "Occupancy detected", "Occupancy cleared"},
		{"tamper", alarms.ClassTamper, true, "Tamper", "Tamper cleared"},
		{"smoke", alarms.ClassFire, true, "Smoke detected", "Smoke cleared"},
		{"water_leak", alarms.ClassTrouble, true, "Water leak", "Water leak cleared"},
	} {
		v, err := zigbeeBool(attrs, c.attr)
		if err != nil {
			return nil, err
		}
		switch {
		case v == nil:
		case *v == c.activeWhen:
			add(c.class, alarms.QualifierNew, c.attr, c.onText)
		default:
			add(c.class, alarms.QualifierRestore, c.attr, c.offText)
		}
	}
	if low {
		add(alarms.ClassTrouble, alarms.QualifierNew, "battery_low", "Battery low")
	}
	sos, err := zigbeeBool(attrs, "sos")
	if err != nil {
		return nil, err
	}
	if sos != nil && *sos {
		add(alarms.ClassPanic, alarms.QualifierNew, "sos", "SOS button")
	}
	action, err := zigbeeString(attrs, "action")
	if err != nil {
		return nil, err
	}
	switch action {
	case "emergency", "sos", "panic":
		add(alarms.ClassPanic, alarms.QualifierNew, "action", "Emergency button")
	case "arm_all_zones", "arm_day_zones", "arm_night_zones":
		add(alarms.ClassArm, alarms.QualifierNew, "action", "Armed from keypad ("+action+")")
	case "disarm":
		add(alarms.ClassDisarm, alarms.QualifierNew, "action", "Disarmed from keypad")
	}
	return evs, nil
}

// zigbeeBool reads an optional boolean attribute; null is absent.
func zigbeeBool(attrs map[string]json.RawMessage, name string) (*bool, error) {
	raw, ok := attrs[name]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var v bool
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("%s: want true or false", name)
	}
	return &v, nil
}

// zigbeeString reads an optional string attribute; null is "".
func zigbeeString(attrs map[string]json.RawMessage, name string) (string, error) {
	raw, ok := attrs[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("%s: want a string", name)
	}
	return v, nil
}

// zigbeeNumber checks that an optional attribute is a number.
func zigbeeNumber(attrs map[string]json.RawMessage, name string) error {
	raw, ok := attrs[name]
	if !ok || string(raw) == "null" {
		return nil
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("%s: want a number", name)
	}
	return nil
}
