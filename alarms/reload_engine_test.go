package alarms_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// withoutUnits returns cfg's units but ids.
func withoutUnits(cfg alarms.Config, ids ...string) []alarms.UnitConfig {
	return slices.DeleteFunc(slices.Clone(cfg.Units), func(u alarms.UnitConfig) bool { return slices.Contains(ids, u.ID) })
}

// applyBoth applies cfg to the intake and then the engine, as a reload
// does.
func applyBoth(t *testing.T, s *system, cfg alarms.Config) alarms.DeviceChanges {
	t.Helper()
	ch, err := s.in.Apply(cfg)
	if err != nil {
		t.Fatalf("intake: %v", err)
	}
	if err := s.eng.Apply(cfg, testCameras()); err != nil {
		t.Fatalf("engine: %v", err)
	}
	return ch
}

// withV3 adds village v3 (5 km north) with panic button p3 and unit u9.
func withV3(cfg alarms.Config) alarms.Config {
	cfg.Areas = append(slices.Clone(cfg.Areas), alarms.AreaConfig{ID: "v3", Parent: "t1", Kind: alarms.AreaVillage})
	cfg.Devices = append(slices.Clone(cfg.Devices), alarms.DeviceConfig{ID: "p3", Area: "v3", Password: "pw-p3",
		Lat: metresNorth(devLat, 5000), Lon: devLon})
	cfg.Units = append(slices.Clone(cfg.Units), alarms.UnitConfig{ID: "u9", Area: "v3", Password: "pw-u9",
		Kind: alarms.UnitPatrolCar, Lat: metresNorth(devLat, 5050), Lon: devLon})
	return cfg
}

// A reload removes u1 while it holds an offer: the offer moves on to u2 as
// on a timeout, and the incident keeps its id, history and count (later
// events still join it). A reload then removes u2, which has accepted:
// the incident stays dispatched to it and its timeline says so. A village,
// a device and a unit added by a reload: the device's alarm is routed to
// the new unit in the new village.
func TestReloadEngineUnitsAndAreas(t *testing.T) {
	cfg := incidentConfig(t)
	s := startSystem(t, cfg, storage(t)())
	u1, u2 := connectUnit(t, s, "u1"), connectUnit(t, s, "u2")
	u1.report(200, alarms.UnitAvailable)
	u2.report(400, alarms.UnitAvailable)
	waitUnit(t, s.eng, "u2", alarms.UnitAvailable)

	p1 := connect(t, s.url(), "p1", "pw-p1", nil)
	publish(t, p1, devTopic(cfg, "p1", "event"), `{"id":"e1","class":"panic"}`)
	offer := u1.expect("offer", "")
	id := offer.Incident
	publish(t, p1, devTopic(cfg, "p1", "event"), `{"id":"e2","class":"alarm","zone":"2"}`)
	before := waitIncident(t, s.eng, "count 2", func(inc alarms.Incident) bool { return inc.Count == 2 })

	next := cfg
	next.Units = withoutUnits(cfg, "u1")
	ch := applyBoth(t, s, next)
	if !slices.Equal(ch.UnitsRemoved, []string{"u1"}) || !slices.Equal(ch.Disconnected, []string{"u1"}) ||
		!slices.Equal(ch.UnitsRevoked, []string{"u1"}) {
		t.Fatalf("intake changes %+v", ch)
	}
	u2.expect("offer", id)
	inc, err := s.eng.Incident(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	n := len(before.Timeline)
	if inc.ID != id || inc.Count != 2 || inc.Offer == nil || inc.Offer.Unit != "u2" || !slices.Contains(inc.Tried, "u1") ||
		len(inc.Timeline) < n || !slices.Equal(actions(inc)[:n], actions(before)) ||
		!slices.Equal(actions(inc)[n:], []string{"unit_removed", "escalated", "offer"}) {
		t.Fatalf("incident after u1's removal: %+v\ntimeline %v (before %v)", inc, actions(inc), actions(before))
	}
	if _, err := s.eng.Unit(t.Context(), "u1"); !errors.Is(err, alarms.ErrUnknownUnit) {
		t.Errorf("removed u1: %v, want ErrUnknownUnit", err)
	}
	publish(t, p1, devTopic(cfg, "p1", "event"), `{"id":"e3","class":"alarm","zone":"3"}`)
	waitIncident(t, s.eng, "count 3", func(inc alarms.Incident) bool { return inc.ID == id && inc.Count == 3 })

	u2.reply(id, alarms.ReplyAccept, "")
	waitUnit(t, s.eng, "u2", alarms.UnitBusy)
	third := withV3(next)
	third.Units = withoutUnits(third, "u2")
	ch = applyBoth(t, s, third)
	if !slices.Equal(ch.Added, []string{"p3"}) || !slices.Equal(ch.UnitsAdded, []string{"u9"}) ||
		!slices.Equal(ch.UnitsRemoved, []string{"u2"}) {
		t.Fatalf("intake changes %+v", ch)
	}
	inc = waitIncident(t, s.eng, "u2's removal noted", func(inc alarms.Incident) bool {
		return inc.ID == id && slices.Contains(actions(inc), "unit_removed") && actions(inc)[len(inc.Timeline)-1] == "unit_removed"
	})
	if inc.State != alarms.StateDispatched || inc.Unit != "u2" || inc.Count != 3 {
		t.Fatalf("dispatched incident after its unit's removal: %+v", inc)
	}

	u9 := connectUnit(t, s, "u9")
	u9.report(5050, alarms.UnitAvailable)
	waitUnit(t, s.eng, "u9", alarms.UnitAvailable)
	p3 := connect(t, s.url(), "p3", "pw-p3", nil)
	publish(t, p3, devTopic(cfg, "p3", "event"), `{"id":"n1","class":"panic"}`)
	o := u9.expect("offer", "")
	got, err := s.eng.Incident(t.Context(), o.Incident)
	if err != nil || got.Area != "v3" || got.Offer == nil || got.Offer.Area != "v3" || got.Device != "p3" {
		t.Fatalf("p3's incident %+v, %v: want an offer to u9 found in v3", got, err)
	}
	if tree := s.eng.Areas(); !tree.Has("v3") {
		t.Error("the engine's tree has no v3")
	}
}

// In cluster mode each node applies the reload: the leader's running term
// takes it (u1 removed, u9 added), the follower keeps forwarding to it
// (u9's position, requests about units), and a term started after the
// reload, on the other node, runs with the new units.
func TestReloadClusterEngine(t *testing.T) {
	c := newClusterSetup(t, time.Minute)
	a, b := c.node("a", 0), c.node("b", 0)
	first := c.lead(a, "a/1")
	position(t, b.sys.eng, "u1", 200, alarms.UnitAvailable)
	waitUnit(t, b.sys.eng, "u1", alarms.UnitAvailable)

	next := c.cfg
	next.Units = append(withoutUnits(c.cfg, "u1"), alarms.UnitConfig{ID: "u9", Area: "g1", Password: "pw-u9",
		Kind: alarms.UnitPatrolCar, Lat: metresNorth(devLat, 100), Lon: devLon})
	for _, n := range []*clusterNode{a, b} {
		applyBoth(t, n.sys, next)
	}
	if _, err := b.sys.eng.Unit(t.Context(), "u1"); !errors.Is(err, alarms.ErrUnknownUnit) {
		t.Fatalf("u1 through the follower after the reload: %v, want ErrUnknownUnit from the leader", err)
	}
	position(t, b.sys.eng, "u9", 100, alarms.UnitAvailable)
	waitUnit(t, b.sys.eng, "u9", alarms.UnitAvailable)
	panicP1(t, b, "c1")
	inc := waitIncident(t, b.sys.eng, "offer to u9", func(inc alarms.Incident) bool {
		return inc.Offer != nil && inc.Offer.Unit == "u9"
	})

	first.end(t)
	c.lead(b, "b/2")
	if _, err := a.sys.eng.Unit(t.Context(), "u1"); !errors.Is(err, alarms.ErrUnknownUnit) {
		t.Fatalf("u1 in the new term: %v, want ErrUnknownUnit", err)
	}
	waitUnit(t, a.sys.eng, "u9", alarms.UnitOffered)
	got, err := a.sys.eng.UnitReply(t.Context(), "u9", inc.ID, alarms.ReplyAccept, "", "")
	if err != nil || got.State != alarms.StateDispatched || got.Unit != "u9" {
		t.Fatalf("u9 accepts in the new term: %+v, %v", got, err)
	}
}
