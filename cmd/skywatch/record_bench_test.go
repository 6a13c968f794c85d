package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// The config that sim record writes must stay one that serve accepts:
// a renamed key would otherwise show only when someone runs the benchmark.
func TestRecordBenchConfig(t *testing.T) {
	s := recordBenchSettings{n: 3, runs: 1, record: "always", stream: "sub", sub: true,
		warmup: time.Second, duration: time.Second, segment: 5 * time.Second, preAlarm: 2 * time.Second, binary: "skywatch"}
	if err := s.check(); err != nil {
		t.Fatal(err)
	}
	cams, err := startBenchCameras(s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cams.Close()
	dir := t.TempDir()
	target, err := newSkywatchTarget(s, cams, dir, dir+"/recordings")
	if err != nil {
		t.Fatal(err)
	}
	fc, err := loadConfig(target.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := buildSettings(fc); err != nil {
		t.Fatal(err)
	}
	if len(fc.Cameras) != 3 || fc.Cameras[2].ID != "cam0003" || fc.Cameras[2].Record != "always" ||
		fc.Cameras[2].RecordStream != "sub" || !strings.HasSuffix(fc.Cameras[2].SubURL, "/cam0003/sub") {
		t.Fatalf("cameras %+v", fc.Cameras)
	}
	if fc.Recordings.PreAlarm != 2*time.Second || fc.Recordings.Segment != 5*time.Second {
		t.Fatalf("recordings %+v", fc.Recordings)
	}

	for _, bad := range []recordBenchSettings{
		{n: 0, runs: 1, record: "always", stream: "main", duration: time.Second},
		{n: 1, runs: 1, record: "always", stream: "main", duration: time.Second, preAlarm: -2},
		{n: 1, runs: 1, record: "sometimes", stream: "main", duration: time.Second},
		{n: 1, runs: 1, record: "always", stream: "sub", duration: time.Second},
		{n: 1, runs: 1, record: "always", stream: "main", duration: time.Minute, export: 50 * time.Second},
		{n: 1, runs: 1, record: "alarms", stream: "main", duration: time.Second, mediamtx: "mediamtx"},
	} {
		if bad.check() == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
}

func TestSumLines(t *testing.T) {
	lines := []string{
		`skywatch_camera_status{camera="a",stream="main",status="online"} 1`,
		`skywatch_camera_status{camera="a",stream="main",status="offline"} 0`,
		`skywatch_camera_status{camera="b",stream="main",status="online"} 1`,
		`skywatch_camera_status{camera="b",stream="sub",status="online"} 1`,
		`skywatch_camera_received_bytes_total{camera="a",stream="main"} 1.5e+06`,
		`skywatch_camera_received_bytes_total_extra 7`,
		`go_memstats_heap_inuse_bytes 4.2e+07`,
	}
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"skywatch_camera_status", []string{`stream="main"`, `status="online"`}, 2},
		{"skywatch_camera_status", []string{`stream="sub"`, `status="online"`}, 1},
		{"skywatch_camera_received_bytes_total", nil, 1.5e6},
		{"go_memstats_heap_inuse_bytes", nil, 4.2e7},
	} {
		if got := sumLines(lines, tc.name, tc.labels...); got != tc.want {
			t.Errorf("sumLines(%s, %v) = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}
