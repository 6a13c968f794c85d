package alarms_test

import (
	"context"
	"slices"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/skywatch/skywatch/alarms"
)

// withP2 adds a second panic button in grid g1.
func withP2(cfg alarms.Config) alarms.Config {
	cfg.Devices = append(cfg.Devices, alarms.DeviceConfig{ID: "p2", Area: "g1", Password: "pw-p2",
		Lat: metresNorth(devLat, 100), Lon: devLon})
	return cfg
}

// No free unit in the village: the offer goes to the nearest free unit of
// the township. Busy, off-duty and silent units are never offered. When
// nobody is left, the incident waits, escalated, and goes to the first
// unit that becomes available.
func TestDispatchWidensUpTheTree(t *testing.T) {
	cfg := withP2(incidentConfig(t))
	s := startSystem(t, cfg, storage(t)())
	u := map[string]*unitClient{}
	for _, id := range []string{"u1", "u2", "u3", "v2car", "t1car"} {
		u[id] = connectUnit(t, s, id)
	}
	u["u1"].report(200, alarms.UnitAvailable)
	u["u2"].report(400, alarms.UnitOffDuty)
	// u3 never reports: silent.
	u["v2car"].report(300, alarms.UnitAvailable)
	u["t1car"].report(1500, alarms.UnitAvailable)
	waitUnit(t, s.eng, "u2", alarms.UnitOffDuty)
	waitUnit(t, s.eng, "t1car", alarms.UnitAvailable)

	// p2's panic makes u1 busy.
	p2 := connect(t, s.url(), "p2", "pw-p2", nil)
	publish(t, p2, devTopic(cfg, "p2", "event"), `{"id":"x1","class":"panic"}`)
	first := u["u1"].expect("offer", "")
	u["u1"].reply(first.Incident, alarms.ReplyAccept, "")
	waitUnit(t, s.eng, "u1", alarms.UnitBusy)

	// p1's alarm: nobody free in g1 or v1; v2car (300 m) is the nearest
	// free unit of the township.
	p1 := connect(t, s.url(), "p1", "pw-p1", nil)
	publish(t, p1, devTopic(cfg, "p1", "event"), `{"id":"e1","class":"alarm","zone":"2"}`)
	offer := u["v2car"].expect("offer", "")
	id := offer.Incident
	inc, err := s.eng.Incident(t.Context(), id)
	if err != nil || inc.Offer == nil || inc.Offer.Area != "t1" || inc.Offer.Unit != "v2car" {
		t.Fatalf("incident %+v, err %v: want an offer to v2car found at t1", inc, err)
	}
	u["v2car"].reply(id, alarms.ReplyDecline, "")
	u["t1car"].expect("offer", id)
	u["t1car"].reply(id, alarms.ReplyDecline, "")

	// Nobody left: the incident waits, escalated.
	inc = waitIncident(t, s.eng, "incident waiting", func(inc alarms.Incident) bool {
		return inc.ID == id && inc.State == alarms.StateNew && inc.Offer == nil
	})
	if !inc.Escalated || actions(inc)[len(inc.Timeline)-1] != "no_unit" {
		t.Fatalf("waiting incident %+v", inc)
	}
	for _, id := range []string{"u2", "u3"} {
		u[id].quiet(0)
	}
	u["u1"].quiet(100 * time.Millisecond) // busy: nothing about the second incident

	// u2 comes on duty: it gets the offer at once.
	u["u2"].report(400, alarms.UnitAvailable)
	u["u2"].expect("offer", id)
	u["u1"].quiet(100 * time.Millisecond)
	u["u3"].quiet(0)
}

// An offer that is not answered by its deadline goes to the next unit; the
// incident is escalated and the first unit told the offer is withdrawn.
func TestDispatchOfferTimeout(t *testing.T) {
	cfg := incidentConfig(t)
	cfg.Routing.OfferTimeout = 500 * time.Millisecond
	s := startSystem(t, cfg, storage(t)())
	u1, u2 := connectUnit(t, s, "u1"), connectUnit(t, s, "u2")
	u1.report(200, alarms.UnitAvailable)
	u2.report(400, alarms.UnitAvailable)
	waitUnit(t, s.eng, "u2", alarms.UnitAvailable)

	dev := connect(t, s.url(), "p1", "pw-p1", nil)
	publish(t, dev, devTopic(cfg, "p1", "event"), `{"id":"e1","class":"fire"}`)
	offer := u1.expect("offer", "")
	u1.expect("withdrawn", offer.Incident)
	second := u2.expect("offer", offer.Incident)
	if !second.Deadline.After(offer.Deadline) {
		t.Errorf("second deadline %v not after the first %v", second.Deadline, offer.Deadline)
	}
	inc, err := s.eng.Incident(t.Context(), offer.Incident)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"opened", "offer", "timeout", "escalated", "offer"}
	if !inc.Escalated || !slices.Equal(actions(inc), want) || !slices.Equal(inc.Tried, []string{"u1"}) {
		t.Fatalf("incident after timeout: escalated %v, tried %v, timeline %v, want %v", inc.Escalated, inc.Tried, actions(inc), want)
	}
	if at := inc.Timeline[2].At; at.Before(offer.Deadline) {
		t.Errorf("timed out at %v, before the deadline %v", at, offer.Deadline)
	}
}

// 50 events from one device make one incident with count 50 and every
// zone; a restore is recorded and leaves it open.
func TestIncidentStormOneDevice(t *testing.T) {
	cfg := incidentConfig(t)
	s := startSystem(t, cfg, storage(t)())
	dev := connect(t, s.url(), "p1", "pw-p1", nil)
	topic := devTopic(cfg, "p1", "event")
	zones := []string{"1", "2", "3"}
	for i := range 50 {
		publish(t, dev, topic, `{"id":"s`+itoa(i)+`","class":"alarm","zone":"`+zones[i%3]+`"}`)
	}
	inc := waitIncident(t, s.eng, "count 50", func(inc alarms.Incident) bool { return inc.Count == 50 })
	publish(t, dev, topic, `{"id":"r1","class":"alarm","qualifier":"restore","zone":"1"}`)
	inc = waitIncident(t, s.eng, "restore", func(inc alarms.Incident) bool { return inc.Restores == 1 })
	if !inc.State.Open() || !slices.Equal(inc.Zones, zones) || inc.Count != 50 || !inc.Last.After(inc.First) {
		t.Fatalf("incident after the storm: %+v", inc)
	}
	page, err := s.eng.Incidents(t.Context(), alarms.IncidentQuery{Area: "t1"})
	if err != nil || len(page.Incidents) != 1 {
		t.Fatalf("%d incidents (err %v), want 1", len(page.Incidents), err)
	}
	// No unit is free: the incident waits (escalated, no_unit) at some
	// point between the joins, depending on how the events were batched.
	got := slices.DeleteFunc(actions(inc), func(a string) bool { return a == "escalated" || a == "no_unit" })
	if !slices.Equal(got, []string{"opened", "joined", "joined", "restore"}) {
		t.Errorf("timeline %v", actions(inc))
	}
}

func itoa(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }

// Trouble and supervision events make maintenance tickets, not offers.
func TestIncidentMaintenance(t *testing.T) {
	cfg := incidentConfig(t)
	s := startSystem(t, cfg, storage(t)())
	u1 := connectUnit(t, s, "u1")
	u1.report(200, alarms.UnitAvailable)
	waitUnit(t, s.eng, "u1", alarms.UnitAvailable)
	dev := connect(t, s.url(), "p1", "pw-p1", nil)
	publish(t, dev, devTopic(cfg, "p1", "event"), `{"id":"t1","class":"trouble","code":"301"}`)
	publish(t, dev, devTopic(cfg, "p1", "event"), `{"id":"t2","class":"test","battery_low":true}`)
	inc := waitIncident(t, s.eng, "ticket", func(inc alarms.Incident) bool { return inc.Count == 2 })
	if inc.Kind != alarms.KindMaintenance || inc.State != alarms.StateNew || inc.Offer != nil {
		t.Fatalf("ticket %+v", inc)
	}
	u1.quiet(200 * time.Millisecond)
	// An operator may still send a grid manager or anyone free.
	got, err := s.eng.Act(context.Background(), inc.ID, alarms.Action{Kind: alarms.ActOffer, Actor: "alice"})
	if err != nil || got.State != alarms.StateOffered {
		t.Fatalf("offer a ticket: %v %+v", err, got)
	}
	u1.expect("offer", inc.ID)
}

// At the embedded broker a unit cannot read another unit's offers nor
// answer for it.
func TestUnitACL(t *testing.T) {
	cfg := incidentConfig(t)
	s := startSystem(t, cfg, storage(t)())
	u1 := connectUnit(t, s, "u1")
	u1.report(200, alarms.UnitAvailable)
	waitUnit(t, s.eng, "u1", alarms.UnitAvailable)

	lost := make(chan struct{}, 1)
	spy := connect(t, s.url(), "u2", "pw-u2", func(o *paho.ClientOptions) {
		o.SetConnectionLostHandler(func(paho.Client, error) { lost <- struct{}{} })
	})
	got := make(chan string, 10)
	tok := spy.Subscribe(u1.topic("dispatch"), 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) })
	if !tok.WaitTimeout(15 * time.Second) {
		t.Fatal("subscribe: no SUBACK")
	}
	if q := tok.(*paho.SubscribeToken).Result()[u1.topic("dispatch")]; q != 0x80 {
		t.Errorf("subscription to another unit's dispatch topic granted with QoS %d", q)
	}

	dev := connect(t, s.url(), "p1", "pw-p1", nil)
	publish(t, dev, devTopic(cfg, "p1", "event"), `{"id":"e1","class":"panic"}`)
	offer := u1.expect("offer", "")
	select {
	case m := <-got:
		t.Fatalf("u2 read u1's offer: %s", m)
	case <-time.After(100 * time.Millisecond):
	}
	spy.Publish(u1.topic("reply"), 1, false, `{"incident":"`+offer.Incident+`","action":"decline"}`)
	select {
	case <-lost:
	case <-time.After(15 * time.Second):
		t.Fatal("a unit answering for another was not disconnected")
	}
	inc, err := s.eng.Incident(t.Context(), offer.Incident)
	if err != nil || inc.State != alarms.StateOffered || inc.Offer.Unit != "u1" {
		t.Fatalf("incident after the forged reply: %+v %v", inc, err)
	}
}
