package viewer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// Without an incident engine the incident and patrol routes answer 503
// with the reason, and the stream still carries alarms.
func TestIncidentAPIWithoutEngine(t *testing.T) {
	srv := startAlarmServer(t, &fakeAlarms{}, nil)
	for _, path := range []string{"/api/incidents", "/api/incidents/x", "/api/units", "/api/units/u1", "/api/areas"} {
		resp, body := doRequest(t, "GET", baseURL(srv)+path, "", "")
		if resp.StatusCode != 503 || !strings.Contains(body, "incident engine not configured") {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, body)
		}
	}
	resp, body := doRequest(t, "POST", baseURL(srv)+"/api/incidents/x/acknowledge", "application/json", "{}")
	if resp.StatusCode != 503 {
		t.Errorf("POST action: %d %s", resp.StatusCode, body)
	}
	for _, path := range []string{"/patrol/api/me", "/patrol/api/current"} {
		if resp, body := doRequest(t, "GET", baseURL(srv)+path, "", ""); resp.StatusCode != 503 ||
			!strings.Contains(body, "patrol dispatch not configured") {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, body)
		}
	}
	if resp, body := doRequest(t, "GET", baseURL(srv)+"/patrol/", "", ""); resp.StatusCode != 200 ||
		!strings.Contains(body, "<html") {
		t.Errorf("patrol page: %d %.80s", resp.StatusCode, body)
	}
}

// Query parameters reach the engine as an IncidentQuery; bad ones are
// refused with 400 naming the parameter, before the engine is asked.
func TestIncidentQueryParameters(t *testing.T) {
	var mu sync.Mutex
	var got []alarms.IncidentQuery
	f := &fakeIncidents{incidents: func(_ context.Context, q alarms.IncidentQuery) (alarms.IncidentPage, error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, q)
		if q.Cursor == "bad" {
			return alarms.IncidentPage{}, errors.New("bolt: malformed cursor")
		}
		return alarms.IncidentPage{Incidents: []alarms.Incident{{ID: "i1", State: alarms.StateNew,
			Timeline: []alarms.TimelineEntry{{Action: "opened"}}}}, Next: "n1"}, nil
	}}
	srv := startIncidentServer(t, f, nil)
	since := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	good := []struct {
		query string
		want  alarms.IncidentQuery
	}{
		{"", alarms.IncidentQuery{}},
		{"?area=v1&state=new,offered,%20on_scene&open=true&class=panic&kind=response&since=2026-05-01T08:00:00Z&limit=5&cursor=c1",
			alarms.IncidentQuery{Area: "v1", States: []alarms.IncidentState{alarms.StateNew, alarms.StateOffered, alarms.StateOnScene},
				Open: true, Class: alarms.ClassPanic, Kind: alarms.KindResponse, Since: since, Limit: 5, Cursor: "c1"}},
		{"?open=false&until=2026-05-01T08:00:00Z", alarms.IncidentQuery{Until: since}},
	}
	for _, tt := range good {
		mu.Lock()
		got = nil
		mu.Unlock()
		var page incidentsJSON
		getJSON(t, srv, "/api/incidents"+tt.query, 200, &page)
		mu.Lock()
		if len(got) != 1 || !reflect.DeepEqual(got[0], tt.want) {
			t.Errorf("%s: engine asked %+v, want %+v", tt.query, got, tt.want)
		}
		mu.Unlock()
		if len(page.Incidents) != 1 || page.Incidents[0].ID != "i1" || page.Next != "n1" || page.Incidents[0].Timeline != nil {
			t.Errorf("%s: page %+v (a list leaves timelines out)", tt.query, page)
		}
	}

	mu.Lock()
	got = nil
	mu.Unlock()
	for query, inBody := range map[string]string{
		"?area=nowhere":    `area: unknown area \"nowhere\"`,
		"?state=new,done":  `state: \"done\" is not one of new, acknowledged`,
		"?open=yes":        `open: \"yes\" is not true or false`,
		"?class=burglary":  `class: \"burglary\" is not one of`,
		"?kind=other":      `kind: \"other\"`,
		"?since=yesterday": `since: \"yesterday\" is not an RFC 3339 time`,
		"?limit=0":         "limit: ",
		"?since=2026-05-01T08:00:00Z&until=2026-05-01T07:00:00Z": "until: must be after since",
	} {
		resp, body := doRequest(t, "GET", baseURL(srv)+"/api/incidents"+query, "", "")
		if resp.StatusCode != 400 || !strings.Contains(body, inBody) {
			t.Errorf("GET %s: %d %s, want 400 with %s", query, resp.StatusCode, body, inBody)
		}
	}
	mu.Lock()
	if len(got) != 0 {
		t.Errorf("the engine was asked %d times for bad requests", len(got))
	}
	mu.Unlock()
	// A cursor the store refuses (while the query without it works) is 400.
	if resp, body := doRequest(t, "GET", baseURL(srv)+"/api/incidents?cursor=bad", "", ""); resp.StatusCode != 400 ||
		!strings.Contains(body, "cursor: malformed or unknown") {
		t.Errorf("bad cursor: %d %s", resp.StatusCode, body)
	}
}

// One incident comes with its timeline, its area's path, and its cameras
// joined with their live state; an unknown incident is 404.
func TestIncidentDetail(t *testing.T) {
	inc := alarms.Incident{ID: "i1", State: alarms.StateOffered, Area: "g1",
		Cameras:  []alarms.IncidentCamera{{ID: "gate", Linked: true, DistanceM: 12.34}, {ID: "yard", DistanceM: 80}, {ID: "gone", DistanceM: 90}},
		Timeline: []alarms.TimelineEntry{{Action: "opened", Actor: "system"}, {Action: "offer", Actor: "system", Unit: "u1"}}}
	f := &fakeIncidents{incident: func(_ context.Context, id string) (alarms.Incident, error) {
		if id == "i1" {
			return inc, nil
		}
		return alarms.Incident{}, fmt.Errorf("incident %s: %w", id, alarms.ErrNotFound)
	}}
	srv := startIncidentServer(t, f, nil)
	var got incidentJSON
	getJSON(t, srv, "/api/incidents/i1", 200, &got)
	wantCams := []incidentCameraJSON{
		{ID: "gate", Name: "North gate", Status: "online", Linked: true, DistanceM: 12.3},
		{ID: "yard", Name: "Yard", Status: "retrying", DistanceM: 80},
		{ID: "gone", Status: "unknown", DistanceM: 90},
	}
	if !reflect.DeepEqual(got.Cameras, wantCams) {
		t.Errorf("cameras %+v, want %+v", got.Cameras, wantCams)
	}
	if len(got.Timeline) != 2 || got.Timeline[1].Unit != "u1" || got.State != alarms.StateOffered {
		t.Errorf("incident %+v", got)
	}
	if want := []string{"g1", "v1", "t1", "c"}; !reflect.DeepEqual(got.AreaPath, want) {
		t.Errorf("area path %v, want %v", got.AreaPath, want)
	}
	resp, body := doRequest(t, "GET", baseURL(srv)+"/api/incidents/i1", "", "")
	if strings.Contains(body, secret) || resp.StatusCode != 200 {
		t.Errorf("detail leaks a camera's error: %s", body)
	}
	if resp, body := doRequest(t, "GET", baseURL(srv)+"/api/incidents/nope", "", ""); resp.StatusCode != 404 ||
		!strings.Contains(body, `unknown incident \"nope\"`) {
		t.Errorf("unknown incident: %d %s", resp.StatusCode, body)
	}
}

// Operator actions reach the engine with the body's fields and the actor
// (the body's, or "operator"); refusals map to 404, 400, 409, 415 or 503
// with the reason.
func TestIncidentActions(t *testing.T) {
	acted := make(chan alarms.Action, 1)
	var result func(alarms.Action) (alarms.Incident, error)
	var mu sync.Mutex
	f := &fakeIncidents{act: func(_ context.Context, id string, a alarms.Action) (alarms.Incident, error) {
		if id != "i1" {
			return alarms.Incident{}, fmt.Errorf("incident %s: %w", id, alarms.ErrNotFound)
		}
		acted <- a
		mu.Lock()
		defer mu.Unlock()
		return result(a)
	}}
	srv := startIncidentServer(t, f, nil)
	ok := func(a alarms.Action) (alarms.Incident, error) {
		return alarms.Incident{ID: "i1", State: alarms.StateAcknowledged, Timeline: []alarms.TimelineEntry{{Action: string(a.Kind), Actor: a.Actor}}}, nil
	}
	fails := func(err error) func(alarms.Action) (alarms.Incident, error) {
		return func(alarms.Action) (alarms.Incident, error) { return alarms.Incident{}, err }
	}
	transition := &alarms.TransitionError{Incident: "i1", Action: "close", From: alarms.StateNew, To: alarms.StateClosed}
	tests := []struct {
		name, path, ctype, body string
		result                  func(alarms.Action) (alarms.Incident, error)
		code                    int
		inBody                  string
		want                    *alarms.Action // what reached the engine; nil: nothing
	}{
		{"acknowledge, no body", "i1/acknowledge", "application/json", "", ok, 200, `"state": "acknowledged"`,
			&alarms.Action{Kind: alarms.ActAcknowledge, Actor: "operator"}},
		{"assign with actor", "i1/assign", "application/json; charset=utf-8", `{"actor":"alice","unit":"u2","reason":"nearest"}`, ok, 200, `"actor": "alice"`,
			&alarms.Action{Kind: alarms.ActAssign, Actor: "alice", Unit: "u2", Reason: "nearest"}},
		{"resolve", "i1/resolve", "application/json", `{"disposition":"false_user","note":"owner forgot the code"}`, ok, 200, "",
			&alarms.Action{Kind: alarms.ActResolve, Actor: "operator", Disposition: alarms.DispFalseUser, Note: "owner forgot the code"}},
		{"unknown incident", "i9/acknowledge", "application/json", "", ok, 404, `unknown incident \"i9\"`, nil},
		{"unknown action", "i1/explode", "application/json", "", ok, 404, `unknown action \"explode\"`, nil},
		{"illegal transition", "i1/close", "application/json", "", fails(transition), 409, "illegal transition from new to closed",
			&alarms.Action{Kind: alarms.ActClose, Actor: "operator"}},
		{"unknown unit", "i1/assign", "application/json", `{"unit":"u99"}`, fails(fmt.Errorf("incident i1: assign \"u99\": %w", alarms.ErrUnknownUnit)),
			400, "unknown unit", &alarms.Action{Kind: alarms.ActAssign, Actor: "operator", Unit: "u99"}},
		{"busy unit", "i1/assign", "application/json", `{"unit":"u1"}`, fails(fmt.Errorf("incident i1: assign u1: unit is busy: %w", alarms.ErrUnitUnavailable)),
			409, "unit is busy", &alarms.Action{Kind: alarms.ActAssign, Actor: "operator", Unit: "u1"}},
		{"engine closed", "i1/cancel", "application/json", "", fails(alarms.ErrEngineClosed), 503, "incident engine closed",
			&alarms.Action{Kind: alarms.ActCancel, Actor: "operator"}},
		{"no leader", "i1/cancel", "application/json", "", fails(fmt.Errorf("act: none within 15s: %w", alarms.ErrNoLeader)), 503,
			"failover in progress", &alarms.Action{Kind: alarms.ActCancel, Actor: "operator"}},
		{"no free unit", "i1/offer", "application/json", "", func(alarms.Action) (alarms.Incident, error) {
			return alarms.Incident{ID: "i1", State: alarms.StateNew, Escalated: true},
				fmt.Errorf("incident i1: offer: no free unit up to the root: %w", alarms.ErrUnitUnavailable)
		}, 409, `"escalated": true`, &alarms.Action{Kind: alarms.ActOffer, Actor: "operator"}},
		{"assign without unit", "i1/assign", "application/json", `{}`, ok, 400, "unit: required", nil},
		{"resolve without disposition", "i1/resolve", "application/json", `{"note":"x"}`, ok, 400, `disposition: \"\" is not one of genuine`, nil},
		{"unknown field", "i1/acknowledge", "application/json", `{"actr":"bob"}`, ok, 400, `unknown field \"actr\"`, nil},
		{"bad json", "i1/acknowledge", "application/json", `{"actor":`, ok, 400, "body: ", nil},
		{"two values", "i1/acknowledge", "application/json", `{}{}`, ok, 400, "more than one JSON value", nil},
		{"not json", "i1/acknowledge", "text/plain", `{}`, ok, 415, "content type must be application/json", nil},
		{"actor too long", "i1/acknowledge", "application/json", `{"actor":"` + strings.Repeat("a", 101) + `"}`, ok, 400, "actor: longer", nil},
	}
	for _, tt := range tests {
		mu.Lock()
		result = tt.result
		mu.Unlock()
		resp, body := doRequest(t, "POST", baseURL(srv)+"/api/incidents/"+tt.path, tt.ctype, tt.body)
		if resp.StatusCode != tt.code || !strings.Contains(body, tt.inBody) {
			t.Errorf("%s: %d %s, want %d with %s", tt.name, resp.StatusCode, body, tt.code, tt.inBody)
		}
		select {
		case a := <-acted:
			if tt.want == nil || a != *tt.want {
				t.Errorf("%s: engine got %+v, want %+v", tt.name, a, tt.want)
			}
		default:
			if tt.want != nil {
				t.Errorf("%s: the engine was not asked", tt.name)
			}
		}
	}
}

// Units are listed and shown (404 for an unknown one), and the area tree
// comes in config order with children and effective policies.
func TestUnitsAndAreas(t *testing.T) {
	views := []alarms.UnitView{{ID: "u1", Name: "Car 1", Status: alarms.UnitAvailable}, {ID: "u2", Status: alarms.UnitBusy, Incident: "i1"}}
	f := &fakeIncidents{
		units: func(context.Context) ([]alarms.UnitView, error) { return views, nil },
		unit: func(_ context.Context, id string) (alarms.UnitView, error) {
			for _, v := range views {
				if v.ID == id {
					return v, nil
				}
			}
			return alarms.UnitView{}, fmt.Errorf("unit %q: %w", id, alarms.ErrUnknownUnit)
		},
	}
	srv := startIncidentServer(t, f, nil)
	var list []alarms.UnitView
	getJSON(t, srv, "/api/units", 200, &list)
	if !reflect.DeepEqual(list, views) {
		t.Errorf("units %+v", list)
	}
	var one alarms.UnitView
	getJSON(t, srv, "/api/units/u2", 200, &one)
	if one.Incident != "i1" {
		t.Errorf("unit %+v", one)
	}
	if resp, body := doRequest(t, "GET", baseURL(srv)+"/api/units/u9", "", ""); resp.StatusCode != 404 ||
		!strings.Contains(body, `unknown unit \"u9\"`) {
		t.Errorf("unknown unit: %d %s", resp.StatusCode, body)
	}
	var areas []alarms.Area
	getJSON(t, srv, "/api/areas", 200, &areas)
	if len(areas) != 5 || areas[0].ID != "c" || !reflect.DeepEqual(areas[1].Children, []string{"v1", "v2"}) ||
		areas[4].Depth != 3 || areas[4].Dispatch != alarms.DispatchAuto || areas[4].Name != "Grid 1" {
		t.Errorf("areas %+v", areas)
	}
}

// Incident changes go out on /api/stream in order, without ids, beside
// alarm events; missed changes are announced by an incident_gap event.
func TestStreamIncidentEvents(t *testing.T) {
	alarmSubs := make(chan chan alarms.Event, 1)
	incSubs := make(chan chan alarms.IncidentChange, 1)
	f := &fakeIncidents{subscribe: func(context.Context) <-chan alarms.IncidentChange {
		ch := make(chan alarms.IncidentChange, 16)
		incSubs <- ch
		return ch
	}}
	srv := startIncidentServer(t, f, func(d *Deps) { d.Alarms = &fakeAlarms{subscribe: liveFeed(alarmSubs)} })
	c := openStream(t, baseURL(srv), "")
	alarmLive, incLive := <-alarmSubs, <-incSubs

	change := func(seq uint64, state alarms.IncidentState) alarms.IncidentChange {
		inc := &alarms.Incident{ID: "i1", State: state}
		return alarms.IncidentChange{Seq: seq, Incident: inc, Entry: alarms.TimelineEntry{Action: string(state), To: state}}
	}
	states := []alarms.IncidentState{alarms.StateNew, alarms.StateAcknowledged, alarms.StateOffered, alarms.StateDispatched}
	for i, st := range states {
		incLive <- change(uint64(10+i), st)
	}
	for i, st := range states {
		ev := c.next(t)
		var got alarms.IncidentChange
		if ev.name != "incident" || ev.id != "" || json.Unmarshal([]byte(ev.data), &got) != nil {
			t.Fatalf("event %d: %+v, want an incident event without id", i, ev)
		}
		if got.Seq != uint64(10+i) || got.Incident == nil || got.Incident.State != st || got.Entry.To != st {
			t.Errorf("event %d: %+v", i, got)
		}
	}

	// Alarm events still come, with their ids.
	alarmLive <- testEvent("e1", time.Now(), "1")
	if e := eventOf(t, c.next(t)); e.ID != "e1" {
		t.Errorf("alarm %s", e.ID)
	}

	// Seq 14 to 16 were missed.
	incLive <- change(17, alarms.StateOnScene)
	ev := c.next(t)
	if ev.name != "incident_gap" || !strings.Contains(ev.data, "missed incident changes 14 to 16") {
		t.Fatalf("got %+v, want an incident_gap", ev)
	}
	if ev := c.next(t); ev.name != "incident" || !strings.Contains(ev.data, `"seq":17`) {
		t.Fatalf("got %+v, want change 17", ev)
	}

	// A unit-only change passes through too.
	incLive <- alarms.IncidentChange{Seq: 18, Units: []alarms.UnitView{{ID: "u1", Status: alarms.UnitOffDuty}}}
	if ev := c.next(t); ev.name != "incident" || !strings.Contains(ev.data, `"off_duty"`) || strings.Contains(ev.data, `"incident"`) {
		t.Fatalf("got %+v, want the unit change", ev)
	}

	// The engine closing leaves the alarm stream open.
	close(incLive)
	alarmLive <- testEvent("e2", time.Now(), "2")
	if e := eventOf(t, c.next(t)); e.ID != "e2" {
		t.Errorf("alarm %s", e.ID)
	}
}

// A stream client too slow for the incident changes is disconnected, as
// for alarms.
func TestStreamSlowIncidentClientDisconnected(t *testing.T) {
	f := &fakeIncidents{subscribe: func(context.Context) <-chan alarms.IncidentChange {
		ch := make(chan alarms.IncidentChange, 4)
		for i := range cap(ch) {
			ch <- alarms.IncidentChange{Seq: uint64(i + 1)}
		}
		return ch
	}}
	srv := startIncidentServer(t, f, nil)
	openStream(t, baseURL(srv), "").ended(t)
}
