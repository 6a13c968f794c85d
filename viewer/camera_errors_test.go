package viewer

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
)

// TestCameraErrorsSayTheReasonOnly: real cameras through ingest that
// refuse the password, have no such path, or do not listen at all are
// shown in /api/cameras and in the WHEP 503 with their reason's code and
// plain words: no address, port, URL or RTSP detail.
func TestCameraErrorsSayTheReasonOnly(t *testing.T) {
	const user, pass = "admin", "cam-Secret-9"
	cam := hardware.NewCamera(hardware.CameraConfig{Username: user, Password: pass,
		Paths: []hardware.CameraPath{{Path: "/main", Clip: hardware.ClipGOP1s}}})
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	_, camPort, _ := net.SplitHostPort(cam.Addr())
	_, closedPort, _ := net.SplitHostPort(closed)

	cfg := ingest.Config{Cameras: []ingest.CameraConfig{
		{ID: "badauth", URL: cam.URL("/main"), Username: user, Password: "not-" + pass, Mode: ingest.ModeAlways},
		{ID: "missing", URL: cam.URL("/no-such-path"), Username: user, Password: pass, Mode: ingest.ModeAlways},
		{ID: "closed", URL: "rtsp://" + closed + "/main", Mode: ingest.ModeAlways},
	}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := ingest.NewManager(cfg, testLogger(t))
	m.Start()
	t.Cleanup(m.Close)
	srv := startServer(t, Adapt[*ingest.Reader](m), nil)
	want := map[string]ingest.Reason{"badauth": ingest.ReasonAuth, "missing": ingest.ReasonNotFound, "closed": ingest.ReasonUnreachable}

	// leaks lists what of the camera's address or protocol body shows.
	leaks := func(body string) []string {
		var out []string
		for _, s := range []string{"127.0.0.1", ":" + camPort, ":" + closedPort, "rtsp", "dial", "describe", "connect:",
			"connection refused", "Unauthorized", "Not Found", "no-such-path", pass} {
			if strings.Contains(body, s) {
				out = append(out, s)
			}
		}
		return out
	}

	deadline := time.Now().Add(2 * testTimeout)
	for {
		resp, body := doRequest(t, "GET", baseURL(srv)+"/api/cameras", "", "")
		var list []cameraJSON
		if err := json.Unmarshal([]byte(body), &list); resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("GET /api/cameras: %d %v %s", resp.StatusCode, err, body)
		}
		if l := leaks(body); len(l) > 0 {
			t.Fatalf("/api/cameras shows %q: %s", l, body)
		}
		done := 0
		for _, c := range list {
			if c.LastErrorCode == string(want[c.ID]) && c.LastError == want[c.ID].Text() {
				done++
			}
		}
		if done == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cameras' reasons: %s, want %v", body, want)
		}
		time.Sleep(50 * time.Millisecond)
	}

	for id, reason := range want {
		// Between two tries a camera may be connecting: ask again until
		// it answers with its reason.
		for {
			resp, body := doRequest(t, "POST", baseURL(srv)+"/whep/"+id, "application/sdp",
				handOffer("H264/90000", "packetization-mode=1;profile-level-id=42e01f"))
			if l := leaks(body); len(l) > 0 {
				t.Fatalf("WHEP %s shows %q: %s", id, l, body)
			}
			var e errorBody
			_ = json.Unmarshal([]byte(body), &e)
			if resp.StatusCode == http.StatusServiceUnavailable && e.Code == string(reason) &&
				strings.Contains(e.Error, reason.Text()) && e.Camera != nil && e.Camera.LastErrorCode == string(reason) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("WHEP %s: %d %s, want 503 with code %s", id, resp.StatusCode, body, reason)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
