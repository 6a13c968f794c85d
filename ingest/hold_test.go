package ingest_test

import (
	"errors"
	"testing"
	"time"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
)

// TestHoldPullsWithoutReaders: a hold starts an on-demand camera with no
// reader, a reader joining during the hold starts with the cached keyframe
// group (units received before it joined), the reader leaving does not stop
// the held camera, and the camera stops after the hold and the linger.
func TestHoldPullsWithoutReaders(t *testing.T) {
	verifyNoLeaks(t)
	cam := startCamera(t, hardware.CameraConfig{Paths: []hardware.CameraPath{{Path: "/cam1", Clip: hardware.ClipGOP1s}}})
	const linger = 300 * time.Millisecond
	m, _ := startManager(t, cam, ingest.Config{Linger: linger}, ingest.CameraConfig{Transport: ingest.TransportTCP})

	const hold = 5 * time.Second
	until := time.Now().Add(hold)
	if err := m.Hold("cam1", false, until); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	waitFor(t, "held camera online without readers", func() bool {
		st := state(t, m)
		return st.Status == ingest.StatusOnline && cam.Sessions("/cam1") == 1
	})
	if st := state(t, m); !st.Held.Equal(until) || st.Viewers != 0 {
		t.Errorf("held camera: Held %v, %d viewers; want %v and none", st.Held, st.Viewers, until)
	}
	if got := gatherStreams(t, m)["skywatch_camera_held/main"]; got != 1 {
		t.Errorf("skywatch_camera_held = %v while held, want 1", got)
	}

	// Two GOPs online: the cache holds a keyframe group by then.
	waitFor(t, "two GOPs of video", func() bool { return time.Since(state(t, m).Since) > 2*time.Second })
	joined := time.Now()
	r := addReader(t, m)
	u := readVideo(t, r)
	if !u.Keyframe || !u.Received.Before(joined) {
		t.Errorf("first video unit of a reader joining a held camera: keyframe %v, received at %v from joining; want a cached keyframe, received before",
			u.Keyframe, u.Received.Sub(joined))
	}

	// The reader leaving does not end the hold: the camera stays past the
	// linger until the hold ends.
	r.Close()
	time.Sleep(2 * linger)
	if time.Now().Before(until) {
		if st := state(t, m); st.Status != ingest.StatusOnline || cam.Sessions("/cam1") != 1 {
			t.Errorf("held camera after its last reader left and the linger passed: %s with %d sessions", st.Status, cam.Sessions("/cam1"))
		}
	}
	waitFor(t, "camera offline after the hold and the linger", func() bool {
		return state(t, m).Status == ingest.StatusOffline && cam.Sessions("/cam1") == 0
	})
	if stopped := time.Now(); stopped.Before(until.Add(linger)) {
		t.Errorf("stopped %v before the hold's end plus the linger", until.Add(linger).Sub(stopped))
	}
	if st := state(t, m); !st.Held.IsZero() {
		t.Errorf("Held = %v after the hold ended", st.Held)
	}
	if got := gatherStreams(t, m)["skywatch_camera_held/main"]; got != 0 {
		t.Errorf("skywatch_camera_held = %v after the hold, want 0", got)
	}
}

// TestHoldExtendsAndSubStream: a later deadline extends a hold and an
// earlier one does not shorten it; a hold of the sub stream pulls only the
// sub stream.
func TestHoldExtendsAndSubStream(t *testing.T) {
	verifyNoLeaks(t)
	cam := subCamera(t)
	m, _ := startManager(t, cam, ingest.Config{Linger: 100 * time.Millisecond},
		ingest.CameraConfig{SubURL: cam.URL("/cam1sub"), Transport: ingest.TransportTCP})

	first := time.Now().Add(time.Second)
	later := first.Add(time.Hour)
	for _, until := range []time.Time{first, later, first} {
		if err := m.Hold("cam1", true, until); err != nil {
			t.Fatalf("Hold(sub): %v", err)
		}
	}
	waitFor(t, "held sub stream online", func() bool {
		st := state(t, m)
		return st.Sub.Status == ingest.StatusOnline && cam.Sessions("/cam1sub") == 1
	})
	st := state(t, m)
	if !st.Sub.Held.Equal(later) || !st.Held.IsZero() {
		t.Errorf("Held: sub %v, main %v; want %v and zero", st.Sub.Held, st.Held, later)
	}
	time.Sleep(time.Until(first) + 300*time.Millisecond)
	if st := state(t, m); st.Sub.Status != ingest.StatusOnline || st.Status != ingest.StatusOffline ||
		cam.Sessions("/cam1sub") != 1 || cam.Sessions("/cam1") != 0 {
		t.Errorf("after the first deadline of an extended hold: sub %s, main %s; sessions sub %d, main %d; want the sub stream alone still pulled",
			st.Sub.Status, st.Status, cam.Sessions("/cam1sub"), cam.Sessions("/cam1"))
	}
	// Close ends the hold (the leak check sees its timer's goroutine gone).
	m.Close()
	waitFor(t, "sub session closed by Close", func() bool { return cam.Sessions("/cam1sub") == 0 })
	if err := m.Hold("cam1", false, later); !errors.Is(err, ingest.ErrManagerClosed) {
		t.Errorf("Hold after Close = %v, want ErrManagerClosed", err)
	}
}

func TestHoldErrorsAndAlways(t *testing.T) {
	verifyNoLeaks(t)
	cam := startCamera(t, hardware.CameraConfig{Paths: []hardware.CameraPath{{Path: "/cam1", Clip: hardware.ClipGOP1s}}})
	m, _ := startManager(t, cam, ingest.Config{}, ingest.CameraConfig{Mode: ingest.ModeAlways})
	until := time.Now().Add(time.Hour)

	if err := m.Hold("nope", false, until); !errors.Is(err, ingest.ErrUnknownCamera) {
		t.Errorf("Hold(unknown) = %v, want ErrUnknownCamera", err)
	}
	if err := m.Hold("cam1", true, until); !errors.Is(err, ingest.ErrNoSubStream) {
		t.Errorf("Hold(sub) of a camera without one = %v, want ErrNoSubStream", err)
	}
	// An always-on camera is pulled anyway; a hold leaves it as it is.
	if err := m.Hold("cam1", false, until); err != nil {
		t.Errorf("Hold(always-on camera) = %v", err)
	}
	waitFor(t, "always-on camera online", func() bool { return state(t, m).Status == ingest.StatusOnline })
	if st := state(t, m); !st.Held.IsZero() || cam.Sessions("/cam1") != 1 {
		t.Errorf("always-on camera after Hold: Held %v, %d sessions; want zero and 1", st.Held, cam.Sessions("/cam1"))
	}
	// A deadline already past holds nothing.
	m2, _ := startManager(t, cam, ingest.Config{}, ingest.CameraConfig{})
	if err := m2.Hold("cam1", false, time.Now().Add(-time.Second)); err != nil {
		t.Errorf("Hold(past) = %v", err)
	}
	if st := state(t, m2); st.Status != ingest.StatusOffline || !st.Held.IsZero() {
		t.Errorf("on-demand camera after a hold in the past: %s, Held %v; want offline and zero", st.Status, st.Held)
	}
}
