package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestDemoRefusesOutOfScope runs the demo (real engine, intake, store and
// cameras) and checks, through the API alone, that a township operator
// sees only their township and is refused anything else by name, with the
// refusals in the audit log. The browser test checks the same through the
// page.
func TestDemoRefusesOutOfScope(t *testing.T) {
	if testing.Short() {
		t.Skip("demo test skipped in -short mode")
	}
	r := startDemo(t, "-dispatch", "manual", "-alarm-every", "0", "-units", "4")

	// One panic in each township, from their simulated devices.
	east, west := r.device(t, "dongcheng"), r.device(t, "xicheng")
	publishEvent(t, r.connectDevice(t, east), east, "panic", "120")
	publishEvent(t, r.connectDevice(t, west), west, "panic", "120")
	own, other := r.waitIncident(t, east.ID), r.waitIncident(t, west.ID)
	otherCams := r.camerasIn("xicheng")
	if len(otherCams) == 0 || len(r.camerasIn("dongcheng")) == 0 {
		t.Fatalf("the demo should have cameras in both townships: %+v", r.cameras)
	}
	otherCam, ownCam := otherCams[0], r.camerasIn("dongcheng")[0]

	op := r.login(t, "dongcheng")

	// Lists leave out what is outside the township.
	var cams []demoCameraInfo
	op.getJSON(t, "/api/cameras", &cams)
	var camIDs []string
	for _, c := range cams {
		camIDs = append(camIDs, c.ID)
	}
	slices.Sort(camIDs)
	if !slices.Equal(camIDs, r.camerasIn("dongcheng")) {
		t.Errorf("dongcheng's cameras = %v, want %v", camIDs, r.camerasIn("dongcheng"))
	}
	var incs struct {
		Incidents []demoIncident `json:"incidents"`
	}
	op.getJSON(t, "/api/incidents?open=true", &incs)
	var seenOwn bool
	for _, inc := range incs.Incidents {
		if !r.within(inc.Area, "dongcheng") {
			t.Errorf("dongcheng's incident list holds %s in %s", inc.ID, inc.Area)
		}
		seenOwn = seenOwn || inc.ID == own.ID
	}
	if !seenOwn {
		t.Errorf("dongcheng's incident list lacks its own incident %s", own.ID)
	}

	// A unit of xicheng, for the actions that name one.
	var units []struct{ ID, Area string }
	r.admin.getJSON(t, "/api/units", &units)
	otherUnit := ""
	for _, u := range units {
		if r.within(u.Area, "xicheng") {
			otherUnit = u.ID
			break
		}
	}
	if otherUnit == "" {
		t.Fatalf("the demo should have a unit in xicheng: %+v", units)
	}

	// The events of dongcheng are those of its villages.
	var events struct {
		Events []struct{ Device, Area string } `json:"events"`
	}
	op.getJSON(t, "/api/events?area=dongcheng&class=panic", &events)
	var seenEast bool
	for _, e := range events.Events {
		if !r.within(e.Area, "dongcheng") {
			t.Errorf("dongcheng's events hold one of %s in %s", e.Device, e.Area)
		}
		seenEast = seenEast || e.Device == east.ID
	}
	if !seenEast {
		t.Errorf("/api/events?area=dongcheng lacks %s's panic: %+v", east.ID, events.Events)
	}

	// By name: in scope is answered, out of scope refused.
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{http.MethodGet, "/api/cameras/" + ownCam, "", http.StatusOK},
		{http.MethodGet, "/api/incidents/" + own.ID, "", http.StatusOK},
		{http.MethodGet, "/api/cameras/" + otherCam, "", http.StatusForbidden},
		{http.MethodPost, "/whep/" + otherCam + "?stream=sub", "v=0\r\n", http.StatusForbidden},
		{http.MethodGet, "/api/incidents/" + other.ID, "", http.StatusForbidden},
		{http.MethodPost, "/api/incidents/" + other.ID + "/acknowledge", "{}", http.StatusForbidden},
		{http.MethodGet, "/api/devices/" + west.ID, "", http.StatusForbidden},
		{http.MethodGet, "/api/units/" + otherUnit, "", http.StatusForbidden},
		{http.MethodPost, "/api/incidents/" + own.ID + "/assign", `{"unit":"` + otherUnit + `"}`, http.StatusForbidden},
		{http.MethodPost, "/api/incidents/" + own.ID + "/offer", `{"unit":"` + otherUnit + `"}`, http.StatusForbidden},
	} {
		status, body := op.do(t, c.method, c.path, c.body)
		if status != c.want {
			t.Errorf("dongcheng: %s %s = %d %s, want %d", c.method, c.path, status, body, c.want)
		}
		if c.want == http.StatusForbidden && !strings.Contains(string(body), `"error"`) {
			t.Errorf("dongcheng: %s %s refused without an error message: %s", c.method, c.path, body)
		}
	}

	// The refused acknowledge changed nothing.
	var after demoIncident
	r.admin.getJSON(t, "/api/incidents/"+other.ID, &after)
	if after.State != other.State {
		t.Errorf("xicheng's incident went from %s to %s after a refused acknowledge", other.State, after.State)
	}

	// The audit log has each refusal.
	var audit struct {
		Records []auditRecord `json:"records"`
	}
	r.admin.getJSON(t, "/api/audit?action=denied&user=dongcheng&limit=100", &audit)
	count := map[string]int{}
	for _, rec := range audit.Records {
		if rec.User != "dongcheng" || rec.Action != "denied" {
			t.Errorf("audit filter returned %+v", rec)
		}
		count[rec.Target]++
	}
	for target, want := range map[string]int{
		"camera:" + otherCam:   2, // GET and WHEP
		"incident:" + other.ID: 2, // GET and acknowledge
		"device:" + west.ID:    1,
		"unit:" + otherUnit:    3, // GET, assign and offer
	} {
		if count[target] < want {
			b, _ := json.MarshalIndent(audit.Records, "", "  ")
			t.Errorf("audit has %d denied records for %s, want %d:\n%s", count[target], target, want, b)
		}
	}
}
