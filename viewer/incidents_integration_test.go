package viewer

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/boltstore"
	"github.com/skywatch/skywatch/hardware"
)

// metresNorth moves a latitude by m metres.
func metresNorth(lat, m float64) float64 { return lat + m/111195 }

// startEngine runs a real intake and incident engine: the embedded broker
// on loopback and a bolt store in a temporary file. The tree is county c >
// township t1 > village v1 > grid g1, whose dispatch is manual (an
// operator offers); panic button p1 in g1 is watched by camera "gate";
// units u1 (300 m north of p1) and u2 (g1, 600 m) log in with pw-u1 and
// pw-u2.
func startEngine(t *testing.T) (*alarms.Intake, *alarms.Engine, alarms.Config) {
	t.Helper()
	const lat, lon = 30.0, 120.0
	cfg := alarms.Config{
		MQTT: alarms.MQTTConfig{Address: "127.0.0.1:0", TopicPrefix: "sw"},
		Areas: []alarms.AreaConfig{
			{ID: "c", Name: "County", Kind: alarms.AreaCounty},
			{ID: "t1", Name: "Township 1", Parent: "c", Kind: alarms.AreaTownship},
			{ID: "v1", Name: "Village 1", Parent: "t1", Kind: alarms.AreaVillage},
			{ID: "g1", Name: "Grid 1", Parent: "v1", Kind: alarms.AreaGrid, Dispatch: alarms.DispatchManual},
		},
		Devices: []alarms.DeviceConfig{{ID: "p1", Name: "Shop panic button", Area: "g1", Lat: lat, Lon: lon,
			Password: "pw-p1", Address: "3 Well Lane", Cameras: []string{"gate"}}},
		Units: []alarms.UnitConfig{
			{ID: "u1", Name: "Car 1", Password: "pw-u1", Area: "g1", Lat: metresNorth(lat, 300), Lon: lon},
			{ID: "u2", Name: "Car 2", Password: "pw-u2", Area: "g1", Lat: metresNorth(lat, 600), Lon: lon},
		},
	}
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "alarms.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	logger := slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelWarn}))
	in, err := alarms.NewIntake(cfg, store, hardware.Decoders(), logger)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := alarms.NewEngine(in, store, alarms.EngineOptions{
		Cameras: []alarms.CameraSite{{ID: "gate", Area: "g1", Lat: metresNorth(lat, 40), Lon: lon}},
		Poll:    100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close() })
	t.Cleanup(func() { _ = eng.Close() }) // runs first
	if err := in.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return in, eng, cfg
}

// openSSE opens an event stream with client c (which may carry a
// session cookie) and reads it as openStream does.
func openSSE(t *testing.T, c *http.Client, url string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		cancel()
		t.Fatalf("stream %s: %d", url, resp.StatusCode)
	}
	sc := &sseClient{events: make(chan sseEvent, 4096), cancel: cancel}
	sc.wg.Add(1)
	go func() {
		defer sc.wg.Done()
		defer close(sc.events)
		defer resp.Body.Close()
		s := bufio.NewScanner(resp.Body)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		var ev sseEvent
		for s.Scan() {
			line := s.Text()
			switch {
			case line == "":
				if ev.name != "" {
					sc.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ": "):
				ev = sseEvent{name: "comment", data: line[2:]}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.name = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	t.Cleanup(sc.close)
	return sc
}

// nextNamed returns the stream's next event called name, skipping others.
func (c *sseClient) nextNamed(t *testing.T, name string) sseEvent {
	t.Helper()
	for {
		if ev := c.next(t); ev.name == name {
			return ev
		}
	}
}

// postAction posts an operator action and checks the status.
func postAction(t *testing.T, srv *Server, path, body string, code int, inBody string) string {
	t.Helper()
	resp, got := doRequest(t, "POST", baseURL(srv)+"/api/incidents/"+path, "application/json", body)
	if resp.StatusCode != code || !strings.Contains(got, inBody) {
		t.Fatalf("POST %s %s: %d %s, want %d with %q", path, body, resp.StatusCode, got, code, inBody)
	}
	return got
}

// The whole path over a real intake and engine: a device's panic over
// MQTT opens an incident, listed by the API and pushed on the stream; an
// operator acknowledges and offers it; the unit, logged in on the patrol
// page, sees the offer with its distance and direction, accepts, arrives
// and clears it with a disposition; the operator closes it. Every change
// comes on the stream in order, the timeline has every step, and bad
// requests get their 4xx.
func TestIncidentsWithEngine(t *testing.T) {
	in, eng, _ := startEngine(t)
	srv := startIncidentServer(t, &fakeIncidents{}, func(d *Deps) {
		d.Alarms, d.Incidents, d.Patrol = in, eng, eng
		d.CheckUnit = in.CheckUnit
		d.Registry = prometheus.NewRegistry()
	})
	stream := openStream(t, baseURL(srv), "")

	// The units come on duty through the patrol page.
	u1, u2 := newPatrolClient(t, baseURL(srv)), newPatrolClient(t, baseURL(srv))
	for _, u := range []struct {
		p        *patrolClient
		id       string
		metres   float64
		password string
	}{{u1, "u1", 300, "pw-u1"}, {u2, "u2", 600, "pw-u2"}} {
		if code, body := u.p.login(u.id, u.password); code != 200 {
			t.Fatalf("login %s: %d %s", u.id, code, body)
		}
		var view alarms.UnitView
		u.p.mustDo("POST", "position", map[string]any{"lat": metresNorth(30, u.metres), "lon": 120.0, "status": "available"}, 200, &view)
		if view.Status != alarms.UnitAvailable || view.Reported.IsZero() {
			t.Fatalf("unit %s after its report: %+v", u.id, view)
		}
	}
	if code, body := newPatrolClient(t, baseURL(srv)).login("u1", "pw-u2"); code != 401 {
		t.Errorf("login with u2's password as u1: %d %s", code, body)
	}
	u1Stream := openSSE(t, u1.c, baseURL(srv)+"/patrol/api/stream")

	// A panic over MQTT.
	dev := mqttDevice(t, in, "p1")
	publish(t, dev, "sw/dev/p1/event", `{"id":"x1","class":"panic","zone":"1"}`)
	if e := eventOf(t, stream.nextNamed(t, "alarm")); e.Key() != "p1/x1" {
		t.Fatalf("alarm %s", e.Key())
	}
	var page incidentsJSON
	deadline := time.Now().Add(testTimeout)
	for len(page.Incidents) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no incident listed")
		}
		time.Sleep(50 * time.Millisecond)
		getJSON(t, srv, "/api/incidents?area=v1&open=true&class=panic", 200, &page)
	}
	inc := page.Incidents[0]
	id := inc.ID
	if inc.State != alarms.StateNew || inc.Device != "p1" || inc.Address != "3 Well Lane" || inc.Priority != 1 ||
		len(inc.Cameras) != 1 || inc.Cameras[0].ID != "gate" || inc.Cameras[0].Status != "online" || inc.Cameras[0].Name != "North gate" {
		t.Fatalf("listed incident %+v", inc)
	}
	getJSON(t, srv, "/api/incidents?area=t1&state=resolved,closed", 200, &page)
	if len(page.Incidents) != 0 {
		t.Errorf("resolved or closed: %+v", page.Incidents)
	}

	// The operator acknowledges; unknown and illegal requests are refused.
	postAction(t, srv, id+"/acknowledge", `{"actor":"alice","reason":"on it"}`, 200, `"state": "acknowledged"`)
	postAction(t, srv, id+"/acknowledge", `{}`, 409, "acknowledge")
	postAction(t, srv, id+"/close", ``, 409, "illegal transition from acknowledged to closed")
	postAction(t, srv, "nope/acknowledge", ``, 404, `unknown incident \"nope\"`)
	postAction(t, srv, id+"/launch", ``, 404, `unknown action \"launch\"`)
	postAction(t, srv, id+"/assign", `{"unit":"u99"}`, 400, "unknown unit")
	postAction(t, srv, id+"/resolve", `{"disposition":"maybe"}`, 400, "disposition")
	postAction(t, srv, id+"/acknowledge", `{"actor":`, 400, "body: ")

	// It is offered: u1, the nearest, gets it on its page.
	postAction(t, srv, id+"/offer", `{"actor":"alice"}`, 200, `"state": "offered"`)
	if ev := u1Stream.nextNamed(t, "dispatch"); !strings.Contains(ev.data, `"type":"offer"`) || !strings.Contains(ev.data, id) {
		t.Fatalf("u1's stream: %+v", ev)
	}
	var cur patrolCurrentJSON
	u1.mustDo("GET", "current", nil, 200, &cur)
	sum := cur.Incident
	if sum == nil || sum.ID != id || !sum.Offered || sum.Deadline.IsZero() || sum.Direction != "S" ||
		sum.DistanceM < 290 || sum.DistanceM > 310 || strings.Join(sum.AreaNames, ",") != "Grid 1,Village 1,Township 1,County" ||
		sum.Class != alarms.ClassPanic || strings.Join(sum.Zones, ",") != "1" {
		t.Fatalf("u1's current: %+v", sum)
	}
	u2.mustDo("GET", "current", nil, 200, &cur)
	if cur.Incident != nil {
		t.Errorf("u2 sees %+v", cur.Incident)
	}
	// u2 cannot answer u1's offer.
	if code, body, _ := u2.do("POST", "reply", replyBody{Incident: id, Action: alarms.ReplyAccept}, true); code != 403 {
		t.Errorf("u2 accepts u1's offer: %d %s", code, body)
	}

	// u1 accepts, arrives, clears.
	var after patrolIncidentJSON
	u1.mustDo("POST", "reply", replyBody{Incident: id, Action: alarms.ReplyAccept}, 200, &after)
	if after.State != alarms.StateDispatched {
		t.Fatalf("after accept: %+v", after)
	}
	if code, body, _ := u1.do("POST", "reply", replyBody{Incident: id, Action: alarms.ReplyCleared}, true); code != 400 {
		t.Errorf("cleared without a disposition: %d %s", code, body)
	}
	u1.mustDo("POST", "reply", replyBody{Incident: id, Action: alarms.ReplyArrived}, 200, &after)
	if after.State != alarms.StateOnScene {
		t.Fatalf("after arrived: %+v", after)
	}
	u1.mustDo("POST", "reply", replyBody{Incident: id, Action: alarms.ReplyCleared,
		Disposition: alarms.DispFalseUser, Note: "owner pressed it by mistake"}, 200, &after)
	if after.State != alarms.StateResolved || after.Disposition != alarms.DispFalseUser {
		t.Fatalf("after cleared: %+v", after)
	}
	u1.mustDo("GET", "current", nil, 200, &cur)
	if cur.Incident != nil || cur.Unit.Status != alarms.UnitAvailable {
		t.Errorf("u1 after clearing: %+v, %+v", cur.Unit, cur.Incident)
	}
	postAction(t, srv, id+"/cancel", ``, 409, "illegal transition from resolved to cancelled")
	postAction(t, srv, id+"/close", `{"actor":"bob"}`, 200, `"state": "closed"`)

	// The timeline has every step with who did it.
	var detail incidentJSON
	getJSON(t, srv, "/api/incidents/"+id, 200, &detail)
	var steps []string
	for _, e := range detail.Timeline {
		if e.At.IsZero() {
			t.Errorf("timeline entry %+v has no time", e)
		}
		steps = append(steps, e.Action+":"+e.Actor)
	}
	for _, want := range []string{"acknowledge:alice", "offer:alice", "accept:u1", "arrived:u1", "cleared:u1", "close:bob"} {
		if !slices.Contains(steps, want) {
			t.Errorf("timeline %v lacks %s", steps, want)
		}
	}
	if detail.State != alarms.StateClosed || detail.Disposition != alarms.DispFalseUser || detail.Note != "owner pressed it by mistake" ||
		strings.Join(detail.AreaPath, ",") != "g1,v1,t1,c" {
		t.Errorf("incident %+v", detail.Incident)
	}

	// The operators' stream had every change of the incident, in order.
	var states []alarms.IncidentState
	var lastSeq uint64
	for len(states) == 0 || states[len(states)-1] != alarms.StateClosed {
		ev := stream.next(t)
		if ev.name == "incident_gap" {
			t.Fatalf("gap: %s", ev.data)
		}
		if ev.name != "incident" {
			continue
		}
		var c alarms.IncidentChange
		if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
			t.Fatal(err)
		}
		if lastSeq != 0 && c.Seq != lastSeq+1 {
			t.Errorf("seq %d after %d", c.Seq, lastSeq)
		}
		lastSeq = c.Seq
		if c.Incident != nil && c.Incident.ID == id && (len(states) == 0 || states[len(states)-1] != c.Incident.State) {
			states = append(states, c.Incident.State)
		}
	}
	want := []alarms.IncidentState{alarms.StateNew, alarms.StateAcknowledged, alarms.StateOffered, alarms.StateDispatched,
		alarms.StateOnScene, alarms.StateResolved, alarms.StateClosed}
	if !slices.Equal(states, want) {
		t.Errorf("stream states %v, want %v", states, want)
	}

	// Units and areas.
	var units []alarms.UnitView
	getJSON(t, srv, "/api/units", 200, &units)
	if len(units) != 2 || units[0].ID != "u1" || units[0].Status != alarms.UnitAvailable {
		t.Errorf("units %+v", units)
	}
	getJSON(t, srv, "/api/units/u3", 404, nil)
	var areas []alarms.Area
	getJSON(t, srv, "/api/areas", 200, &areas)
	if len(areas) != 4 || areas[3].Dispatch != alarms.DispatchManual {
		t.Errorf("areas %+v", areas)
	}
}
