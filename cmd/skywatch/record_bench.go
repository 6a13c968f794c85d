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
	"time"

	"github.com/skywatch/skywatch/hardware"
)

const recordBenchUsage = `usage: skywatch sim record [flags]

Measures continuous recording. It runs -n simulated field cameras in this
process (one RTSP server, one path per camera: 1920x1080 H.264 at 25 fps,
2 Mbit/s, an IDR every 10 s, RTP packets of at most 1,460 bytes; with -sub
also a 640x360 sub stream of 400 kbit/s, 4 s GOP), then, in each run, starts
a recorder as another process with a config that pulls all of them always
and records them (-record), waits -warmup and measures over -duration:
the recorder's CPU and resident memory (from /proc), the RTP bytes it
received from the cameras, the bytes that appeared under its recordings
directory, and its write calls. The recorder is Skywatch (-binary, this
program by default), or MediaMTX with -mediamtx (a binary built elsewhere;
its config records the same paths as fragmented MP4 with 1 s parts).

-export asks the recorder, right after the measurement, for exports of
that length of -exports cameras (Skywatch: GET /api/cameras/{id}/video.mp4;
MediaMTX: its playback server) and reports the time to the first byte and
the total time; the run must have recorded that long (warmup + duration).
-strace then attaches strace -c for that long to count write, fsync and
fdatasync calls (it slows the recorder). Each run prints its figures; the
last lines give medians.
`

// recordBenchSettings are the flags of sim record.
type recordBenchSettings struct {
	binary, mediamtx, dir string
	record, stream        string
	n, runs, exports      int
	sub, udp, keep        bool
	warmup, duration      time.Duration
	segment, export       time.Duration
	preAlarm              time.Duration // -1: the default
	strace                time.Duration
	// esRate is the H.264 bytes per second of one recorded stream.
	esRate float64
}

func runRecordBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim record", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, recordBenchUsage); fs.PrintDefaults() }
	var s recordBenchSettings
	fs.StringVar(&s.binary, "binary", "", "the skywatch binary to measure (default: this one)")
	fs.StringVar(&s.mediamtx, "mediamtx", "", "measure this MediaMTX binary instead of Skywatch")
	fs.StringVar(&s.dir, "dir", "", "working directory: configs, logs and recordings (default: a new one under the temporary directory)")
	fs.StringVar(&s.record, "record", "always", "cameras[].record: always, alarms or off (off pulls the cameras without recording: the baseline)")
	fs.StringVar(&s.stream, "record-stream", "main", "cameras[].record_stream: main or sub")
	fs.IntVar(&s.n, "n", 100, "number of cameras")
	fs.IntVar(&s.runs, "runs", 3, "runs, each with a new recorder process and an empty recordings directory")
	fs.IntVar(&s.exports, "exports", 3, "cameras exported at the end of each run (with -export)")
	fs.BoolVar(&s.sub, "sub", false, "cameras have a sub stream too")
	fs.BoolVar(&s.udp, "udp", false, "the cameras offer UDP and the recorder pulls over UDP (default: TCP)")
	fs.BoolVar(&s.keep, "keep", false, "keep each run's recordings")
	fs.DurationVar(&s.warmup, "warmup", 45*time.Second, "time from every camera online to the start of the measurement")
	fs.DurationVar(&s.duration, "duration", time.Minute, "measurement")
	fs.DurationVar(&s.segment, "segment", time.Minute, "recordings.segment")
	fs.DurationVar(&s.preAlarm, "pre-alarm", -1, "recordings.pre_alarm, the pre-alarm ring's length (default: Skywatch's, 30 s)")
	fs.DurationVar(&s.export, "export", 0, "length of the exports at the end of each run (0: none)")
	fs.DurationVar(&s.strace, "strace", 0, "count system calls with strace -c for this long after the measurement (0: no)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := s.check(); err != nil {
		fmt.Fprintln(stderr, "skywatch sim record:", err)
		return 2
	}
	if err := defaultBinary(&s.binary); err != nil {
		fmt.Fprintln(stderr, "skywatch sim record:", err)
		return 1
	}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "skywatch-record-bench-")
		if err != nil {
			fmt.Fprintln(stderr, "skywatch sim record:", err)
			return 1
		}
		s.dir = d
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		fmt.Fprintln(stderr, "skywatch sim record:", err)
		return 1
	}
	logger, _ := newLogger(logConfig{}, stderr)
	clip := hardware.ClipSynth2M
	if s.stream == "sub" {
		clip = hardware.ClipGOP4s
	}
	rate, err := clip.ByteRate()
	if err != nil {
		fmt.Fprintln(stderr, "skywatch sim record:", err)
		return 1
	}
	s.esRate = rate

	cams, err := startBenchCameras(s, logger)
	if err != nil {
		fmt.Fprintln(stderr, "skywatch sim record: cameras:", err)
		return 1
	}
	defer cams.Close()
	logger.Info("cameras started", "cameras", s.n, "sub", s.sub, "address", cams.Addr(), "dir", s.dir)

	var results []recordResult
	for i := range s.runs {
		r, err := recordRun(ctx, s, cams, i+1, logger)
		if err != nil {
			fmt.Fprintf(stderr, "skywatch sim record: run %d: %v\n", i+1, err)
			return 1
		}
		fmt.Fprintf(stdout, "run %d: %s\n", i+1, r)
		results = append(results, r)
	}
	fmt.Fprintf(stdout, "median of %d runs: %s\n", len(results), medianRecord(results))
	return 0
}

func (s recordBenchSettings) check() error {
	switch {
	case s.n < 1 || s.n > 2000:
		return errors.New("-n must be 1 to 2000")
	case s.runs < 1:
		return errors.New("-runs must be positive")
	case s.record != "always" && s.record != "alarms" && s.record != "off":
		return errors.New("-record must be always, alarms or off")
	case s.stream != "main" && s.stream != "sub":
		return errors.New("-record-stream must be main or sub")
	case s.stream == "sub" && !s.sub:
		return errors.New("-record-stream sub needs -sub")
	case s.warmup < 0 || s.duration < time.Second:
		return errors.New("-warmup must not be negative and -duration at least 1s")
	case s.export < 0 || (s.export > 0 && s.export+20*time.Second > s.warmup+s.duration):
		return errors.New("-export must be at least 20 s shorter than -warmup plus -duration")
	case s.export > 0 && (s.exports < 1 || s.exports > s.n):
		return errors.New("-exports must be 1 to -n")
	case s.preAlarm != -1 && (s.preAlarm < time.Second || s.preAlarm > 5*time.Minute):
		return errors.New("-pre-alarm must be 1s to 5m")
	case s.mediamtx != "" && s.record == "alarms":
		return errors.New("MediaMTX has no pre-alarm ring: -record always or off")
	}
	return nil
}

// benchCameraID names the i-th camera (from 0); it is its RTSP path too.
func benchCameraID(i int) string { return fmt.Sprintf("cam%04d", i+1) }

// startBenchCameras starts one simulated camera that serves every camera's
// paths. Their keyframes are spread over the GOP, as those of cameras
// started at different times are.
func startBenchCameras(s recordBenchSettings, logger *slog.Logger) (*hardware.Camera, error) {
	var paths []hardware.CameraPath
	mainGOP, subGOP := hardware.ClipSynth2M.GOPFrames(), hardware.ClipGOP4s.GOPFrames()
	for i := range s.n {
		id := benchCameraID(i)
		paths = append(paths, hardware.CameraPath{Path: "/" + id, Clip: hardware.ClipSynth2M, StartFrame: i * mainGOP / s.n})
		if s.sub {
			paths = append(paths, hardware.CameraPath{Path: "/" + id + "/sub", Clip: hardware.ClipGOP4s, StartFrame: i * subGOP / s.n})
		}
	}
	cam := hardware.NewCamera(hardware.CameraConfig{
		UDP:        s.udp,
		PacketSize: 1460,
		Paths:      paths,
		Logger:     logger.With("component", "cameras"),
	})
	return cam, cam.Start()
}

// recordResult is one run's figures, over the measurement.
type recordResult struct {
	recorder           string
	n                  int
	wall               time.Duration
	cpu                float64 // cores
	rss, rssPeak       float64 // bytes, at the end and the highest sample
	heap               float64 // Go heap in use at the end (Skywatch only; -1 unknown)
	live               float64 // Go heap live at the last GC before the end (-1 unknown)
	ring               float64 // bytes in the pre-alarm rings at the end (-1 unknown)
	recv, disk         float64 // bytes received (as the recorder counts them) and grown on disk
	sent               float64 // H.264 bytes of the recorded streams over the measurement
	files              int     // files under the recordings at the end
	writeCalls         float64 // write system calls per second (/proc/PID/io syscw)
	devWrites          float64 // bytes per second sent to the block device (/proc/PID/io write_bytes)
	driverCPU          float64 // cores used by this process (the cameras)
	dropped, lost      float64 // units dropped by slow readers, RTP packets lost (Skywatch only)
	exports            []exportResult
	strace             string
	straceFsync        float64
	straceWrites       float64
	straceWriteSeconds float64
}

func (r recordResult) String() string {
	perCam := func(v float64) float64 { return v / float64(r.n) }
	s := fmt.Sprintf("%s, %d cameras, %s: cpu %.3f cores (%.2f ms/s per camera), rss %.0f MB (peak %.0f MB, %.2f MB per camera)",
		r.recorder, r.n, roundDur(r.wall), r.cpu, perCam(r.cpu)*1000, r.rss/1e6, r.rssPeak/1e6, perCam(r.rss)/1e6)
	if r.heap >= 0 {
		s += fmt.Sprintf(", go heap %.0f MB in use, %.0f MB live (%.2f MB per camera)", r.heap/1e6, r.live/1e6, perCam(r.live)/1e6)
	}
	if r.ring >= 0 {
		s += fmt.Sprintf(", pre-alarm rings %.0f MB (%.2f MB per camera)", r.ring/1e6, perCam(r.ring)/1e6)
	}
	ratio := 0.0
	if r.recv > 0 {
		ratio = r.disk / r.recv
	}
	secs := r.wall.Seconds()
	s += fmt.Sprintf("; received %.3f Mbit/s per camera (as the recorder counts), on disk %.3f Mbit/s per camera: %.4f bytes per H.264 byte sent, %.4f per byte counted received; %d files",
		perCam(r.recv)*8/1e6/secs, perCam(r.disk)*8/1e6/secs, r.disk/r.sent, ratio, r.files)
	s += fmt.Sprintf("; %.0f write calls/s, %.1f MB/s to the device; cameras' process cpu %.2f cores", r.writeCalls, r.devWrites/1e6, r.driverCPU)
	if r.dropped >= 0 {
		s += fmt.Sprintf("; dropped units %.0f, lost packets %.0f", r.dropped, r.lost)
	}
	for _, e := range r.exports {
		s += "; " + e.String()
	}
	if r.strace != "" {
		s += "; strace: " + r.strace
	}
	return s
}

// medianRecord gives the median of each figure separately.
func medianRecord(rs []recordResult) string {
	med := func(f func(recordResult) float64) float64 {
		v := make([]float64, 0, len(rs))
		for _, r := range rs {
			v = append(v, f(r))
		}
		slices.Sort(v)
		if len(v)%2 == 0 {
			return (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		return v[len(v)/2]
	}
	rng := func(f func(recordResult) float64, format string) string {
		v := make([]float64, 0, len(rs))
		for _, r := range rs {
			v = append(v, f(r))
		}
		return fmt.Sprintf(format+" to "+format, slices.Min(v), slices.Max(v))
	}
	n := float64(rs[0].n)
	cpu := func(r recordResult) float64 { return r.cpu }
	rss := func(r recordResult) float64 { return r.rss / 1e6 }
	ratio := func(r recordResult) float64 { return r.disk / r.sent }
	out := fmt.Sprintf("%s, %d cameras: cpu %.3f cores (%s), %.2f ms/s per camera; rss %.0f MB (%s), %.2f MB per camera; %.4f bytes on disk per H.264 byte sent (%s)",
		rs[0].recorder, rs[0].n, med(cpu), rng(cpu, "%.3f"), med(cpu)/n*1000, med(rss), rng(rss, "%.0f"), med(rss)/n, med(ratio), rng(ratio, "%.4f"))
	if rs[0].live >= 0 {
		live := func(r recordResult) float64 { return r.live / 1e6 / n }
		ring := func(r recordResult) float64 { return r.ring / 1e6 / n }
		out += fmt.Sprintf("; go heap live %.2f MB per camera (%s), pre-alarm rings %.2f MB per camera (%s)",
			med(live), rng(live, "%.2f"), med(ring), rng(ring, "%.2f"))
	}
	var ttfb, total []time.Duration
	for _, r := range rs {
		for _, e := range r.exports {
			if e.err == "" {
				ttfb = append(ttfb, e.ttfb)
				total = append(total, e.total)
			}
		}
	}
	if len(ttfb) > 0 {
		slices.Sort(ttfb)
		slices.Sort(total)
		out += fmt.Sprintf("\nexports (%d): first byte median %s (%s to %s), total median %s (%s to %s)", len(ttfb),
			roundDur(ttfb[len(ttfb)/2]), roundDur(ttfb[0]), roundDur(ttfb[len(ttfb)-1]),
			roundDur(total[len(total)/2]), roundDur(total[0]), roundDur(total[len(total)-1]))
	}
	return out
}

// recordRun starts the recorder, waits for every camera, measures and
// stops it.
func recordRun(ctx context.Context, s recordBenchSettings, cams *hardware.Camera, run int, logger *slog.Logger) (recordResult, error) {
	res := recordResult{n: s.n, heap: -1, live: -1, ring: -1, dropped: -1, lost: -1}
	runDir := filepath.Join(s.dir, fmt.Sprintf("run-%d", run))
	recDir := filepath.Join(runDir, "recordings")
	if err := os.MkdirAll(recDir, 0o700); err != nil {
		return res, err
	}
	if !s.keep {
		defer os.RemoveAll(recDir)
	}
	var t benchRecorder
	var err error
	if s.mediamtx != "" {
		t, err = newMediaMTXTarget(s, cams, runDir, recDir)
	} else {
		t, err = newSkywatchTarget(s, cams, runDir, recDir)
	}
	if err != nil {
		return res, err
	}
	res.recorder = t.name()
	proc, err := t.start()
	if err != nil {
		return res, err
	}
	defer proc.stop(sigTerm)
	started := time.Now()
	if err := t.waitReady(ctx, proc.done, 2*time.Minute); err != nil {
		return res, fmt.Errorf("%s (log in %s): %w", t.name(), runDir, err)
	}
	logger.Info("every camera online; warming up", "run", run, "after", time.Since(started).Round(time.Millisecond), "warmup", s.warmup)
	if err := sleepCtx(ctx, s.warmup); err != nil {
		return res, err
	}

	pid := proc.cmd.Process.Pid
	before, err := t.sample(ctx, pid, recDir)
	if err != nil {
		return res, err
	}
	peak := before.rss
	deadline := before.at.Add(s.duration)
	for time.Now().Before(deadline) {
		if err := sleepCtx(ctx, min(5*time.Second, time.Until(deadline))); err != nil {
			return res, err
		}
		select {
		case <-proc.done:
			return res, fmt.Errorf("%s exited during the measurement (log in %s)", t.name(), runDir)
		default:
		}
		peak = max(peak, procRSS(pid))
	}
	after, err := t.sample(ctx, pid, recDir)
	if err != nil {
		return res, err
	}
	peak = max(peak, after.rss)
	res.wall = after.at.Sub(before.at)
	secs := res.wall.Seconds()
	res.cpu = (after.cpu - before.cpu) / secs
	res.driverCPU = (after.selfCPU - before.selfCPU) / secs
	res.rss, res.rssPeak, res.heap, res.live, res.ring = after.rss, peak, after.heap, after.live, after.ring
	res.recv, res.disk, res.files = after.recv-before.recv, float64(after.disk-before.disk), after.files
	res.sent = s.esRate * float64(s.n) * secs
	res.writeCalls = float64(after.syscw-before.syscw) / secs
	res.devWrites = float64(after.writeBytes-before.writeBytes) / secs
	if after.dropped >= 0 {
		res.dropped, res.lost = after.dropped-before.dropped, after.lost-before.lost
	}
	logger.Info("measured", "run", run, "cpu_cores", fmt.Sprintf("%.3f", res.cpu))

	if s.export > 0 {
		end := time.Now().Add(-10 * time.Second)
		for i := range s.exports {
			// Cameras spread over the fleet.
			id := benchCameraID(i * s.n / s.exports)
			res.exports = append(res.exports, t.export(ctx, id, end.Add(-s.export), end))
		}
	}
	// strace slows the process it follows: after the exports.
	if s.strace > 0 {
		res.strace, res.straceWrites, res.straceFsync, res.straceWriteSeconds, err = straceCount(ctx, pid, s.strace, runDir)
		if err != nil {
			res.strace = "failed: " + err.Error()
		}
	}
	return res, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
