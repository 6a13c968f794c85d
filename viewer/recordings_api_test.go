package viewer

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skywatch/skywatch/accounts"
	rec "github.com/skywatch/skywatch/recorder"
)

// startRecordingServer is the auth server (yard in v1 under township t1,
// gate in township t2) with a fake recorder.
func startRecordingServer(t *testing.T, f *fakeRecordings, mod func(*Config)) *authServer {
	t.Helper()
	return startAuthServerOpts(t, authOpts{recordings: f, config: mod})
}

// get sends a GET and returns the answer with its body read.
func (o *operator) get(path string) (*http.Response, []byte) {
	o.t.Helper()
	resp, err := o.c.Get(o.base + path)
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		o.t.Fatal(err)
	}
	return resp, b
}

// waitAudit waits for an audit record matching q and test; the handler
// writes it after the last byte of the body.
func waitAudit(t *testing.T, s *authServer, q accounts.AuditQuery, test func(accounts.AuditRecord) bool) accounts.AuditRecord {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, r := range auditActions(t, s, q) {
			if test == nil || test(r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit record %+v: have %+v", q, auditActions(t, s, accounts.AuditQuery{Limit: 50}))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func span(f *fakeRecordings, from, to time.Duration) string {
	return "start=" + url.QueryEscape(f.t0.Add(from).Format(time.RFC3339)) + "&end=" + url.QueryEscape(f.t0.Add(to).Format(time.RFC3339))
}

// The span listing: in scope it lists the spans (with the gap) and the
// camera's status; out of scope 403 audited; without a login 401; bad
// ranges 400; a camera that does not record 404.
func TestRecordingSpans(t *testing.T) {
	f := newFakeRecordings()
	s := startRecordingServer(t, f, nil)
	op := mustLogin(t, s.base, "op1")
	q := "?from=" + url.QueryEscape(f.t0.Add(-time.Hour).Format(time.RFC3339)) + "&to=" + url.QueryEscape(f.t0.Add(2*time.Hour).Format(time.RFC3339))
	resp, body := op.get("/api/cameras/yard/recordings" + q)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("spans: %d %s", resp.StatusCode, body)
	}
	var got spansJSON
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Spans) != 2 || !got.Spans[0].End.Equal(f.t0.Add(30*time.Minute)) || !got.Spans[1].Start.Equal(f.t0.Add(31*time.Minute)) {
		t.Errorf("spans: %+v, want two with a gap from 30 to 31 min", got.Spans)
	}
	if got.Status == nil || got.Status.State != rec.StateRecording || got.MaxExportS != 1800 {
		t.Errorf("status %+v, max_export_s %v", got.Status, got.MaxExportS)
	}
	// Nothing in the last day (the default range): an empty list, not null.
	if _, body := op.get("/api/cameras/yard/recordings"); !strings.Contains(string(body), `"spans": []`) {
		t.Errorf("default range: %s", body)
	}

	for _, tc := range []struct {
		name, path string
		code       int
		inBody     string
	}{
		{"other township", "/api/cameras/gate/recordings", 403, "outside your area"},
		{"unknown camera", "/api/cameras/nope/recordings", 403, "outside your area"},
		{"path trick", "/api/cameras/..%2F..%2Fetc/recordings", 403, "outside your area"},
		{"malformed from", "/api/cameras/yard/recordings?from=yesterday", 400, "from:"},
		{"reversed", "/api/cameras/yard/recordings?from=2026-05-02T00:00:00Z&to=2026-05-01T00:00:00Z", 400, "after from"},
		{"too long", "/api/cameras/yard/recordings?from=2020-01-01T00:00:00Z&to=2026-05-01T00:00:00Z", 400, "at most 31 days"},
		{"year 0", "/api/cameras/yard/recordings?from=0000-01-01T00:00:00Z", 400, "from:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := op.get(tc.path)
			if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.inBody) {
				t.Errorf("%s: %d %s, want %d with %q", tc.path, resp.StatusCode, body, tc.code, tc.inBody)
			}
		})
	}
	waitAudit(t, s, accounts.AuditQuery{User: "op1", Action: "denied", Target: "camera:gate"}, nil)

	// The county sees every camera; one that does not record is 404.
	admin := mustLogin(t, s.base, "admin")
	if resp, body := admin.get("/api/cameras/nope/recordings"); resp.StatusCode != 404 || !strings.Contains(string(body), "not recorded") {
		t.Errorf("camera that does not record: %d %s", resp.StatusCode, body)
	}
	if resp, body := admin.get("/api/cameras/..%2F..%2Fetc/recordings"); resp.StatusCode != 404 {
		t.Errorf("path trick as admin: %d %s", resp.StatusCode, body)
	}
	// A viewer watches recordings.
	view := mustLogin(t, s.base, "view1")
	if resp, body := view.get("/api/cameras/yard/recordings" + q); resp.StatusCode != 200 {
		t.Errorf("viewer: %d %s", resp.StatusCode, body)
	}
	// Without a login: 401.
	anon := newOperator(t, s.base)
	if resp, _ := anon.get("/api/cameras/yard/recordings"); resp.StatusCode != 401 {
		t.Errorf("unauthenticated: %d", resp.StatusCode)
	}
	if resp, _ := anon.get("/api/cameras/yard/video.mp4?" + span(f, 0, time.Minute)); resp.StatusCode != 401 {
		t.Errorf("unauthenticated video: %d", resp.StatusCode)
	}
	if f.exports != nil {
		t.Errorf("refused requests reached the recorder: %v", f.exports)
	}
}

// /api/cameras shows each recording camera's status and reason.
func TestCamerasShowRecording(t *testing.T) {
	f := newFakeRecordings()
	s := startRecordingServer(t, f, nil)
	admin := mustLogin(t, s.base, "admin")
	_, body := admin.get("/api/cameras")
	var list []cameraJSON
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	byID := map[string]cameraJSON{}
	for _, c := range list {
		byID[c.ID] = c
	}
	if r := byID["yard"].Recording; r == nil || r.State != "recording" || r.Record != "always" {
		t.Errorf("yard: %+v", r)
	}
	if r := byID["gate"].Recording; r == nil || r.State != "stopped" || r.Reason == "" {
		t.Errorf("gate: %+v", r)
	}
	_, body = admin.get("/api/cameras/gate")
	if !strings.Contains(string(body), `"state": "stopped"`) {
		t.Errorf("one camera: %s", body)
	}
}

// video.mp4: bad spans are 400 before the recorder reads anything, an
// empty span 404, a recorder that cannot answer 503; playback and export
// are audited with the SHA-256 of the bytes sent, and an export announces
// it before the body.
func TestVideoSpansAndExport(t *testing.T) {
	f := newFakeRecordings()
	s := startRecordingServer(t, f, nil)
	op := mustLogin(t, s.base, "op1")
	for _, tc := range []struct {
		name, query string
		code        int
		inBody      string
	}{
		{"no start", "", 400, "start: required"},
		{"malformed start", "start=now", 400, "start:"},
		{"malformed end", "start=2026-05-01T08:00:00Z&end=later", 400, "end:"},
		{"reversed", span(f, time.Minute, 0), 400, "after start"},
		{"empty", span(f, time.Minute, time.Minute), 400, "after start"},
		{"too long", span(f, 0, 31*time.Minute), 400, "max_export"},
		{"enormous", "start=2000-01-01T00:00:00Z&end=9999-12-31T23:59:59Z", 400, "max_export"},
		{"huge number", "start=2026-05-01T08:00:00Z&end=" + strings.Repeat("9", 5000), 400, "end:"},
		{"bad download", span(f, 0, time.Minute) + "&download=yes", 400, "download"},
		{"nothing recorded", span(f, 2*time.Hour, 2*time.Hour+time.Minute), 404, "nothing recorded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := op.get("/api/cameras/yard/video.mp4?" + tc.query)
			if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.inBody) {
				t.Errorf("%d %s, want %d with %q", resp.StatusCode, shortBody(body), tc.code, tc.inBody)
			}
		})
	}
	if len(f.exports) != 1 {
		t.Errorf("the recorder was asked %d times, want once (the span with nothing in it)", len(f.exports))
	}

	// Playback: the MP4 from the keyframe before start, audited.
	resp, body := op.get("/api/cameras/yard/video.mp4?" + span(f, 90*time.Second+500*time.Millisecond, 3*time.Minute))
	wantStart := f.t0.Add(90 * time.Second)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/mp4" || resp.Header.Get("Content-Disposition") != "" {
		t.Fatalf("playback: %d %v", resp.StatusCode, resp.Header)
	}
	if got := resp.Header.Get(headerStart); got != wantStart.Format(time.RFC3339Nano) {
		t.Errorf("%s: %s, want %s", headerStart, got, wantStart)
	}
	if string(body) != string(exportBytes("yard", wantStart, f.t0.Add(3*time.Minute))) {
		t.Errorf("playback body: %d bytes, not the export's", len(body))
	}
	waitAudit(t, s, accounts.AuditQuery{User: "op1", Action: "playback", Target: "camera:yard"}, func(r accounts.AuditRecord) bool {
		return r.Outcome == "ok" && strings.Contains(r.Detail, "sha256 "+sha256Hex(body)) && strings.Contains(r.Detail, "span 2026-05-01T08:01:30Z/2026-05-01T08:03:00Z")
	})

	// HEAD: the span's start and end without the body.
	req, _ := http.NewRequest(http.MethodHead, op.base+"/api/cameras/yard/video.mp4?"+span(f, 90*time.Second+500*time.Millisecond, 3*time.Minute), nil)
	if hr, err := op.c.Do(req); err != nil || hr.StatusCode != 200 || hr.Header.Get(headerStart) != wantStart.Format(time.RFC3339Nano) {
		t.Errorf("HEAD: %v %v", err, hr)
	} else {
		hr.Body.Close()
	}

	// Export: Content-Disposition, the hash before the body, audited.
	resp, body = op.get("/api/cameras/yard/video.mp4?" + span(f, 0, 10*time.Minute) + "&download=1")
	if resp.StatusCode != 200 {
		t.Fatalf("export: %d %s", resp.StatusCode, shortBody(body))
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="yard_20260501T080000Z_20260501T081000Z.mp4"` {
		t.Errorf("Content-Disposition: %s", cd)
	}
	if got := resp.Header.Get(headerSHA256); got != sha256Hex(body) {
		t.Errorf("%s %s, the body's is %s", headerSHA256, got, sha256Hex(body))
	}
	if !strings.HasPrefix(resp.Header.Get("Repr-Digest"), "sha-256=:") {
		t.Errorf("Repr-Digest: %q", resp.Header.Get("Repr-Digest"))
	}
	waitAudit(t, s, accounts.AuditQuery{User: "op1", Action: "export", Target: "camera:yard"}, func(r accounts.AuditRecord) bool {
		return r.Outcome == "ok" && strings.Contains(r.Detail, "sha256 "+sha256Hex(body))
	})

	// Out of scope: 403 and audited, nothing read.
	before := len(f.exports)
	if resp, _ := op.get("/api/cameras/gate/video.mp4?" + span(f, 0, time.Minute) + "&download=1"); resp.StatusCode != 403 {
		t.Errorf("other township's camera: %d", resp.StatusCode)
	}
	waitAudit(t, s, accounts.AuditQuery{User: "op1", Action: "denied", Target: "camera:gate"}, nil)
	// A viewer plays, but does not download.
	view := mustLogin(t, s.base, "view1")
	if resp, _ := view.get("/api/cameras/yard/video.mp4?" + span(f, 0, time.Minute)); resp.StatusCode != 200 {
		t.Errorf("viewer playback: %d", resp.StatusCode)
	}
	if resp, body := view.get("/api/cameras/yard/video.mp4?" + span(f, 0, time.Minute) + "&download=1"); resp.StatusCode != 403 ||
		!strings.Contains(string(body), "may watch recordings but not download") {
		t.Errorf("viewer download: %d %s", resp.StatusCode, shortBody(body))
	}
	waitAudit(t, s, accounts.AuditQuery{User: "view1", Action: "denied", Target: "camera:yard"}, nil)
	if len(f.exports) != before+1 {
		t.Errorf("refused requests reached the recorder: %v", f.exports[before:])
	}

	// The recorder failing: 503, never 500.
	f.fail = rec.ErrClosed
	if resp, body := op.get("/api/cameras/yard/video.mp4?" + span(f, 0, time.Minute)); resp.StatusCode != 503 {
		t.Errorf("recorder closed: %d %s", resp.StatusCode, body)
	}
	f.fail = rec.ErrBadSpan
	if resp, body := op.get("/api/cameras/yard/video.mp4?" + span(f, 0, time.Minute)); resp.StatusCode != 400 {
		t.Errorf("recorder's bad span: %d %s", resp.StatusCode, body)
	}
}

func shortBody(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// Exports at once are bounded per user and in all (429 past them), and a
// client that goes away frees its slot and stops the export.
func TestExportLimits(t *testing.T) {
	f := newFakeRecordings()
	f.block = make(chan struct{})
	s := startRecordingServer(t, f, func(c *Config) { c.ExportsPerUser, c.ExportsTotal = 2, 3 })
	op := mustLogin(t, s.base, "op1")
	sup := mustLogin(t, s.base, "sup")

	// start begins an export that holds until released or cancelled.
	var wg sync.WaitGroup
	start := func(o *operator) context.CancelFunc {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, o.base+"/api/cameras/yard/video.mp4?"+span(f, 0, time.Minute), nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := o.c.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
		return cancel
	}
	waitSlots := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for s.exportSlots.inUse() != n || f.writingNow() != n {
			if time.Now().After(deadline) {
				t.Fatalf("%d slots in use, %d exports writing; want %d", s.exportSlots.inUse(), f.writingNow(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	c1, c2 := start(op), start(op)
	waitSlots(2)
	resp, body := op.get("/api/cameras/yard/video.mp4?" + span(f, 0, time.Minute))
	if resp.StatusCode != 429 || !strings.Contains(string(body), `"scope": "user"`) || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third of one user: %d %s", resp.StatusCode, body)
	}
	c3 := start(sup)
	waitSlots(3)
	resp, body = sup.get("/api/cameras/yard/video.mp4?" + span(f, 0, time.Minute))
	if resp.StatusCode != 429 || !strings.Contains(string(body), `"scope": "server"`) {
		t.Errorf("past the total: %d %s", resp.StatusCode, body)
	}
	// A client that goes away: its export stops and its slot is free.
	c1()
	waitSlots(2)
	waitAudit(t, s, accounts.AuditQuery{User: "op1", Action: "playback"}, func(r accounts.AuditRecord) bool { return r.Outcome == "incomplete" })
	close(f.block)
	wg.Wait()
	c2()
	c3()
	waitSlots(0)
	if resp, _ := op.get("/api/cameras/yard/video.mp4?" + span(f, 0, time.Minute)); resp.StatusCode != 200 {
		t.Errorf("after the others ended: %d", resp.StatusCode)
	}
}

// An incident lists its clips, those of cameras outside the user's area
// too; a clip's URL serves it to whoever sees the incident, audited with
// the hash of the bytes sent (and a mismatch with the recorded hash
// shows); another township's incident is refused; IDs with path tricks
// never reach the recorder.
func TestIncidentClips(t *testing.T) {
	f := newFakeRecordings()
	s := startRecordingServer(t, f, nil)
	op := mustLogin(t, s.base, "op1")
	_, body := op.get("/api/incidents/in1")
	var inc struct {
		Cameras []incidentCameraJSON `json:"cameras"`
		Clips   []clipJSON           `json:"clips"`
	}
	if err := json.Unmarshal(body, &inc); err != nil {
		t.Fatal(err)
	}
	if len(inc.Clips) != 3 || inc.Clips[0].Camera != "yard" || inc.Clips[1].Camera != "gate" {
		t.Fatalf("clips: %+v", inc.Clips)
	}
	c1 := inc.Clips[0]
	if c1.Status != rec.ClipComplete || c1.SHA256 != sha256Hex(clipData("c1")) || c1.URL != "/api/incidents/in1/clips/c1" {
		t.Errorf("clip: %+v", c1)
	}
	// The clip of gate (another township) is the incident's evidence: op1
	// plays it, though gate's live video and recordings are refused.
	resp, b := op.get(inc.Clips[1].URL)
	if resp.StatusCode != 200 || string(b) != string(clipData("c2")) {
		t.Errorf("clip of a camera outside the area: %d", resp.StatusCode)
	}
	resp, b = op.get(c1.URL + "?download=1")
	if resp.StatusCode != 200 || resp.Header.Get(headerSHA256) != c1.SHA256 || sha256Hex(b) != c1.SHA256 ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "yard_in1_") {
		t.Errorf("clip download: %d %v", resp.StatusCode, resp.Header)
	}
	waitAudit(t, s, accounts.AuditQuery{User: "op1", Action: "clip_export", Target: "incident:in1"}, func(r accounts.AuditRecord) bool {
		return r.Outcome == "ok" && strings.Contains(r.Detail, "sha256 "+c1.SHA256) && strings.Contains(r.Detail, "camera yard")
	})
	// A clip still recording: the hash of what is sent, announced.
	resp, b = op.get(inc.Clips[1].URL + "?download=1")
	if resp.StatusCode != 200 || resp.Header.Get(headerSHA256) != sha256Hex(b) {
		t.Errorf("recording clip download: %d %s", resp.StatusCode, resp.Header.Get(headerSHA256))
	}
	// Bytes that differ from the recorded hash are audited as such.
	if resp, _ := op.get(inc.Clips[2].URL); resp.StatusCode != 200 {
		t.Errorf("tampered clip: %d", resp.StatusCode)
	}
	waitAudit(t, s, accounts.AuditQuery{User: "op1", Action: "clip_playback"}, func(r accounts.AuditRecord) bool {
		return r.Outcome == "mismatch"
	})

	for _, tc := range []struct {
		name, path string
		code       int
	}{
		{"other township's incident", "/api/incidents/in2/clips/c3", 403},
		{"unknown incident", "/api/incidents/nope/clips/c1", 403},
		{"unknown clip", "/api/incidents/in1/clips/c9", 404},
		{"dot dot", "/api/incidents/in1/clips/%2E%2E", 404},
		{"encoded slash", "/api/incidents/in1/clips/..%2F..%2Fsegments", 404},
		{"backslash", "/api/incidents/in1/clips/..%5Cx", 404},
		{"long", "/api/incidents/in1/clips/" + strings.Repeat("a", 300), 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp, body := op.get(tc.path); resp.StatusCode != tc.code {
				t.Errorf("%s: %d %s, want %d", tc.path, resp.StatusCode, shortBody(body), tc.code)
			}
		})
	}
	waitAudit(t, s, accounts.AuditQuery{User: "op1", Action: "denied", Target: "incident:in2"}, nil)
	// A viewer of the township plays the clip but does not download it.
	view := mustLogin(t, s.base, "view1")
	if resp, _ := view.get(c1.URL); resp.StatusCode != 200 {
		t.Errorf("viewer clip playback: %d", resp.StatusCode)
	}
	if resp, _ := view.get(c1.URL + "?download=1"); resp.StatusCode != 403 {
		t.Errorf("viewer clip download: %d", resp.StatusCode)
	}
	// The county sees both incidents' clips.
	sup := mustLogin(t, s.base, "sup")
	if resp, _ := sup.get("/api/incidents/in2/clips/c3"); resp.StatusCode != 200 {
		t.Errorf("county clip: %d", resp.StatusCode)
	}
}
