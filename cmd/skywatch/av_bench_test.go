package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skywatch/skywatch/hardware"
)

// BenchmarkChromiumLiveAV measures the live picture in Chromium side by
// side with MediaMTX, in one run: the demo (as TestChromiumLiveAV runs it)
// and MediaMTX pulling the same two simulated cameras (4 s GOP, with and
// without G.711 sound, pulled always), each session opened by the same page
// code (a plain WHEP page: one video element, sound on), and the console's
// wall tile and incident view on Skywatch. Each of the b.N runs measures
// every row once, in turn; the log has each session's report and a table
// of medians. The browser work runs as TestChromiumLiveAVBeside inside a
// network namespace (its helpers are a test's).
//
//	SKYWATCH_BENCH_MEDIAMTX=/path/to/mediamtx go test -run '^$' -bench ChromiumLiveAV -benchtime 3x ./cmd/skywatch
func BenchmarkChromiumLiveAV(b *testing.B) {
	mediamtx := os.Getenv("SKYWATCH_BENCH_MEDIAMTX")
	if mediamtx == "" {
		b.Skip("set SKYWATCH_BENCH_MEDIAMTX to a MediaMTX binary to measure the live picture beside it")
	}
	// -benchtime Nx first calls the benchmark with b.N = 1: measure once,
	// at N.
	if f := flag.Lookup("test.benchtime"); f != nil {
		var n int
		if _, err := fmt.Sscanf(f.Value.String(), "%dx", &n); err == nil && b.N < n {
			return
		}
	}
	if _, err := exec.LookPath("chromium"); err != nil && os.Getenv("SKYWATCH_TEST_CHROMIUM") == "" {
		b.Skip("chromium not found; set SKYWATCH_TEST_CHROMIUM")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", os.Args[0], "-test.run=^TestChromiumLiveAVBeside$",
		"-test.v", "-test.count=1", "-test.timeout=59m")
	cmd.Env = append(os.Environ(), inNetnsEnv+"=1", fmt.Sprintf("%s=%d", avBenchRunsEnv, b.N))
	// Straight to the output: a benchmark's log is cut short.
	var out syncBuffer
	cmd.Stdout = io.MultiWriter(os.Stdout, &out)
	cmd.Stderr = cmd.Stdout
	err := cmd.Run()
	if err != nil || !strings.Contains(out.String(), "--- PASS: TestChromiumLiveAVBeside") {
		b.Fatalf("the measurement failed: %v", err)
	}
}

// avBenchRunsEnv carries b.N to TestChromiumLiveAVBeside.
const avBenchRunsEnv = "SKYWATCH_BENCH_AV_RUNS"

// TestChromiumLiveAVBeside is BenchmarkChromiumLiveAV's body; it runs only
// under the benchmark, inside its network namespace.
func TestChromiumLiveAVBeside(t *testing.T) {
	mediamtx := os.Getenv("SKYWATCH_BENCH_MEDIAMTX")
	runs, _ := strconv.Atoi(os.Getenv(avBenchRunsEnv))
	if mediamtx == "" || os.Getenv(inNetnsEnv) == "" || runs < 1 {
		t.Skip("run by BenchmarkChromiumLiveAV")
	}
	chromium := chromiumPath(t)
	loopbackOnly(t)
	demo := startDemo(t, avDemoArgs...)
	m := regexp.MustCompile(`"simulated camera started" .*address=(\S+)`).FindStringSubmatch(demo.out.String())
	if m == nil {
		t.Fatalf("the demo logged no simulated camera address:\n%s", demo.out.String())
	}
	mtx := startMediaMTX(t, mediamtx, m[1])
	br := startBrowser(t, chromium, demo, os.Getenv("SKYWATCH_TEST_SCREENSHOTS"))
	br.installAVProbe(t)
	br.loginAs(t, "duty")
	results := map[string][]avReport{}
	var order []string
	add := func(name string, audio bool, r avReport) {
		checkAV(t, name, r, audio)
		if _, ok := results[name]; !ok {
			order = append(order, name)
		}
		results[name] = append(results[name], r)
		t.Logf("%s: %s", name, r)
	}
	for range runs {
		for _, cam := range avCameras {
			sound := map[bool]string{true: "with sound", false: "no sound"}[cam.audio]
			br.avQuiet(t)
			add(fmt.Sprintf("Skywatch, page, %s (%s)", cam.id, sound), cam.audio,
				br.avPageSession(t, demo.base+"/healthz", "/whep/"+cam.id,
					`fetch('/api/me').then((r) => r.json()).then((me) => ({'X-CSRF-Token': me.csrf}))`))
			add(fmt.Sprintf("MediaMTX, page, %s (%s)", cam.id, sound), cam.audio,
				br.avPageSession(t, mtx+"/", mtx+"/"+cam.id+"/whep", "({})"))
			add(fmt.Sprintf("Skywatch, wall tile, %s (%s)", cam.id, sound), cam.audio, br.avWallTile(t, cam.id))
			add(fmt.Sprintf("Skywatch, incident view, %s (%s)", cam.id, sound), cam.audio, br.avIncident(t, cam.id, cam.village))
		}
	}
	t.Logf("medians of %d runs, in ms (hold max: the highest of the ten seconds' median holds):\n%s", runs, avTable(results, order))
}

// startMediaMTX runs MediaMTX with WebRTC only, pulling the demo's two
// measured cameras always from the simulated cameras at simAddr, and
// returns its WHEP base URL once both paths are ready.
func startMediaMTX(t *testing.T, binary, simAddr string) string {
	t.Helper()
	dir := t.TempDir()
	httpAddr, err := freeTCP()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udp := pc.LocalAddr().String()
	pc.Close()
	var paths strings.Builder
	for _, c := range demoCameras(3) {
		if !slices.ContainsFunc(avCameras, func(a avCamera) bool { return a.id == c.id }) {
			continue
		}
		pp, err := hardware.ProfilePaths(hardware.CameraProfile{Vendor: c.vendor, Channel: c.channel}, c.clip, c.audio)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&paths, "  %s: {source: \"rtsp://%s:%s@%s%s\"}\n", c.id, demoCameraUser, demoCameraPassword, simAddr, pp[0].Path)
	}
	cfg := fmt.Sprintf(`logLevel: info
api: no
metrics: no
pprof: no
playback: no
rtsp: no
rtmp: no
hls: no
srt: no
moq: no
webrtc: yes
webrtcAddress: %s
webrtcLocalUDPAddress: %s
webrtcLocalTCPAddress: ""
webrtcIPsFromInterfaces: no
webrtcAdditionalHosts: [127.0.0.1]
pathDefaults:
  sourceOnDemand: no
paths:
%s`, httpAddr, udp, paths.String())
	cfgPath := filepath.Join(dir, "mediamtx.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "mediamtx.log")
	p, err := startBenchProc(logPath, binary, cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		log, _ := os.ReadFile(logPath)
		if strings.Count(string(log), "stream is available and online") >= len(avCameras) {
			break
		}
		select {
		case <-p.done:
			t.Fatalf("MediaMTX exited:\n%s", log)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("MediaMTX paths not ready within 30 s:\n%s", log)
		}
	}
	return "http://" + httpAddr
}

// avTable is the medians of every row's reports, as a Markdown table.
func avTable(results map[string][]avReport, order []string) string {
	var b strings.Builder
	b.WriteString("| server, view, camera | runs | connected | first picture | hold 8-10 s | hold max (second) | audio minus video playout at 10 s |\n|---|---|---|---|---|---|---|\n")
	for _, name := range order {
		rs := results[name]
		var conn, first, hold, holdMax, off []float64
		for _, r := range rs {
			conn = append(conn, r.connected)
			first = append(first, r.first)
			hold = append(hold, r.hold810)
			hm := math.NaN()
			for _, h := range r.holdBySecond {
				if !math.IsNaN(h) && (math.IsNaN(hm) || h > hm) {
					hm = h
				}
			}
			holdMax = append(holdMax, hm)
			if n := len(r.avOffset); n > 0 {
				off = append(off, r.avOffset[n-1])
			}
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s |\n", name, len(rs), avSpan(conn), avSpan(first), avSpan(hold), avSpan(holdMax), avSpan(off))
	}
	return b.String()
}

// avSpan is "median (min-max)" of xs, NaN left out.
func avSpan(xs []float64) string {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) && x != 0 {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return "-"
	}
	slices.Sort(v)
	if len(v) == 1 {
		return fmt.Sprintf("%.0f", v[0])
	}
	return fmt.Sprintf("%.0f (%.0f to %.0f)", avMedian(v), v[0], v[len(v)-1])
}
