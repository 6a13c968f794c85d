package hardware

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// decoderCase is one payload and what a decoder must make of it: the events
// (nil with wantErr set), or an error containing wantErr.
type decoderCase struct {
	name    string
	payload string
	want    []alarms.Event
	wantErr string
}

func intPtr(v int) *int { return &v }

var skywatchCases = []decoderCase{
	{
		name:    "full",
		payload: `{"id":"ev-1","seq":7,"ts":"2025-03-01T12:00:00+08:00","class":"alarm","qualifier":"restore","code":"131","zone":"3","partition":"1","battery_low":true,"rssi":-71}`,
		want: []alarms.Event{{ID: "ev-1", Seq: 7, DeviceTime: time.Date(2025, 3, 1, 4, 0, 0, 0, time.UTC),
			Class: alarms.ClassAlarm, Qualifier: alarms.QualifierRestore, Code: "131", Zone: "3", Partition: "1",
			BatteryLow: true, RSSI: intPtr(-71)}},
	},
	{
		name:    "minimal, qualifier defaults to new",
		payload: `{"class":"panic"}`,
		want:    []alarms.Event{{Class: alarms.ClassPanic, Qualifier: alarms.QualifierNew}},
	},
	{
		name:    "unix seconds, numeric zone and code, extra fields",
		payload: ` {"id":"a","ts":1700000000,"class":"fire","zone":12,"code":110,"firmware":"2.1","extra":{"x":[1,2]}} `,
		want: []alarms.Event{{ID: "a", DeviceTime: time.Unix(1700000000, 0).UTC(), Class: alarms.ClassFire,
			Qualifier: alarms.QualifierNew, Zone: "12", Code: "110"}},
	},
	{
		name:    "unix milliseconds",
		payload: `{"id":"b","ts":1700000000123,"class":"test"}`,
		want: []alarms.Event{{ID: "b", DeviceTime: time.UnixMilli(1700000000123).UTC(), Class: alarms.ClassTest,
			Qualifier: alarms.QualifierNew}},
	},
	{
		name:    "fractional seconds",
		payload: `{"ts":1700000000.5,"class":"arm"}`,
		want: []alarms.Event{{DeviceTime: time.Unix(1700000000, 5e8).UTC(), Class: alarms.ClassArm,
			Qualifier: alarms.QualifierNew}},
	},
	{
		name:    "nulls are absent",
		payload: `{"id":null,"ts":null,"class":"tamper","qualifier":null,"zone":null,"rssi":null}`,
		want:    []alarms.Event{{Class: alarms.ClassTamper, Qualifier: alarms.QualifierNew}},
	},
	{name: "empty", payload: ``, wantErr: "empty payload"},
	{name: "not json", payload: `hello`, wantErr: "not a JSON object"},
	{name: "array", payload: `[{"class":"alarm"}]`, wantErr: "not a JSON object"},
	{name: "truncated", payload: `{"class":"alarm"`, wantErr: "unexpected end"},
	{name: "trailing garbage", payload: `{"class":"alarm"} x`, wantErr: "invalid character"},
	{name: "no class", payload: `{"id":"x"}`, wantErr: "class: missing"},
	{name: "unknown class", payload: `{"class":"burglary"}`, wantErr: `class "burglary": unknown`},
	{name: "class not a string", payload: `{"class":1}`, wantErr: "cannot unmarshal"},
	{name: "bad qualifier", payload: `{"class":"alarm","qualifier":"old"}`, wantErr: "qualifier"},
	{name: "bad ts text", payload: `{"class":"alarm","ts":"yesterday"}`, wantErr: "ts:"},
	{name: "negative ts", payload: `{"class":"alarm","ts":-5}`, wantErr: "ts:"},
	{name: "ts past 9999", payload: `{"class":"alarm","ts":1e300}`, wantErr: "ts:"},
	{name: "ts bool", payload: `{"class":"alarm","ts":true}`, wantErr: "ts:"},
	{name: "negative seq", payload: `{"class":"alarm","seq":-1}`, wantErr: "seq"},
	{name: "rssi out of range", payload: `{"class":"alarm","rssi":40}`, wantErr: "rssi 40"},
	{name: "id too long", payload: `{"class":"alarm","id":"` + strings.Repeat("x", 129) + `"}`, wantErr: "id: longer"},
	{name: "id control character", payload: `{"class":"alarm","id":"a\nb"}`, wantErr: "id: contains control"},
	{name: "zone float", payload: `{"class":"alarm","zone":1.5}`, wantErr: "zone: 1.5 is not an integer"},
	{name: "zone object", payload: `{"class":"alarm","zone":{}}`, wantErr: "zone: not a string"},
	{name: "battery_low string", payload: `{"class":"alarm","battery_low":"yes"}`, wantErr: "cannot unmarshal"},
	{name: "too large", payload: `{"class":"alarm","pad":"` + strings.Repeat("x", MaxPayload) + `"}`, wantErr: "larger than"},
}

var contactIDCases = []decoderCase{
	{
		name:    "burglary perimeter, spaced",
		payload: "1234 18 1131 01 015",
		want: []alarms.Event{{Class: alarms.ClassAlarm, Qualifier: alarms.QualifierNew, Code: "131",
			Partition: "01", Zone: "015", Text: "Burglary - perimeter"}},
	},
	{
		name:    "restore with checksum, compact, lower-case hex account",
		payload: "c2b118313001015b\n",
		want: []alarms.Event{{Class: alarms.ClassAlarm, Qualifier: alarms.QualifierRestore, Code: "130",
			Partition: "01", Zone: "015", Text: "Burglary"}},
	},
	{
		name:    "spaced with checksum field",
		payload: "1234 18 1130 01 015 E",
		want: []alarms.Event{{Class: alarms.ClassAlarm, Qualifier: alarms.QualifierNew, Code: "130",
			Partition: "01", Zone: "015", Text: "Burglary"}},
	},
	{
		name:    "checksum 10 sent as 0",
		payload: "1234181130010190",
		want: []alarms.Event{{Class: alarms.ClassAlarm, Qualifier: alarms.QualifierNew, Code: "130",
			Partition: "01", Zone: "019", Text: "Burglary"}},
	},
	{
		name:    "fire, message type 98",
		payload: "1234 98 1110 02 003",
		want: []alarms.Event{{Class: alarms.ClassFire, Qualifier: alarms.QualifierNew, Code: "110",
			Partition: "02", Zone: "003", Text: "Fire"}},
	},
	{
		name:    "duress",
		payload: "1234 18 1121 01 000",
		want: []alarms.Event{{Class: alarms.ClassPanic, Qualifier: alarms.QualifierNew, Code: "121",
			Partition: "01", Zone: "000", Text: "Duress"}},
	},
	{
		name:    "tamper 383",
		payload: "1234 18 1383 01 007",
		want: []alarms.Event{{Class: alarms.ClassTamper, Qualifier: alarms.QualifierNew, Code: "383",
			Partition: "01", Zone: "007", Text: "Sensor tamper"}},
	},
	{
		name:    "RF low battery",
		payload: "1234 18 1384 01 009",
		want: []alarms.Event{{Class: alarms.ClassTrouble, Qualifier: alarms.QualifierNew, Code: "384",
			Partition: "01", Zone: "009", BatteryLow: true, Text: "RF low battery"}},
	},
	{
		name:    "AC loss restore",
		payload: "1234 18 3301 01 000",
		want: []alarms.Event{{Class: alarms.ClassTrouble, Qualifier: alarms.QualifierRestore, Code: "301",
			Partition: "01", Zone: "000", Text: "AC loss"}},
	},
	{
		name:    "RF supervision loss",
		payload: "1234 18 1381 01 011",
		want: []alarms.Event{{Class: alarms.ClassSupervision, Qualifier: alarms.QualifierNew, Code: "381",
			Partition: "01", Zone: "011", Text: "Loss of supervision - RF"}},
	},
	{
		name:    "opening by user is a disarm",
		payload: "1234 18 1401 01 003",
		want: []alarms.Event{{Class: alarms.ClassDisarm, Qualifier: alarms.QualifierNew, Code: "401",
			Partition: "01", Zone: "003", Text: "Open by user"}},
	},
	{
		name:    "closing by user is an arm",
		payload: "1234 18 3401 01 003",
		want: []alarms.Event{{Class: alarms.ClassArm, Qualifier: alarms.QualifierNew, Code: "401",
			Partition: "01", Zone: "003", Text: "Close by user"}},
	},
	{
		name:    "periodic test",
		payload: "1234 18 1602 00 000",
		want: []alarms.Event{{Class: alarms.ClassTest, Qualifier: alarms.QualifierNew, Code: "602",
			Partition: "00", Zone: "000", Text: "Periodic test"}},
	},
	{
		name:    "status qualifier 6 is new",
		payload: "1234 18 6110 01 004",
		want: []alarms.Event{{Class: alarms.ClassFire, Qualifier: alarms.QualifierNew, Code: "110",
			Partition: "01", Zone: "004", Text: "Fire (still present)"}},
	},
	{
		name:    "unlisted code in a known range",
		payload: "1234 18 1398 01 000",
		want: []alarms.Event{{Class: alarms.ClassTrouble, Qualifier: alarms.QualifierNew, Code: "398",
			Partition: "01", Zone: "000", Text: "Trouble"}},
	},
	{name: "unknown code", payload: "1234 18 1999 01 000", wantErr: "unknown Contact ID event code 999"},
	{name: "access code unknown", payload: "1234 18 1421 01 000", wantErr: "unknown Contact ID event code 421"},
	{name: "bad checksum", payload: "1234181130010155", wantErr: "bad checksum"},
	{name: "bad qualifier", payload: "1234 18 2130 01 015", wantErr: "qualifier 2"},
	{name: "bad message type", payload: "1234 17 1130 01 015", wantErr: "message type 17"},
	{name: "hex in event code", payload: "1234 18 11A0 01 015", wantErr: "only the account"},
	{name: "not hex", payload: "12G4 18 1130 01 015", wantErr: "not a hexadecimal digit"},
	{name: "too short", payload: "1234181130", wantErr: "10 characters"},
	{name: "wrong field length", payload: "1234 18 113 01 0150", wantErr: "field 3"},
	{name: "too many fields", payload: "1234 18 1130 01 015 E X", wantErr: "7 fields"},
	{name: "json", payload: `{"class":"alarm"}`, wantErr: "characters"},
	{name: "empty", payload: "", wantErr: "empty payload"},
	{name: "blank", payload: "   ", wantErr: "0 characters"},
}

var zigbeeCases = []decoderCase{
	{
		name:    "contact opened",
		payload: `{"battery":97,"contact":false,"linkquality":120,"voltage":3000}`,
		want:    []alarms.Event{{Class: alarms.ClassAlarm, Qualifier: alarms.QualifierNew, Zone: "contact", Text: "Contact open"}},
	},
	{
		name:    "contact closed with tamper and low battery",
		payload: `{"contact":true,"tamper":true,"battery_low":true}`,
		want: []alarms.Event{
			{Class: alarms.ClassAlarm, Qualifier: alarms.QualifierRestore, Zone: "contact", Text: "Contact closed", BatteryLow: true},
			{Class: alarms.ClassTamper, Qualifier: alarms.QualifierNew, Zone: "tamper", Text: "Tamper", BatteryLow: true},
			{Class: alarms.ClassTrouble, Qualifier: alarms.QualifierNew, Zone: "battery_low", Text: "Battery low", BatteryLow: true},
		},
	},
	{
		name:    "occupancy",
		payload: `{"occupancy":true,"illuminance":30}`,
		want:    []alarms.Event{{Class: alarms.ClassAlarm, Qualifier: alarms.QualifierNew, Zone: "occupancy", Text: "Occupancy detected"}},
	},
	{
		name:    "occupancy cleared, tamper restored",
		payload: `{"occupancy":false,"tamper":false}`,
		want: []alarms.Event{
			{Class: alarms.ClassAlarm, Qualifier: alarms.QualifierRestore, Zone: "occupancy", Text: "Occupancy cleared"},
			{Class: alarms.ClassTamper, Qualifier: alarms.QualifierRestore, Zone: "tamper", Text: "Tamper cleared"},
		},
	},
	{
		name:    "smoke",
		payload: `{"smoke":true,"battery_low":false}`,
		want:    []alarms.Event{{Class: alarms.ClassFire, Qualifier: alarms.QualifierNew, Zone: "smoke", Text: "Smoke detected"}},
	},
	{
		name:    "water leak",
		payload: `{"water_leak":true}`,
		want:    []alarms.Event{{Class: alarms.ClassTrouble, Qualifier: alarms.QualifierNew, Zone: "water_leak", Text: "Water leak"}},
	},
	{
		name:    "sos",
		payload: `{"sos":true,"battery":50}`,
		want:    []alarms.Event{{Class: alarms.ClassPanic, Qualifier: alarms.QualifierNew, Zone: "sos", Text: "SOS button"}},
	},
	{
		name:    "keypad emergency",
		payload: `{"action":"emergency","action_code":"1234"}`,
		want:    []alarms.Event{{Class: alarms.ClassPanic, Qualifier: alarms.QualifierNew, Zone: "action", Text: "Emergency button"}},
	},
	{
		name:    "keypad arm",
		payload: `{"action":"arm_all_zones"}`,
		want:    []alarms.Event{{Class: alarms.ClassArm, Qualifier: alarms.QualifierNew, Zone: "action", Text: "Armed from keypad (arm_all_zones)"}},
	},
	{
		name:    "keypad disarm",
		payload: `{"action":"disarm"}`,
		want:    []alarms.Event{{Class: alarms.ClassDisarm, Qualifier: alarms.QualifierNew, Zone: "action", Text: "Disarmed from keypad"}},
	},
	{name: "periodic report", payload: `{"battery":88,"linkquality":90}`},
	{name: "sos at rest, battery fine", payload: `{"sos":false,"battery_low":false,"action":null}`},
	{name: "button click", payload: `{"action":"single"}`},
	{name: "empty object", payload: `{}`},
	{name: "not json", payload: `contact=false`, wantErr: "not a JSON object"},
	{name: "array", payload: `[true]`, wantErr: "not a JSON object"},
	{name: "truncated", payload: `{"contact":fal`, wantErr: "invalid character"},
	{name: "contact as string", payload: `{"contact":"open"}`, wantErr: "contact: want true or false"},
	{name: "battery as string", payload: `{"battery":"full"}`, wantErr: "battery: want a number"},
	{name: "action as number", payload: `{"action":3}`, wantErr: "action: want a string"},
	{name: "empty", payload: ``, wantErr: "empty payload"},
}

func TestDecoders(t *testing.T) {
	for name, tc := range map[string]struct {
		dec   alarms.Decoder
		cases []decoderCase
	}{
		FormatSkywatch:    {SkywatchJSON{}, skywatchCases},
		FormatContactID:   {ContactID{}, contactIDCases},
		FormatZigbee2MQTT: {Zigbee2MQTT{}, zigbeeCases},
	} {
		t.Run(name, func(t *testing.T) {
			if Decoders()[name] == nil {
				t.Fatalf("Decoders() has no %q", name)
			}
			for _, c := range tc.cases {
				t.Run(c.name, func(t *testing.T) {
					got, err := tc.dec.Decode([]byte(c.payload))
					if c.wantErr != "" {
						if err == nil || !strings.Contains(err.Error(), c.wantErr) {
							t.Fatalf("err = %v, want one containing %q (events %+v)", err, c.wantErr, got)
						}
						if !strings.HasPrefix(err.Error(), name) && !strings.HasPrefix(err.Error(), "contact id") {
							t.Errorf("err %q does not name the format", err)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, c.want) {
						t.Fatalf("got  %s\nwant %s", jsonText(got), jsonText(c.want))
					}
					checkEvents(t, got)
				})
			}
		})
	}
}

// checkEvents checks what the intake relies on: each event validates once
// it has an ID, and encodes to JSON (as the stores keep it).
func checkEvents(t *testing.T, evs []alarms.Event) {
	t.Helper()
	for _, ev := range evs {
		if ev.ID == "" {
			ev.ID = "dummy"
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("event %+v: %v", ev, err)
		}
		if _, err := json.Marshal(ev); err != nil {
			t.Fatalf("event %+v: marshal: %v", ev, err)
		}
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestContactIDChecksum(t *testing.T) {
	for _, tc := range []struct{ digits, want string }{
		{"123418113001015", "E"},
		{"C2B118313001015", "B"},
		{"123418113001019", "0"}, // 10: sent as 0 or A
	} {
		if got := string(contactIDChecksum(tc.digits)); got != tc.want && !(tc.want == "0" && got == "A") {
			t.Errorf("checksum(%s) = %s, want %s", tc.digits, got, tc.want)
		}
		if _, err := (ContactID{}).Decode([]byte(tc.digits + string(contactIDChecksum(tc.digits)))); err != nil {
			t.Errorf("%s with its checksum: %v", tc.digits, err)
		}
	}
}
