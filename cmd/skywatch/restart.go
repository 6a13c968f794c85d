package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/skywatch/skywatch/hardware"
)

const restartUsage = `usage: skywatch sim restart [flags]

Measures a restart storm. It starts Skywatch (-binary, this program by
default) with a config for -n devices whose passwords are bcrypt hashes of
-cost (or SHA-256 tokens with -token), connects the simulated fleet, then
restarts Skywatch (SIGTERM, or SIGKILL with -kill) and measures, from the
new process's start: when every device is connected again, when an alarm
that a random device publishes at that moment is stored (its PUBACK: the
embedded broker acknowledges after storing), and the latency of the console
meanwhile (GET /healthz and a logged-in GET /api/events, one after the
other, without pause). Each run prints its figures; the last line gives the
medians.

The config, the store and the verified-credential cache live in -dir (by
default a directory under the system's temporary directory named after
-n, -cost and the kind of credentials), so that later runs reuse the hashes
and the cache; -cache off runs without the cache, -cache omit writes no
mqtt.auth section (for builds older than it).
`

// restartSettings are the flags of sim restart.
type restartSettings struct {
	binary, dir, cache, redisURL string
	n, cost, runs                int
	seed                         int64
	token, kill, distinct        bool
	connWait, settle             time.Duration
}

func runRestart(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim restart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, restartUsage); fs.PrintDefaults() }
	var s restartSettings
	fs.StringVar(&s.binary, "binary", "", "the skywatch binary to measure (default: this one)")
	fs.StringVar(&s.dir, "dir", "", "working directory, kept between runs (default: under the temporary directory)")
	fs.StringVar(&s.cache, "cache", "on", "verified-credential cache: on, off, or omit (no mqtt.auth section)")
	fs.StringVar(&s.redisURL, "redis", "", "use this Redis for the alarm store (a key prefix of its own per run)")
	fs.IntVar(&s.n, "n", 10000, "number of devices")
	fs.IntVar(&s.cost, "cost", bcrypt.DefaultCost, "bcrypt cost of the devices' password hashes")
	fs.IntVar(&s.runs, "runs", 3, "runs")
	fs.Int64Var(&s.seed, "seed", 1, "seed of the fleet")
	fs.BoolVar(&s.token, "token", false, "devices have token_sha256 credentials instead of bcrypt hashes")
	fs.BoolVar(&s.distinct, "distinct-hashes", false, "hash every device's own password (slow: n bcrypt hashes, cached in -dir) instead of one password and hash for all")
	fs.BoolVar(&s.kill, "kill", false, "restart with SIGKILL (a crash) instead of SIGTERM")
	fs.DurationVar(&s.connWait, "connect-wait", 30*time.Minute, "how long the fleet may take to connect before the restart")
	fs.DurationVar(&s.settle, "settle", 5*time.Second, "pause between the fleet's connection and the restart")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if s.n < 1 || s.n > 100000 || s.runs < 1 || s.cost < bcrypt.MinCost || s.cost > bcrypt.MaxCost {
		fmt.Fprintln(stderr, "skywatch sim restart: -n must be 1-100000, -runs positive, -cost 4-31")
		return 2
	}
	if s.cache != "on" && s.cache != "off" && s.cache != "omit" {
		fmt.Fprintln(stderr, "skywatch sim restart: -cache must be on, off or omit")
		return 2
	}
	if err := defaultBinary(&s.binary); err != nil {
		fmt.Fprintln(stderr, "skywatch sim restart:", err)
		return 1
	}
	if s.dir == "" {
		kind := fmt.Sprintf("cost%d", s.cost)
		if s.token {
			kind = "token"
		} else if s.distinct {
			kind += "-distinct"
		}
		s.dir = filepath.Join(os.TempDir(), fmt.Sprintf("skywatch-restart-n%d-seed%d-%s", s.n, s.seed, kind))
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		fmt.Fprintln(stderr, "skywatch sim restart:", err)
		return 1
	}
	logger, _ := newLogger(logConfig{}, stderr)
	var results []restartResult
	for i := range s.runs {
		r, err := restartRun(ctx, s, i+1, logger)
		if err != nil {
			fmt.Fprintf(stderr, "skywatch sim restart: run %d: %v\n", i+1, err)
			return 1
		}
		fmt.Fprintf(stdout, "run %d: %s\n", i+1, r)
		results = append(results, r)
	}
	fmt.Fprintf(stdout, "median of %d runs: %s\n", len(results), medianRestart(results))
	return 0
}

// restartFleet returns the fleet (every device normal: no silent, flaky or
// garbage ones) and the devices: section of its config, made once and
// kept in dir: hashing thousands of passwords at a real cost takes
// minutes.
func restartFleet(s restartSettings, logger *slog.Logger) ([]hardware.SimDevice, string, error) {
	fleet := hardware.SimDevices(s.n, "sim-dev-", s.seed)
	shared := !s.token && !s.distinct
	for i := range fleet {
		fleet[i].Behaviour = hardware.BehaviourNormal
		if shared {
			// One password and hash for all: every device still costs its
			// own bcrypt check, and the cache is keyed by user name.
			fleet[i].Password = "restart-bench-shared"
		}
	}
	path := filepath.Join(s.dir, "devices.yaml")
	if b, err := os.ReadFile(path); err == nil {
		return fleet, string(b), nil
	}
	secrets := make([]string, len(fleet))
	var sharedHash []byte
	if shared {
		h, err := bcrypt.GenerateFromPassword([]byte(fleet[0].Password), s.cost)
		if err != nil {
			return nil, "", err
		}
		sharedHash = h
	}
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	errc := make(chan error, 1)
	for range max(1, numCPU()) {
		wg.Go(func() {
			for i := range next {
				switch {
				case s.token:
					_, sum := tokenOf(fleet[i].Password)
					secrets[i] = "token_sha256: " + sum
				case shared:
					secrets[i] = fmt.Sprintf("password_hash: %q", sharedHash)
				default:
					h, err := bcrypt.GenerateFromPassword([]byte(fleet[i].Password), s.cost)
					if err != nil {
						select {
						case errc <- err:
						default:
						}
						continue
					}
					secrets[i] = fmt.Sprintf("password_hash: %q", h)
				}
			}
		})
	}
	for i := range fleet {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errc:
		return nil, "", err
	default:
	}
	var b strings.Builder
	b.WriteString("devices:\n")
	for i, d := range fleet {
		fmt.Fprintf(&b, "  - id: %s\n    model: %s\n    %s\n", d.ID, d.Format, secrets[i])
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return nil, "", err
	}
	logger.Info("fleet config written", "devices", s.n, "took", time.Since(start).Round(time.Second), "path", path)
	return fleet, b.String(), nil
}

// restartConfig writes a run's config and returns its path and the HTTP
// and MQTT addresses.
func restartConfig(s restartSettings, run int, devices string) (path, httpAddr, mqttAddr string, err error) {
	httpAddr, err = freeTCP()
	if err != nil {
		return "", "", "", err
	}
	mqttAddr, err = freeTCP()
	if err != nil {
		return "", "", "", err
	}
	auth := ""
	switch s.cache {
	case "on":
		auth = fmt.Sprintf(", auth: {cache_file: %q}", filepath.Join(s.dir, "mqtt-auth.json"))
	case "off":
		auth = `, auth: {cache_file: "off"}`
	}
	store := fmt.Sprintf("store: {path: %q, records_dir: %q}\n",
		filepath.Join(s.dir, fmt.Sprintf("run-%d-%d.db", os.Getpid(), run)), filepath.Join(s.dir, "records"))
	if s.redisURL != "" {
		store = fmt.Sprintf("store: {redis_url: %q, redis_key_prefix: \"swrestart-%d-%d:\"}\n", s.redisURL, os.Getpid(), run)
	}
	users, err := benchUsersYAML()
	if err != nil {
		return "", "", "", err
	}
	cfg := fmt.Sprintf(`log: {level: warn}
http: {address: %q}
webrtc: {udp_address: "127.0.0.1:0", tcp_address: "off"}
mqtt: {address: %q%s}
%s%s%s`, httpAddr, mqttAddr, auth, store, users, devices)
	path = filepath.Join(s.dir, fmt.Sprintf("run-%d.yaml", run))
	return path, httpAddr, mqttAddr, os.WriteFile(path, []byte(cfg), 0o600)
}

func freeTCP() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// skywatchProc is a Skywatch process under measurement.
type skywatchProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startSkywatch(binary, config, logPath string) (*skywatchProc, error) {
	return startBenchProc(logPath, binary, "serve", "-config", config)
}

// stop signals the process and waits for it, killing it after a minute.
func (p *skywatchProc) stop(sig syscall.Signal) time.Duration {
	start := time.Now()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return time.Since(start)
}

func (p *skywatchProc) pid() string { return strconv.Itoa(p.cmd.Process.Pid) }

// restartResult is one run's figures.
type restartResult struct {
	n                     int
	down                  time.Duration // stopping the old process
	up                    time.Duration // new process start to its first /healthz
	allBack               time.Duration // new process start to every device connected
	alarm                 time.Duration // new process start to the alarm's PUBACK
	health, api           latencies
	cpu                   float64 // Skywatch's CPU seconds from its start to every device back
	bcrypts, hits, refuse float64
}

func (r restartResult) String() string {
	return fmt.Sprintf("%d devices back in %s (stop %s, first /healthz %s), alarm stored %s after start; "+
		"/healthz %s; /api/events %s; skywatch cpu %.1f s, bcrypt checks %.0f, cache hits %.0f, logins refused %.0f",
		r.n, roundDur(r.allBack), roundDur(r.down), roundDur(r.up), roundDur(r.alarm),
		r.health, r.api, r.cpu, r.bcrypts, r.hits, r.refuse)
}

func medianRestart(rs []restartResult) string {
	med := func(f func(restartResult) time.Duration) time.Duration {
		v := make([]time.Duration, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return roundDur(v[len(v)/2])
	}
	return fmt.Sprintf("devices back in %s, alarm stored %s after start, /healthz p99 %s, /api/events p99 %s",
		med(func(r restartResult) time.Duration { return r.allBack }),
		med(func(r restartResult) time.Duration { return r.alarm }),
		med(func(r restartResult) time.Duration { return r.health.p(99) }),
		med(func(r restartResult) time.Duration { return r.api.p(99) }))
}

// restartRun starts Skywatch, connects the fleet, restarts Skywatch and
// measures.
func restartRun(ctx context.Context, s restartSettings, run int, logger *slog.Logger) (restartResult, error) {
	res := restartResult{n: s.n}
	fleet, devices, err := restartFleet(s, logger)
	if err != nil {
		return res, fmt.Errorf("fleet: %w", err)
	}
	cfgPath, httpAddr, mqttAddr, err := restartConfig(s, run, devices)
	if err != nil {
		return res, fmt.Errorf("config: %w", err)
	}
	logPath := filepath.Join(s.dir, fmt.Sprintf("run-%d.log", run))
	proc, err := startSkywatch(s.binary, cfgPath, logPath)
	if err != nil {
		return res, err
	}
	defer func() {
		if proc != nil {
			proc.stop(syscall.SIGTERM)
		}
	}()
	base := "http://" + httpAddr
	if err := waitHealthy(ctx, base, proc.done, time.Minute); err != nil {
		return res, fmt.Errorf("first start (see %s): %w", logPath, err)
	}

	simCtx, stopSim := context.WithCancel(ctx)
	sim := hardware.NewDeviceSim(hardware.DeviceSimConfig{Broker: "tcp://" + mqttAddr, Devices: fleet,
		Heartbeat: 60 * time.Second, Seed: s.seed, Logger: logger})
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Run(simCtx) }()
	defer func() { stopSim(); <-simDone }()
	logger.Info("connecting the fleet", "devices", s.n)
	if err := waitFleet(ctx, sim, s.n, s.connWait, logger); err != nil {
		return res, err
	}
	if err := waitConnected(ctx, sim, s.n, s.connWait); err != nil {
		return res, err
	}
	select {
	case <-time.After(s.settle): // the cache writer saves every 2 s
	case <-ctx.Done():
		return res, ctx.Err()
	}

	sig := syscall.SIGTERM
	if s.kill {
		sig = syscall.SIGKILL
	}
	res.down = proc.stop(sig)
	// Every device has seen its connection go before the new start.
	for deadline := time.Now().Add(time.Minute); sim.Stats().Connected > 0; {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("%d devices still connected a minute after the stop", sim.Stats().Connected)
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	proc, err = startSkywatch(s.binary, cfgPath, logPath)
	if err != nil {
		return res, fmt.Errorf("restart: %w", err)
	}
	pid := proc.pid()
	cpu0 := procCPU(pid)

	// An alarm from a random Skywatch-JSON device, published now: it is
	// sent as soon as the device is connected again.
	var jsonDevs []string
	for _, d := range fleet {
		if d.Format == hardware.FormatSkywatch {
			jsonDevs = append(jsonDevs, d.ID)
		}
	}
	dev := jsonDevs[rand.IntN(len(jsonDevs))]
	type acked struct {
		after time.Duration
		err   error
	}
	alarmDone := make(chan acked, 1)
	go func() {
		payload := fmt.Sprintf(`{"id":"restart-%d-%d","class":"alarm","zone":1}`, os.Getpid(), run)
		err := sim.PublishEvent(ctx, dev, []byte(payload))
		alarmDone <- acked{time.Since(start), err}
	}()

	probeCtx, stopProbe := context.WithCancel(ctx)
	pr := newConsoleProber(base)
	probeDone := make(chan struct{})
	go func() { pr.run(probeCtx, start); close(probeDone) }()

	if err := waitConnected(ctx, sim, s.n, s.connWait); err != nil {
		stopProbe()
		<-probeDone
		return res, fmt.Errorf("after the restart: %w", err)
	}
	res.allBack = time.Since(start)
	res.cpu = procCPU(pid) - cpu0
	var alarmErr error
	select {
	case a := <-alarmDone:
		res.alarm, alarmErr = a.after, a.err
	case <-time.After(2 * time.Minute):
		alarmErr = errors.New("the alarm was not stored within 2 minutes of every device's return")
	}
	// A few more seconds of console probes after the storm.
	select {
	case <-time.After(3 * time.Second):
	case <-ctx.Done():
	}
	stopProbe()
	<-probeDone
	if alarmErr != nil {
		return res, fmt.Errorf("alarm from %s: %w", dev, alarmErr)
	}
	res.up, res.health, res.api = pr.results()
	m := scrapeMetrics(ctx, base+"/metrics")
	res.bcrypts = m["skywatch_alarms_login_bcrypt_total"]
	res.hits = m["skywatch_alarms_login_cache_hits_total"]
	res.refuse = sumMetric(ctx, base+"/metrics", "skywatch_alarms_logins_refused_total")
	return res, nil
}

// waitConnected waits until n devices are connected at once.
func waitConnected(ctx context.Context, sim *hardware.DeviceSim, n int, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for sim.Stats().Connected < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d devices connected within %s", sim.Stats().Connected, n, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
