package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/skywatch/skywatch/hardware"
)

const sigTerm = syscall.SIGTERM

// benchRecorder is a recorder under measurement: Skywatch or MediaMTX.
type benchRecorder interface {
	name() string
	start() (*skywatchProc, error)
	// waitReady waits until every camera the recorder records is online.
	waitReady(ctx context.Context, exited <-chan struct{}, wait time.Duration) error
	sample(ctx context.Context, pid int, recDir string) (recordSample, error)
	export(ctx context.Context, camera string, start, end time.Time) exportResult
}

// recordSample is what was read at one time.
type recordSample struct {
	at                time.Time
	cpu, selfCPU      float64 // seconds
	rss               float64 // bytes
	heap              float64 // bytes; -1 unknown
	live              float64 // Go heap live after the last GC (next GC target / (1 + GOGC/100)); -1 unknown
	ring              float64 // pre-alarm rings, as the recorder counts them; -1 unknown
	recv              float64 // RTP bytes received from the cameras
	dropped, lost     float64 // -1 unknown
	disk              int64   // bytes of the files under the recordings
	files             int
	syscw, writeBytes int64
}

// baseSample reads what every recorder has: /proc and the disk.
func baseSample(pid int, recDir string) (recordSample, error) {
	s := recordSample{at: time.Now(), heap: -1, live: -1, ring: -1, dropped: -1, lost: -1}
	p := fmt.Sprint(pid)
	s.cpu, s.selfCPU, s.rss = procCPU(p), procCPU("self"), procRSS(pid)
	s.syscw, s.writeBytes = procIO(pid)
	err := filepath.WalkDir(recDir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // a file deleted under the walk
		}
		if info, err := d.Info(); err == nil {
			s.disk += info.Size()
			s.files++
		}
		return nil
	})
	return s, err
}

// defaultBinary sets *binary, the Skywatch a benchmark runs, to this
// program when it is empty.
func defaultBinary(binary *string) error {
	if *binary != "" {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	*binary = exe
	return nil
}

// startBenchProc starts a recorder process with its output in logPath.
func startBenchProc(logPath, binary string, args ...string) (*skywatchProc, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, err
	}
	p := &skywatchProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(p.done)
	}()
	return p, nil
}

// skywatchTarget is Skywatch recording the cameras.
type skywatchTarget struct {
	s                recordBenchSettings
	runDir, cfgPath  string
	base, metricsURL string
	client           *http.Client
	loggedIn         bool
}

func newSkywatchTarget(s recordBenchSettings, cams *hardware.Camera, runDir, recDir string) (*skywatchTarget, error) {
	httpAddr, err := freeTCP()
	if err != nil {
		return nil, err
	}
	mqttAddr, err := freeTCP()
	if err != nil {
		return nil, err
	}
	users, err := benchUsersYAML()
	if err != nil {
		return nil, err
	}
	transport := "tcp"
	if s.udp {
		transport = "udp"
	}
	preAlarm := ""
	if s.preAlarm >= 0 {
		preAlarm = fmt.Sprintf(", pre_alarm: %s", s.preAlarm)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `log: {level: warn}
http: {address: %q}
webrtc: {udp_address: "127.0.0.1:0", tcp_address: "off"}
mqtt: {address: %q}
store: {path: %q, records_dir: %q}
recordings: {path: %q, segment: %s%s}
%scameras:
`, httpAddr, mqttAddr, filepath.Join(runDir, "alarms.db"), filepath.Join(runDir, "records"), recDir, s.segment, preAlarm, users)
	for i := range s.n {
		id := benchCameraID(i)
		fmt.Fprintf(&b, "  - {id: %s, url: %q, transport: %s, mode: always, record: %s, record_stream: %s",
			id, cams.URL("/"+id), transport, s.record, s.stream)
		if s.sub {
			fmt.Fprintf(&b, ", sub_url: %q", cams.URL("/"+id+"/sub"))
		}
		b.WriteString("}\n")
	}
	t := &skywatchTarget{s: s, runDir: runDir, cfgPath: filepath.Join(runDir, "skywatch.yaml"), base: "http://" + httpAddr}
	t.metricsURL = t.base + "/metrics"
	jar, _ := cookiejar.New(nil)
	t.client = &http.Client{Jar: jar}
	return t, os.WriteFile(t.cfgPath, []byte(b.String()), 0o600)
}

func (t *skywatchTarget) name() string {
	if t.s.preAlarm >= 0 {
		return fmt.Sprintf("skywatch (record %s, stream %s, pre_alarm %s)", t.s.record, t.s.stream, t.s.preAlarm)
	}
	return fmt.Sprintf("skywatch (record %s, stream %s)", t.s.record, t.s.stream)
}

func (t *skywatchTarget) start() (*skywatchProc, error) {
	return startBenchProc(filepath.Join(t.runDir, "skywatch.log"), t.s.binary, "serve", "-config", t.cfgPath)
}

func (t *skywatchTarget) waitReady(ctx context.Context, exited <-chan struct{}, wait time.Duration) error {
	if err := waitHealthy(ctx, t.base, exited, wait); err != nil {
		return err
	}
	want := map[string]int{"main": t.s.n}
	if t.s.stream == "sub" {
		want["sub"] = t.s.n
	}
	return waitCamerasOnline(ctx, t.metricsURL, want, exited, wait)
}

// waitCamerasOnline waits until Skywatch's /metrics count at least want
// streams online (by stream: main, sub).
func waitCamerasOnline(ctx context.Context, metricsURL string, want map[string]int, exited <-chan struct{}, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		lines := metricLines(ctx, metricsURL, 10*time.Second)
		ok := true
		got := map[string]int{}
		for stream, n := range want {
			got[stream] = int(sumLines(lines, "skywatch_camera_status", `stream="`+stream+`"`, `status="online"`))
			ok = ok && got[stream] >= n
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cameras online %v, want %v, after %s", got, want, wait)
		}
		select {
		case <-exited:
			return fmt.Errorf("skywatch exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (t *skywatchTarget) sample(ctx context.Context, pid int, recDir string) (recordSample, error) {
	lines := metricLines(ctx, t.metricsURL, 10*time.Second)
	s, err := baseSample(pid, recDir)
	if lines == nil {
		return s, fmt.Errorf("cannot read %s", t.metricsURL)
	}
	s.recv = sumLines(lines, "skywatch_camera_received_bytes_total")
	s.heap = sumLines(lines, "go_memstats_heap_inuse_bytes")
	if gogc := sumLines(lines, "go_gc_gogc_percent"); gogc > 0 {
		s.live = sumLines(lines, "go_memstats_next_gc_bytes") / (1 + gogc/100)
	}
	s.ring = sumLines(lines, "skywatch_recorder_prealarm_bytes")
	s.dropped = sumLines(lines, "skywatch_camera_dropped_units_total")
	s.lost = sumLines(lines, "skywatch_camera_lost_packets_total")
	return s, err
}

func (t *skywatchTarget) export(ctx context.Context, camera string, start, end time.Time) exportResult {
	if !t.loggedIn {
		_, err := benchLogin(ctx, t.client, t.base)
		t.loggedIn = err == nil
	}
	q := url.Values{"start": {start.UTC().Format(time.RFC3339)}, "end": {end.UTC().Format(time.RFC3339)}}
	return timeExport(ctx, t.client, camera, end.Sub(start), t.base+"/api/cameras/"+camera+"/video.mp4?"+q.Encode())
}

// mediaMTXTarget is MediaMTX recording the same cameras, for comparison.
type mediaMTXTarget struct {
	s                     recordBenchSettings
	runDir, cfgPath       string
	apiBase, playbackBase string
	client                *http.Client
}

func newMediaMTXTarget(s recordBenchSettings, cams *hardware.Camera, runDir, recDir string) (*mediaMTXTarget, error) {
	var addrs [3]string
	for i := range addrs {
		a, err := freeTCP()
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	transport := "tcp"
	if s.udp {
		transport = "udp"
	}
	record := "yes"
	if s.record == "off" {
		record = "no"
	}
	stream := ""
	if s.stream == "sub" {
		stream = "/sub"
	}
	var b strings.Builder
	// Only what recording needs: every other server off; the API to see
	// that the paths are ready and count their bytes, the playback server
	// for exports.
	fmt.Fprintf(&b, `logLevel: warn
rtspAddress: %s
rtsp: yes
rtspTransports: [tcp]
rtmp: no
hls: no
webrtc: no
srt: no
moq: no
api: yes
apiAddress: %s
playback: yes
playbackAddress: %s
pathDefaults:
  record: %s
  recordPath: %s
  recordFormat: fmp4
  recordPartDuration: 1s
  recordSegmentDuration: %s
  recordDeleteAfter: 0s
  sourceOnDemand: no
  rtspTransport: %s
paths:
`, addrs[0], addrs[1], addrs[2], record, filepath.Join(recDir, "%path", "%Y-%m-%d_%H-%M-%S-%f"), s.segment, transport)
	for i := range s.n {
		id := benchCameraID(i)
		fmt.Fprintf(&b, "  %s: {source: %q}\n", id, cams.URL("/"+id+stream))
	}
	t := &mediaMTXTarget{s: s, runDir: runDir, cfgPath: filepath.Join(runDir, "mediamtx.yml"),
		apiBase: "http://" + addrs[1], playbackBase: "http://" + addrs[2], client: &http.Client{}}
	return t, os.WriteFile(t.cfgPath, []byte(b.String()), 0o600)
}

func (t *mediaMTXTarget) name() string { return fmt.Sprintf("mediamtx (record %s)", t.s.record) }

func (t *mediaMTXTarget) start() (*skywatchProc, error) {
	return startBenchProc(filepath.Join(t.runDir, "mediamtx.log"), t.s.mediamtx, t.cfgPath)
}

// paths lists MediaMTX's paths: how many are ready and their bytes.
func (t *mediaMTXTarget) paths(ctx context.Context) (ready int, bytes float64, err error) {
	return mediaMTXPaths(ctx, t.client, t.apiBase, t.s.n)
}

// mediaMTXPaths lists the paths of the MediaMTX whose API is at apiBase
// (n of them at most): how many are ready and the bytes they received.
func mediaMTXPaths(ctx context.Context, client *http.Client, apiBase string, n int) (ready int, bytes float64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Ask for every path on one page.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v3/paths/list?itemsPerPage=%d", apiBase, n+10), nil)
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var list struct {
		Items []struct {
			Ready        bool    `json:"ready"`
			InboundBytes float64 `json:"inboundBytes"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return 0, 0, fmt.Errorf("paths list: %w", err)
	}
	for _, it := range list.Items {
		if it.Ready {
			ready++
		}
		bytes += it.InboundBytes
	}
	return ready, bytes, nil
}

func (t *mediaMTXTarget) waitReady(ctx context.Context, exited <-chan struct{}, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		ready, _, err := t.paths(ctx)
		if err == nil && ready >= t.s.n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d paths ready after %s (%v)", ready, t.s.n, wait, err)
		}
		select {
		case <-exited:
			return fmt.Errorf("mediamtx exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (t *mediaMTXTarget) sample(ctx context.Context, pid int, recDir string) (recordSample, error) {
	_, recv, err := t.paths(ctx)
	if err != nil {
		return recordSample{}, err
	}
	s, err := baseSample(pid, recDir)
	s.recv = recv
	return s, err
}

func (t *mediaMTXTarget) export(ctx context.Context, camera string, start, end time.Time) exportResult {
	q := url.Values{"path": {camera}, "start": {start.UTC().Format(time.RFC3339)},
		"duration": {fmt.Sprint(end.Sub(start).Seconds())}, "format": {"fmp4"}}
	return timeExport(ctx, t.client, camera, end.Sub(start), t.playbackBase+"/get?"+q.Encode())
}
