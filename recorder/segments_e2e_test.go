package recorder

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
)

// Tests with real cameras (the hardware package's RTSP simulator) read
// through a real ingest.Manager.

type testCam struct {
	id    string
	clip  hardware.Clip
	audio bool
}

// startCameras starts a simulated camera per spec and a manager pulling
// them over TCP; both stop at the end of the test.
func startCameras(t *testing.T, specs ...testCam) (*ingest.Manager, map[string]*hardware.Camera) {
	t.Helper()
	cams := map[string]*hardware.Camera{}
	cfg := ingest.Config{ReadTimeout: 2 * time.Second}
	for _, sp := range specs {
		cam := startTestCamera(t, hardware.CameraPath{Path: "/live", Clip: sp.clip, Audio: sp.audio})
		cams[sp.id] = cam
		cfg.Cameras = append(cfg.Cameras, ingest.CameraConfig{ID: sp.id, URL: cam.URL("/live"), Transport: "tcp"})
	}
	return startSource(t, cfg, slog.New(slog.DiscardHandler)), cams
}

// recordedFor waits until the camera's latest span lasts at least d, and
// returns the spans.
func recordedFor(t *testing.T, r *Recorder, cam string, d time.Duration) []Span {
	t.Helper()
	var spans []Span
	waitUntil(t, cam+" recorded for "+d.String(), func() bool {
		spans, _ = r.Spans(cam, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		return len(spans) > 0 && spans[len(spans)-1].End.Sub(spans[len(spans)-1].Start) >= d
	})
	return spans
}

func exportBytes(t *testing.T, r *Recorder, cam string, start, end time.Time) (*Export, []byte) {
	t.Helper()
	e, err := r.Export(cam, start, end)
	if err != nil {
		t.Fatalf("export %s %v-%v: %v", cam, start, end, err)
	}
	var b bytes.Buffer
	if _, err := e.WriteTo(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return e, b.Bytes()
}

func TestRecordCamerasSpansExportsAndDrops(t *testing.T) {
	t.Parallel()
	m, cams := startCameras(t, testCam{"g1", hardware.ClipGOP1s, true}, testCam{"g4", hardware.ClipGOP4s, false})
	dir := t.TempDir()
	cfg := testConfig(dir, "g1", "g4")
	cfg.Segment = time.Second
	reg := prometheus.NewRegistry()
	r, _ := newTestRecorder(t, cfg, m, reg, nil)

	for _, tc := range []struct {
		cam    string
		gop    time.Duration
		tracks int
	}{{"g1", time.Second, 2}, {"g4", 4 * time.Second, 1}} {
		spans := recordedFor(t, r, tc.cam, 10*time.Second)
		if len(spans) != 1 {
			t.Fatalf("%s: spans %v", tc.cam, spans)
		}
		st, _ := r.Status(tc.cam)
		if st.State != StateRecording || st.Segments < 2 || st.Bytes == 0 || !st.Oldest.Equal(spans[0].Start) {
			t.Errorf("%s: status %+v", tc.cam, st)
		}
		// Segments start at keyframes a GOP apart: 1 s segments of a 4 s GOP
		// last 4 s.
		files := segmentFiles(t, dir, tc.cam)
		for _, f := range files[:len(files)-1] {
			start, length, ok := parseSegmentName(filepath.Base(f))
			if !ok || length < tc.gop-100*time.Millisecond || length > tc.gop+100*time.Millisecond {
				t.Errorf("%s: segment %s (start %v) lasts %v, want a GOP", tc.cam, filepath.Base(f), start, length)
			}
		}
		start := spans[0].Start.Add(tc.gop + 2500*time.Millisecond)
		end := start.Add(3 * time.Second)
		e, b := exportBytes(t, r, tc.cam, start, end)
		if e.Start.After(start) || start.Sub(e.Start) > tc.gop+100*time.Millisecond {
			t.Errorf("%s: export starts at %v for %v", tc.cam, e.Start, start)
		}
		if !e.End.Equal(end) {
			t.Errorf("%s: export ends at %v, want %v", tc.cam, e.End, end)
		}
		checkExport(t, b, e.End.Sub(e.Start), tc.tracks)
		if _, b2 := exportBytes(t, r, tc.cam, start, end); !bytes.Equal(b, b2) {
			t.Errorf("%s: the same export gave other bytes", tc.cam)
		}
	}
	if v := gatherValues(t, reg, "skywatch_recording_state"); v["g1/recording"] != 1 || v["g4/recording"] != 1 {
		t.Errorf("state metrics %v", v)
	}
	if v := gatherValues(t, reg, "skywatch_recording_written_bytes_total"); v["g1"] == 0 {
		t.Errorf("written metrics %v", v)
	}

	// The camera drops in the middle of a segment and comes back: the
	// segment it was writing is closed and plays, and the spans have a gap.
	cam := cams["g1"]
	cam.Close()
	dropped := time.Now()
	time.Sleep(3 * time.Second)
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	var spans []Span
	waitUntil(t, "g1 recording again", func() bool {
		spans, _ = r.Spans("g1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		return len(spans) == 2 && spans[1].End.Sub(spans[1].Start) > 2*time.Second
	})
	if gap := spans[1].Start.Sub(spans[0].End); gap < 2*time.Second || spans[0].End.After(dropped.Add(time.Second)) {
		t.Errorf("spans around the drop at %v: %v", dropped, spans)
	}
	e, b := exportBytes(t, r, "g1", spans[0].End.Add(-1500*time.Millisecond), spans[0].End.Add(time.Second))
	checkExport(t, b, e.End.Sub(e.Start), 2)
	if !e.End.Equal(spans[0].End) {
		t.Errorf("export before the drop ends at %v, want %v", e.End, spans[0].End)
	}
}

// faultyFile fails its writes while fail is set.
type faultyFile struct {
	*os.File
	fail *atomic.Bool
}

func (f faultyFile) Write(p []byte) (int, error) {
	if f.fail.Load() {
		return 0, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.EIO}
	}
	return f.File.Write(p)
}

func TestWriteErrorStopsOneCamera(t *testing.T) {
	// Not parallel, so that the leak check sees only this test's goroutines.
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the other cleanups
	m, _ := startCameras(t, testCam{"bad", hardware.ClipGOP1s, false}, testCam{"good", hardware.ClipGOP1s, false})
	dir := t.TempDir()
	var fail atomic.Bool
	reg := prometheus.NewRegistry()
	r, log := newTestRecorder(t, testConfig(dir, "bad", "good"), m, reg, func(s *segments) {
		s.openFile = func(name string) (segmentFile, error) {
			f, err := openSegmentFile(name)
			if err != nil || !strings.Contains(name, "/bad/") {
				return f, err
			}
			return faultyFile{f.(*os.File), &fail}, nil
		}
	})
	recordedFor(t, r, "bad", 2*time.Second)
	fail.Store(true)
	waitUntil(t, "bad stopped", func() bool {
		st, _ := r.Status("bad")
		return st.State == StateStopped && st.Reason == "write error: input/output error" && log.count(NoticeFault, "bad") == 1
	})
	if st, _ := r.Status("good"); st.State != StateRecording {
		t.Errorf("good: %+v", st)
	}
	fail.Store(false)
	waitUntil(t, "bad recording again", func() bool {
		st, _ := r.Status("bad")
		return st.State == StateRecording && log.count(NoticeRecovered, "bad") == 1
	})
	recordedFor(t, r, "bad", 2*time.Second)
	if v := gatherValues(t, reg, "skywatch_recording_write_errors_total"); v["bad"] < 1 || v["good"] != 0 {
		t.Errorf("write errors %v", v)
	}
	if log.count(NoticeFault, "good") != 0 {
		t.Error("good got a fault")
	}
}

func TestRecordSubStreamOrMainWithoutOne(t *testing.T) {
	t.Parallel()
	// Main loops the 1 s GOP clip, sub the 4 s one: 1 s segments tell
	// which stream was recorded.
	cam := startTestCamera(t, hardware.CameraPath{Path: "/main", Clip: hardware.ClipGOP1s}, hardware.CameraPath{Path: "/sub", Clip: hardware.ClipGOP4s})
	m := startSource(t, ingest.Config{Cameras: []ingest.CameraConfig{
		{ID: "withsub", URL: cam.URL("/main"), SubURL: cam.URL("/sub"), Transport: "tcp"},
		{ID: "nosub", URL: cam.URL("/main"), Transport: "tcp"},
	}}, slog.New(slog.DiscardHandler))
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Segment = time.Second
	cfg.Cameras = []CameraConfig{{ID: "withsub", Record: RecordAlways, Stream: StreamSub}, {ID: "nosub", Record: RecordAlways, Stream: StreamSub}}
	r, _ := newTestRecorder(t, cfg, m, nil, nil)
	for cam, want := range map[string]time.Duration{"withsub": 4 * time.Second, "nosub": time.Second} {
		waitUntil(t, cam+" segments", func() bool { return len(segmentFiles(t, dir, cam)) >= 3 })
		_, length, _ := parseSegmentName(filepath.Base(segmentFiles(t, dir, cam)[1]))
		if length < want-100*time.Millisecond || length > want+100*time.Millisecond {
			t.Errorf("%s: segments of %v, want %v", cam, length, want)
		}
		if st, _ := r.Status(cam); st.Stream != StreamSub || st.State != StateRecording {
			t.Errorf("%s: %+v", cam, st)
		}
	}
}
