package recorder

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// Apply turns continuous recording on for cam4 and everything off for
// cam1 (which recorded always, with an evidence clip open): cam4 records,
// cam1 stops writing, its open clip is completed and stays playable, its
// segments stay on disk, and its ring and ingest readers go.
func TestApplyTurnsRecordingOnAndOff(t *testing.T) {
	rig := startRig(t)
	dir := t.TempDir()
	cfg := evidenceConfig(dir)
	cfg.Segment = time.Second
	cfg.Cameras = []CameraConfig{{ID: "cam1", Record: RecordAlways}, {ID: "cam4", Record: RecordOff}}
	cfg.SetDefaults()
	r, reg := startRecorder(t, rig, cfg)

	recordedFor(t, r, "cam1", 2*time.Second)
	waitRing(t, reg, "cam1", time.Second)
	r.StartClips("inc1", []string{"cam1"}, time.Now())
	waitUntil(t, "the clip to record", func() bool {
		clips := r.Clips("inc1")
		return len(clips) == 1 && clips[0].Bytes > 0
	})

	next := cfg
	next.Cameras = []CameraConfig{{ID: "cam1", Record: RecordOff}, {ID: "cam4", Record: RecordAlways}}
	next.SetDefaults()
	if keys := r.RestartOnly(next); len(keys) != 0 {
		t.Errorf("restart-only %v for the same recorder-wide settings", keys)
	}
	if err := r.Apply(next); err != nil {
		t.Fatal(err)
	}

	// cam1's clip ends at once, complete and hashed, with the reason.
	c := waitClip(t, r, "inc1", "cam1")
	if c.Status != ClipComplete || c.SHA256 == "" || !strings.Contains(c.Reason, "recording of the camera was turned off") {
		t.Errorf("cam1's clip after Apply: %+v", c)
	}
	f, _, err := r.ClipFile("inc1", c.ID)
	if err != nil {
		t.Fatalf("cam1's clip is not served: %v", err)
	}
	if b, err := io.ReadAll(f); err != nil || int64(len(b)) != c.Bytes {
		t.Errorf("cam1's clip: %d bytes read (%v), want %d", len(b), err, c.Bytes)
	}
	f.Close()

	// cam4 records; cam1 no longer writes, and its files stay.
	recordedFor(t, r, "cam4", 2*time.Second)
	if r.Records("cam1") || !r.Records("cam4") {
		t.Errorf("Records: cam1 %v cam4 %v", r.Records("cam1"), r.Records("cam4"))
	}
	files := segmentFiles(t, dir, "cam1")
	if len(files) == 0 {
		t.Fatal("cam1's segments are gone")
	}
	waitUntil(t, "cam1's ingest readers to go", func() bool {
		st, err := rig.src.Camera("cam1")
		return err == nil && st.Viewers == 0
	})
	time.Sleep(2 * cfg.Segment)
	if again := segmentFiles(t, dir, "cam1"); len(again) != len(files) {
		t.Errorf("cam1 wrote %d segments after Apply turned it off", len(again)-len(files))
	}
	var sts []string
	for _, st := range r.Statuses() {
		sts = append(sts, st.Camera+"/"+st.Record+"/"+st.State)
	}
	if fmt.Sprint(sts) != "[cam4/always/recording]" {
		t.Errorf("statuses %v", sts)
	}
	if v := gatherValues(t, reg, "skywatch_recorder_prealarm_bytes"); len(v) != 1 || v["cam4"] == 0 {
		t.Errorf("pre-alarm ring series %v, want cam4's only", v)
	}
	// Evidence on the camera that records now; none on the one that does not.
	waitRing(t, reg, "cam4", time.Second)
	r.StartClips("inc2", []string{"cam1", "cam4"}, time.Now())
	if clips := r.Clips("inc2"); len(clips) != 1 || clips[0].Camera != "cam4" {
		t.Errorf("clips of inc2: %+v, want cam4's only", clips)
	}

	next.Segment = 5 * time.Second
	next.Path = dir + "/elsewhere"
	if keys := r.RestartOnly(next); fmt.Sprint(keys) != "[recordings.path recordings.segment]" {
		t.Errorf("restart-only %v", keys)
	}
}

// A recorder that had nothing to record at Start starts when Apply turns a
// camera's recording on; without a path it says that needs a restart.
func TestApplyStartsARecorderThatHadNothingToRecord(t *testing.T) {
	rig := startRig(t)
	dir := t.TempDir()
	cfg := evidenceConfig(dir)
	cfg.Segment = time.Second
	cfg.Cameras = []CameraConfig{{ID: "cam1", Record: RecordOff}}
	cfg.SetDefaults()
	r, _ := startRecorder(t, rig, cfg)
	if sts := r.Statuses(); len(sts) != 0 {
		t.Fatalf("statuses before Apply: %+v", sts)
	}
	next := cfg
	next.Cameras = []CameraConfig{{ID: "cam1", Record: RecordAlways}}
	next.SetDefaults()
	if err := r.Apply(next); err != nil {
		t.Fatal(err)
	}
	recordedFor(t, r, "cam1", 2*time.Second)

	noPath := cfg
	noPath.Path = ""
	r2, _ := startRecorder(t, rig, noPath)
	next.Path = ""
	if err := r2.Apply(next); err == nil || !strings.Contains(err.Error(), "needs a restart") {
		t.Errorf("Apply turning recording on without a path: %v", err)
	}
	if r2.Records("cam1") {
		t.Errorf("a refused Apply changed the recording cameras")
	}
}
