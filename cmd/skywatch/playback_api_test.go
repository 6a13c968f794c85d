package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestPlaybackAPIAttacks asks the demo's real recorder, through the API,
// what the playback routes must refuse: another township's camera and
// incident clip (403, audited), a viewer's download (403), no session
// (401), path tricks in IDs, malformed, reversed and enormous spans (400),
// a span with nothing in it (404); and checks that what is allowed comes
// with the hash of its bytes.
func TestPlaybackAPIAttacks(t *testing.T) {
	if testing.Short() {
		t.Skip("demo test skipped in -short mode")
	}
	demo := startDemo(t, "-alarm-every", "0", "-record-segment", "1s", "-pre-alarm", "2s", "-post-alarm", "2s")
	east := demo.camerasIn("dongcheng")
	west := demo.camerasIn("xicheng")
	if len(east) == 0 || len(west) == 0 {
		t.Fatalf("cameras: east %v, west %v", east, west)
	}
	dong := demo.login(t, "dongcheng")
	watch := demo.login(t, "watch")

	// Wait for a few seconds of the east camera.
	var spans struct {
		Spans []struct{ Start, End time.Time } `json:"spans"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		dong.getJSON(t, "/api/cameras/"+east[0]+"/recordings", &spans)
		if len(spans.Spans) > 0 && spans.Spans[len(spans.Spans)-1].End.Sub(spans.Spans[len(spans.Spans)-1].Start) > 3*time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 3 s of %s recorded within 30 s: %+v", east[0], spans)
		}
		time.Sleep(200 * time.Millisecond)
	}
	last := spans.Spans[len(spans.Spans)-1]
	q := func(start, end time.Time) string {
		return "start=" + url.QueryEscape(start.Format(time.RFC3339Nano)) + "&end=" + url.QueryEscape(end.Format(time.RFC3339Nano))
	}
	ok := q(last.Start, last.End)
	for _, tc := range []struct {
		name string
		as   *apiSession
		path string
		code int
	}{
		{"own camera", dong, "/api/cameras/" + east[0] + "/video.mp4?" + ok, 200},
		{"own camera, download", dong, "/api/cameras/" + east[0] + "/video.mp4?" + ok + "&download=1", 200},
		{"other township's recordings", dong, "/api/cameras/" + west[0] + "/recordings", 403},
		{"other township's video", dong, "/api/cameras/" + west[0] + "/video.mp4?" + ok, 403},
		{"path trick", dong, "/api/cameras/" + url.PathEscape("../segments/"+west[0]) + "/video.mp4?" + ok, 403},
		{"viewer plays", watch, "/api/cameras/" + east[0] + "/video.mp4?" + ok, 200},
		{"viewer downloads", watch, "/api/cameras/" + east[0] + "/video.mp4?" + ok + "&download=1", 403},
		{"reversed", dong, "/api/cameras/" + east[0] + "/video.mp4?" + q(last.End, last.Start), 400},
		{"enormous", dong, "/api/cameras/" + east[0] + "/video.mp4?start=1970-01-01T00:00:00Z&end=9999-01-01T00:00:00Z", 400},
		{"malformed", dong, "/api/cameras/" + east[0] + "/video.mp4?start=" + strings.Repeat("%00", 1000), 400},
		{"too long", dong, "/api/cameras/" + east[0] + "/video.mp4?" + q(last.Start, last.Start.Add(31*time.Minute)), 400},
		{"nothing recorded", dong, "/api/cameras/" + east[0] + "/video.mp4?" + q(last.Start.Add(-48*time.Hour), last.Start.Add(-48*time.Hour+10*time.Minute)), 404},
		{"a month of spans", dong, "/api/cameras/" + east[0] + "/recordings?from=2000-01-01T00:00:00Z", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := tc.as.do(t, http.MethodGet, tc.path, "")
			if status != tc.code {
				t.Errorf("%s: %d %.200s, want %d", tc.path, status, body, tc.code)
			}
		})
	}
	// Without a session: 401.
	resp, err := http.Get(demo.base + "/api/cameras/" + east[0] + "/video.mp4?" + ok)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no session: %d", resp.StatusCode)
	}

	// A download's announced hash is its bytes'; it is audited with it.
	req, _ := http.NewRequest(http.MethodGet, demo.base+"/api/cameras/"+east[0]+"/video.mp4?"+ok+"&download=1", nil)
	resp, err = dong.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	var buf [32 << 10]byte
	n := 0
	for {
		k, err := resp.Body.Read(buf[:])
		h.Write(buf[:k])
		n += k
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	sum := hex.EncodeToString(h.Sum(nil))
	if got := resp.Header.Get("X-Content-SHA256"); got != sum || n == 0 {
		t.Errorf("download: announced %s, the %d bytes have %s", got, n, sum)
	}

	// Another township's incident: its clips are refused, listed or not.
	wdev := demo.device(t, "xicheng")
	publishEvent(t, demo.connectDevice(t, wdev), wdev, "panic", "120")
	winc := demo.waitIncident(t, wdev.ID)
	var detail struct {
		Clips []struct{ URL, Camera, Status string } `json:"clips"`
	}
	deadline = time.Now().Add(30 * time.Second)
	for len(detail.Clips) == 0 {
		demo.admin.getJSON(t, "/api/incidents/"+winc.ID, &detail)
		if time.Now().After(deadline) {
			t.Fatalf("incident %s has no clips within 30 s", winc.ID)
		}
		time.Sleep(200 * time.Millisecond)
	}
	clip := detail.Clips[0].URL
	if status, body := dong.do(t, http.MethodGet, clip, ""); status != http.StatusForbidden {
		t.Errorf("another township's clip %s: %d %.200s", clip, status, body)
	}
	if status, _ := demo.login(t, "xicheng").do(t, http.MethodGet, clip, ""); status != http.StatusOK {
		t.Errorf("own township's clip %s: %d", clip, status)
	}
	for _, p := range []string{"/api/incidents/" + winc.ID + "/clips/..%2F..%2Fsegments", "/api/incidents/..%2Fevidence/clips/x"} {
		if status, body := demo.admin.do(t, http.MethodGet, p, ""); status != http.StatusNotFound && status != http.StatusForbidden {
			t.Errorf("%s: %d %.200s", p, status, body)
		}
	}

	// The refusals are in the audit log.
	var page struct {
		Records []auditRecord `json:"records"`
	}
	demo.admin.getJSON(t, "/api/audit?user=dongcheng&action=denied&limit=100", &page)
	want := map[string]bool{"camera:" + west[0]: false, "incident:" + winc.ID: false}
	for _, r := range page.Records {
		if _, ok := want[r.Target]; ok {
			want[r.Target] = true
		}
	}
	for target, seen := range want {
		if !seen {
			t.Errorf("no denied record of %s for dongcheng", target)
		}
	}
	demo.admin.getJSON(t, "/api/audit?user=dongcheng&action=export&limit=10", &page)
	if len(page.Records) == 0 || !strings.Contains(page.Records[0].Detail, "sha256 "+sum) {
		b, _ := json.Marshal(page.Records)
		t.Errorf("export audit: %s, want sha256 %s", b, sum)
	}
	t.Logf("exported %d bytes of %s with sha256 %s", n, east[0], sum)
}
