package alarms_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// End to end through MQTT: a panic opens an incident; the nearest free
// unit of its grid is offered it on its MQTT topic and declines; the next
// nearest accepts, arrives and clears; the incident is resolved with the
// disposition, its timeline has every step with its time, and a
// subscriber saw every change in order.
func TestIncidentEndToEnd(t *testing.T) {
	cfg := incidentConfig(t)
	s := startSystem(t, cfg, storage(t)())
	changes := s.eng.SubscribeIncidents(t.Context())

	units := map[string]*unitClient{}
	for _, id := range []string{"u1", "u2", "u3", "t1car"} {
		units[id] = connectUnit(t, s, id)
	}
	units["u1"].report(200, alarms.UnitAvailable)
	units["u2"].report(400, alarms.UnitAvailable)
	units["u3"].report(900, alarms.UnitAvailable)
	units["t1car"].report(150, alarms.UnitAvailable) // nearer, but of the township
	for id := range units {
		waitUnit(t, s.eng, id, alarms.UnitAvailable)
	}

	dev := connect(t, s.url(), "p1", "pw-p1", nil)
	t0 := time.Now()
	publish(t, dev, devTopic(cfg, "p1", "event"), `{"id":"e1","class":"panic","zone":"1"}`)

	offer := units["u1"].expect("offer", "")
	id := offer.Incident
	if offer.Class != alarms.ClassPanic || offer.Address != "3 Well Lane" || offer.Priority != 1 ||
		offer.DistanceM < 150 || offer.DistanceM > 250 || !offer.Deadline.After(t0) ||
		!slices.Equal(offer.Zones, []string{"1"}) || len(offer.Cameras) == 0 || offer.Cameras[0] != "cam-linked" {
		t.Fatalf("offer to u1: %+v", offer)
	}
	waitUnit(t, s.eng, "u1", alarms.UnitOffered)
	units["u1"].reply(id, alarms.ReplyDecline, "")

	units["u2"].expect("offer", id)
	units["u2"].reply(id, alarms.ReplyAccept, "")
	waitUnit(t, s.eng, "u2", alarms.UnitBusy)
	// Moving towards the place makes it en route.
	units["u2"].report(250, "")
	waitIncident(t, s.eng, "en route", func(inc alarms.Incident) bool { return inc.State == alarms.StateEnRoute })
	units["u2"].reply(id, alarms.ReplyArrived, "")
	units["u2"].reply(id, alarms.ReplyCleared, alarms.DispGenuine)

	inc := waitIncident(t, s.eng, "incident resolved", func(inc alarms.Incident) bool { return inc.State == alarms.StateResolved })
	if inc.ID != id || inc.Disposition != alarms.DispGenuine || inc.Unit != "u2" || !inc.Escalated ||
		inc.Note != "from u2" || inc.Count != 1 || inc.Area != "g1" {
		t.Fatalf("resolved incident: %+v", inc)
	}
	want := []string{"opened", "offer", "decline", "escalated", "offer", "accept", "en_route", "arrived", "cleared"}
	if got := actions(inc); !slices.Equal(got, want) {
		t.Fatalf("timeline %v, want %v", got, want)
	}
	for i, e := range inc.Timeline {
		if e.At.Before(t0.Add(-time.Second)) || (i > 0 && e.At.Before(inc.Timeline[i-1].At)) {
			t.Errorf("timeline[%d] %s at %v: not in time order", i, e.Action, e.At)
		}
		if e.Actor == "" {
			t.Errorf("timeline[%d] %s: no actor", i, e.Action)
		}
	}
	if inc.Timeline[1].Unit != "u1" || inc.Timeline[2].Actor != "u1" || inc.Timeline[4].Unit != "u2" ||
		inc.Timeline[5].To != alarms.StateDispatched || inc.Timeline[6].To != alarms.StateEnRoute ||
		inc.Timeline[8].To != alarms.StateResolved {
		t.Errorf("timeline details: %+v", inc.Timeline)
	}
	waitUnit(t, s.eng, "u2", alarms.UnitAvailable)
	units["u3"].quiet(100 * time.Millisecond)
	units["t1car"].quiet(0)

	// The subscriber saw every timeline entry, in order, with no gap.
	var seen []string
	var last uint64
	timeout := time.After(20 * time.Second)
	for len(seen) < len(want) {
		select {
		case ch := <-changes:
			if last != 0 && ch.Seq != last+1 {
				t.Fatalf("change seq %d after %d", ch.Seq, last)
			}
			last = ch.Seq
			if ch.Incident != nil && ch.Incident.ID == id {
				seen = append(seen, ch.Entry.Action)
			}
		case <-timeout:
			t.Fatalf("subscriber saw %v, want %v", seen, want)
		}
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("subscriber saw %v, want %v", seen, want)
	}
}

// Operators' errors are typed: unknown incident, unknown unit, illegal
// transition.
func TestIncidentErrors(t *testing.T) {
	cfg := incidentConfig(t)
	cfg.Areas[4].Dispatch = alarms.DispatchManual // g1 waits for an operator
	s := startSystem(t, cfg, storage(t)())
	ctx := t.Context()
	dev := connect(t, s.url(), "p1", "pw-p1", nil)
	publish(t, dev, devTopic(cfg, "p1", "event"), `{"id":"e1","class":"alarm","zone":"4"}`)
	inc := waitIncident(t, s.eng, "incident", func(alarms.Incident) bool { return true })
	if inc.State != alarms.StateNew || inc.Priority != 2 {
		t.Fatalf("incident %+v", inc)
	}

	if _, err := s.eng.Act(ctx, "nope", alarms.Action{Kind: alarms.ActAcknowledge, Actor: "alice"}); !errors.Is(err, alarms.ErrNotFound) {
		t.Errorf("unknown incident: %v", err)
	}
	if _, err := s.eng.Act(ctx, inc.ID, alarms.Action{Kind: alarms.ActAssign, Actor: "alice", Unit: "nobody"}); !errors.Is(err, alarms.ErrUnknownUnit) {
		t.Errorf("unknown unit: %v", err)
	}
	if _, err := s.eng.UnitReply(ctx, "nobody", inc.ID, alarms.ReplyAccept, "", ""); !errors.Is(err, alarms.ErrUnknownUnit) {
		t.Errorf("reply from unknown unit: %v", err)
	}
	if err := s.eng.UnitPosition(ctx, "nobody", 1, 1, alarms.UnitAvailable); !errors.Is(err, alarms.ErrUnknownUnit) {
		t.Errorf("position of unknown unit: %v", err)
	}
	var te *alarms.TransitionError
	_, err := s.eng.Act(ctx, inc.ID, alarms.Action{Kind: alarms.ActClose, Actor: "alice"})
	if !errors.As(err, &te) || te.From != alarms.StateNew || te.To != alarms.StateClosed {
		t.Errorf("close a new incident: %v", err)
	}
	if _, err := s.eng.UnitReply(ctx, "u1", inc.ID, alarms.ReplyAccept, "", ""); !errors.Is(err, alarms.ErrNotAssigned) {
		t.Errorf("accept without an offer: %v", err)
	}
	if _, err := s.eng.Act(ctx, inc.ID, alarms.Action{Kind: alarms.ActResolve, Actor: "alice", Disposition: "maybe"}); !errors.Is(err, alarms.ErrInvalidAction) {
		t.Errorf("bad disposition: %v", err)
	}
	if _, err := s.eng.Act(ctx, inc.ID, alarms.Action{Kind: alarms.ActAssign, Actor: "alice", Unit: "u1"}); !errors.Is(err, alarms.ErrUnitUnavailable) {
		t.Errorf("assign a silent unit: %v", err)
	}
	got, err := s.eng.Act(ctx, inc.ID, alarms.Action{Kind: alarms.ActAcknowledge, Actor: "alice", Reason: "seen on camera"})
	if err != nil || got.State != alarms.StateAcknowledged {
		t.Fatalf("acknowledge: %v %+v", err, got)
	}
	if _, err := s.eng.Act(ctx, inc.ID, alarms.Action{Kind: alarms.ActAcknowledge, Actor: "bob"}); !errors.As(err, &te) {
		t.Errorf("acknowledge twice: %v", err)
	}
	got, err = s.eng.Act(ctx, inc.ID, alarms.Action{Kind: alarms.ActResolve, Actor: "alice", Disposition: alarms.DispFalseUser, Note: "owner forgot"})
	if err != nil || got.State != alarms.StateResolved || got.Disposition != alarms.DispFalseUser {
		t.Fatalf("resolve: %v %+v", err, got)
	}
	_, err = s.eng.Act(ctx, inc.ID, alarms.Action{Kind: alarms.ActCancel, Actor: "alice"})
	if !errors.As(err, &te) || te.From != alarms.StateResolved || te.To != alarms.StateCancelled {
		t.Errorf("cancel a resolved incident: %v", err)
	}
	got, err = s.eng.Act(ctx, inc.ID, alarms.Action{Kind: alarms.ActClose, Actor: "alice"})
	if err != nil || got.State != alarms.StateClosed {
		t.Fatalf("close: %v %+v", err, got)
	}
	last := got.Timeline[len(got.Timeline)-1]
	if last.Actor != "alice" || last.From != alarms.StateResolved || last.To != alarms.StateClosed || last.At.IsZero() {
		t.Errorf("last entry %+v", last)
	}
}

// Through an external broker (Mosquitto): units report and reply on it,
// and the offer reaches them there.
func TestIncidentExternalBroker(t *testing.T) {
	ext := externalConfig(t)
	cfg := incidentConfig(t)
	cfg.MQTT = ext.MQTT
	s := startSystem(t, cfg, storage(t)())
	waitConnected(t, s.in)
	u1, u2 := connectUnit(t, s, "u1"), connectUnit(t, s, "u2")
	u1.report(200, alarms.UnitAvailable)
	u2.report(400, alarms.UnitAvailable)
	waitUnit(t, s.eng, "u1", alarms.UnitAvailable)
	waitUnit(t, s.eng, "u2", alarms.UnitAvailable)

	dev := connect(t, cfg.MQTT.URL, "", "", nil)
	publish(t, dev, devTopic(cfg, "p1", "event"), `{"id":"x1","class":"panic","zone":"2"}`)
	offer := u1.expect("offer", "")
	u1.reply(offer.Incident, alarms.ReplyAccept, "")
	waitUnit(t, s.eng, "u1", alarms.UnitBusy)
	// More zones fire: the unit on it is told.
	publish(t, dev, devTopic(cfg, "p1", "event"), `{"id":"x2","class":"panic","zone":"3"}`)
	upd := u1.expect("update", offer.Incident)
	if !slices.Equal(upd.Zones, []string{"2", "3"}) {
		t.Errorf("update zones %v", upd.Zones)
	}
	u1.reply(offer.Incident, alarms.ReplyFalseAlarm, alarms.DispFalseEquipment)
	inc := waitIncident(t, s.eng, "resolved", func(inc alarms.Incident) bool { return inc.State == alarms.StateResolved })
	if inc.Disposition != alarms.DispFalseEquipment || inc.Count != 2 {
		t.Fatalf("incident %+v", inc)
	}
	// A reply the engine refuses is answered with an error message.
	u1.reply(offer.Incident, alarms.ReplyArrived, "")
	if m := u1.expect("error", offer.Incident); m.Reason == "" {
		t.Errorf("error without a reason: %+v", m)
	}
	u2.quiet(0)
}

// Concurrent operators: requests that meet in the engine are saved
// together, and a refused one undoes only its own changes.
func TestIncidentConcurrentActions(t *testing.T) {
	cfg := incidentConfig(t)
	cfg.Areas[0].Dispatch = alarms.DispatchManual
	st := storage(t)()
	for i := range 10 {
		e := &alarms.Event{ID: "e1", Class: alarms.ClassAlarm, Qualifier: alarms.QualifierNew,
			Device: "x" + itoa(i), Area: "g1", ReceivedAt: time.Now(), Source: "skywatch"}
		if _, err := st.AppendEvent(t.Context(), e, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	s := startSystem(t, cfg, st)
	var page alarms.IncidentPage
	waitFor(t, "10 incidents", func() bool {
		var err error
		page, err = s.eng.Incidents(t.Context(), alarms.IncidentQuery{Area: "v1", Open: true})
		return err == nil && len(page.Incidents) == 10
	})
	type result struct {
		inc alarms.Incident
		err error
	}
	results := make(chan result, 20)
	for _, inc := range page.Incidents {
		for _, who := range []string{"alice", "bob"} {
			go func() {
				got, err := s.eng.Act(t.Context(), inc.ID, alarms.Action{Kind: alarms.ActAcknowledge, Actor: who})
				results <- result{got, err}
			}()
		}
	}
	ok, refused := 0, 0
	for range 20 {
		r := <-results
		var te *alarms.TransitionError
		switch {
		case r.err == nil:
			ok++
			if r.inc.State != alarms.StateAcknowledged || r.inc.Version < 2 {
				t.Errorf("acknowledged incident %+v", r.inc)
			}
		case errors.As(r.err, &te):
			refused++
		default:
			t.Errorf("acknowledge: %v", r.err)
		}
	}
	if ok != 10 || refused != 10 {
		t.Fatalf("%d acknowledged and %d refused, want 10 and 10", ok, refused)
	}
	for _, inc := range page.Incidents {
		got, err := s.eng.Incident(t.Context(), inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range got.Timeline {
			if e.Action == "acknowledge" {
				n++
			}
		}
		if n != 1 || got.State != alarms.StateAcknowledged {
			t.Errorf("incident %s: %d acknowledge entries, state %s", got.ID, n, got.State)
		}
	}
}
