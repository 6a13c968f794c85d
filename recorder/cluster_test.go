package recorder

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
)

// clusterNode is one node's recorder on the shared directory, pulling only
// the cameras it holds (its ingest manager has no other).
func clusterNode(t *testing.T, cam *hardware.Camera, dir, node string, pulls []string, record string) *Recorder {
	t.Helper()
	return clusterNodeWith(t, cam, dir, node, pulls, record, nil)
}

func clusterNodeWith(t *testing.T, cam *hardware.Camera, dir, node string, pulls []string, record string, tweak func(*Recorder)) *Recorder {
	t.Helper()
	var cams []ingest.CameraConfig
	for _, id := range pulls {
		cams = append(cams, ingest.CameraConfig{ID: id, URL: cam.URL("/" + id)})
	}
	rig := &testRig{cam: cam, src: startSource(t, ingest.Config{Cameras: cams}, testLogger(t))}
	cfg := evidenceConfig(dir)
	cfg.Node = node
	cfg.Segment = time.Second
	cfg.Cameras = []CameraConfig{{ID: "cam1", Record: record}, {ID: "cam4", Record: record}}
	cfg.SetDefaults()
	r, _ := startRecorderWith(t, rig, cfg, tweak)
	return r
}

// Two nodes share one recordings directory (as over NFS) and both see the
// same incident: each opens the clip only of the camera it pulls, both
// write at once without touching the other's files, and each reads the
// other's clip, also after its writer is gone; a node started afterwards
// leaves the others' clips as they are and reads them too.
func TestSharedDirectoryClips(t *testing.T) {
	cam := startTestCamera(t,
		hardware.CameraPath{Path: "/cam1", Clip: hardware.ClipGOP1s},
		hardware.CameraPath{Path: "/cam4", Clip: hardware.ClipGOP1s})
	dir := t.TempDir()
	a := clusterNode(t, cam, dir, "a", []string{"cam1"}, RecordAlarms)
	b := clusterNode(t, cam, dir, "b", []string{"cam4"}, RecordAlarms)
	waitFeeds(t, a.evidence, "cam1")
	waitFeeds(t, b.evidence, "cam4")

	alarm := time.Now()
	var wg sync.WaitGroup
	for _, r := range []*Recorder{a, b} {
		wg.Go(func() { r.StartClips("inc-1", []string{"cam1", "cam4"}, alarm) })
	}
	wg.Wait()
	ca := waitClip(t, a, "inc-1", "cam1")
	cb := waitClip(t, b, "inc-1", "cam4")
	if ca.Status != ClipComplete || cb.Status != ClipComplete {
		t.Fatalf("clips: a's %+v, b's %+v", ca, cb)
	}
	checkHash(t, a, dir, ca)
	checkHash(t, b, dir, cb)
	for _, c := range []struct {
		r    *Recorder
		want []string
	}{{a, []string{"cam1", "cam4"}}, {b, []string{"cam1", "cam4"}}} {
		if got := clipCameras(c.r.Clips("inc-1")); strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("clips seen: %v, want %v", got, c.want)
		}
	}
	sidecars := readSidecars(t, dir, "inc-1")

	// a is gone; b still serves its clip, and a node started now changes
	// nothing on disk.
	_ = a.Close()
	checkHash(t, b, dir, ca)
	c := clusterNode(t, cam, dir, "c", nil, RecordAlarms)
	checkHash(t, c, dir, ca)
	checkHash(t, c, dir, cb)
	if got := clipCameras(c.Clips("inc-1")); strings.Join(got, ",") != "cam1,cam4" {
		t.Errorf("clips seen by a new node: %v", got)
	}
	_ = b.Close()
	_ = c.Close()
	after := readSidecars(t, dir, "inc-1")
	for name, data := range sidecars {
		if !bytes.Equal(after[name], data) {
			t.Errorf("sidecar %s changed after its writer stopped:\n%s\nnow:\n%s", name, data, after[name])
		}
	}
}

// A node that starts while another records into the shared directory
// neither repairs nor indexes the other's open segment: it is named with
// its writer and grows on, and is closed under its final name.
func TestSharedDirectoryOpenSegments(t *testing.T) {
	cam := startTestCamera(t, hardware.CameraPath{Path: "/cam1", Clip: hardware.ClipGOP1s})
	dir := t.TempDir()
	a := clusterNode(t, cam, dir, "a", []string{"cam1"}, RecordAlways)
	open := waitOpenSegment(t, dir, "~a.mp4")
	b := clusterNode(t, cam, dir, "b", nil, RecordAlways)
	if n := len(b.Statuses()); n == 0 {
		t.Fatal("b has no recording camera")
	}
	if spans, _ := b.Spans("cam1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)); len(spans) != 0 {
		t.Fatalf("b indexed a's open segment: %+v", spans)
	}
	st1, err := os.Stat(open)
	if err != nil {
		t.Fatalf("a's open segment after b started: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	if st2, err := os.Stat(open); err == nil && st2.Size() < st1.Size() {
		t.Fatalf("a's open segment shrank from %d to %d bytes", st1.Size(), st2.Size())
	}
	_ = a.Close()
	_ = b.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "segments", "cam1", "*", "*.mp4"))
	for _, f := range files {
		if strings.Contains(f, "~") {
			t.Errorf("segment left open after a closed: %s", f)
		}
	}
	if len(files) == 0 {
		t.Fatal("no segment")
	}
}

func waitFeeds(t *testing.T, e *evidence, cams ...string) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for _, id := range cams {
		for !e.feeds[id].pulling.Load() {
			if time.Now().After(deadline) {
				t.Fatalf("feed of %s never pulls", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(2500 * time.Millisecond) // the pre-alarm ring fills
}

func waitOpenSegment(t *testing.T, dir, suffix string) string {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "segments", "cam1", "*", "*"+suffix))
		if len(files) > 0 {
			return files[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no open segment named *%s", suffix)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clipCameras are the clips' cameras, sorted (clips are listed by their
// start, which is the first picture's).
func clipCameras(clips []Clip) []string {
	var out []string
	for _, c := range clips {
		out = append(out, c.Camera)
	}
	slices.Sort(out)
	return out
}

func readSidecars(t *testing.T, dir, incident string) map[string][]byte {
	t.Helper()
	name, _ := incidentDirName(incident)
	files, err := filepath.Glob(filepath.Join(dir, "evidence", name, "*.json"))
	if err != nil || len(files) != 2 {
		t.Fatalf("sidecars of %s: %v %v", incident, files, err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = data
	}
	return out
}

// A node finds the segments another node closed since it started: the
// recordings of a camera that moved between nodes are one timeline on
// every node.
func TestSharedDirectoryRescan(t *testing.T) {
	cam := startTestCamera(t, hardware.CameraPath{Path: "/cam1", Clip: hardware.ClipGOP1s})
	dir := t.TempDir()
	b := clusterNodeWith(t, cam, dir, "b", nil, RecordAlways, func(r *Recorder) { r.segments.rescanEvery = 100 * time.Millisecond })
	a := clusterNode(t, cam, dir, "a", []string{"cam1"}, RecordAlways)
	spans := func(r *Recorder) []Span {
		sp, err := r.Spans("cam1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return sp
	}
	deadline := time.Now().Add(failAfter)
	for len(spans(b)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("b never found a's segments; a has %+v", spans(a))
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = a.Close()
	st, err := b.Status("cam1")
	if err != nil || st.Segments == 0 || st.Bytes == 0 {
		t.Fatalf("b's status of cam1: %+v %v", st, err)
	}
	got, want := spans(b), spans(a)
	if len(got) == 0 || len(want) == 0 || !got[0].Start.Equal(want[0].Start) {
		t.Fatalf("b's spans %+v, a's %+v", got, want)
	}
}
