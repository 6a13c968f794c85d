package viewer

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/boltstore"
	"github.com/skywatch/skywatch/hardware"
)

// scopedRig is a server over a real intake and engine with two
// townships: county c > t1 > v1 and c > t2 > v2, both dispatched by hand.
// Panic buttons p1 (v1) and p2 (v2); units u1 (v1), u2 (v2) and the
// county brigade uc (c), all on duty; cameras yard (v1) and gate (v2).
// Users: admin (the county) and op1 (operator of t1).
type scopedRig struct {
	*Server
	base     string
	records  *accounts.FileStore
	in       *alarms.Intake
	inc1     string // p1's incident, in v1
	inc2     string // p2's incident, in v2
	admin    *operator
	op1      *operator
	patrols  map[string]*patrolClient
	deadline time.Time
}

func startScopedRig(t *testing.T) *scopedRig {
	t.Helper()
	const lat, lon = 30.0, 120.0
	cfg := alarms.Config{
		MQTT: alarms.MQTTConfig{Address: "127.0.0.1:0", TopicPrefix: "sw"},
		Areas: []alarms.AreaConfig{
			{ID: "c", Name: "County", Kind: alarms.AreaCounty},
			{ID: "t1", Name: "Township 1", Parent: "c", Kind: alarms.AreaTownship},
			{ID: "v1", Name: "Village 1", Parent: "t1", Kind: alarms.AreaVillage, Dispatch: alarms.DispatchManual},
			{ID: "t2", Name: "Township 2", Parent: "c", Kind: alarms.AreaTownship},
			{ID: "v2", Name: "Village 2", Parent: "t2", Kind: alarms.AreaVillage, Dispatch: alarms.DispatchManual},
		},
		Devices: []alarms.DeviceConfig{
			{ID: "p1", Area: "v1", Lat: lat, Lon: lon, Password: "pw-p1"},
			{ID: "p2", Area: "v2", Lat: metresNorth(lat, 5000), Lon: lon, Password: "pw-p2"},
		},
		Units: []alarms.UnitConfig{
			{ID: "u1", Password: "pw-u1", Area: "v1", Lat: metresNorth(lat, 300), Lon: lon},
			{ID: "u2", Password: "pw-u2", Area: "v2", Lat: metresNorth(lat, 5300), Lon: lon},
			{ID: "uc", Password: "pw-uc", Area: "c", Lat: metresNorth(lat, 2500), Lon: lon},
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
	eng, err := alarms.NewEngine(in, store, alarms.EngineOptions{Poll: 100 * time.Millisecond})
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

	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := accounts.NewDirectory([]accounts.UserConfig{
		{Username: "admin", Role: accounts.RoleAdmin, PasswordHash: string(hash)},
		{Username: "op1", Role: accounts.RoleOperator, Area: "t1", PasswordHash: string(hash)},
	})
	if err != nil {
		t.Fatal(err)
	}
	records, err := accounts.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = records.Close() })
	s, err := New(loopbackConfig(), Deps{
		Cameras: &fakeSource{states: testStates}, Registry: prometheus.NewRegistry(),
		Alarms: in, Incidents: eng, Patrol: eng, CheckUnit: in.CheckUnit,
		Accounts: dir, Records: records,
		CameraPlaces: []CameraPlace{{ID: "yard", Area: "v1"}, {ID: "gate", Area: "v2"}},
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	r := &scopedRig{Server: s, base: "http://" + s.Addr().String(), records: records, in: in,
		patrols: map[string]*patrolClient{}, deadline: time.Now().Add(2 * testTimeout)}
	r.admin, r.op1 = mustLogin(t, r.base, "admin"), mustLogin(t, r.base, "op1")

	// Every unit comes on duty through the patrol page.
	for _, u := range cfg.Units {
		p := newPatrolClient(t, r.base)
		if code, body := p.login(u.ID, u.Password); code != http.StatusOK {
			t.Fatalf("login %s: %d %s", u.ID, code, body)
		}
		p.mustDo("POST", "position", map[string]any{"lat": u.Lat, "lon": u.Lon, "status": "available"}, http.StatusOK, nil)
		r.patrols[u.ID] = p
	}
	r.inc1, r.inc2 = r.panic(t, "p1"), r.panic(t, "p2")
	return r
}

// panic sends a panic from device and returns the incident it opened.
func (r *scopedRig) panic(t *testing.T, device string) string {
	t.Helper()
	publish(t, mqttDevice(t, r.in, device), "sw/dev/"+device+"/event", `{"id":"x1","class":"panic","zone":"1"}`)
	for {
		var page incidentsJSON
		code, body := r.admin.do(http.MethodGet, "/api/incidents?open=true", "", false)
		if code != http.StatusOK {
			t.Fatalf("incidents: %d %s", code, body)
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatal(err)
		}
		for _, inc := range page.Incidents {
			if inc.Device == device {
				return inc.ID
			}
		}
		if time.Now().After(r.deadline) {
			t.Fatalf("no incident for %s: %s", device, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// unitStatus is a unit's status as the county sees it.
func (r *scopedRig) unitStatus(t *testing.T, id string) alarms.UnitStatus {
	t.Helper()
	var u alarms.UnitView
	code, body := r.admin.do(http.MethodGet, "/api/units/"+id, "", false)
	if code != http.StatusOK || json.Unmarshal([]byte(body), &u) != nil {
		t.Fatalf("unit %s: %d %s", id, code, body)
	}
	return u.Status
}

// deniedTargets counts op1's denied audit records by target.
func (r *scopedRig) deniedTargets(t *testing.T) map[string]int {
	t.Helper()
	page, err := r.records.QueryAudit(t.Context(), accounts.AuditQuery{User: "op1", Action: "denied", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, rec := range page.Records {
		out[rec.Target]++
	}
	return out
}

// TestActionsCheckTheUnitsScope: an operator of township t1 cannot assign
// (or offer to) a unit of township t2, free or busy, nor an unknown unit:
// each is refused with the same 403 as GET /api/units/{id}, audited, and
// the unit is not offered anything. A unit of the county above t1 (a
// county brigade) is visible to t1 and may be assigned.
func TestActionsCheckTheUnitsScope(t *testing.T) {
	r := startScopedRig(t)
	want := func(id string) string { return `"error": "unit ` + id + ` is outside your area"` }

	code, body := r.op1.do(http.MethodGet, "/api/units/u2", "", false)
	if code != http.StatusForbidden || !strings.Contains(body, want("u2")) {
		t.Fatalf("GET u2 as op1: %d %s", code, body)
	}
	for _, c := range []struct{ action, unit string }{
		{"assign", "u2"}, {"offer", "u2"}, {"assign", "u99"}, {"offer", "u99"},
	} {
		code, body := r.op1.do(http.MethodPost, "/api/incidents/"+r.inc1+"/"+c.action, `{"unit":"`+c.unit+`"}`, true)
		if code != http.StatusForbidden || !strings.Contains(body, want(c.unit)) {
			t.Errorf("op1 %s %s: %d %s, want 403 %s", c.action, c.unit, code, body, want(c.unit))
		}
	}
	if st := r.unitStatus(t, "u2"); st != alarms.UnitAvailable {
		t.Errorf("u2 after op1's refused assigns: %s, want available", st)
	}

	// u2 busy with its own township's incident: op1 learns nothing new.
	if code, body := r.admin.do(http.MethodPost, "/api/incidents/"+r.inc2+"/assign", `{"unit":"u2"}`, true); code != http.StatusOK {
		t.Fatalf("admin assigns u2: %d %s", code, body)
	}
	if st := r.unitStatus(t, "u2"); st != alarms.UnitOffered {
		t.Fatalf("u2 after the admin's assign: %s", st)
	}
	code, body = r.op1.do(http.MethodPost, "/api/incidents/"+r.inc1+"/assign", `{"unit":"u2"}`, true)
	if code != http.StatusForbidden || !strings.Contains(body, want("u2")) || strings.Contains(body, "offered") {
		t.Errorf("op1 assigns the offered u2: %d %s", code, body)
	}
	if denied := r.deniedTargets(t); denied["unit:u2"] != 4 || denied["unit:u99"] != 2 {
		t.Errorf("denied audit records by target: %v, want unit:u2 4 and unit:u99 2", denied)
	}

	// The county brigade is above t1: seen, so it may be sent.
	code, body = r.op1.do(http.MethodPost, "/api/incidents/"+r.inc1+"/assign", `{"unit":"uc"}`, true)
	if code != http.StatusOK || !strings.Contains(body, `"state": "offered"`) {
		t.Errorf("op1 assigns the county unit: %d %s", code, body)
	}
}

// TestOutOfAreaAnswersAlike walks every route that names one object, as
// op1 (township t1), with an object of t2 and with an ID that does not
// exist: status and body are the same but for the ID, and both are
// audited. The county's admin still gets 404 for what does not exist.
func TestOutOfAreaAnswersAlike(t *testing.T) {
	r := startScopedRig(t)
	for _, c := range []struct {
		method, path, body string
		hidden, missing    string // the IDs put in place of @ID
	}{
		{http.MethodGet, "/api/incidents/@ID", "", r.inc2, "no-such-incident"},
		{http.MethodPost, "/api/incidents/@ID/acknowledge", "{}", r.inc2, "no-such-incident"},
		{http.MethodPost, "/api/incidents/@ID/assign", `{"unit":"u1"}`, r.inc2, "no-such-incident"},
		{http.MethodPost, "/api/incidents/@ID/resolve", `{"disposition":"genuine"}`, r.inc2, "no-such-incident"},
		{http.MethodPost, "/api/incidents/" + r.inc1 + "/assign", `{"unit":"@ID"}`, "u2", "no-such-unit"},
		{http.MethodGet, "/api/units/@ID", "", "u2", "no-such-unit"},
		{http.MethodGet, "/api/devices/@ID", "", "p2", "no-such-device"},
		{http.MethodGet, "/api/events?device=@ID", "", "p2", "no-such-device"},
		{http.MethodGet, "/api/rejected?device=@ID", "", "p2", "no-such-device"},
		{http.MethodGet, "/api/incidents?area=@ID", "", "t2", "no-such-area"},
		{http.MethodGet, "/api/events?area=@ID", "", "t2", "no-such-area"},
		{http.MethodGet, "/api/cameras/@ID", "", "gate", "no-such-camera"},
		{http.MethodPost, "/whep/@ID", "v=0", "gate", "no-such-camera"},
	} {
		hidCode, hidBody := r.op1.do(c.method, strings.ReplaceAll(c.path, "@ID", c.hidden), strings.ReplaceAll(c.body, "@ID", c.hidden), true)
		misCode, misBody := r.op1.do(c.method, strings.ReplaceAll(c.path, "@ID", c.missing), strings.ReplaceAll(c.body, "@ID", c.missing), true)
		if hidCode != http.StatusForbidden || misCode != hidCode ||
			strings.ReplaceAll(hidBody, c.hidden, "@ID") != strings.ReplaceAll(misBody, c.missing, "@ID") {
			t.Errorf("%s %s: out of area %d %s; missing %d %s", c.method, c.path, hidCode, hidBody, misCode, misBody)
		}
	}
	denied := r.deniedTargets(t)
	for _, target := range []string{"incident:" + r.inc2, "incident:no-such-incident", "unit:u2", "unit:no-such-unit",
		"device:p2", "device:no-such-device", "area:t2", "area:no-such-area"} {
		if denied[target] == 0 {
			t.Errorf("no denied record for %s: %v", target, denied)
		}
	}
	// Nothing changed p2's incident.
	code, body := r.admin.do(http.MethodGet, "/api/incidents/"+r.inc2, "", false)
	if code != http.StatusOK || !strings.Contains(body, `"state": "new"`) {
		t.Errorf("p2's incident after op1's refused actions: %d %s", code, body)
	}
	// An ID as long as a request line allows is not repeated in full.
	long := strings.Repeat("x", 4000)
	if code, body := r.op1.do(http.MethodGet, "/api/units/"+long, "", false); code != http.StatusForbidden ||
		strings.Contains(body, long[:maxShownID+1]) || !strings.Contains(body, "is outside your area") {
		t.Errorf("GET a unit with a 4000-byte ID: %d %.300s", code, body)
	}
	page, err := r.records.QueryAudit(t.Context(), accounts.AuditQuery{User: "op1", Action: "denied", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range page.Records {
		if len(rec.Target)+len(rec.Detail) > 4*maxShownID {
			t.Errorf("a denied record repeats %d bytes of the request: %.200s", len(rec.Target)+len(rec.Detail), rec.Detail)
		}
	}
	// For the county, what does not exist is still 404.
	for _, path := range []string{"/api/incidents/no-such-incident", "/api/units/no-such-unit", "/api/devices/no-such-device"} {
		if code, body := r.admin.do(http.MethodGet, path, "", false); code != http.StatusNotFound {
			t.Errorf("admin GET %s: %d %s, want 404", path, code, body)
		}
	}
}

// TestEventsOfAnAreaTakeInItsSubAreas: /api/events?area= lists the events
// of the area and of every area under it, as /api/incidents does, for the
// county and for a township's operator (whose own list, without area, is
// their township's).
func TestEventsOfAnAreaTakeInItsSubAreas(t *testing.T) {
	r := startScopedRig(t)
	devicesOf := func(o *operator, path string) string {
		t.Helper()
		code, body := o.do(http.MethodGet, path, "", false)
		var page eventsJSON
		if code != http.StatusOK || json.Unmarshal([]byte(body), &page) != nil {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		var out []string
		for _, e := range page.Events {
			out = append(out, e.Device)
		}
		slices.Sort(out)
		return strings.Join(out, " ")
	}
	for _, c := range []struct {
		o          *operator
		path, want string
	}{
		{r.admin, "/api/events?area=c", "p1 p2"},
		{r.admin, "/api/events?area=t1", "p1"},
		{r.admin, "/api/events?area=t2&class=panic", "p2"},
		{r.admin, "/api/events?area=v2", "p2"},
		{r.admin, "/api/events?area=t1&device=p2", ""},
		{r.op1, "/api/events", "p1"},
		{r.op1, "/api/events?area=t1", "p1"},
		{r.op1, "/api/events?area=v1&class=panic", "p1"},
	} {
		if got := devicesOf(c.o, c.path); got != c.want {
			t.Errorf("GET %s: devices %q, want %q", c.path, got, c.want)
		}
	}
}
