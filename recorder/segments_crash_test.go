package recorder

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skywatch/skywatch/hardware"
)

const childEnv = "SKYWATCH_TEST_RECORDER_CHILD" // dir|camera URL

// TestChildRecordsUntilKilled is the process the crash test kills: it
// records one camera into a directory until it is killed.
func TestChildRecordsUntilKilled(t *testing.T) {
	dir, m := childSource(t, childEnv, "TestCrashLosesAtMostTheLastFragment")
	rc := testConfig(dir, "cam1")
	rc.Segment = time.Minute // the kill comes in the middle of a segment
	r, err := New(rc, m, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	fmt.Println("recording")
	time.Sleep(time.Minute) // killed long before
	t.Fatal("not killed")
}

func TestCrashLosesAtMostTheLastFragment(t *testing.T) {
	t.Parallel()
	cam := startTestCamera(t, hardware.CameraPath{Path: "/live", Clip: hardware.ClipGOP4s, Audio: true})
	dir := t.TempDir()
	child := startCrashChild(t, "TestChildRecordsUntilKilled", childEnv, dir, cam.URL("/live"))
	// Wait until the child has written a few seconds into its first
	// segment, then kill it without warning.
	var first time.Time
	waitUntil(t, "the child recording", func() bool {
		files := segmentFiles(t, dir, "cam1")
		if len(files) == 0 {
			return false
		}
		if first.IsZero() {
			first = time.Now()
		}
		return time.Since(first) > 6500*time.Millisecond
	})
	killedAt := child.kill(t)
	files := segmentFiles(t, dir, "cam1")
	if len(files) != 1 {
		t.Fatalf("files %v, output:\n%s", files, child.out.String())
	}
	if _, length, _ := parseSegmentName(filepath.Base(files[0])); length >= 0 {
		t.Fatalf("the segment was closed before the kill: %s", files[0])
	}

	// Restart (the camera is still there and records on).
	r, _ := newTestRecorder(t, testConfig(dir, "cam1"), deadSource{}, nil, nil)
	spans, err := r.Spans("cam1", killedAt.Add(-time.Hour), killedAt)
	if err != nil || len(spans) != 1 {
		t.Fatalf("spans %v %v", spans, err)
	}
	// Fragments are a second at most, the camera's units reach the
	// recorder within a fraction of one.
	if lost := killedAt.Sub(spans[0].End); lost > 2500*time.Millisecond || lost < -time.Second {
		t.Errorf("the spans end %v before the kill", lost)
	}
	if spans[0].End.Sub(spans[0].Start) < 4*time.Second {
		t.Errorf("spans %v: less than recorded", spans)
	}
	e, b := exportBytes(t, r, "cam1", spans[0].Start, spans[0].End)
	checkExport(t, b, spans[0].End.Sub(spans[0].Start), 2)
	if !e.Start.Equal(spans[0].Start) || !e.End.Equal(spans[0].End) {
		t.Errorf("export %v-%v of span %v", e.Start, e.End, spans[0])
	}
	if files := segmentFiles(t, dir, "cam1"); len(files) != 1 || !strings.Contains(filepath.Base(files[0]), "_") {
		t.Errorf("after repair: %v", files)
	}
}
