package recorder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
)

// failAfter bounds every wait for something that should happen: generous,
// as test machines are shared.
const failAfter = 60 * time.Second

// lockedBuffer collects a test's log, printed if it fails.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func testLogger(t *testing.T) *slog.Logger {
	buf := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			buf.mu.Lock()
			t.Logf("log:\n%s", buf.b.String())
			buf.mu.Unlock()
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testRig is a simulated camera (/gop1 with 1 s GOPs, /gop4 with 4 s GOPs
// and audio) pulled by a real ingest manager as cam1 and cam4, and a
// camera "dead" whose address answers nothing.
type testRig struct {
	cam *hardware.Camera
	src *ingest.Manager
}

func startRig(t *testing.T) *testRig {
	t.Helper()
	cam := startTestCamera(t,
		hardware.CameraPath{Path: "/gop1", Clip: hardware.ClipGOP1s},
		hardware.CameraPath{Path: "/gop4", Clip: hardware.ClipGOP4s, Audio: true})
	m := startSource(t, ingest.Config{Cameras: []ingest.CameraConfig{
		{ID: "cam1", URL: cam.URL("/gop1")},
		{ID: "cam4", URL: cam.URL("/gop4")},
		{ID: "dead", URL: "rtsp://127.0.0.1:1/none"},
	}}, testLogger(t))
	return &testRig{cam: cam, src: m}
}

// evidenceConfig records cam1, cam4 and dead for alarms only, with short
// pre- and post-alarm times.
func evidenceConfig(path string) Config {
	cfg := Config{Path: path, PreAlarm: 2 * time.Second, PostAlarm: 2 * time.Second, ClipMax: time.Minute,
		Cameras: []CameraConfig{{ID: "cam1", Record: RecordAlarms}, {ID: "cam4", Record: RecordAlarms},
			{ID: "dead", Record: RecordAlarms}, {ID: "off", Record: RecordOff}}}
	cfg.SetDefaults()
	return cfg
}

// startRecorder starts a recorder of cfg on the rig, with its evidence's
// waits shortened.
func startRecorder(t *testing.T, rig *testRig, cfg Config) (*Recorder, *prometheus.Registry) {
	t.Helper()
	return startRecorderWith(t, rig, cfg, nil)
}

// startRecorderWith is startRecorder with a change to the recorder's
// parts before it starts.
func startRecorderWith(t *testing.T, rig *testRig, cfg Config, tweak func(r *Recorder)) (*Recorder, *prometheus.Registry) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var src Source = rig.src
	if rig.src == nil {
		src = deadSource{}
	}
	r, err := New(cfg, src, reg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	r.evidence.retry = 200 * time.Millisecond
	r.evidence.lateGrace = time.Second
	if tweak != nil {
		tweak(r)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r, reg
}

// waitRing waits until a camera's ring holds at least d of video.
func waitRing(t *testing.T, reg *prometheus.Registry, camera string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for metricValue(t, reg, "skywatch_recorder_prealarm_bytes", camera) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("camera %s's ring stays empty", camera)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(d)
}

// waitClip waits for the notice of a clip of incident and camera.
func waitClip(t *testing.T, r *Recorder, incident, camera string) Clip {
	t.Helper()
	timeout := time.After(failAfter)
	for {
		select {
		case n := <-r.Notices():
			if n.Kind == NoticeClip && n.Clip.Incident == incident && n.Clip.Camera == camera {
				return *n.Clip
			}
		case <-timeout:
			t.Fatalf("no notice of the clip of %s on %s; clips: %+v", incident, camera, r.Clips(incident))
		}
	}
}

// checkHash checks that the clip's file, as ClipFile serves it and as it
// is on disk, hashes to its SHA-256, and that the sidecar says the same.
func checkHash(t *testing.T, r *Recorder, path string, c Clip) {
	t.Helper()
	f, got, err := r.ClipFile(c.Incident, c.ID)
	if err != nil {
		t.Fatalf("ClipFile: %v", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != c.SHA256 || got.SHA256 != c.SHA256 || n != c.Bytes || n == 0 {
		t.Errorf("clip file of %d bytes hashes to %s; clip says %d bytes, %s (ClipFile's clip %s)", n, sum, c.Bytes, c.SHA256, got.SHA256)
	}
	name, _ := incidentDirName(c.Incident)
	data, err := os.ReadFile(filepath.Join(path, "evidence", name, c.Camera+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var sc sidecar
	if err := json.Unmarshal(data, &sc); err != nil {
		t.Fatal(err)
	}
	if sc.SHA256 != c.SHA256 || sc.Status != ClipComplete || !sc.Start.Equal(c.Start) || !sc.End.Equal(c.End) || !sc.Alarm.Equal(c.Alarm) {
		t.Errorf("sidecar %s does not match the clip %+v", data, c)
	}
}

// TestClipStartsBeforeTheAlarm: a clip's first frame is a keyframe from
// pre_alarm (give or take a GOP) before the alarm, and it ends post_alarm
// after it; its hash is the file's. A camera recorded for alarms only gets
// its clip from the ring alone.
func TestClipStartsBeforeTheAlarm(t *testing.T) {
	t.Parallel()
	rig := startRig(t)
	dir := t.TempDir()
	cfg := evidenceConfig(dir)
	r, reg := startRecorder(t, rig, cfg)
	waitRing(t, reg, "cam1", cfg.PreAlarm+2*time.Second)
	waitRing(t, reg, "cam4", 0)

	alarm := time.Now()
	r.StartClips("inc-1", []string{"off", "unknown", "cam1"}, alarm)
	if got := r.Clips("inc-1"); len(got) != 1 || got[0].Camera != "cam1" || got[0].Status != ClipRecording {
		t.Fatalf("clips at once: %+v, want cam1 recording", got)
	}
	c := waitClip(t, r, "inc-1", "cam1")
	if c.Status != ClipComplete || c.SHA256 == "" {
		t.Fatalf("clip %+v, want complete with a hash", c)
	}
	const gop = time.Second
	if lead := c.Alarm.Sub(c.Start); lead < cfg.PreAlarm-100*time.Millisecond || lead > cfg.PreAlarm+gop+time.Second {
		t.Errorf("the clip starts %s before the alarm, want %s to %s + a GOP", lead, cfg.PreAlarm, cfg.PreAlarm)
	}
	if tail := c.End.Sub(alarm); tail < cfg.PostAlarm-200*time.Millisecond || tail > cfg.PostAlarm+time.Second {
		t.Errorf("the clip ends %s after the alarm, want about %s", tail, cfg.PostAlarm)
	}
	checkHash(t, r, dir, c)
	checkFirstSample(t, filepath.Join(dir, "evidence", "inc-1", "cam1.mp4"), c)

	// Evidence bytes are counted for the segments' retention.
	if got := r.evidence.bytes(); got != c.Bytes {
		t.Errorf("evidence bytes %d, want the clip's %d", got, c.Bytes)
	}
	if got := metricValue(t, reg, "skywatch_recorder_clips", "complete"); got != 1 {
		t.Errorf("complete clips metric %v", got)
	}

	// The same incident again (an engine replaying it): no second clip.
	r.StartClips("inc-1", []string{"cam1"}, alarm)
	if got := r.Clips("inc-1"); len(got) != 1 || got[0].Status != ClipComplete {
		t.Errorf("clips after a second StartClips: %+v", got)
	}
}

// TestClipExtendedAndCapped: a later event moves the end; clip_max caps it.
func TestClipExtendedAndCapped(t *testing.T) {
	t.Parallel()
	rig := startRig(t)
	dir := t.TempDir()
	cfg := evidenceConfig(dir)
	cfg.PreAlarm, cfg.PostAlarm, cfg.ClipMax = time.Second, 2*time.Second, 6*time.Second
	r, reg := startRecorder(t, rig, cfg)
	waitRing(t, reg, "cam1", 2*time.Second)

	alarm := time.Now()
	r.StartClips("inc-ext", []string{"cam1"}, alarm)
	r.StartClips("inc-cap", []string{"cam1"}, alarm)
	time.Sleep(time.Second)
	last := time.Now()
	r.ExtendClips("inc-ext", last)
	r.ExtendClips("inc-cap", last.Add(time.Hour))
	r.ExtendClips("inc-none", last)

	ext := waitClip(t, r, "inc-ext", "cam1")
	if ext.Status != ClipComplete {
		t.Fatalf("extended clip %+v", ext)
	}
	if tail := ext.End.Sub(last); tail < cfg.PostAlarm-200*time.Millisecond || tail > cfg.PostAlarm+time.Second {
		t.Errorf("the extended clip ends %s after the last event, want about %s", tail, cfg.PostAlarm)
	}
	capped := waitClip(t, r, "inc-cap", "cam1")
	if d := capped.End.Sub(capped.Start); capped.Status != ClipComplete || d > cfg.ClipMax || d < cfg.ClipMax-time.Second {
		t.Errorf("capped clip %+v lasts %s, want clip_max %s", capped, d, cfg.ClipMax)
	}
	checkHash(t, r, dir, ext)
	checkHash(t, r, dir, capped)
	checkFirstSample(t, filepath.Join(dir, "evidence", "inc-ext", "cam1.mp4"), ext)
	checkFirstSample(t, filepath.Join(dir, "evidence", "inc-cap", "cam1.mp4"), capped)
}

// TestClipOfACameraThatDoesNotDeliver: the clip fails with a reason, and
// cameras_per_incident bounds the clips.
func TestClipOfACameraThatDoesNotDeliver(t *testing.T) {
	t.Parallel()
	rig := startRig(t)
	dir := t.TempDir()
	cfg := evidenceConfig(dir)
	cfg.PreAlarm, cfg.PostAlarm, cfg.ClipMax = time.Second, time.Second, 2*time.Second
	cfg.Evidence.CamerasPerIncident, cfg.Evidence.MaxOpenClips = 1, 1
	r, reg := startRecorder(t, rig, cfg)
	r.StartClips("inc-dead", []string{"dead", "cam1"}, time.Now())
	c := waitClip(t, r, "inc-dead", "dead")
	if c.Status != ClipFailed || !strings.Contains(c.Reason, "delivered no video") {
		t.Errorf("clip of a dead camera: %+v", c)
	}
	if got := r.Clips("inc-dead"); len(got) != 1 {
		t.Errorf("clips %+v, want only the first camera's (cameras_per_incident 1)", got)
	}
	if _, _, err := r.ClipFile("inc-dead", "dead"); err == nil {
		t.Error("ClipFile of a clip without video: no error")
	}
	if _, _, err := r.ClipFile("inc-dead", "cam1"); err == nil {
		t.Error("ClipFile of no such clip: no error")
	}
	// One camera writes at most max_open_clips at once.
	r.StartClips("inc-a", []string{"cam1"}, time.Now())
	r.StartClips("inc-b", []string{"cam1"}, time.Now())
	if c := waitClip(t, r, "inc-b", "cam1"); c.Status != ClipFailed || !strings.Contains(c.Reason, "max_open_clips") {
		t.Errorf("a clip past max_open_clips: %+v", c)
	}
	if c := waitClip(t, r, "inc-a", "cam1"); c.Status != ClipComplete {
		t.Errorf("the clip within max_open_clips: %+v", c)
	}

	// A clip whose file cannot be written fails with the error, counted.
	if err := os.MkdirAll(filepath.Join(dir, "evidence", "inc-err", "cam1.mp4"), 0o750); err != nil {
		t.Fatal(err)
	}
	r.StartClips("inc-err", []string{"cam1"}, time.Now())
	if c := waitClip(t, r, "inc-err", "cam1"); c.Status != ClipFailed || !strings.Contains(c.Reason, "create") {
		t.Errorf("a clip that cannot be written: %+v", c)
	}
	if v := metricValue(t, reg, "skywatch_recorder_clip_write_errors_total", ""); v != 1 {
		t.Errorf("clip write errors %v, want 1", v)
	}

	// An alarm whose clip would have ended already opens nothing.
	r.StartClips("inc-old", []string{"cam1"}, time.Now().Add(-time.Hour))
	if got := r.Clips("inc-old"); len(got) != 0 {
		t.Errorf("clips of an old alarm: %+v", got)
	}
}

// TestClipAcrossARestart: a recorder stopped in the middle of a clip, and
// one whose clip file a crash cut in the middle of a fragment, complete it
// at the next start, with a notice; the incident seen again does not open
// a second clip.
func TestClipAcrossARestart(t *testing.T) {
	t.Parallel()
	rig := startRig(t)
	dir := t.TempDir()
	cfg := evidenceConfig(dir)
	cfg.PostAlarm, cfg.ClipMax = 20*time.Second, time.Minute
	r, reg := startRecorder(t, rig, cfg)
	waitRing(t, reg, "cam1", time.Second)
	alarm := time.Now()
	r.StartClips("inc-r", []string{"cam1", "cam4"}, alarm)
	time.Sleep(3 * time.Second)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	for _, c := range r.Clips("inc-r") {
		if c.Status != ClipRecording {
			t.Fatalf("clip after a stop: %+v, want still recording", c)
		}
	}
	// A crash cuts cam4's file in the middle of a fragment.
	cut := filepath.Join(dir, "evidence", "inc-r", "cam4.mp4")
	f, err := os.OpenFile(cut, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0, 0, 1, 0, 'm', 'o', 'o', 'f', 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	r2, _ := startRecorder(t, rig, cfg)
	for _, cam := range []string{"cam1", "cam4"} {
		c := waitClip(t, r2, "inc-r", cam)
		if c.Status != ClipComplete || !strings.Contains(c.Reason, "cut short") || !c.End.After(alarm) {
			t.Errorf("clip of %s after a restart: %+v", cam, c)
			continue
		}
		checkHash(t, r2, dir, c)
		checkFirstSample(t, filepath.Join(dir, "evidence", "inc-r", cam+".mp4"), c)
	}
	r2.StartClips("inc-r", []string{"cam1", "cam4"}, alarm)
	if got := r2.Clips("inc-r"); len(got) != 2 || got[0].Status != ClipComplete || got[1].Status != ClipComplete {
		t.Errorf("clips after the incident came again: %+v", got)
	}
}

// TestEvidenceKeep: EndIncident sets keep_until; the sweep deletes clips
// past it and no others.
func TestEvidenceKeep(t *testing.T) {
	t.Parallel()
	rig := startRig(t)
	dir := t.TempDir()
	cfg := evidenceConfig(dir)
	cfg.PreAlarm, cfg.PostAlarm, cfg.ClipMax = time.Second, time.Second, 2*time.Second
	r, reg := startRecorder(t, rig, cfg)
	waitRing(t, reg, "cam1", time.Second)
	now := time.Now()
	r.StartClips("inc-old", []string{"cam1"}, now)
	r.StartClips("inc-new", []string{"cam1"}, now)
	r.StartClips("inc-open", []string{"cam1"}, now)
	old := waitClip(t, r, "inc-old", "cam1")
	waitClip(t, r, "inc-new", "cam1")
	waitClip(t, r, "inc-open", "cam1")
	if got := r.Unended(); !slices.Equal(got, []string{"inc-new", "inc-old", "inc-open"}) {
		t.Errorf("unended %q before any end", got)
	}
	r.EndIncident("inc-old", now.Add(-cfg.Evidence.Keep-time.Minute))
	r.EndIncident("inc-new", now)
	if got := r.Unended(); !slices.Equal(got, []string{"inc-open"}) {
		t.Errorf("unended %q, want only inc-open", got)
	}
	if got := r.Clips("inc-new"); !got[0].KeepUntil.Equal(now.Add(cfg.Evidence.Keep)) {
		t.Errorf("keep_until %s, want %s", got[0].KeepUntil, now.Add(cfg.Evidence.Keep))
	}
	before := r.evidence.bytes()
	r.evidence.sweep()
	if got := r.Clips("inc-old"); len(got) != 0 {
		t.Errorf("expired clip kept: %+v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "evidence", "inc-old")); !os.IsNotExist(err) {
		t.Errorf("expired incident's directory: %v", err)
	}
	if len(r.Clips("inc-new")) != 1 || len(r.Clips("inc-open")) != 1 {
		t.Error("a clip not expired was deleted")
	}
	if got := r.evidence.bytes(); got != before-old.Bytes {
		t.Errorf("evidence bytes %d after the sweep, want %d", got, before-old.Bytes)
	}
	// keep_until survives a restart.
	_ = r.Close()
	r2, _ := startRecorder(t, rig, cfg)
	if got := r2.Clips("inc-new"); len(got) != 1 || !got[0].KeepUntil.Equal(now.Add(cfg.Evidence.Keep)) || got[0].Status != ClipComplete {
		t.Errorf("after a restart: %+v", got)
	}
	if got := r2.evidence.bytes(); got != before-old.Bytes {
		t.Errorf("evidence bytes %d after a restart, want %d", got, before-old.Bytes)
	}
}

// checkFirstSample checks that the clip's file starts with a keyframe at
// its time 0, which is the clip's Start, and ends at its End.
func checkFirstSample(t *testing.T, path string, c Clip) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	scan, err := scanFile(f, st.Size())
	if err != nil || len(scan.frags) == 0 || scan.valid != st.Size() {
		t.Fatalf("clip file: %v, %d fragments, %d of %d bytes whole", err, len(scan.frags), scan.valid, st.Size())
	}
	v := scan.frags[0].track(1)
	if v == nil || !v.sync || v.base != 0 {
		t.Errorf("first fragment's video %+v, want a sync sample at time 0 (the clip's start)", v)
	}
	last := scan.frags[len(scan.frags)-1].track(1)
	if end := c.Start.Add(ticksToDuration(int64(last.base+last.duration), videoTimescale)); !end.Equal(c.End) {
		t.Errorf("the file's video ends at %s, the clip says %s", end, c.End)
	}
}

// metricValue reads a gauge or counter from reg: the one whose labels
// include want (a label value), or the only one.
func metricValue(t *testing.T, reg *prometheus.Registry, name, want string) float64 {
	t.Helper()
	for labels, v := range gatherValues(t, reg, name) {
		if want == "" || slices.Contains(strings.Split(labels, "/"), want) {
			return v
		}
	}
	return 0
}

// TestEvidenceSurvivesSegmentRetention: a camera recorded always whose
// disk runs out loses its segments, oldest first and then all, but never
// its evidence, which counts against the space.
func TestEvidenceSurvivesSegmentRetention(t *testing.T) {
	t.Parallel()
	rig := startRig(t)
	dir := t.TempDir()
	cfg := evidenceConfig(dir)
	cfg.Cameras[0].Record = RecordAlways
	cfg.Segment, cfg.PreAlarm, cfg.PostAlarm, cfg.ClipMax = time.Second, time.Second, time.Second, 20*time.Second
	var mu sync.Mutex
	free := uint64(10 << 30)
	r, reg := startRecorderWith(t, rig, cfg, func(r *Recorder) {
		r.segments.retentionEvery = 50 * time.Millisecond
		r.segments.statfs = func(string) (uint64, uint64, error) {
			mu.Lock()
			defer mu.Unlock()
			return free, 20 << 30, nil
		}
	})
	waitRing(t, reg, "cam1", 2*time.Second)
	r.StartClips("inc-keep", []string{"cam1"}, time.Now())
	c := waitClip(t, r, "inc-keep", "cam1")
	if c.Status != ClipComplete || len(segmentFiles(t, dir, "cam1")) == 0 {
		t.Fatalf("clip %+v with %d segments", c, len(segmentFiles(t, dir, "cam1")))
	}

	// A clip in progress when the disk fills keeps what it has and stops.
	r.StartClips("inc-full", []string{"cam1"}, time.Now())
	r.ExtendClips("inc-full", time.Now().Add(15*time.Second))
	time.Sleep(time.Second)
	mu.Lock()
	free = 0 // the disk is full
	mu.Unlock()
	full := waitClip(t, r, "inc-full", "cam1")
	if full.Status != ClipComplete || !strings.Contains(full.Reason, "no space") || full.End.Sub(full.Start) > 10*time.Second {
		t.Errorf("clip when the disk filled: %+v", full)
	}
	checkHash(t, r, dir, full)
	deadline := time.Now().Add(failAfter)
	for len(segmentFiles(t, dir, "cam1")) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("segments left: %v", segmentFiles(t, dir, "cam1"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	checkHash(t, r, dir, c)
	if got := r.Clips("inc-keep"); len(got) != 1 || got[0].Status != ClipComplete {
		t.Errorf("clips after the disk filled: %+v", got)
	}
	if got := r.evidence.bytes(); got != c.Bytes+full.Bytes {
		t.Errorf("evidence bytes %d, want %d", got, c.Bytes+full.Bytes)
	}
}
