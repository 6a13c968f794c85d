package ingest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
)

// subCamera serves a main stream with audio on /cam1 and a sub stream
// without on /cam1sub, so that a reader's tracks tell which one it reads.
func subCamera(t *testing.T) *hardware.Camera {
	return startCamera(t, hardware.CameraConfig{Paths: []hardware.CameraPath{
		{Path: "/cam1", Clip: hardware.ClipGOP4s, Audio: true},
		{Path: "/cam1sub", Clip: hardware.ClipGOP1s},
	}})
}

func addSubReader(t *testing.T, m *ingest.Manager) *ingest.Reader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	r, err := m.AddSubReader(ctx, "cam1")
	if err != nil {
		t.Fatalf("AddSubReader: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

func TestSubStreamIsPulledOnItsOwn(t *testing.T) {
	verifyNoLeaks(t)
	cam := subCamera(t)
	m, _ := startManager(t, cam, ingest.Config{Linger: 100 * time.Millisecond},
		ingest.CameraConfig{SubURL: cam.URL("/cam1sub"), Transport: ingest.TransportTCP})

	if st := state(t, m); st.Sub == nil || st.Sub.Status != ingest.StatusOffline {
		t.Fatalf("before any reader: sub state %+v, want offline", st.Sub)
	}
	subA, subB := addSubReader(t, m), addSubReader(t, m)
	if n := len(subA.Tracks()); n != 1 {
		t.Fatalf("sub reader has %d tracks, want the sub stream's 1 (video only)", n)
	}
	if u := read(t, subB); !u.Keyframe {
		t.Errorf("first unit of a sub reader is not a keyframe")
	}
	read(t, subA)
	if s, m := cam.Sessions("/cam1sub"), cam.Sessions("/cam1"); s != 1 || m != 0 {
		t.Fatalf("sessions: sub %d, main %d; want 1 and 0 (the main stream is not pulled for sub readers)", s, m)
	}
	st := state(t, m)
	if st.Status != ingest.StatusOffline || st.Viewers != 0 {
		t.Errorf("camera (main stream) state %s with %d viewers, want offline with none", st.Status, st.Viewers)
	}
	if st.Sub.Status != ingest.StatusOnline || st.Sub.Viewers != 2 || len(st.Sub.Tracks) != 1 {
		t.Errorf("sub state %s, %d viewers, %d tracks; want online, 2, 1", st.Sub.Status, st.Sub.Viewers, len(st.Sub.Tracks))
	}

	mainA, mainB := addReader(t, m), addReader(t, m)
	if n := len(mainA.Tracks()); n != 2 {
		t.Fatalf("main reader has %d tracks, want 2 (video and audio)", n)
	}
	read(t, mainA)
	read(t, mainB)
	if s, m := cam.Sessions("/cam1sub"), cam.Sessions("/cam1"); s != 1 || m != 1 {
		t.Fatalf("sessions with two readers on each stream: sub %d, main %d; want 1 and 1", s, m)
	}
	if st := state(t, m); st.Viewers != 2 || st.Sub.Viewers != 2 {
		t.Errorf("viewers main %d sub %d, want 2 and 2", st.Viewers, st.Sub.Viewers)
	}

	metrics := gatherStreams(t, m)
	for _, key := range []string{"skywatch_camera_viewers/main", "skywatch_camera_viewers/sub"} {
		if metrics[key] != 2 {
			t.Errorf("%s = %v, want 2 (metrics %v)", key, metrics[key], metrics)
		}
	}
	if metrics["skywatch_camera_received_packets_total/sub"] == 0 {
		t.Errorf("no packets counted for the sub stream: %v", metrics)
	}

	// The sub stream lingers and stops on its own; the main stream stays.
	subA.Close()
	subB.Close()
	waitFor(t, "sub session closed after linger", func() bool { return cam.Sessions("/cam1sub") == 0 })
	if st := state(t, m); st.Sub.Status != ingest.StatusOffline || st.Status != ingest.StatusOnline ||
		cam.Sessions("/cam1") != 1 {
		t.Errorf("after the sub readers left: sub %s, main %s with %d sessions", st.Sub.Status, st.Status, cam.Sessions("/cam1"))
	}
	read(t, mainA)
}

func TestAlwaysPullsBothStreams(t *testing.T) {
	verifyNoLeaks(t)
	cam := subCamera(t)
	m, _ := startManager(t, cam, ingest.Config{},
		ingest.CameraConfig{SubURL: cam.URL("/cam1sub"), Mode: ingest.ModeAlways})
	waitFor(t, "both streams online without readers", func() bool {
		st := state(t, m)
		return st.Status == ingest.StatusOnline && st.Sub.Status == ingest.StatusOnline &&
			cam.Sessions("/cam1") == 1 && cam.Sessions("/cam1sub") == 1
	})
}

func TestNoSubStream(t *testing.T) {
	verifyNoLeaks(t)
	cam := subCamera(t)
	m, _ := startManager(t, cam, ingest.Config{}, ingest.CameraConfig{})

	if st := state(t, m); st.Sub != nil {
		t.Errorf("camera without sub_url has sub state %+v", st.Sub)
	}
	if _, err := m.AddSubReader(context.Background(), "cam1"); !errors.Is(err, ingest.ErrNoSubStream) ||
		!strings.Contains(err.Error(), `"cam1"`) {
		t.Errorf("AddSubReader without a sub stream = %v, want ErrNoSubStream naming the camera", err)
	}
	if _, err := m.AddSubReader(context.Background(), "nope"); !errors.Is(err, ingest.ErrUnknownCamera) {
		t.Errorf("AddSubReader(unknown) = %v, want ErrUnknownCamera", err)
	}
	if cam.TotalSessions() != 0 {
		t.Errorf("a refused sub reader pulled the camera")
	}
	for key := range gatherStreams(t, m) {
		if strings.HasSuffix(key, "/sub") {
			t.Errorf("camera without a sub stream has metric %s", key)
		}
	}
}

// TestBrokenSubStream: a sub stream that fails (here a path the camera does
// not serve) is unavailable on its own, says so, and leaks no credentials;
// the main stream is unaffected.
func TestBrokenSubStream(t *testing.T) {
	verifyNoLeaks(t)
	cam := subCamera(t)
	m, buf := startManager(t, cam, ingest.Config{},
		ingest.CameraConfig{SubURL: cam.URL("/no-such-sub")})

	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	_, err := m.AddSubReader(ctx, "cam1")
	var unavailable *ingest.UnavailableError
	if !errors.As(err, &unavailable) || !unavailable.Sub {
		t.Fatalf("AddSubReader of a broken sub stream = %v, want *UnavailableError with Sub", err)
	}
	if st := unavailable.StreamState(); st.Status != ingest.StatusRetrying || st.LastError == "" {
		t.Errorf("failed stream's state %s %q, want retrying with an error", st.Status, st.LastError)
	}
	if !strings.Contains(err.Error(), "camera cam1 sub stream unavailable (retrying)") {
		t.Errorf("error %q does not say that the sub stream failed", err)
	}
	r := addReader(t, m)
	read(t, r)
	if st := state(t, m); st.Status != ingest.StatusOnline || st.LastError != "" {
		t.Errorf("main stream %s %q beside a broken sub stream", st.Status, st.LastError)
	}
	for what, text := range map[string]string{"error": err.Error(), "log": buf.String()} {
		if strings.Contains(text, camPass) || strings.Contains(text, camUser+":") {
			t.Errorf("%s leaks credentials: %q", what, text)
		}
	}
	if !strings.Contains(buf.String(), "stream=sub") {
		t.Errorf("sub stream's log lines are not labelled stream=sub")
	}
}

// gatherStreams returns the cameras' metrics as name/stream, with the status
// metric's current status as name/stream/status.
func gatherStreams(t *testing.T, m *ingest.Manager) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(m.Collector()); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			key := f.GetName()
			for _, name := range []string{"stream", "status"} {
				for _, l := range mt.GetLabel() {
					if l.GetName() == name {
						key += "/" + l.GetValue()
					}
				}
			}
			got[key] = mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
		}
	}
	return got
}
