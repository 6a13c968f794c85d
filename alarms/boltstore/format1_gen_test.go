package boltstore

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// The committed testdata/format1.db was written by the code of its time
// (format 1, before the store carried a version) through the store's own
// methods; testdata/format1.json is what that code read back from it. To
// write them again (only ever with the code of that format):
//
//	SKYWATCH_WRITE_FORMAT1=1 go test ./alarms/boltstore -run TestWriteFormat1
const (
	format1File = "testdata/format1.db"
	format1Dump = "testdata/format1.json"
)

// format1Base is the time the format-1 data pretends to be written at;
// format1Clock is the store's clock then (dedup keys expire 30 days on).
var (
	format1Base  = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	format1Clock = func() time.Time { return format1Base.Add(2 * time.Hour) }
)

// storeDump is everything a store holds, as its methods read it.
type storeDump struct {
	Events    []alarms.Event       `json:"events"` // newest first
	Log       []alarms.Event       `json:"log"`    // EventsAfter order
	ByDevice  map[string]int       `json:"by_device"`
	ByArea    map[string]int       `json:"by_area"`
	ByClass   map[string]int       `json:"by_class"`
	Rejected  []alarms.Rejected    `json:"rejected"`
	RejByDev  map[string]int       `json:"rejected_by_device"`
	Devices   []alarms.DeviceState `json:"devices"`
	Incidents []alarms.Incident    `json:"incidents"`
	Open      []alarms.Incident    `json:"open"`
	Cursor    string               `json:"cursor"`
	Units     []alarms.UnitState   `json:"units"`
}

// format1Devices, areas and classes of the generated events.
var (
	format1Devices = []string{"dev-a1", "dev-a2", "dev-b1", "dev-b2"}
	format1Areas   = map[string]string{"dev-a1": "county/east/v1", "dev-a2": "county/east/v1", "dev-b1": "county/west/v2", "dev-b2": "county/west"}
	format1Classes = []alarms.Class{alarms.ClassAlarm, alarms.ClassPanic, alarms.ClassFire, alarms.ClassTamper, alarms.ClassTrouble, alarms.ClassTest}
)

// dumpStore reads everything s holds through its methods.
func dumpStore(t *testing.T, s *Store) storeDump {
	t.Helper()
	ctx := context.Background()
	d := storeDump{ByDevice: map[string]int{}, ByArea: map[string]int{}, ByClass: map[string]int{}, RejByDev: map[string]int{}}
	for cursor := ""; ; {
		page, err := s.Events(ctx, alarms.EventQuery{Limit: 7, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		d.Events = append(d.Events, page.Events...)
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	for after := ""; ; {
		evs, err := s.EventsAfter(ctx, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		d.Log = append(d.Log, evs...)
		after = evs[len(evs)-1].Offset
	}
	count := func(q alarms.EventQuery) int {
		q.Limit = 1000
		page, err := s.Events(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Events)
	}
	for _, dev := range format1Devices {
		d.ByDevice[dev] = count(alarms.EventQuery{Device: dev})
		d.ByArea[format1Areas[dev]] = count(alarms.EventQuery{Area: format1Areas[dev]})
		rej, err := s.Rejected(ctx, alarms.RejectedQuery{Device: dev, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		d.RejByDev[dev] = len(rej)
	}
	for _, c := range format1Classes {
		d.ByClass[string(c)] = count(alarms.EventQuery{Class: c})
	}
	var err error
	if d.Rejected, err = s.Rejected(ctx, alarms.RejectedQuery{Limit: 1000}); err != nil {
		t.Fatal(err)
	}
	if d.Devices, err = s.Devices(ctx); err != nil {
		t.Fatal(err)
	}
	page, err := s.Incidents(ctx, alarms.IncidentQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	d.Incidents = page.Incidents
	if d.Open, err = s.OpenIncidents(ctx); err != nil {
		t.Fatal(err)
	}
	if d.Cursor, err = s.IncidentCursor(ctx); err != nil {
		t.Fatal(err)
	}
	if d.Units, err = s.Units(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestWriteFormat1 writes the format-1 test data with the store's methods.
func TestWriteFormat1(t *testing.T) {
	if os.Getenv("SKYWATCH_WRITE_FORMAT1") == "" {
		t.Skip("set SKYWATCH_WRITE_FORMAT1=1 to write " + format1File + " (with format-1 code only)")
	}
	ctx := context.Background()
	if err := os.MkdirAll(filepath.Dir(format1File), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(format1File)
	s, err := Open(format1File, WithClock(format1Clock), WithBatchDelay(0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	at := func(min int) time.Time { return format1Base.Add(time.Duration(min) * time.Minute) }
	rssi := -71
	var offsets []string
	for i := range 40 {
		dev := format1Devices[i%len(format1Devices)]
		e := &alarms.Event{
			ID:         fmt.Sprintf("e%03d", i),
			Seq:        uint64(i + 1),
			DeviceTime: at(i).Add(-3 * time.Second),
			Class:      format1Classes[i%len(format1Classes)],
			Qualifier:  alarms.QualifierNew,
			Code:       "E130",
			Zone:       fmt.Sprint(1 + i%3),
			Partition:  "1",
			BatteryLow: i%7 == 0,
			Device:     dev,
			Area:       format1Areas[dev],
			ReceivedAt: at(i),
			Source:     "skywatch",
		}
		if i%5 == 4 {
			e.Qualifier = alarms.QualifierRestore
		}
		if i%3 == 0 {
			e.RSSI = &rssi
		}
		if i == 39 {
			// A synthetic id: its dedup key expires after the window.
			e.ID, e.SyntheticID, e.Source = "syn-"+e.ID, true, "contactid"
		}
		stored, err := s.AppendEvent(ctx, e, 10*time.Minute)
		if err != nil || !stored {
			t.Fatalf("event %d: stored %v, %v", i, stored, err)
		}
		offsets = append(offsets, e.Offset)
	}
	lim := alarms.RejectedLimits{PerDevice: 3, Total: 6}
	for i := range 9 {
		dev := format1Devices[i%3]
		r := &alarms.Rejected{Device: dev, Topic: "skywatch/dev/" + dev + "/event", Payload: []byte(fmt.Sprintf(`{"bad":%d`, i)), Reason: "unexpected end of JSON input", ReceivedAt: at(50 + i)}
		if _, err := s.AddRejected(ctx, r, lim); err != nil {
			t.Fatal(err)
		}
	}
	for i, dev := range format1Devices {
		d := alarms.DeviceState{ID: dev, Online: i != 2, LastSeen: at(60 + i), LastHeartbeat: at(59 + i), LastEvent: at(36 + i), BatteryLow: i == 1, Supervision: i == 2}
		if i == 2 {
			d.SupervisedAt = at(58)
		}
		if i%2 == 0 {
			d.RSSI = &rssi
		}
		if err := s.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []alarms.UnitState{
		{ID: "patrol-1", Lat: 30.6612, Lon: 104.0633, Reported: at(61)},
		{ID: "patrol-2", Lat: 30.6701, Lon: 104.0512, Reported: at(62), OffDuty: true},
		{ID: "grid-7", Lat: 30.6405, Lon: 104.0810, Reported: at(63)},
	} {
		if err := s.PutUnit(ctx, u); err != nil {
			t.Fatal(err)
		}
	}

	// Incidents, saved step by step as the engine does: each save bumps
	// the version.
	save := func(inc *alarms.Incident, cursor string) {
		t.Helper()
		inc.Version++
		inc.Updated = inc.Timeline[len(inc.Timeline)-1].At
		if err := s.SaveIncidents(ctx, []alarms.Incident{*inc}, cursor); err != nil {
			t.Fatal(err)
		}
	}
	entry := func(min int, action string, from, to alarms.IncidentState, actor string) alarms.TimelineEntry {
		return alarms.TimelineEntry{At: at(min), Action: action, From: from, To: to, Actor: actor}
	}
	// One resolved: offered, accepted, arrived, cleared.
	resolved := &alarms.Incident{
		ID: "inc-0001", Kind: alarms.KindResponse, State: alarms.StateNew, Priority: 1,
		Class: alarms.ClassAlarm, Classes: []alarms.Class{alarms.ClassAlarm}, Device: "dev-a1",
		DeviceName: "Li household", Address: "3 Willow Lane", Area: format1Areas["dev-a1"],
		Lat: 30.6601, Lon: 104.0620, Zones: []string{"1"}, Count: 1, First: at(0), Last: at(0),
		Cameras: []alarms.IncidentCamera{{ID: "cam-east-1", Linked: true}, {ID: "cam-east-2", DistanceM: 140.5}},
		Created: at(0),
	}
	resolved.Timeline = []alarms.TimelineEntry{{At: at(0), Action: "open", To: alarms.StateNew, Actor: "system", Event: offsets[0]}}
	save(resolved, offsets[0])
	resolved.State = alarms.StateOffered
	resolved.Offer = &alarms.Offer{Unit: "patrol-1", Sent: at(1), Deadline: at(2), DistanceM: 220}
	resolved.Timeline = append(resolved.Timeline, alarms.TimelineEntry{At: at(1), Action: "offer", From: alarms.StateNew, To: alarms.StateOffered, Actor: "system", Unit: "patrol-1"})
	save(resolved, "")
	resolved.State, resolved.Offer, resolved.Unit, resolved.Tried = alarms.StateDispatched, nil, "patrol-1", []string{"patrol-1"}
	resolved.Timeline = append(resolved.Timeline, alarms.TimelineEntry{At: at(2), Action: "accept", From: alarms.StateOffered, To: alarms.StateDispatched, Actor: "unit:patrol-1", Unit: "patrol-1"})
	save(resolved, "")
	resolved.State = alarms.StateOnScene
	resolved.Timeline = append(resolved.Timeline, entry(9, "arrived", alarms.StateDispatched, alarms.StateOnScene, "unit:patrol-1"))
	save(resolved, "")
	resolved.State, resolved.Disposition, resolved.Note = alarms.StateResolved, alarms.DispGenuine, "window forced, owner informed"
	resolved.Timeline = append(resolved.Timeline, alarms.TimelineEntry{At: at(20), Action: "resolve", From: alarms.StateOnScene, To: alarms.StateResolved, Actor: "op-east", Reason: "genuine"})
	save(resolved, offsets[8])

	// One open with an offer waiting, escalated once.
	offered := &alarms.Incident{
		ID: "inc-0002", Kind: alarms.KindResponse, State: alarms.StateNew, Priority: 1,
		Class: alarms.ClassPanic, Classes: []alarms.Class{alarms.ClassPanic, alarms.ClassAlarm}, Device: "dev-b1",
		Area: format1Areas["dev-b1"], Lat: 30.6420, Lon: 104.0790, Zones: []string{"2", "3"}, Count: 3, Restores: 1,
		First: at(13), Last: at(25), Created: at(13),
	}
	offered.Timeline = []alarms.TimelineEntry{{At: at(13), Action: "open", To: alarms.StateNew, Actor: "system", Event: offsets[13]}}
	save(offered, offsets[13])
	offered.State, offered.Acknowledged = alarms.StateAcknowledged, true
	offered.Timeline = append(offered.Timeline, entry(14, "acknowledge", alarms.StateNew, alarms.StateAcknowledged, "op-west"))
	save(offered, "")
	offered.State, offered.Tried = alarms.StateOffered, []string{"grid-7"}
	offered.Escalated, offered.EscalatedAt = true, at(26)
	offered.Offer = &alarms.Offer{Unit: "patrol-2", Sent: at(26), Deadline: at(27), DistanceM: 3120.25, Area: "county"}
	offered.Timeline = append(offered.Timeline,
		alarms.TimelineEntry{At: at(25), Action: "offer_timeout", From: alarms.StateOffered, To: alarms.StateAcknowledged, Actor: "system", Unit: "grid-7", Reason: "no answer in 60s"},
		alarms.TimelineEntry{At: at(26), Action: "offer", From: alarms.StateAcknowledged, To: alarms.StateOffered, Actor: "system", Unit: "patrol-2"})
	save(offered, offsets[25])

	// One open maintenance incident (a tamper / trouble).
	maint := &alarms.Incident{
		ID: "inc-0003", Kind: alarms.KindMaintenance, State: alarms.StateNew, Priority: 3,
		Class: alarms.ClassTrouble, Classes: []alarms.Class{alarms.ClassTrouble}, Device: "dev-b2",
		Area: format1Areas["dev-b2"], Count: 1, First: at(28), Last: at(28), Created: at(28),
	}
	maint.Timeline = []alarms.TimelineEntry{{At: at(28), Action: "open", To: alarms.StateNew, Actor: "system", Event: offsets[28]}}
	save(maint, offsets[len(offsets)-1])

	d := dumpStore(t, s)
	data, err := json.MarshalIndent(d, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(format1Dump, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events, %d rejected, %d devices, %d incidents (%d open), %d units", len(d.Events), len(d.Rejected), len(d.Devices), len(d.Incidents), len(d.Open), len(d.Units))
}
