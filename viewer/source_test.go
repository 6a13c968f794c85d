package viewer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
)

// TestWHEPStreamParameter checks ?stream= against a fake source: main is
// the default, sub asks for the sub stream, anything else is 400 before a
// reader is opened.
func TestWHEPStreamParameter(t *testing.T) {
	src := &fakeSource{open: func(context.Context, string) (MediaReader, error) {
		return newFakeReader([]ingest.Track{h264Track()}), nil
	}}
	srv := startServer(t, src, nil)
	// The server answers each POST; the client never connects.
	_, offer := newWHEPClient(t)

	for _, tc := range []struct {
		query          string
		code           int
		opened, subbed int32 // OpenReader calls so far, and those asking for sub
	}{
		{"", 201, 1, 0},
		{"?stream=main", 201, 2, 0},
		{"?stream=sub", 201, 3, 1},
		{"?stream=hd", 400, 3, 1},
		{"?stream=SUB", 400, 3, 1},
		{"?stream=", 201, 4, 1},
	} {
		resp, body := doRequest(t, "POST", baseURL(srv)+"/whep/gate"+tc.query, "application/sdp", offer)
		if resp.StatusCode != tc.code {
			t.Errorf("POST /whep/gate%s: %d %s, want %d", tc.query, resp.StatusCode, body, tc.code)
		}
		if tc.code == 400 && !strings.Contains(body, `"stream: must be main or sub"`) {
			t.Errorf("POST /whep/gate%s: body %s does not name the parameter", tc.query, body)
		}
		if o, s := src.opened.Load(), src.subOpened.Load(); o != tc.opened || s != tc.subbed {
			t.Errorf("after POST /whep/gate%s: %d readers opened, %d for sub; want %d and %d",
				tc.query, o, s, tc.opened, tc.subbed)
		}
	}
}

// TestWHEPSubUnavailable: a broken sub stream is reported as the sub
// stream's failure, with its status, not the main stream's.
func TestWHEPSubUnavailable(t *testing.T) {
	state := testStates()[1] // main stream online
	state.Sub = &ingest.StreamState{Status: ingest.StatusRetrying, LastError: "describe: 404 not found", Reason: ingest.ReasonNotFound}
	src := &fakeSource{open: func(context.Context, string) (MediaReader, error) {
		return nil, &ingest.UnavailableError{State: state, Sub: true}
	}}
	srv := startServer(t, src, nil)
	resp, body := doRequest(t, "POST", baseURL(srv)+"/whep/gate?stream=sub", "application/sdp",
		handOffer("H264/90000", "packetization-mode=1;profile-level-id=42e01f"))
	if resp.StatusCode != http.StatusServiceUnavailable ||
		!strings.Contains(body, `camera \"gate\" sub stream is unavailable (retrying)`) ||
		!strings.Contains(body, `"code": "not_found"`) || !strings.Contains(body, `"sub_last_error_code": "not_found"`) ||
		strings.Contains(body, "404") {
		t.Errorf("POST for a broken sub stream: %d %s", resp.StatusCode, body)
	}
}

// TestSubStreamsEndToEnd plays a simulated camera through ingest and the
// WHEP server: viewers of ?stream=sub get the camera's sub stream, viewers
// of the main stream the main one, each stream pulled once however many
// viewers; a camera without a sub stream serves its main stream to ?stream=sub.
func TestSubStreamsEndToEnd(t *testing.T) {
	const user, pass = "admin", "cam-Secret-7"
	cam := hardware.NewCamera(hardware.CameraConfig{
		Username: user, Password: pass,
		Paths: []hardware.CameraPath{
			{Path: "/gate/main", Clip: hardware.ClipGOP4s, Audio: true},
			{Path: "/gate/sub", Clip: hardware.ClipGOP1s},
			{Path: "/yard/main", Clip: hardware.ClipGOP1s},
		},
	})
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	cfg := ingest.Config{Cameras: []ingest.CameraConfig{
		{ID: "gate", URL: cam.URL("/gate/main"), SubURL: cam.URL("/gate/sub"), Username: user, Password: pass},
		{ID: "yard", URL: cam.URL("/yard/main"), Username: user, Password: pass},
	}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := ingest.NewManager(cfg, testLogger(t))
	m.Start()
	t.Cleanup(m.Close)
	srv := startServer(t, Adapt[*ingest.Reader](m), nil)

	// The camera list tells which cameras have a sub stream.
	resp, body := doRequest(t, "GET", baseURL(srv)+"/api/cameras", "", "")
	var list []cameraJSON
	if err := json.Unmarshal([]byte(body), &list); resp.StatusCode != 200 || err != nil {
		t.Fatalf("GET /api/cameras: %d %v %s", resp.StatusCode, err, body)
	}
	if len(list) != 2 || !list[0].Sub || list[1].Sub {
		t.Errorf("sub flags: %s, want gate true and yard false", body)
	}

	watch := func(path string) *whepClient {
		t.Helper()
		c, offer := newWHEPClient(t)
		resp, body := c.post(t, baseURL(srv)+path, offer)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, body)
		}
		receive(t, c, 20)
		return c
	}
	sessions := func() string {
		return fmt.Sprintf("gate main %d, gate sub %d, yard %d",
			cam.Sessions("/gate/main"), cam.Sessions("/gate/sub"), cam.Sessions("/yard/main"))
	}

	// Two wall tiles on the sub stream: one RTSP session, on the sub path.
	watch("/whep/gate?stream=sub")
	watch("/whep/gate?stream=sub")
	if got, want := sessions(), "gate main 0, gate sub 1, yard 0"; got != want {
		t.Fatalf("two sub viewers: sessions %s, want %s", got, want)
	}
	// Two full-screen viewers on the main stream: one more session.
	watch("/whep/gate")
	watch("/whep/gate?stream=main")
	if got, want := sessions(), "gate main 1, gate sub 1, yard 0"; got != want {
		t.Fatalf("two sub and two main viewers: sessions %s, want %s", got, want)
	}
	st, err := m.Camera("gate")
	if err != nil {
		t.Fatal(err)
	}
	if st.Viewers != 2 || st.Sub == nil || st.Sub.Viewers != 2 {
		t.Errorf("ingest counts main %d viewers, sub %+v", st.Viewers, st.Sub)
	}

	// A camera without a sub stream plays its main stream to a sub viewer.
	watch("/whep/yard?stream=sub")
	if got, want := sessions(), "gate main 1, gate sub 1, yard 1"; got != want {
		t.Fatalf("sub viewer of a camera without sub: sessions %s, want %s", got, want)
	}

	// A bad stream value opens nothing.
	c, offer := newWHEPClient(t)
	if resp, body := c.post(t, baseURL(srv)+"/whep/yard?stream=4k", offer); resp.StatusCode != 400 {
		t.Errorf("POST ?stream=4k: %d %s, want 400", resp.StatusCode, body)
	}
	if st, _ := m.Camera("yard"); st.Viewers != 1 {
		t.Errorf("yard has %d viewers after a refused request, want 1", st.Viewers)
	}
}

// TestAdaptFallsBackOnlyWithoutSub: Adapt falls back to the main stream
// for ErrNoSubStream only; other errors of the sub stream are returned.
func TestAdaptFallsBackOnlyWithoutSub(t *testing.T) {
	main := newFakeReader(nil)
	broken := &ingest.UnavailableError{Sub: true}
	for _, tc := range []struct {
		name   string
		subErr error
		want   MediaReader
		err    error
	}{
		{"no sub stream", fmt.Errorf("camera %q: %w", "c", ingest.ErrNoSubStream), main, nil},
		{"sub stream unavailable", broken, nil, broken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := Adapt[*fakeReader](fakeManager{main: main, subErr: tc.subErr})
			r, err := src.OpenReader(context.Background(), "c", true)
			if r != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("OpenReader(sub) = %v, %v; want %v, %v", r, err, tc.want, tc.err)
			}
		})
	}
}

// fakeManager is a CameraManager whose sub stream fails with subErr.
type fakeManager struct {
	main   *fakeReader
	subErr error
}

func (f fakeManager) AddReader(context.Context, string) (*fakeReader, error) { return f.main, nil }

func (f fakeManager) AddSubReader(context.Context, string) (*fakeReader, error) {
	return nil, f.subErr
}

func (fakeManager) Cameras() []ingest.CameraState { return nil }

func (fakeManager) Camera(string) (ingest.CameraState, error) { return ingest.CameraState{}, nil }
