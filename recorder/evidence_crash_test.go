package recorder

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skywatch/skywatch/hardware"
)

const evidenceChildEnv = "SKYWATCH_TEST_EVIDENCE_CHILD" // dir|camera URL

// TestChildClipsUntilKilled is the process the evidence crash test kills:
// it opens a long clip on one camera recorded for alarms only, and writes
// it until it is killed.
func TestChildClipsUntilKilled(t *testing.T) {
	dir, m := childSource(t, evidenceChildEnv, "TestClipSurvivesAKill")
	r, err := New(crashConfig(dir), m, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the ring fills
	r.StartClips("inc-kill", []string{"cam1"}, time.Now())
	fmt.Println("clipping")
	time.Sleep(time.Minute) // killed long before
	t.Fatal("not killed")
}

func crashConfig(dir string) Config {
	cfg := Config{Path: dir, PreAlarm: time.Second, PostAlarm: 30 * time.Second, ClipMax: time.Minute,
		Cameras: []CameraConfig{{ID: "cam1", Record: RecordAlarms}}}
	cfg.SetDefaults()
	return cfg
}

// TestClipSurvivesAKill: a SIGKILL in the middle of a clip loses at most
// its last fragment; the next start cuts the file after its last whole
// fragment, hashes it and completes the clip with a notice.
func TestClipSurvivesAKill(t *testing.T) {
	t.Parallel()
	cam := startTestCamera(t, hardware.CameraPath{Path: "/live", Clip: hardware.ClipGOP1s, Audio: true})
	dir := t.TempDir()
	child := startCrashChild(t, "TestChildClipsUntilKilled", evidenceChildEnv, dir, cam.URL("/live"))
	clip := filepath.Join(dir, "evidence", "inc-kill", "cam1.mp4")
	var first time.Time
	deadline := time.Now().Add(failAfter)
	for first.IsZero() || time.Since(first) < 4*time.Second {
		if st, err := os.Stat(clip); err == nil && st.Size() > 0 && first.IsZero() {
			first = time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child wrote no clip; output:\n%s", child.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	killedAt := child.kill(t)

	r, _ := startRecorder(t, &testRig{}, crashConfig(dir))
	c := waitClip(t, r, "inc-kill", "cam1")
	if c.Status != ClipComplete || !strings.Contains(c.Reason, "cut short") {
		t.Fatalf("clip after the kill: %+v", c)
	}
	if lost := killedAt.Sub(c.End); lost > 2500*time.Millisecond || lost < -time.Second {
		t.Errorf("the clip ends %v before the kill", lost)
	}
	if d := c.End.Sub(c.Start); d < 4*time.Second {
		t.Errorf("the clip lasts %v, less than was written", d)
	}
	checkHash(t, r, dir, c)
	checkFirstSample(t, clip, c)
}
