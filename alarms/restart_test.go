package alarms_test

import (
	"slices"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// An incident survives a restart of Skywatch (a new intake and engine on
// the same storage) with its running offer: the deadline still fires
// after the restart and the next unit gets the offer. The units' last
// reports survive too.
func TestIncidentSurvivesRestart(t *testing.T) {
	cfg := incidentConfig(t)
	cfg.Routing.OfferTimeout = 2 * time.Second
	open := storage(t)
	st := open()
	s := startSystem(t, cfg, st)
	u1, u2 := connectUnit(t, s, "u1"), connectUnit(t, s, "u2")
	u1.report(200, alarms.UnitAvailable)
	u2.report(400, alarms.UnitAvailable)
	waitUnit(t, s.eng, "u2", alarms.UnitAvailable)
	dev := connect(t, s.url(), "p1", "pw-p1", nil)
	publish(t, dev, devTopic(cfg, "p1", "event"), `{"id":"e1","class":"panic","zone":"7"}`)
	offer := u1.expect("offer", "")
	before, err := s.eng.Incident(t.Context(), offer.Incident)
	if err != nil {
		t.Fatal(err)
	}

	// Restart: everything closed, a new broker on a new port.
	dev.Disconnect(0)
	u1.c.Disconnect(0)
	u2.c.Disconnect(0)
	s.close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	s = startSystem(t, cfg, open())
	u2 = connectUnit(t, s, "u2")

	after, err := s.eng.Incident(t.Context(), offer.Incident)
	if err != nil {
		t.Fatal(err)
	}
	if after.State != alarms.StateOffered && after.State != alarms.StateNew || // the timeout may have fired already
		!slices.Equal(after.Zones, []string{"7"}) || after.Timeline[0].At != before.Timeline[0].At {
		t.Fatalf("after restart: %+v\nbefore: %+v", after, before)
	}
	v, err := s.eng.Unit(t.Context(), "u1")
	if err != nil || v.Reported.IsZero() || v.Lat != metresNorth(devLat, 200) {
		t.Fatalf("u1 after restart: %+v %v", v, err)
	}
	// The offer to u1 times out after the restart; u2 gets it.
	u2.expect("offer", offer.Incident)
	inc, err := s.eng.Incident(t.Context(), offer.Incident)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"opened", "offer", "timeout", "escalated", "offer"}; !slices.Equal(actions(inc), want) {
		t.Fatalf("timeline %v, want %v", actions(inc), want)
	}
	if inc.Timeline[2].At.Before(offer.Deadline) {
		t.Errorf("timed out at %v, before the deadline %v", inc.Timeline[2].At, offer.Deadline)
	}
	u2.reply(offer.Incident, alarms.ReplyAccept, "")
	waitUnit(t, s.eng, "u2", alarms.UnitBusy)
}

// An event stored while no engine ran (a crash between storing and
// applying it) still opens its incident when the engine starts; starting
// again applies it no second time.
func TestIncidentFromStoredLog(t *testing.T) {
	cfg := incidentConfig(t)
	open := storage(t)
	st := open()
	e := &alarms.Event{ID: "crash-1", Class: alarms.ClassAlarm, Qualifier: alarms.QualifierNew, Zone: "5",
		Device: "p1", Area: "g1", ReceivedAt: time.Now(), Source: "skywatch"}
	if _, err := st.AppendEvent(t.Context(), e, time.Minute); err != nil {
		t.Fatal(err)
	}
	s := startSystem(t, cfg, st)
	inc := waitIncident(t, s.eng, "incident from the log", func(inc alarms.Incident) bool { return true })
	if inc.Count != 1 || inc.Device != "p1" || inc.Timeline[0].Event != "p1/crash-1" {
		t.Fatalf("incident %+v", inc)
	}
	s.close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = open()
	s = startSystem(t, cfg, st)
	dev := connect(t, s.url(), "p1", "pw-p1", nil)
	publish(t, dev, devTopic(cfg, "p1", "event"), `{"id":"crash-2","class":"alarm","zone":"5"}`)
	inc = waitIncident(t, s.eng, "second event joined", func(inc alarms.Incident) bool { return inc.Count >= 2 })
	time.Sleep(300 * time.Millisecond) // a poll or two: nothing more may join
	inc, err := s.eng.Incident(t.Context(), inc.ID)
	if err != nil || inc.Count != 2 {
		t.Fatalf("count %d (err %v), want 2: the first event was applied twice", inc.Count, err)
	}
	page, err := s.eng.Incidents(t.Context(), alarms.IncidentQuery{})
	if err != nil || len(page.Incidents) != 1 {
		t.Fatalf("%d incidents (err %v), want 1", len(page.Incidents), err)
	}
}
