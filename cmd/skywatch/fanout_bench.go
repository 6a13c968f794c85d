package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skywatch/skywatch/hardware"
)

const fanoutBenchUsage = `usage: skywatch sim fanout [flags]

Measures what relaying one camera to many WebRTC viewers costs, for Skywatch
and, side by side in the same run, MediaMTX (-mediamtx) and go2rtc (-go2rtc),
binaries built elsewhere. This process runs one simulated field camera
(1920x1080 H.264 at 25 fps, 2 Mbit/s, RTP packets of -packet-size bytes,
G.711 audio with -audio) and the viewers: pion WHEP peers on loopback that
receive video and audio and count packets, sequence gaps and the time to
their first keyframe. Each server is its own process with a generated
config that pulls the camera over RTSP (TCP) at once, without a viewer.

For each run, each viewer count (-viewers) and each server in turn
(Skywatch, MediaMTX, go2rtc, then again): start the server, wait for the
camera, measure its CPU over -duration with no viewer (idle), join the
viewers over -join, wait until each has a keyframe and -settle more,
measure over -duration: CPU-seconds
(utime+stime from /proc) and, less the idle CPU, per viewer and per packet
received; peak resident memory (VmRSS every 100 ms) and VmHWM; packets per
viewer and losses; then stop it. The viewers and the camera run in this
process, which competes with the server for the machine's cores: its own
CPU is reported. The tables at the end are Markdown.
`

// fanoutSettings are the flags of sim fanout.
type fanoutSettings struct {
	binary, mediamtx, go2rtc, dir string
	skywatch                      bool // measure Skywatch (off: only the others)
	viewers                       []int
	runs, packetSize              int
	gop                           time.Duration
	audio, keep                   bool
	join, settle, duration        time.Duration
}

func runFanoutBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim fanout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, fanoutBenchUsage); fs.PrintDefaults() }
	var s fanoutSettings
	viewers := "50"
	fs.StringVar(&s.binary, "binary", "", "the skywatch binary to measure (default: this one)")
	fs.BoolVar(&s.skywatch, "skywatch", true, "measure Skywatch (-skywatch=false: only the servers given below)")
	fs.StringVar(&s.mediamtx, "mediamtx", "", "measure this MediaMTX binary too")
	fs.StringVar(&s.go2rtc, "go2rtc", "", "measure this go2rtc binary too")
	fs.StringVar(&s.dir, "dir", "", "working directory: configs and logs (default: a new one under the temporary directory)")
	fs.StringVar(&viewers, "viewers", viewers, "viewer counts, comma-separated")
	fs.IntVar(&s.runs, "runs", 3, "runs; each measures every server at every viewer count")
	fs.IntVar(&s.packetSize, "packet-size", 1460, "largest RTP packet the camera sends, header included")
	fs.DurationVar(&s.gop, "gop", 10*time.Second, "the camera's keyframe interval: 10s or 2s")
	fs.BoolVar(&s.audio, "audio", true, "the camera sends G.711 (PCMU) audio too")
	fs.BoolVar(&s.keep, "keep", false, "keep the working directory")
	fs.DurationVar(&s.join, "join", 2*time.Second, "time over which the viewers join")
	fs.DurationVar(&s.settle, "settle", 5*time.Second, "wait after the server is ready, and after the viewers joined, before measuring")
	fs.DurationVar(&s.duration, "duration", 20*time.Second, "each measurement (idle and with viewers)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, f := range strings.Split(viewers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			fmt.Fprintf(stderr, "skywatch sim fanout: -viewers: %q is not a number\n", f)
			return 2
		}
		s.viewers = append(s.viewers, n)
	}
	if err := s.check(); err != nil {
		fmt.Fprintln(stderr, "skywatch sim fanout:", err)
		return 2
	}
	if s.skywatch {
		if err := defaultBinary(&s.binary); err != nil {
			fmt.Fprintln(stderr, "skywatch sim fanout:", err)
			return 1
		}
	}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "skywatch-fanout-bench-")
		if err != nil {
			fmt.Fprintln(stderr, "skywatch sim fanout:", err)
			return 1
		}
		s.dir = d
		if !s.keep {
			defer os.RemoveAll(d)
		}
	}
	logger, _ := newLogger(logConfig{}, stderr)
	results, err := fanoutBench(ctx, s, logger)
	if err != nil {
		fmt.Fprintln(stderr, "skywatch sim fanout:", err)
		return 1
	}
	writeFanoutReport(stdout, s, results)
	for _, r := range results {
		if r.err == "" {
			return 0
		}
	}
	return 1
}

func (s fanoutSettings) check() error {
	switch {
	case len(s.viewers) == 0:
		return errors.New("-viewers: give at least one count")
	case slices.ContainsFunc(s.viewers, func(n int) bool { return n < 1 || n > 1000 }):
		return errors.New("-viewers: each count must be 1 to 1000")
	case s.runs < 1:
		return errors.New("-runs must be positive")
	case s.gop != 10*time.Second && s.gop != 2*time.Second:
		return errors.New("-gop must be 10s or 2s")
	case s.packetSize < 200 || s.packetSize > 1500:
		return errors.New("-packet-size must be 200 to 1500")
	case s.join < 0 || s.settle < 0 || s.duration < time.Second:
		return errors.New("-join and -settle must not be negative and -duration at least 1s")
	case !s.skywatch && s.mediamtx == "" && s.go2rtc == "":
		return errors.New("nothing to measure: -skywatch=false needs -mediamtx or -go2rtc")
	}
	return nil
}

// clip is the camera's stream for -gop.
func (s fanoutSettings) clip() hardware.Clip {
	if s.gop == 2*time.Second {
		return hardware.ClipSynth2MGOP2s
	}
	return hardware.ClipSynth2M
}

// servers are the servers to measure, in the order of each round.
func (s fanoutSettings) servers() []func() fanoutServer {
	var out []func() fanoutServer
	if s.skywatch {
		out = append(out, func() fanoutServer { return &skywatchFanout{binary: s.binary} })
	}
	if s.mediamtx != "" {
		out = append(out, func() fanoutServer { return &mediaMTXFanout{binary: s.mediamtx} })
	}
	if s.go2rtc != "" {
		out = append(out, func() fanoutServer { return &go2rtcFanout{binary: s.go2rtc} })
	}
	return out
}

// fanoutBench runs the camera and every measurement. A server that fails
// gives a result with its error and the others go on.
func fanoutBench(ctx context.Context, s fanoutSettings, logger *slog.Logger) ([]fanoutResult, error) {
	cam := hardware.NewCamera(hardware.CameraConfig{
		PacketSize: s.packetSize,
		Paths:      []hardware.CameraPath{{Path: "/" + fanoutCamera, Clip: s.clip(), Audio: s.audio}},
		Logger:     logger.With("component", "camera"),
	})
	if err := cam.Start(); err != nil {
		return nil, fmt.Errorf("camera: %w", err)
	}
	defer cam.Close()
	counts := slices.Clone(s.viewers)
	var results []fanoutResult
	for run := 1; run <= s.runs; run++ {
		for _, n := range counts {
			for _, newServer := range s.servers() {
				srv := newServer()
				dir := filepath.Join(s.dir, fmt.Sprintf("run%d-%s-%d", run, srv.name(), n))
				if err := os.MkdirAll(dir, 0o700); err != nil {
					return nil, err
				}
				logger.Info("measuring", "run", run, "server", srv.name(), "viewers", n)
				r := measureFanout(ctx, s, srv, cam.URL("/"+fanoutCamera), dir, n, logger)
				r.run = run
				if r.err != "" {
					logger.Error("measurement failed", "run", run, "server", srv.name(), "viewers", n, "err", r.err)
				} else {
					logger.Info("measured", "run", run, "server", srv.name(), "viewers", n, "cpu_s", fmt.Sprintf("%.2f", r.cpu),
						"idle_cpu_s", fmt.Sprintf("%.2f", r.idleCPU), "peak_rss_mb", fmt.Sprintf("%.0f", r.rssPeak/1e6))
				}
				results = append(results, r)
				if ctx.Err() != nil {
					return results, ctx.Err()
				}
			}
		}
	}
	return results, nil
}

// fanoutResult is one measurement: one server, one viewer count, one run.
type fanoutResult struct {
	server           string
	run, n, joined   int
	retries          int // join attempts that were retried
	window           time.Duration
	cpu, idleCPU     float64 // server CPU-seconds over the window, with the viewers and with none
	selfCPU          float64 // this process's CPU-seconds over the window
	rssPeak, hwm     float64 // bytes: highest VmRSS sample in the window, VmHWM at its end
	idleRSS          float64 // bytes: highest VmRSS sample in the idle window
	packets, bytes   float64 // received by all viewers in the window (video and audio)
	videoPackets     float64
	lost             float64 // sequence gaps in the window, all viewers
	firstKey         []time.Duration
	keyFirst, withKF int // viewers whose first access unit was a keyframe; viewers that got a keyframe
	err              string
}

// measureFanout starts one server, measures it idle and with n viewers,
// and stops it.
func measureFanout(ctx context.Context, s fanoutSettings, srv fanoutServer, cameraURL, dir string, n int, logger *slog.Logger) fanoutResult {
	res := fanoutResult{server: srv.name(), n: n}
	fail := func(format string, args ...any) fanoutResult {
		res.err = fmt.Sprintf(format, args...)
		if tail := lastLines(filepath.Join(dir, srv.name()+".log"), 5); tail != "" {
			res.err += "; log ends: " + strings.ReplaceAll(tail, "\n", " | ")
		}
		return res
	}
	proc, err := srv.start(dir, cameraURL, n)
	if err != nil {
		return fail("start: %v", err)
	}
	defer proc.stop(sigTerm)
	pid := proc.cmd.Process.Pid
	if err := srv.waitReady(ctx, proc.done, time.Minute); err != nil {
		return fail("%v", err)
	}
	if err := sleepCtx(ctx, s.settle); err != nil {
		return fail("%v", err)
	}

	// Idle: the camera pulled, no viewer.
	idle := measureWindow(ctx, pid, proc.done, s.duration)
	if idle.err != nil {
		return fail("idle: %v", idle.err)
	}
	res.idleCPU, res.idleRSS = idle.cpu, idle.rssPeak

	target, err := srv.whep(ctx)
	if err != nil {
		return fail("whep: %v", err)
	}
	viewers, retries, joinErr := joinViewers(ctx, target, n, s.join)
	defer closeViewers(viewers)
	res.joined, res.retries = len(viewers), retries
	if len(viewers) == 0 {
		return fail("no viewer joined: %v", joinErr)
	}
	if joinErr != nil {
		logger.Warn("viewers failed to join", "server", srv.name(), "joined", len(viewers), "of", n, "retries", retries, "err", joinErr)
	}
	// The window starts once every viewer has video: a server without a
	// keyframe cache sends none before the camera's next keyframe.
	if missing := waitKeyframes(ctx, viewers, s.gop+10*time.Second); missing > 0 {
		logger.Warn("viewers without a keyframe", "server", srv.name(), "viewers", missing, "of", len(viewers))
	}
	if err := sleepCtx(ctx, s.settle); err != nil {
		return fail("%v", err)
	}

	before := make([]viewerCounts, len(viewers))
	for i, v := range viewers {
		before[i] = v.snapshot()
	}
	w := measureWindow(ctx, pid, proc.done, s.duration)
	if w.err != nil {
		return fail("with viewers: %v", w.err)
	}
	res.window, res.cpu, res.selfCPU, res.rssPeak, res.hwm = w.wall, w.cpu, w.selfCPU, w.rssPeak, w.hwm
	for i, v := range viewers {
		after := v.snapshot()
		got := after.videoPackets + after.audioPackets - before[i].videoPackets - before[i].audioPackets
		res.packets += float64(got)
		res.videoPackets += float64(after.videoPackets - before[i].videoPackets)
		res.bytes += float64(after.bytes - before[i].bytes)
		res.lost += float64(max(0, after.expected-before[i].expected-got))
		if d, keyFirst, ok := v.keyframe(); ok {
			res.firstKey = append(res.firstKey, d)
			res.withKF++
			if keyFirst {
				res.keyFirst++
			}
		}
	}
	slices.Sort(res.firstKey)
	return res
}

// windowSample is what one measurement window read from /proc.
type windowSample struct {
	wall         time.Duration
	cpu, selfCPU float64
	rssPeak, hwm float64
	err          error
}

// measureWindow reads a process's CPU time at the start and end of d and
// samples its resident memory every 100 ms in between.
func measureWindow(ctx context.Context, pid int, exited <-chan struct{}, d time.Duration) windowSample {
	p := strconv.Itoa(pid)
	start, cpu0, self0 := time.Now(), procCPU(p), procCPU("self")
	peak := procRSS(pid)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	end := time.NewTimer(d)
	defer end.Stop()
	for done := false; !done; {
		select {
		case <-tick.C:
			peak = max(peak, procRSS(pid))
		case <-end.C:
			done = true
		case <-exited:
			return windowSample{err: errors.New("the server exited")}
		case <-ctx.Done():
			return windowSample{err: ctx.Err()}
		}
	}
	w := windowSample{wall: time.Since(start), cpu: procCPU(p) - cpu0, selfCPU: procCPU("self") - self0,
		rssPeak: max(peak, procRSS(pid)), hwm: procStatusKB(pid, "VmHWM")}
	if cpu0 < 0 || w.cpu < 0 {
		w.err = errors.New("cannot read the server's CPU time")
	}
	return w
}

// Joining: a viewer not connected within joinAttemptWait tries again
// with a new peer connection, joinAttempts times in all, as a player
// would. On a loaded machine a few of many viewers joining at once fail
// their ICE checks.
const (
	joinAttempts    = 3
	joinAttemptWait = 20 * time.Second
)

// joinViewers starts n viewers spread over join and waits until they are
// connected. It returns those that connected, the number of attempts that
// were retried, and the first error of those that did not connect.
func joinViewers(ctx context.Context, target whepTarget, n int, join time.Duration) ([]*benchViewer, int, error) {
	ctx, cancel := context.WithTimeout(ctx, join+joinAttempts*joinAttemptWait+10*time.Second)
	defer cancel()
	var (
		mu       sync.Mutex
		viewers  []*benchViewer
		retries  int
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sleepCtx(ctx, time.Until(start.Add(join*time.Duration(i)/time.Duration(n)))); err != nil {
				return
			}
			var v *benchViewer
			var err error
			for attempt := range joinAttempts {
				if v, err = joinOnce(ctx, target); err == nil || ctx.Err() != nil {
					break
				}
				if attempt < joinAttempts-1 {
					mu.Lock()
					retries++
					mu.Unlock()
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("viewer %d: %w", i+1, err)
				}
				return
			}
			viewers = append(viewers, v)
		}()
	}
	wg.Wait()
	return viewers, retries, firstErr
}

// joinOnce starts a viewer and waits up to joinAttemptWait for it to
// connect.
func joinOnce(ctx context.Context, target whepTarget) (*benchViewer, error) {
	v, err := startViewer(ctx, target)
	if err != nil {
		return nil, err
	}
	wait, cancel := context.WithTimeout(ctx, joinAttemptWait)
	defer cancel()
	if err := v.waitConnected(wait); err != nil {
		v.close(context.Background())
		return nil, err
	}
	return v, nil
}

// waitKeyframes waits up to wait for every viewer to have its first
// keyframe and returns how many have none.
func waitKeyframes(ctx context.Context, viewers []*benchViewer, wait time.Duration) int {
	deadline := time.Now().Add(wait)
	for {
		missing := 0
		for _, v := range viewers {
			if _, _, ok := v.keyframe(); !ok {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) || sleepCtx(ctx, 100*time.Millisecond) != nil {
			return missing
		}
	}
}

// closeViewers ends every viewer, a few at a time.
func closeViewers(viewers []*benchViewer) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, v := range viewers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			v.close(context.Background())
			<-sem
		}()
	}
	wg.Wait()
}
