package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// asMainEnv makes the test binary act as the skywatch command, so that a
// test can start `skywatch serve` as another process without building it.
const asMainEnv = "SKYWATCH_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// A short sim fanout against Skywatch only, so that the benchmark cannot
// rot: the server starts from the generated config, the viewers join,
// receive video and audio and see a keyframe, and the figures are read.
// It asserts no speed. A server that cannot start (here a MediaMTX that
// does not exist) gives a failed row and the others are still measured.
func TestFanoutBench(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(asMainEnv, "1") // for the server process only: this one is past TestMain
	s := fanoutSettings{binary: exe, skywatch: true, mediamtx: filepath.Join(t.TempDir(), "no-mediamtx"), dir: t.TempDir(),
		viewers: []int{2}, runs: 1, packetSize: 1460, gop: 2 * time.Second, audio: true,
		join: 200 * time.Millisecond, settle: 500 * time.Millisecond, duration: 2 * time.Second}
	if err := s.check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := fanoutBench(ctx, s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d results, want 2: %+v", len(results), results)
	}
	sky, mtx := results[0], results[1]
	if sky.server != "skywatch" || sky.err != "" {
		t.Fatalf("skywatch: %+v", sky)
	}
	if mtx.server != "mediamtx" || !strings.Contains(mtx.err, "start") {
		t.Fatalf("missing mediamtx: want a start error, got %+v", mtx)
	}
	t.Logf("skywatch, 2 viewers: cpu %.2f s (idle %.2f s), %.0f packets (%.0f video), lost %.0f, peak rss %.0f MB, first keyframes %v",
		sky.cpu, sky.idleCPU, sky.packets, sky.videoPackets, sky.lost, sky.rssPeak/1e6, sky.firstKey)
	switch {
	case sky.joined != 2:
		t.Errorf("%d viewers joined, want 2", sky.joined)
	case sky.videoPackets == 0 || sky.packets <= sky.videoPackets:
		t.Errorf("viewers received %.0f packets, %.0f of them video: want video and audio", sky.packets, sky.videoPackets)
	case sky.withKF != 2 || len(sky.firstKey) != 2:
		t.Errorf("%d viewers saw a keyframe, want 2", sky.withKF)
	case sky.cpu <= 0 || sky.idleCPU < 0 || sky.window < 2*time.Second:
		t.Errorf("cpu %.2f s, idle %.2f s over %s", sky.cpu, sky.idleCPU, sky.window)
	case sky.rssPeak <= 0 || sky.hwm < sky.rssPeak:
		t.Errorf("peak rss %.0f, VmHWM %.0f", sky.rssPeak, sky.hwm)
	}

	var out bytes.Buffer
	writeFanoutReport(&out, s, results)
	for _, want := range []string{"| skywatch | 2 |", "| skywatch (run 1) | 2 |", "| mediamtx (run 1) | 2 | failed: start"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}

	for _, bad := range []fanoutSettings{
		{skywatch: true, runs: 1, packetSize: 1460, gop: 2 * time.Second, duration: time.Second},
		{skywatch: true, viewers: []int{0}, runs: 1, packetSize: 1460, gop: 2 * time.Second, duration: time.Second},
		{skywatch: true, viewers: []int{1}, runs: 1, packetSize: 1460, gop: 3 * time.Second, duration: time.Second},
		{viewers: []int{1}, runs: 1, packetSize: 1460, gop: 2 * time.Second, duration: time.Second},
	} {
		if bad.check() == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
}

// The viewers count losses from sequence gaps across the 16-bit wrap, and
// tell an IDR in each H.264 packetization.
func TestFanoutViewerCounting(t *testing.T) {
	var c seqCounter
	for _, seq := range []uint16{65530, 65531, 65533, 65535, 0, 1, 4, 3} {
		c.add(seq, 100)
	}
	// 65530 to 65535 and 0 to 4 span 11 numbers; 8 arrived (3 late).
	if c.expected() != 11 || c.packets != 8 || c.bytes != 800 {
		t.Fatalf("expected %d, packets %d, bytes %d; want 11, 8, 800", c.expected(), c.packets, c.bytes)
	}
	for _, tc := range []struct {
		name    string
		payload []byte
		want    bool
	}{
		{"IDR", []byte{0x65, 0x88}, true},
		{"P slice", []byte{0x41, 0x9a}, false},
		{"SPS alone", []byte{0x67, 0x42}, false},
		{"STAP-A with SPS, PPS, IDR", []byte{0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce, 0, 2, 0x65, 0x88}, true},
		{"STAP-A with SPS, PPS", []byte{0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce}, false},
		{"STAP-A cut short", []byte{0x78, 0, 9, 0x65}, false},
		{"FU-A start of an IDR", []byte{0x7c, 0x85, 0x88}, true},
		{"FU-A middle of an IDR", []byte{0x7c, 0x05, 0x88}, false},
		{"FU-A start of a P slice", []byte{0x5c, 0x81, 0x9a}, false},
		{"empty", nil, false},
	} {
		if got := h264HasIDR(tc.payload); got != tc.want {
			t.Errorf("%s: h264HasIDR = %v, want %v", tc.name, got, tc.want)
		}
	}
}
