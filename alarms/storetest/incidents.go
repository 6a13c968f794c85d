package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// Semantics of alarms.IncidentStore that the suite fixes beyond its
// comments:
//   - Incidents are ordered newest first by Created, ties by ID descending;
//     OpenIncidents oldest first in the same order.
//   - Incidents returns stored versions, equal in JSON to what was saved.
//   - A malformed cursor is an error.
//   - NearestUnits breaks ties of distance by ID, and its distances are
//     within 1 m of alarms.Distance.

// incStore opens a store that must also be an IncidentStore.
func incStore(t *testing.T, open func() alarms.Store) (alarms.Store, alarms.IncidentStore) {
	t.Helper()
	s := openT(t, open)
	is, ok := s.(alarms.IncidentStore)
	if !ok {
		t.Fatalf("%T does not implement alarms.IncidentStore", s)
	}
	return s, is
}

func newIncident(id, device, area string, class alarms.Class, state alarms.IncidentState, created time.Time) alarms.Incident {
	kind := alarms.KindResponse
	if class == alarms.ClassTrouble || class == alarms.ClassSupervision {
		kind = alarms.KindMaintenance
	}
	return alarms.Incident{
		ID: id, Kind: kind, State: state, Priority: 2, Class: class, Classes: []alarms.Class{class},
		Device: device, Area: area, Lat: 30.1, Lon: 120.2, Zones: []string{"1"}, Count: 1,
		First: created, Last: created, Created: created, Updated: created, Version: 1,
		Cameras: []alarms.IncidentCamera{{ID: "cam1", Linked: true, DistanceM: 12.5}},
		Timeline: []alarms.TimelineEntry{{At: created, Action: "opened", To: alarms.StateNew,
			Actor: alarms.ActorSystem, Event: device + "/e1"}},
	}
}

func mustSave(t *testing.T, s alarms.IncidentStore, cursor string, incs ...alarms.Incident) {
	t.Helper()
	if err := s.SaveIncidents(context.Background(), incs, cursor); err != nil {
		t.Fatalf("save %d incidents: %v", len(incs), err)
	}
}

func getIncident(t *testing.T, s alarms.IncidentStore, id string) alarms.Incident {
	t.Helper()
	inc, err := s.Incident(context.Background(), id)
	if err != nil {
		t.Fatalf("incident %s: %v", id, err)
	}
	return inc
}

func testIncidentVersions(t *testing.T, open func() alarms.Store) {
	_, s := incStore(t, open)
	ctx := context.Background()
	if _, err := s.Incident(ctx, "nope"); !errors.Is(err, alarms.ErrNotFound) {
		t.Fatalf("unknown incident: err = %v, want ErrNotFound", err)
	}
	a := newIncident("a", "d1", "v1", alarms.ClassPanic, alarms.StateNew, base)
	mustSave(t, s, "", a)
	sameJSON(t, "a after saving", getIncident(t, s, "a"), a)

	// A second writer that read version 0 (a new incident) conflicts.
	if err := s.SaveIncidents(ctx, []alarms.Incident{a}, ""); !errors.Is(err, alarms.ErrConflict) {
		t.Fatalf("saving version 1 again: err = %v, want ErrConflict", err)
	}
	a2 := a
	a2.Version, a2.State = 2, alarms.StateAcknowledged
	a2.Timeline = append(slices.Clone(a.Timeline), alarms.TimelineEntry{At: base.Add(time.Second), Action: "acknowledge",
		From: alarms.StateNew, To: alarms.StateAcknowledged, Actor: "alice"})
	mustSave(t, s, "", a2)
	skip := a2
	skip.Version = 4
	if err := s.SaveIncidents(ctx, []alarms.Incident{skip}, ""); !errors.Is(err, alarms.ErrConflict) {
		t.Fatalf("saving version 4 over 2: err = %v, want ErrConflict", err)
	}

	// All or nothing: a batch with one conflict writes none of it, nor
	// the cursor.
	b := newIncident("b", "d2", "v1", alarms.ClassFire, alarms.StateNew, base.Add(time.Minute))
	stale := a2 // version 2 again
	if err := s.SaveIncidents(ctx, []alarms.Incident{b, stale}, "c1"); !errors.Is(err, alarms.ErrConflict) {
		t.Fatalf("batch with a stale incident: err = %v, want ErrConflict", err)
	}
	if _, err := s.Incident(ctx, "b"); !errors.Is(err, alarms.ErrNotFound) {
		t.Fatalf("b was written by a failed batch: %v", err)
	}
	if c, err := s.IncidentCursor(ctx); err != nil || c != "" {
		t.Fatalf("cursor after a failed batch: %q, %v", c, err)
	}
	sameJSON(t, "a after a failed batch", getIncident(t, s, "a"), a2)

	// One incident twice in a batch (versions 3 and 4), with the cursor.
	a3, a4 := a2, a2
	a3.Version, a3.State = 3, alarms.StateOffered
	a3.Offer = &alarms.Offer{Unit: "u1", Sent: base, Deadline: base.Add(time.Minute), DistanceM: 200, Area: "v1"}
	a4.Version, a4.State, a4.Offer, a4.Unit = 4, alarms.StateDispatched, nil, "u1"
	mustSave(t, s, "c2", b, a3, a4)
	sameJSON(t, "a after versions 3 and 4", getIncident(t, s, "a"), a4)
	sameJSON(t, "b", getIncident(t, s, "b"), b)
	if c, err := s.IncidentCursor(ctx); err != nil || c != "c2" {
		t.Fatalf("cursor: %q, %v; want c2", c, err)
	}
	mustSave(t, s, "c3") // the cursor alone
	if c, err := s.IncidentCursor(ctx); err != nil || c != "c3" {
		t.Fatalf("cursor: %q, %v; want c3", c, err)
	}
}

// Concurrent writers of one incident: exactly one wins each version.
func testIncidentConcurrentWriters(t *testing.T, open func() alarms.Store) {
	_, s := incStore(t, open)
	ctx := context.Background()
	inc := newIncident("x", "d1", "v1", alarms.ClassAlarm, alarms.StateNew, base)
	mustSave(t, s, "", inc)
	const writers = 8
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		won, lost  int
		otherError error
	)
	for i := range writers {
		wg.Go(func() {
			next := inc
			next.Version = 2
			next.Note = fmt.Sprintf("writer %d", i)
			err := s.SaveIncidents(ctx, []alarms.Incident{next}, "")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, alarms.ErrConflict):
				lost++
			default:
				otherError = err
			}
		})
	}
	wg.Wait()
	if otherError != nil {
		t.Fatal(otherError)
	}
	if won != 1 || lost != writers-1 {
		t.Fatalf("%d writers won and %d lost, want 1 and %d", won, lost, writers-1)
	}
	if got := getIncident(t, s, "x"); got.Version != 2 || !strings.HasPrefix(got.Note, "writer ") {
		t.Fatalf("stored %+v", got)
	}
}

// incidentFixture saves incidents across areas, states, classes and
// times, and returns them newest first.
func incidentFixture(t *testing.T, s alarms.IncidentStore) []alarms.Incident {
	t.Helper()
	var all []alarms.Incident
	areas := []string{"g1", "g2", "v2"}
	states := []alarms.IncidentState{alarms.StateNew, alarms.StateOffered, alarms.StateResolved, alarms.StateClosed, alarms.StateCancelled}
	classes := []alarms.Class{alarms.ClassPanic, alarms.ClassAlarm, alarms.ClassTrouble}
	for i := range 30 {
		created := base.Add(time.Duration(i/2) * time.Minute) // pairs share a time: ties by ID
		inc := newIncident(fmt.Sprintf("inc-%02d", i), fmt.Sprintf("d%d", i), areas[i%3], classes[i%3], states[i%5], created)
		all = append(all, inc)
	}
	mustSave(t, s, "", all[:10]...)
	mustSave(t, s, "", all[10:]...)
	slices.Reverse(all)
	return all
}

func ids(incs []alarms.Incident) []string {
	out := make([]string, len(incs))
	for i := range incs {
		out[i] = incs[i].ID
	}
	return out
}

// listIncidents reads every page of q.
func listIncidents(t *testing.T, s alarms.IncidentStore, q alarms.IncidentQuery) []alarms.Incident {
	t.Helper()
	var out []alarms.Incident
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("more than 100 pages")
		}
		page, err := s.Incidents(context.Background(), q)
		if err != nil {
			t.Fatalf("incidents %+v: %v", q, err)
		}
		if q.Limit > 0 && len(page.Incidents) > q.Limit {
			t.Fatalf("page of %d incidents, limit %d", len(page.Incidents), q.Limit)
		}
		out = append(out, page.Incidents...)
		if page.Next == "" {
			return out
		}
		q.Cursor = page.Next
	}
}

func testIncidentQueries(t *testing.T, open func() alarms.Store) {
	_, s := incStore(t, open)
	all := incidentFixture(t, s)
	filter := func(keep func(alarms.Incident) bool) []string {
		var out []string
		for _, inc := range all {
			if keep(inc) {
				out = append(out, inc.ID)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		q    alarms.IncidentQuery
		keep func(alarms.Incident) bool
	}{
		{"all", alarms.IncidentQuery{}, func(alarms.Incident) bool { return true }},
		{"one area", alarms.IncidentQuery{Areas: []string{"g1"}}, func(i alarms.Incident) bool { return i.Area == "g1" }},
		{"areas", alarms.IncidentQuery{Areas: []string{"g1", "v2"}}, func(i alarms.Incident) bool { return i.Area != "g2" }},
		{"states", alarms.IncidentQuery{States: []alarms.IncidentState{alarms.StateNew, alarms.StateClosed}},
			func(i alarms.Incident) bool { return i.State == alarms.StateNew || i.State == alarms.StateClosed }},
		{"open", alarms.IncidentQuery{Open: true}, func(i alarms.Incident) bool { return i.State.Open() }},
		{"open in an area", alarms.IncidentQuery{Open: true, Areas: []string{"g2"}},
			func(i alarms.Incident) bool { return i.State.Open() && i.Area == "g2" }},
		{"class", alarms.IncidentQuery{Class: alarms.ClassPanic}, func(i alarms.Incident) bool { return i.Class == alarms.ClassPanic }},
		{"kind", alarms.IncidentQuery{Kind: alarms.KindMaintenance}, func(i alarms.Incident) bool { return i.Kind == alarms.KindMaintenance }},
		{"since until", alarms.IncidentQuery{Since: base.Add(3 * time.Minute), Until: base.Add(9 * time.Minute)},
			func(i alarms.Incident) bool {
				return !i.Created.Before(base.Add(3*time.Minute)) && i.Created.Before(base.Add(9*time.Minute))
			}},
		{"area and class", alarms.IncidentQuery{Areas: []string{"g1"}, Class: alarms.ClassAlarm}, func(alarms.Incident) bool { return false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := filter(tc.keep)
			if got := ids(listIncidents(t, s, tc.q)); !slices.Equal(got, want) {
				t.Fatalf("got %v\nwant %v", got, want)
			}
			q := tc.q
			q.Limit = 3
			if got := ids(listIncidents(t, s, q)); !slices.Equal(got, want) {
				t.Fatalf("paged by 3: got %v\nwant %v", got, want)
			}
		})
	}
	got := listIncidents(t, s, alarms.IncidentQuery{Limit: 1000})
	sameJSON(t, "stored incidents", got, all)
	page, err := s.Incidents(context.Background(), alarms.IncidentQuery{Limit: 30})
	if err != nil || len(page.Incidents) != 30 || page.Next != "" {
		t.Fatalf("exactly one full page: %d incidents, next %q, err %v", len(page.Incidents), page.Next, err)
	}
	if _, err := s.Incidents(context.Background(), alarms.IncidentQuery{Cursor: "zz"}); err == nil {
		t.Error("malformed cursor: no error")
	}
}

func testOpenIncidents(t *testing.T, open func() alarms.Store) {
	_, s := incStore(t, open)
	ctx := context.Background()
	if got, err := s.OpenIncidents(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty store: %d open incidents, err %v", len(got), err)
	}
	all := incidentFixture(t, s)
	var want []string
	for _, inc := range slices.Backward(all) {
		if inc.State.Open() {
			want = append(want, inc.ID)
		}
	}
	got, err := s.OpenIncidents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), want) {
		t.Fatalf("open incidents %v, want %v (oldest first)", ids(got), want)
	}

	// By device and kind.
	a := newIncident("dev-a", "dx", "g1", alarms.ClassAlarm, alarms.StateNew, base.Add(time.Hour))
	m := newIncident("dev-m", "dx", "g1", alarms.ClassTrouble, alarms.StateNew, base.Add(time.Hour))
	mustSave(t, s, "", a, m)
	if got, err := s.OpenIncident(ctx, "dx", alarms.KindResponse); err != nil || got.ID != "dev-a" {
		t.Fatalf("open response incident of dx: %v %v", got.ID, err)
	}
	if got, err := s.OpenIncident(ctx, "dx", alarms.KindMaintenance); err != nil || got.ID != "dev-m" {
		t.Fatalf("open maintenance ticket of dx: %v %v", got.ID, err)
	}
	a.Version, a.State = 2, alarms.StateResolved
	mustSave(t, s, "", a)
	if _, err := s.OpenIncident(ctx, "dx", alarms.KindResponse); !errors.Is(err, alarms.ErrNotFound) {
		t.Fatalf("resolved incident still open by device: %v", err)
	}
	if _, err := s.OpenIncident(ctx, "nobody", alarms.KindResponse); !errors.Is(err, alarms.ErrNotFound) {
		t.Fatalf("unknown device: %v", err)
	}
	got, _ = s.OpenIncidents(ctx)
	if slices.Contains(ids(got), "dev-a") || !slices.Contains(ids(got), "dev-m") {
		t.Fatalf("open incidents after resolving dev-a: %v", ids(got))
	}
	// A new incident of the same device opens again.
	a2 := newIncident("dev-a2", "dx", "g1", alarms.ClassAlarm, alarms.StateNew, base.Add(2*time.Hour))
	mustSave(t, s, "", a2)
	if got, err := s.OpenIncident(ctx, "dx", alarms.KindResponse); err != nil || got.ID != "dev-a2" {
		t.Fatalf("new open incident of dx: %v %v", got.ID, err)
	}
}

func testEventsAfter(t *testing.T, open func() alarms.Store) {
	s, is := incStore(t, open)
	ctx := context.Background()
	if evs, err := is.EventsAfter(ctx, "", 10); err != nil || len(evs) != 0 {
		t.Fatalf("empty log: %d events, err %v", len(evs), err)
	}
	// Receive times out of order: the log keeps the order of storing.
	var want []string
	for i := range 7 {
		e := newEvent("d1", fmt.Sprintf("e%d", i), alarms.ClassAlarm, base.Add(time.Duration(7-i)*time.Second))
		mustAppend(t, s, e, time.Hour, true)
		want = append(want, e.Key())
	}
	mustAppend(t, s, newEvent("d1", "e3", alarms.ClassAlarm, base), time.Hour, false) // a duplicate is not logged again
	var got []string
	cursor := ""
	for range 10 {
		evs, err := is.EventsAfter(ctx, cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 3 {
			t.Fatalf("%d events for limit 3", len(evs))
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			if e.Offset == "" {
				t.Fatalf("event %s without offset", e.Key())
			}
			got = append(got, e.Key())
		}
		cursor = evs[len(evs)-1].Offset
	}
	if !slices.Equal(got, want) {
		t.Fatalf("log %v, want %v", got, want)
	}
	e := newEvent("d1", "later", alarms.ClassFire, base)
	mustAppend(t, s, e, time.Hour, true)
	evs, err := is.EventsAfter(ctx, cursor, 10)
	if err != nil || len(evs) != 1 || evs[0].Key() != e.Key() || evs[0].Offset != e.Offset {
		t.Fatalf("after the cursor: %+v, err %v; want the later event", evs, err)
	}
}

func testUnits(t *testing.T, open func() alarms.Store) {
	_, s := incStore(t, open)
	ctx := context.Background()
	if us, err := s.Units(ctx); err != nil || len(us) != 0 {
		t.Fatalf("empty store: %d units, err %v", len(us), err)
	}
	if near, err := s.NearestUnits(ctx, 30, 120, 0, 0); err != nil || len(near) != 0 {
		t.Fatalf("empty store: nearest %v, err %v", near, err)
	}
	north := func(m float64) float64 { return 30 + m/111195 }
	put := func(id string, m float64, offDuty bool) alarms.UnitState {
		u := alarms.UnitState{ID: id, Lat: north(m), Lon: 120, Reported: base.Add(time.Duration(m) * time.Millisecond), OffDuty: offDuty}
		if err := s.PutUnit(ctx, u); err != nil {
			t.Fatalf("put %s: %v", id, err)
		}
		return u
	}
	put("u3", 3000, false)
	u1 := put("u1", 100, true)
	put("u2", 700, false)
	put("u4", 20000, false)
	u3 := put("u3", 300, false) // moved: replaces
	us, err := s.Units(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 4 || us[0].ID != "u1" || us[2].ID != "u3" {
		t.Fatalf("units %+v, want u1..u4 by ID", us)
	}
	sameJSON(t, "u1", us[0], u1)
	sameJSON(t, "u3", us[2], u3)

	check := func(radius float64, limit int, want ...string) {
		t.Helper()
		near, err := s.NearestUnits(ctx, 30, 120, radius, limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range near {
			got = append(got, n.ID)
			var u alarms.UnitState
			for _, x := range us {
				if x.ID == n.ID {
					u = x
				}
			}
			if d := alarms.Distance(30, 120, u.Lat, u.Lon); math.Abs(d-n.DistanceM) > 1 {
				t.Errorf("%s: distance %.1f m, want %.1f", n.ID, n.DistanceM, d)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("nearest (radius %v, limit %d): %v, want %v", radius, limit, got, want)
		}
	}
	check(0, 0, "u1", "u3", "u2", "u4")
	check(1000, 0, "u1", "u3", "u2")
	check(0, 2, "u1", "u3")
	check(50, 0)
	// Ties by ID.
	put("u0", 300, false)
	us, _ = s.Units(ctx)
	check(400, 0, "u1", "u0", "u3")
}

func testIncidentDurability(t *testing.T, open func() alarms.Store) {
	ctx := context.Background()
	s := open()
	is := s.(alarms.IncidentStore)
	a := newIncident("a", "d1", "g1", alarms.ClassPanic, alarms.StateOffered, base)
	a.Offer = &alarms.Offer{Unit: "u1", Sent: base, Deadline: base.Add(time.Minute), DistanceM: 120, Area: "g1"}
	mustSave(t, is, "cur-1", a)
	u := alarms.UnitState{ID: "u1", Lat: 30, Lon: 120, Reported: base}
	if err := is.PutUnit(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, is = incStore(t, open)
	sameJSON(t, "incident after reopening", getIncident(t, is, "a"), a)
	open1, err := is.OpenIncidents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "open incidents after reopening", open1, []alarms.Incident{a})
	if c, err := is.IncidentCursor(ctx); err != nil || c != "cur-1" {
		t.Fatalf("cursor after reopening: %q, %v", c, err)
	}
	us, err := is.Units(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "units after reopening", us, []alarms.UnitState{u})
	if near, err := is.NearestUnits(ctx, 30, 120, 10, 0); err != nil || len(near) != 1 {
		t.Fatalf("nearest after reopening: %v %v", near, err)
	}
	// Versions survive: a stale write still conflicts.
	if err := is.SaveIncidents(ctx, []alarms.Incident{a}, ""); !errors.Is(err, alarms.ErrConflict) {
		t.Fatalf("stale save after reopening: %v", err)
	}
}
