package recorder

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skywatch/skywatch/hardware"
)

const tinyDiskEnv = "SKYWATCH_TEST_TINY_DISK"

// TestTinyDisk runs TestTinyDiskInNamespace in a mount namespace of its
// own (unshare -m), where it may mount a 4 MiB tmpfs; it is skipped where
// that is not allowed.
func TestTinyDisk(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-m", os.Args[0], "-test.run=^TestTinyDiskInNamespace$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), tinyDiskEnv+"=1")
	out, err := cmd.CombinedOutput()
	switch {
	case bytes.Contains(out, []byte("--- SKIP")), err != nil && bytes.Contains(out, []byte("unshare failed")):
		t.Skipf("no tmpfs here:\n%s", out)
	case err != nil || !bytes.Contains(out, []byte("--- PASS: TestTinyDiskInNamespace")):
		t.Fatalf("in the mount namespace: %v\n%s", err, out)
	}
}

func TestTinyDiskInNamespace(t *testing.T) {
	if os.Getenv(tinyDiskEnv) == "" {
		t.Skip("run by TestTinyDisk")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=4m"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, 0) })

	// Evidence of an incident takes most of the disk.
	evidence := filepath.Join(mnt, "evidence", "inc-1", "clip.mp4")
	fill := func(name string, n int) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, bytes.Repeat([]byte{1}, n), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	fill(evidence, 2560<<10)

	m, _ := startCameras(t, testCam{"cam1", hardware.ClipGOP1s, true})
	cfg := testConfig(mnt, "cam1")
	cfg.Segment = time.Second
	cfg.MinFree = 1 << 20
	reg := prometheus.NewRegistry()
	r, log := newTestRecorder(t, cfg, m, reg, nil)

	// Recording goes on, deleting its oldest segments, never the evidence.
	waitUntil(t, "deletions for space", func() bool {
		return gatherValues(t, reg, "skywatch_recording_deleted_segments_total")["cam1/space"] >= 3
	})
	st, _ := r.Status("cam1")
	free, _, _ := statfs(mnt)
	t.Logf("status %+v, free %d", st, free)
	if st.State != StateRecording || st.Segments == 0 {
		t.Errorf("status %+v", st)
	}
	if free < 512<<10 {
		t.Errorf("free space %d, min_free %d", free, cfg.MinFree)
	}

	// Now evidence takes nearly all: recording stops, with its reason.
	more := filepath.Join(mnt, "evidence", "inc-2", "clip.mp4")
	free, _, _ = statfs(mnt)
	fill(more, int(free)-256<<10)
	waitUntil(t, "stopped for space", func() bool {
		st, _ := r.Status("cam1")
		return st.State == StateStopped && st.Reason == "no space" && st.Segments == 0 && log.count(NoticeFault, "cam1") >= 1
	})
	for _, p := range []string{evidence, more} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("evidence %s: %v", p, err)
		}
	}

	// The incident's evidence goes: recording resumes.
	if err := os.Remove(more); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "recording again", func() bool {
		st, _ := r.Status("cam1")
		return st.State == StateRecording && log.count(NoticeRecovered, "cam1") >= 1
	})
	recordedFor(t, r, "cam1", 2*time.Second)
}
