package viewer

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
)

// sessionEnd polls the session's URL, as the console does when its
// picture stops, until the server no longer says it is live; it returns
// the answer then.
func sessionEnd(t *testing.T, o *operator, location string) (int, errorBody) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		code, body := o.do(http.MethodGet, location, "", false)
		if code != http.StatusOK {
			var e errorBody
			_ = json.Unmarshal([]byte(body), &e)
			return code, e
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s still live: %s", location, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A reload that removes one camera and moves another (ingest's Apply):
// the real pion viewers of both lose their sessions, which release their
// slots; the session's URL then answers 410 with the reason's code, as
// the console reads it ("camera_removed": stop and say so;
// "camera_changed": connect again, which plays the new URL); an offer for
// the removed camera is refused with the same code; the end is audited
// with its reason.
func TestReloadEndsViewersWithTheReason(t *testing.T) {
	cam := hardware.NewCamera(hardware.CameraConfig{Paths: []hardware.CameraPath{
		{Path: "/yard", Clip: hardware.ClipGOP1s}, {Path: "/gate", Clip: hardware.ClipGOP1s}, {Path: "/gate2", Clip: hardware.ClipGOP1s}}})
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	yard := ingest.CameraConfig{ID: "yard", URL: cam.URL("/yard"), Transport: ingest.TransportTCP}
	gate := ingest.CameraConfig{ID: "gate", URL: cam.URL("/gate"), Transport: ingest.TransportTCP}
	cfg := ingest.Config{Cameras: []ingest.CameraConfig{yard, gate}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := ingest.NewManager(cfg, testLogger(t))
	m.Start()
	t.Cleanup(m.Close)
	s := startAuthServerOpts(t, authOpts{cameras: Adapt[*ingest.Reader](m)})
	admin := mustLogin(t, s.base, "admin")

	cy, code, body := admin.watch("yard")
	if code != http.StatusCreated {
		t.Fatalf("watch yard: %d %s", code, body)
	}
	cg, code, body := admin.watch("gate")
	if code != http.StatusCreated {
		t.Fatalf("watch gate: %d %s", code, body)
	}
	receive(t, cy, 1)
	receive(t, cg, 1)
	if code, body := admin.do(http.MethodGet, cy.location, "", false); code != http.StatusOK || !strings.Contains(body, `"live"`) {
		t.Fatalf("GET of a live session: %d %s", code, body)
	}

	gate.URL = cam.URL("/gate2")
	if _, err := m.Apply(ingest.Config{Cameras: []ingest.CameraConfig{gate}}); err != nil {
		t.Fatal(err)
	}

	code, e := sessionEnd(t, admin, cy.location)
	if code != http.StatusGone || e.Code != "camera_removed" || !strings.Contains(e.Error, "camera removed from the configuration") {
		t.Errorf("removed camera's session: %d %+v, want 410 camera_removed", code, e)
	}
	// A WHEP client that DELETEs its session learns the same.
	if code, body := admin.do(http.MethodDelete, cy.location, "", true); code != http.StatusGone || !strings.Contains(body, "camera_removed") {
		t.Errorf("DELETE of the removed camera's session: %d %s", code, body)
	}
	code, e = sessionEnd(t, admin, cg.location)
	if code != http.StatusGone || e.Code != "camera_changed" {
		t.Errorf("changed camera's session: %d %+v, want 410 camera_changed", code, e)
	}
	// Another user does not learn of someone else's session.
	other := mustLogin(t, s.base, "sup")
	if code, _ := other.do(http.MethodGet, cy.location, "", false); code != http.StatusNotFound {
		t.Errorf("another user's GET of the session: %d", code)
	}

	// The slots and the sessions are released.
	waitFor(t, "the sessions to end", func() bool { return videoOf(s.Server, "admin") == 0 })
	s.videoSlots.mu.Lock()
	slots := s.videoSlots.users["admin"]
	s.videoSlots.mu.Unlock()
	if slots != 0 {
		t.Errorf("admin holds %d video slots after the sessions ended", slots)
	}

	// An offer for the removed camera is refused with the reason; the
	// changed one plays again, from its new URL.
	_, code, body = admin.watch("yard")
	if code != http.StatusNotFound || !strings.Contains(body, `"camera_removed"`) {
		t.Errorf("offer for the removed camera: %d %s", code, body)
	}
	cg2, code, body := admin.watch("gate")
	if code != http.StatusCreated {
		t.Fatalf("watch the changed camera again: %d %s", code, body)
	}
	receive(t, cg2, 1)
	if n := cam.Sessions("/gate2"); n != 1 {
		t.Errorf("%d sessions on the new URL, want 1", n)
	}

	waitFor(t, "the audit records", func() bool {
		return len(auditActions(t, s, accounts.AuditQuery{Action: "watch", Target: "camera:yard"})) == 1
	})
	recs := auditActions(t, s, accounts.AuditQuery{Action: "watch", Target: "camera:yard"})
	if !strings.Contains(recs[0].Detail, "ended: camera removed from the configuration") {
		t.Errorf("watch record of the removed camera: %+v", recs[0])
	}
}
