package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
)

// failAfter bounds every wait; it is a failure bound, not a speed check.
const failAfter = 20 * time.Second

const (
	camUser = "admin"
	camPass = "Pa55-w0rd!x"
)

// verifyNoLeaks checks for leaked goroutines after the test's other
// cleanups (they run last-registered first), so call it first.
func verifyNoLeaks(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testLogger logs into a buffer that is printed when the test fails.
func testLogger(t *testing.T) (*slog.Logger, *lockedBuffer) {
	buf := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf)
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func startCamera(t *testing.T, cfg hardware.CameraConfig) *hardware.Camera {
	t.Helper()
	if cfg.Username == "" {
		cfg.Username, cfg.Password = camUser, camPass
	}
	if len(cfg.Paths) == 0 {
		cfg.Paths = []hardware.CameraPath{{Path: "/cam1", Clip: hardware.ClipGOP4s, Audio: true}}
	}
	cam := hardware.NewCamera(cfg)
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	return cam
}

// startManager builds a manager for one camera "cam1" on cam's /cam1.
func startManager(t *testing.T, cam *hardware.Camera, cfg ingest.Config, cc ingest.CameraConfig) (*ingest.Manager, *lockedBuffer) {
	t.Helper()
	cc.ID = "cam1"
	cc.URL = cam.URL("/cam1")
	if cc.Username == "" {
		cc.Username, cc.Password = camUser, camPass
	}
	cfg.Cameras = []ingest.CameraConfig{cc}
	ingest.SetMinBackoff(&cfg, 100*time.Millisecond)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logger, buf := testLogger(t)
	m := ingest.NewManager(cfg, logger)
	m.Start()
	t.Cleanup(m.Close)
	return m, buf
}

func addReader(t *testing.T, m *ingest.Manager) *ingest.Reader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	r, err := m.AddReader(ctx, "cam1")
	if err != nil {
		t.Fatalf("AddReader: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

func read(t *testing.T, r *ingest.Reader) *ingest.Unit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	u, err := r.Read(ctx)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return u
}

// readVideo returns the next video unit.
func readVideo(t *testing.T, r *ingest.Reader) *ingest.Unit {
	t.Helper()
	for {
		if u := read(t, r); r.Tracks()[u.Track].Kind == ingest.KindVideo {
			return u
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func state(t *testing.T, m *ingest.Manager) ingest.CameraState {
	t.Helper()
	st, err := m.Camera("cam1")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// nalTypes lists the H.264 NAL unit types that a unit's packets carry
// (single NAL units, STAP-A contents, FU-A starts).
func nalTypes(u *ingest.Unit) []h264.NALUType {
	var out []h264.NALUType
	for _, p := range u.Packets {
		if len(p.Payload) < 2 {
			continue
		}
		switch typ := h264.NALUType(p.Payload[0] & 0x1f); typ {
		case h264.NALUTypeSTAPA:
			b := p.Payload[1:]
			for len(b) > 2 {
				n := int(b[0])<<8 | int(b[1])
				if n == 0 || n+2 > len(b) {
					break
				}
				out = append(out, h264.NALUType(b[2]&0x1f))
				b = b[2+n:]
			}
		case h264.NALUTypeFUA:
			if p.Payload[1]&0x80 != 0 {
				out = append(out, h264.NALUType(p.Payload[1]&0x1f))
			}
		default:
			out = append(out, typ)
		}
	}
	return out
}

func hasNAL(u *ingest.Unit, typ h264.NALUType) bool {
	for _, t := range nalTypes(u) {
		if t == typ {
			return true
		}
	}
	return false
}

func TestMidGOPJoinStartsWithKeyframe(t *testing.T) {
	verifyNoLeaks(t)
	cam := startCamera(t, hardware.CameraConfig{})
	m, _ := startManager(t, cam, ingest.Config{}, ingest.CameraConfig{Transport: ingest.TransportTCP})

	first := addReader(t, m)
	tracks := first.Tracks()
	if len(tracks) != 2 || tracks[0].Codec != ingest.CodecH264 || tracks[1].Codec != ingest.CodecPCMU {
		t.Fatalf("tracks %+v, want H264 and PCMU", tracks)
	}
	if tracks[0].Width != 640 || tracks[0].Height != 360 || tracks[0].SPS == nil || tracks[0].PPS == nil {
		t.Errorf("video track %dx%d sps=%x pps=%x, want 640x360 with parameter sets",
			tracks[0].Width, tracks[0].Height, tracks[0].SPS, tracks[0].PPS)
	}
	if !strings.Contains(tracks[0].FMTP, "profile-level-id=") {
		t.Errorf("fmtp %q", tracks[0].FMTP)
	}

	// Wait for a keyframe, then go a second into the 4 s group.
	key := readVideo(t, first)
	for !key.Keyframe {
		key = readVideo(t, first)
	}
	for range 25 {
		if u := readVideo(t, first); u.Keyframe {
			t.Fatalf("keyframe 1 s after a keyframe in a 4 s GOP")
		}
	}

	second := addReader(t, m)
	u := read(t, second)
	if !u.Keyframe {
		t.Fatalf("first unit of a reader joining mid-GOP is not a keyframe (NAL types %v)", nalTypes(u))
	}
	if u.Timestamp() != key.Timestamp() || u.Epoch != key.Epoch {
		t.Errorf("first unit has timestamp %d, want the cached keyframe's %d", u.Timestamp(), key.Timestamp())
	}
	for _, typ := range []h264.NALUType{h264.NALUTypeSPS, h264.NALUTypePPS, h264.NALUTypeIDR} {
		if !hasNAL(u, typ) {
			t.Errorf("keyframe unit lacks %v (has %v)", typ, nalTypes(u))
		}
	}
	// The rest of the group follows, then live units.
	next := readVideo(t, second)
	if next.Keyframe || next.Timestamp() == key.Timestamp() {
		t.Errorf("unit after the cached keyframe: keyframe=%v ts=%d", next.Keyframe, next.Timestamp())
	}
}

func TestReconnectAfterCameraRestart(t *testing.T) {
	verifyNoLeaks(t)
	cam := startCamera(t, hardware.CameraConfig{Paths: []hardware.CameraPath{{Path: "/cam1", Clip: hardware.ClipGOP1s}}})
	m, _ := startManager(t, cam, ingest.Config{}, ingest.CameraConfig{Mode: ingest.ModeAlways})

	waitFor(t, "always-on camera online", func() bool { return state(t, m).Status == ingest.StatusOnline })
	r := addReader(t, m)
	before := read(t, r)

	cam.Close()
	waitFor(t, "status retrying", func() bool { return state(t, m).Status == ingest.StatusRetrying })
	if st := state(t, m); st.LastError == "" {
		t.Errorf("retrying without LastError")
	}
	// While retrying, AddReader answers at once.
	if _, err := m.AddReader(context.Background(), "cam1"); !errors.As(err, new(*ingest.UnavailableError)) {
		t.Errorf("AddReader while retrying = %v, want *UnavailableError", err)
	}
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	var after *ingest.Unit
	for after == nil || after.Epoch == before.Epoch {
		after = read(t, r)
	}
	if after.Epoch <= before.Epoch {
		t.Errorf("epoch went from %d to %d", before.Epoch, after.Epoch)
	}
	waitFor(t, "status online", func() bool { return state(t, m).Status == ingest.StatusOnline })
	if st := state(t, m); st.Reconnects == 0 {
		t.Errorf("Reconnects = 0 after a reconnect")
	}
	// The first video unit of the new epoch is a keyframe.
	for r.Tracks()[after.Track].Kind != ingest.KindVideo {
		after = read(t, r)
	}
	if !after.Keyframe {
		t.Errorf("first video unit after reconnect is not a keyframe")
	}
}

func TestSlowReaderDoesNotDelayOthers(t *testing.T) {
	verifyNoLeaks(t)
	cam := startCamera(t, hardware.CameraConfig{Paths: []hardware.CameraPath{{Path: "/cam1", Clip: hardware.ClipGOP1s}}})
	m, buf := startManager(t, cam, ingest.Config{QueueSize: 32}, ingest.CameraConfig{Transport: ingest.TransportTCP})

	slow := addReader(t, m) // never reads
	fast := addReader(t, m)
	var prev *ingest.Unit
	for range 100 { // 4 s of video, longer than the queue
		u := readVideo(t, fast)
		if prev != nil && u.Timestamp()-prev.Timestamp() != 3600 {
			t.Fatalf("fast reader lost units: timestamp step %d, want 3600", u.Timestamp()-prev.Timestamp())
		}
		prev = u
	}
	if fast.Dropped() != 0 {
		t.Errorf("fast reader dropped %d units", fast.Dropped())
	}
	if slow.Dropped() == 0 {
		t.Errorf("slow reader dropped nothing")
	}
	if st := state(t, m); st.Dropped < slow.Dropped() || st.Viewers != 2 {
		t.Errorf("state dropped=%d viewers=%d, want >= %d and 2", st.Dropped, st.Viewers, slow.Dropped())
	}
	if !strings.Contains(buf.String(), "reader is too slow") {
		t.Errorf("drops not logged")
	}
	// The slow reader's queue holds the units of before the overflow.
	if u := read(t, slow); u == nil {
		t.Fatal("nil unit")
	}
}

func TestTwoReadersOneSession(t *testing.T) {
	verifyNoLeaks(t)
	cam := startCamera(t, hardware.CameraConfig{UDP: true})
	m, _ := startManager(t, cam, ingest.Config{Linger: 100 * time.Millisecond},
		ingest.CameraConfig{Transport: ingest.TransportUDP})

	a := addReader(t, m)
	b := addReader(t, m)
	ua, ub := read(t, a), read(t, b)
	if ua.Epoch != ub.Epoch {
		t.Errorf("readers in different epochs %d and %d", ua.Epoch, ub.Epoch)
	}
	if n := cam.Sessions("/cam1"); n != 1 {
		t.Errorf("camera has %d sessions, want 1", n)
	}
	if st := state(t, m); st.Viewers != 2 {
		t.Errorf("Viewers = %d, want 2", st.Viewers)
	}
	a.Close()
	b.Close()
	waitFor(t, "session closed after linger", func() bool { return cam.Sessions("/cam1") == 0 })
}

func TestWrongPassword(t *testing.T) {
	verifyNoLeaks(t)
	cam := startCamera(t, hardware.CameraConfig{})
	const wrong = "wr0ng-Secret"
	m, buf := startManager(t, cam, ingest.Config{}, ingest.CameraConfig{Username: camUser, Password: wrong})

	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	_, err := m.AddReader(ctx, "cam1")
	var unavailable *ingest.UnavailableError
	if !errors.As(err, &unavailable) {
		t.Fatalf("AddReader = %v, want *UnavailableError", err)
	}
	st := state(t, m)
	if !strings.HasPrefix(st.LastError, "authentication failed") {
		t.Errorf("LastError = %q, want it to start with \"authentication failed\"", st.LastError)
	}
	if !strings.HasPrefix(unavailable.State.LastError, "authentication failed") {
		t.Errorf("error state LastError = %q", unavailable.State.LastError)
	}
	for what, text := range map[string]string{"LastError": st.LastError, "error": err.Error(), "log": buf.String()} {
		if strings.Contains(text, wrong) || strings.Contains(text, camUser+":") || strings.Contains(text, "@127.0.0.1") {
			t.Errorf("%s leaks credentials: %q", what, text)
		}
	}
}

func TestOnDemandStartsAndLingers(t *testing.T) {
	verifyNoLeaks(t)
	cam := startCamera(t, hardware.CameraConfig{Paths: []hardware.CameraPath{{Path: "/cam1", Clip: hardware.ClipGOP1s}}})
	const linger = 2 * time.Second
	m, _ := startManager(t, cam, ingest.Config{Linger: linger}, ingest.CameraConfig{})

	if st := state(t, m); st.Status != ingest.StatusOffline || cam.Sessions("/cam1") != 0 {
		t.Fatalf("before any reader: status %s, %d sessions", st.Status, cam.Sessions("/cam1"))
	}
	r := addReader(t, m)
	u := read(t, r)
	if st := state(t, m); st.Status != ingest.StatusOnline || cam.Sessions("/cam1") != 1 {
		t.Fatalf("with a reader: status %s, %d sessions", st.Status, cam.Sessions("/cam1"))
	}
	r.Close()
	if _, err := r.Read(context.Background()); !errors.Is(err, ingest.ErrReaderClosed) {
		t.Errorf("Read after Close = %v", err)
	}
	// A reader coming back within the linger reuses the session.
	r2 := addReader(t, m)
	if u2 := read(t, r2); u2.Epoch != u.Epoch {
		t.Errorf("reader within the linger got epoch %d, want %d (same session)", u2.Epoch, u.Epoch)
	}
	closed := time.Now()
	r2.Close()
	waitFor(t, "camera offline after linger", func() bool {
		return state(t, m).Status == ingest.StatusOffline && cam.Sessions("/cam1") == 0
	})
	if waited := time.Since(closed); waited < linger {
		t.Errorf("stopped after %v, before the linger of %v", waited, linger)
	}
	// And it starts again on demand.
	r3 := addReader(t, m)
	read(t, r3)
}

func TestManagerErrorsAndMetrics(t *testing.T) {
	verifyNoLeaks(t)
	cam := startCamera(t, hardware.CameraConfig{Paths: []hardware.CameraPath{{Path: "/cam1", Clip: hardware.ClipGOP1s}}})
	m, _ := startManager(t, cam, ingest.Config{}, ingest.CameraConfig{})

	if _, err := m.AddReader(context.Background(), "nope"); !errors.Is(err, ingest.ErrUnknownCamera) {
		t.Errorf("AddReader(unknown) = %v", err)
	}
	if _, err := m.Camera("nope"); !errors.Is(err, ingest.ErrUnknownCamera) {
		t.Errorf("Camera(unknown) = %v", err)
	}
	r := addReader(t, m)
	read(t, r)

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
			v := mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
			labels := ""
			for _, l := range mt.GetLabel() {
				switch {
				case l.GetName() == "stream" && l.GetValue() != "main":
					t.Errorf("camera without a sub stream has a %s series of %s", l.GetValue(), f.GetName())
				case l.GetName() == "status":
					labels = "/" + l.GetValue()
				}
			}
			got[f.GetName()+labels] = v
		}
	}
	if got["skywatch_camera_status/online"] != 1 || got["skywatch_camera_viewers"] != 1 ||
		got["skywatch_camera_received_packets_total"] == 0 || got["skywatch_camera_received_bytes_total"] == 0 {
		t.Errorf("metrics %v", got)
	}

	m.Close()
	m.Close()
	if _, err := r.Read(context.Background()); !errors.Is(err, ingest.ErrReaderClosed) {
		t.Errorf("Read after manager Close = %v", err)
	}
	if _, err := m.AddReader(context.Background(), "cam1"); !errors.Is(err, ingest.ErrManagerClosed) {
		t.Errorf("AddReader after Close = %v", err)
	}
	if st := state(t, m); st.Status != ingest.StatusOffline {
		t.Errorf("status after Close %s", st.Status)
	}
}
