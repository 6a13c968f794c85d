package viewer

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skywatch/skywatch/ingest"
)

const secret = "hunter2-s3cret"

// handOffer is a minimal WHEP offer with one video section of the given
// rtpmap and fmtp.
func handOffer(rtpmap, fmtp string) string {
	lines := []string{
		"v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0",
		"m=video 9 UDP/TLS/RTP/SAVPF 96", "c=IN IP4 0.0.0.0", "a=mid:0", "a=recvonly",
		"a=rtpmap:96 " + rtpmap,
	}
	if fmtp != "" {
		lines = append(lines, "a=fmtp:96 "+fmtp)
	}
	return strings.Join(lines, "\r\n") + "\r\n"
}

func testStates() []ingest.CameraState {
	return []ingest.CameraState{
		{
			ID: "yard", Name: "Yard", Status: ingest.StatusRetrying,
			Since:     time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC),
			LastError: "authentication failed: rtsp://admin:" + secret + "@192.0.2.9/ch1 answered 401",
			Reason:    ingest.ReasonAuth,
		},
		{
			ID: "gate", Name: "North gate", Status: ingest.StatusOnline,
			Since:  time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC),
			Tracks: []ingest.Track{h264Track(), pcmuTrack()}, BitrateKbps: 812.345, FrameRate: 25,
			Viewers: 2, Reconnects: 3, Dropped: 4,
		},
	}
}

func TestWHEPBadRequests(t *testing.T) {
	var readers []*fakeReader
	src := &fakeSource{
		states: testStates,
		open: func(_ context.Context, id string) (MediaReader, error) {
			switch id {
			case "gate":
				r := newFakeReader([]ingest.Track{h264Track()})
				readers = append(readers, r)
				return r, nil
			case "yard":
				return nil, &ingest.UnavailableError{State: testStates()[0]}
			}
			return nil, fmt.Errorf("camera %s: %w", id, ingest.ErrUnknownCamera)
		},
	}
	srv := startServer(t, src, nil)
	h264 := handOffer("H264/90000", "packetization-mode=1;profile-level-id=42e01f")

	tests := []struct {
		name, method, path, contentType, body string
		code                                  int
		inBody                                string
	}{
		{"unknown camera", "POST", "/whep/nope", "application/sdp", h264, 404, "unknown camera"},
		{"text body", "POST", "/whep/gate", "text/plain", h264, 415, "application/sdp"},
		{"no content type", "POST", "/whep/gate", "", h264, 415, "application/sdp"},
		{"malformed sdp", "POST", "/whep/gate", "application/sdp", "hello", 400, "sdp"},
		{"no media", "POST", "/whep/gate", "application/sdp", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", 400, "no media"},
		{"too big", "POST", "/whep/gate", "application/sdp", h264 + strings.Repeat("a=x:y\r\n", 20000), 413, "larger"},
		{"camera unavailable", "POST", "/whep/yard", "application/sdp", h264, 503, `"code": "auth"`},
		{"no common codec", "POST", "/whep/gate", "application/sdp", handOffer("VP8/90000", ""), 406, "camera sends H264, offer has VP8"},
		{"h264 without packetization mode 1", "POST", "/whep/gate", "application/sdp", handOffer("H264/90000", "profile-level-id=42e01f"), 406, "no common video codec"},
		{"delete unknown session", "DELETE", "/whep/gate/nope", "", "", 404, "no such session"},
		{"patch is not supported", "PATCH", "/whep/gate/nope", "application/trickle-ice-sdpfrag", "a=x", 405, ""},
		{"options", "OPTIONS", "/whep/gate", "", "", 204, ""},
		{"unknown api camera", "GET", "/api/cameras/nope", "", "", 404, "unknown camera"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := doRequest(t, tt.method, baseURL(srv)+tt.path, tt.contentType, tt.body)
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.code, body)
			}
			if !strings.Contains(body, tt.inBody) {
				t.Errorf("body %q lacks %q", body, tt.inBody)
			}
			if strings.Contains(body, secret) {
				t.Errorf("body leaks the camera password: %s", body)
			}
			if tt.code >= 400 && tt.code != 405 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Errorf("error Content-Type %q", resp.Header.Get("Content-Type"))
			}
		})
	}

	// The 503 carries the camera's state.
	resp, body := doRequest(t, "POST", baseURL(srv)+"/whep/yard", "application/sdp", h264)
	var e errorBody
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Camera == nil {
		t.Fatalf("503 body %q: %v", body, err)
	}
	if e.Camera.Status != "retrying" || e.Code != "auth" || e.Camera.LastErrorCode != "auth" ||
		e.Camera.LastError != ingest.ReasonAuth.Text() || strings.Contains(body, "192.0.2.9") {
		t.Errorf("503 = %s", body)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// OPTIONS tells what POST takes.
	resp, _ = doRequest(t, "OPTIONS", baseURL(srv)+"/whep/gate", "", "")
	if resp.Header.Get("Accept-Post") != "application/sdp" {
		t.Errorf("OPTIONS Accept-Post = %q", resp.Header.Get("Accept-Post"))
	}
	// Readers opened for refused offers were given back.
	if len(readers) != 2 {
		t.Fatalf("%d readers opened, want 2 (the two 406 cases)", len(readers))
	}
	for i, r := range readers {
		if !r.isClosed() {
			t.Errorf("reader %d of a refused offer not closed", i)
		}
	}
}

func TestCameraAPI(t *testing.T) {
	srv := startServer(t, &fakeSource{states: testStates}, nil)

	resp, body := doRequest(t, "GET", baseURL(srv)+"/api/cameras", "", "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/cameras: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(body, secret) || strings.Contains(body, "admin:") {
		t.Fatalf("camera list leaks credentials: %s", body)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0]["id"] != "gate" || list[1]["id"] != "yard" {
		t.Fatalf("list not sorted by id: %s", body)
	}
	for _, key := range []string{"id", "name", "status", "since", "last_error", "last_error_code", "tracks",
		"bitrate_kbps", "frame_rate", "viewers", "reconnects", "dropped"} {
		if _, ok := list[0][key]; !ok {
			t.Errorf("camera lacks %q: %v", key, list[0])
		}
	}

	resp, body = doRequest(t, "GET", baseURL(srv)+"/api/cameras/gate", "", "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/cameras/gate: %d %s", resp.StatusCode, body)
	}
	var gate cameraJSON
	if err := json.Unmarshal([]byte(body), &gate); err != nil {
		t.Fatal(err)
	}
	want := cameraJSON{
		ID: "gate", Name: "North gate", Status: "online", Since: gate.Since,
		Tracks: []trackJSON{
			{Kind: "video", Codec: "H264", Width: 640, Height: 360, ClockRate: 90000},
			{Kind: "audio", Codec: "PCMU", ClockRate: 8000},
		},
		BitrateKbps: 812.3, FrameRate: 25, Viewers: 2, Reconnects: 3, Dropped: 4,
	}
	if fmt.Sprint(gate) != fmt.Sprint(want) || gate.Since == nil || !gate.Since.Equal(testStates()[1].Since) {
		t.Errorf("camera = %+v\nwant %+v", gate, want)
	}

	resp, body = doRequest(t, "GET", baseURL(srv)+"/api/cameras/yard", "", "")
	// The reason's code and plain words, never the camera's address.
	if resp.StatusCode != 200 || strings.Contains(body, secret) || strings.Contains(body, "192.0.2.9") ||
		!strings.Contains(body, `"last_error_code": "auth"`) || !strings.Contains(body, ingest.ReasonAuth.Text()) {
		t.Errorf("GET /api/cameras/yard: %d %s", resp.StatusCode, body)
	}
}

func TestHealthReadyMetricsPage(t *testing.T) {
	var ready bool
	srv := startServer(t, &fakeSource{states: testStates}, func() bool { return ready })

	check := func(path string, code int, inBody string) {
		t.Helper()
		resp, body := doRequest(t, "GET", baseURL(srv)+path, "", "")
		if resp.StatusCode != code || !strings.Contains(body, inBody) {
			t.Errorf("GET %s: %d %q, want %d with %q", path, resp.StatusCode, body, code, inBody)
		}
	}
	check("/healthz", 200, "ok")
	check("/readyz", 503, "not ready")
	ready = true
	check("/readyz", 200, "ready")
	check("/metrics", 200, "skywatch_viewer_sessions 0")
	check("/", 200, "<!doctype html>")
	check("/core.js", 200, "RTCPeerConnection")
	check("/style.css", 200, "body")
	check("/nope.js", 404, "")
}

// panicSource panics where a buggy source might.
type panicSource struct{ *fakeSource }

func (*panicSource) Cameras() []ingest.CameraState { panic("boom") }

func TestPanicIsRecovered(t *testing.T) {
	srv := startServer(t, &panicSource{&fakeSource{}}, nil)
	resp, body := doRequest(t, "GET", baseURL(srv)+"/api/cameras", "", "")
	if resp.StatusCode != 500 || !strings.Contains(body, "internal error") {
		t.Errorf("panicking handler: %d %s", resp.StatusCode, body)
	}
	resp, _ = doRequest(t, "GET", baseURL(srv)+"/healthz", "", "")
	if resp.StatusCode != 200 {
		t.Errorf("server not serving after a panic: %d", resp.StatusCode)
	}
}
