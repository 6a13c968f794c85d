package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skywatch/skywatch/hardware"
)

const loadUsage = `usage: skywatch sim load [flags]

Measures the alarm intake end to end. It connects a fleet of simulated
devices (the same fleet as "sim devices -n N -id-prefix P -seed S", which
send heartbeats), then, in each run, a few of them publish Skywatch JSON
events with QoS 1 as fast as a bounded window allows, for -duration. An
event counts as stored when the observer sees it:

  -observe sse    Skywatch's GET /api/stream at -http (stored events, and
                  the incident each one opened or joined)
  -observe mqtt   a plain MQTT subscriber on -broker (the broker's ceiling)

At most -inflight events are published and not yet observed, so the flood
runs at the rate the system sustains without an unbounded queue. Each run
prints events/s (observed, and acknowledged by the broker), the latency
from publication to the stored event and to its incident (with -observe
sse) and, with -http, Skywatch's CPU and memory from /metrics; then the
medians of the runs. -http may list several nodes of a cluster, comma
separated: the stream is read from the first (every node streams every
node's events), CPU, memory and stored events are summed over all.

"skywatch sim load -bare-broker ADDR" instead runs a bare MQTT broker
(mochi, no authentication, no access list, no intake) until interrupted,
for measuring the embedded broker's ceiling.
`

// loadSettings are the flags of sim load.
type loadSettings struct {
	broker, httpURL, observe, prefix, idPrefix string
	metricsURLs                                []string    // every node's base URL, for /metrics
	header                                     http.Header // sent with the stream's request (a token)
	subUser, subPass                           string
	n, burst, inflight, runs, connectRate      int
	seed                                       int64
	rate                                       float64
	duration, pause, observeTimeout, connWait  time.Duration
	pids                                       []int
}

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, loadUsage); fs.PrintDefaults() }
	var s loadSettings
	fs.StringVar(&s.broker, "broker", "tcp://127.0.0.1:1883", "MQTT broker URL of the devices")
	fs.StringVar(&s.httpURL, "http", "http://127.0.0.1:8080", "Skywatch's HTTP base URL, for /api/stream and /metrics (empty: none; several nodes: comma-separated)")
	fs.StringVar(&s.observe, "observe", "sse", "how stored events are observed: sse or mqtt")
	fs.StringVar(&s.subUser, "sub-username", "", "username of the -observe mqtt subscriber")
	fs.StringVar(&s.subPass, "sub-password", "", "password of the -observe mqtt subscriber")
	fs.StringVar(&s.prefix, "prefix", "skywatch", "topic prefix")
	fs.IntVar(&s.n, "n", 10000, "devices connected (heartbeats only, except the burst devices)")
	fs.StringVar(&s.idPrefix, "id-prefix", "sim-dev-", "device ID prefix")
	fs.Int64Var(&s.seed, "seed", 1, "seed of the fleet")
	fs.IntVar(&s.burst, "burst-devices", 50, "devices that publish the flood")
	fs.IntVar(&s.inflight, "inflight", 200, "events published but not yet observed, at most")
	fs.Float64Var(&s.rate, "rate", 0, "events per second to offer (0: as fast as the window allows)")
	fs.IntVar(&s.runs, "runs", 3, "flood runs")
	fs.DurationVar(&s.duration, "duration", 20*time.Second, "length of each flood")
	fs.DurationVar(&s.pause, "pause", 5*time.Second, "quiet time before each run")
	fs.DurationVar(&s.observeTimeout, "observe-timeout", 20*time.Second, "an event not observed this long after its publication counts as lost")
	fs.DurationVar(&s.connWait, "connect-wait", 3*time.Minute, "how long to wait for the fleet to connect")
	fs.IntVar(&s.connectRate, "connect-rate", 500, "device connections per second while the fleet connects")
	pids := fs.String("pids", "", "comma-separated process IDs whose CPU use to report (Linux /proc)")
	bare := fs.String("bare-broker", "", "run a bare MQTT broker on this address instead, until interrupted")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger, _ := newLogger(logConfig{}, stderr)
	if urls := strings.Split(s.httpURL, ","); len(urls) > 1 {
		s.httpURL, s.metricsURLs = urls[0], urls
	} else if s.httpURL != "" {
		s.metricsURLs = []string{s.httpURL}
	}
	if *bare != "" {
		return runBareBroker(ctx, *bare, logger, stderr)
	}
	for _, p := range strings.Split(*pids, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		pid, err := strconv.Atoi(p)
		if err != nil {
			fmt.Fprintf(stderr, "skywatch sim load: -pids: %q is not a number\n", p)
			return 2
		}
		s.pids = append(s.pids, pid)
	}
	switch {
	case s.n < 1 || s.n > 100000:
		fmt.Fprintln(stderr, "skywatch sim load: -n must be between 1 and 100000")
		return 2
	case s.burst < 1 || s.inflight < 1 || s.runs < 1 || s.duration <= 0:
		fmt.Fprintln(stderr, "skywatch sim load: -burst-devices, -inflight, -runs and -duration must be positive")
		return 2
	case s.observe != "sse" && s.observe != "mqtt":
		fmt.Fprintln(stderr, "skywatch sim load: -observe must be sse or mqtt")
		return 2
	case s.observe == "sse" && s.httpURL == "":
		fmt.Fprintln(stderr, "skywatch sim load: -observe sse needs -http")
		return 2
	}
	if err := runLoadRuns(ctx, s, logger, stdout); err != nil {
		fmt.Fprintln(stderr, "skywatch sim load:", err)
		return 1
	}
	return 0
}

// runLoadRuns connects the fleet and the observer, runs the floods and
// prints their results.
func runLoadRuns(ctx context.Context, s loadSettings, logger *slog.Logger, stdout io.Writer) error {
	_, err := loadRuns(ctx, s, logger, stdout)
	return err
}

// loadRuns is runLoadRuns, returning the runs' results too.
func loadRuns(ctx context.Context, s loadSettings, logger *slog.Logger, stdout io.Writer) ([]loadResult, error) {
	fleet := hardware.SimDevices(s.n, s.idPrefix, s.seed)
	var bursters []string
	for _, d := range fleet {
		if d.Format == hardware.FormatSkywatch && d.Behaviour == hardware.BehaviourNormal && len(bursters) < s.burst {
			bursters = append(bursters, d.ID)
		}
	}
	if len(bursters) < s.burst {
		return nil, fmt.Errorf("the fleet has only %d normal devices that send Skywatch JSON, fewer than -burst-devices", len(bursters))
	}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()

	tr := newLoadTracker(s.inflight)
	obs := newLoadObserver(s, tr, logger)
	obsErr := make(chan error, 1)
	wg.Go(func() { obsErr <- obs.run(ctx) })
	select {
	case <-obs.ready:
	case err := <-obsErr:
		return nil, fmt.Errorf("observer: %w", err)
	case <-time.After(30 * time.Second):
		return nil, errors.New("observer: not connected after 30 s")
	}

	sim := hardware.NewDeviceSim(hardware.DeviceSimConfig{
		Broker: s.broker, Prefix: s.prefix, Devices: fleet, Seed: s.seed,
		ConnectRate: s.connectRate, Logger: logger,
	})
	wg.Go(func() {
		if err := sim.Run(ctx); err != nil {
			logger.Error("device sim", "error", err)
		}
	})
	if err := waitFleet(ctx, sim, s.n, s.connWait, logger); err != nil {
		return nil, err
	}

	m := newLoadMeter(s.metricsURLs, s.pids)
	var results []loadResult
	var seq atomic.Uint64
	runID := strconv.FormatInt(time.Now().UnixMilli(), 36)
	for r := 1; r <= s.runs; r++ {
		select {
		case <-time.After(s.pause):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		before := m.sample(ctx)
		hb := sim.Stats().Heartbeats
		res, err := flood(ctx, s, sim, bursters, tr, fmt.Sprintf("ld-%s-%d-", runID, r), &seq)
		if err != nil {
			return nil, err
		}
		res.heartbeats = sim.Stats().Heartbeats - hb
		res.usage = m.sample(ctx).since(before)
		res.sseReconnects, res.gaps = obs.troubles()
		fmt.Fprintf(stdout, "run %d: %s\n", r, res)
		results = append(results, res)
	}
	st := sim.Stats()
	fmt.Fprintf(stdout, "fleet: %d devices, %d connected, %d connections made, %d publish errors\n",
		st.Devices, st.Connected, st.Connects, st.Errors)
	fmt.Fprintf(stdout, "median of %d runs: %s\n", len(results), medianResult(results))
	return results, nil
}

// waitFleet waits until every device has connected once.
func waitFleet(ctx context.Context, sim *hardware.DeviceSim, n int, wait time.Duration, logger *slog.Logger) error {
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := time.Now()
	for {
		st := sim.Stats()
		if st.Connects >= uint64(n) {
			logger.Info("fleet connected", "devices", n, "connected", st.Connected)
			return nil
		}
		if time.Since(last) >= 10*time.Second {
			logger.Info("fleet connecting", "connected", st.Connected, "of", n, "errors", st.Errors)
			last = time.Now()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d devices connected within %s", st.Connected, n, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// flood runs one flood: s.inflight publishers spread over the burst
// devices, each taking a slot of the window before it publishes; the
// observer frees the slot. It returns once every event was observed or
// counted lost.
func flood(ctx context.Context, s loadSettings, sim *hardware.DeviceSim, bursters []string, tr *loadTracker, idPrefix string, seq *atomic.Uint64) (loadResult, error) {
	tr.reset()
	start := time.Now()
	fctx, stop := context.WithTimeout(ctx, s.duration)
	defer stop()
	var offered atomic.Int64
	var errs, acked atomic.Uint64
	var lastAck atomic.Int64 // unix ns of the last PUBACK
	var wg sync.WaitGroup
	for i := range s.inflight {
		dev := bursters[i%len(bursters)]
		wg.Go(func() {
			for {
				if s.rate > 0 {
					k := offered.Add(1) - 1
					at := start.Add(time.Duration(float64(k) / s.rate * float64(time.Second)))
					select {
					case <-time.After(time.Until(at)):
					case <-fctx.Done():
						return
					}
				}
				if !tr.acquire(fctx) {
					return
				}
				n := seq.Add(1)
				id := idPrefix + strconv.FormatUint(n, 10)
				now := time.Now()
				payload := fmt.Appendf(nil, `{"id":%q,"seq":%d,"ts":%q,"class":"alarm","qualifier":"new","code":"130","zone":"%d","partition":"1"}`,
					id, n, now.UTC().Format(time.RFC3339Nano), 1+n%16)
				tr.published(id, now)
				// The publish may outlast the flood: its PUBACK is waited
				// for with the outer context.
				if err := sim.PublishEvent(ctx, dev, payload); err != nil {
					errs.Add(1)
					if ctx.Err() != nil {
						return
					}
				} else {
					acked.Add(1)
					lastAck.Store(time.Now().UnixNano())
				}
			}
		})
	}
	<-fctx.Done()
	end := time.Now()
	wg.Wait()
	if err := tr.drain(ctx, s.observeTimeout); err != nil {
		return loadResult{}, err
	}
	res := tr.result(start, end)
	res.publishErrors = errs.Load()
	if span := time.Unix(0, lastAck.Load()).Sub(start); acked.Load() > 0 && span > 0 {
		res.ackRate = float64(acked.Load()) / span.Seconds()
	}
	return res, nil
}

// loadTracker keeps the events published and not yet observed, and the
// latencies of those observed. Its window bounds the events outstanding.
type loadTracker struct {
	window chan struct{}

	mu        sync.Mutex
	pending   map[string]time.Time
	latencies []time.Duration
	// incidents holds the publication time of each event of the run
	// until an incident change names it (opened or joined); incLat the
	// latencies of those seen.
	incidents map[string]time.Time
	incLat    []time.Duration
	firstPub  time.Time
	lastObs   time.Time
	sent      int
	lost      int
}

func newLoadTracker(window int) *loadTracker {
	return &loadTracker{window: make(chan struct{}, window), pending: map[string]time.Time{}, incidents: map[string]time.Time{}}
}

func (t *loadTracker) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.latencies = t.latencies[:0]
	t.incLat = t.incLat[:0]
	clear(t.incidents)
	t.firstPub, t.lastObs = time.Time{}, time.Time{}
	t.sent, t.lost = 0, 0
}

// acquire takes a slot of the window; false when ctx ended first.
func (t *loadTracker) acquire(ctx context.Context) bool {
	select {
	case t.window <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// published records that id was published at at; its slot is taken.
func (t *loadTracker) published(id string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.firstPub.IsZero() {
		t.firstPub = at
	}
	t.pending[id] = at
	t.incidents[id] = at
	t.sent++
}

// observed records that the event id was seen stored at at and frees its
// slot; ids not published by this run (or seen before) are ignored.
func (t *loadTracker) observed(id string, at time.Time) {
	t.mu.Lock()
	pub, ok := t.pending[id]
	if ok {
		delete(t.pending, id)
		t.latencies = append(t.latencies, at.Sub(pub))
		t.lastObs = at
	}
	t.mu.Unlock()
	if ok {
		<-t.window
	}
}

// observedIncident records that an incident change named the event id
// at at; ids not published by this run (or seen before) are ignored.
func (t *loadTracker) observedIncident(id string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if pub, ok := t.incidents[id]; ok {
		delete(t.incidents, id)
		t.incLat = append(t.incLat, at.Sub(pub))
	}
}

// expire counts events outstanding for longer than timeout as lost and
// frees their slots; it returns how many are still outstanding.
func (t *loadTracker) expire(timeout time.Duration) int {
	t.mu.Lock()
	freed := 0
	for id, pub := range t.pending {
		if time.Since(pub) > timeout {
			delete(t.pending, id)
			t.lost++
			freed++
		}
	}
	left := len(t.pending)
	t.mu.Unlock()
	for range freed {
		<-t.window
	}
	return left
}

// drain waits until nothing is outstanding, counting what is not observed
// within timeout as lost.
func (t *loadTracker) drain(ctx context.Context, timeout time.Duration) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for t.expire(timeout) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

func (t *loadTracker) result(start, end time.Time) loadResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := loadResult{sent: t.sent, observed: len(t.latencies), lost: t.lost, flood: end.Sub(start), incidents: len(t.incLat)}
	if len(t.incLat) > 0 {
		lat := slices.Clone(t.incLat)
		slices.Sort(lat)
		r.incP50 = lat[len(lat)/2]
		r.incP99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	if len(t.latencies) == 0 {
		return r
	}
	lat := slices.Clone(t.latencies)
	slices.Sort(lat)
	r.p50 = lat[len(lat)/2]
	r.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	r.max = lat[len(lat)-1]
	if span := t.lastObs.Sub(t.firstPub); span > 0 {
		r.rate = float64(len(lat)) / span.Seconds()
	}
	return r
}

// loadResult is one run's outcome.
type loadResult struct {
	sent, observed, lost int
	publishErrors        uint64
	heartbeats           uint64
	flood                time.Duration
	rate                 float64 // observed events per second, first publication to last observation
	ackRate              float64 // events acknowledged by the broker per second, flood start to last PUBACK
	p50, p99, max        time.Duration
	// incidents counts the events seen in an incident change (opened or
	// joined), incP50 and incP99 their latency from publication.
	incidents           int
	incP50, incP99      time.Duration
	usage               loadUsageDelta
	sseReconnects, gaps uint64
}

func (r loadResult) String() string {
	s := fmt.Sprintf("%.0f events/s (acknowledged %.0f/s), latency p50 %s p99 %s max %s; published %d, observed %d, lost %d, publish errors %d, heartbeats %d",
		r.rate, r.ackRate, roundDur(r.p50), roundDur(r.p99), roundDur(r.max), r.sent, r.observed, r.lost, r.publishErrors, r.heartbeats)
	if r.incidents > 0 {
		s += fmt.Sprintf("; to the incident p50 %s p99 %s (%d events seen in incident changes)", roundDur(r.incP50), roundDur(r.incP99), r.incidents)
	}
	if r.sseReconnects > 0 || r.gaps > 0 {
		s += fmt.Sprintf(", stream reconnects %d gaps %d", r.sseReconnects, r.gaps)
	}
	if u := r.usage.String(); u != "" {
		s += "; " + u
	}
	return s
}

// medianResult is the median of each measure over the runs.
func medianResult(rs []loadResult) string {
	med := func(f func(loadResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	s := fmt.Sprintf("%.0f events/s (acknowledged %.0f/s), latency p50 %s p99 %s",
		med(func(r loadResult) float64 { return r.rate }),
		med(func(r loadResult) float64 { return r.ackRate }),
		roundDur(time.Duration(med(func(r loadResult) float64 { return float64(r.p50) }))),
		roundDur(time.Duration(med(func(r loadResult) float64 { return float64(r.p99) }))))
	if rs[0].incidents > 0 {
		s += fmt.Sprintf("; to the incident p50 %s p99 %s",
			roundDur(time.Duration(med(func(r loadResult) float64 { return float64(r.incP50) }))),
			roundDur(time.Duration(med(func(r loadResult) float64 { return float64(r.incP99) }))))
	}
	if rs[0].usage.metrics {
		s += fmt.Sprintf("; skywatch cpu %.2f cores, rss %.0f MB, stored %.0f/s",
			med(func(r loadResult) float64 { return r.usage.cpu }),
			med(func(r loadResult) float64 { return r.usage.rssMB }),
			med(func(r loadResult) float64 { return r.usage.storedRate }))
	}
	for i := range rs[0].usage.pidCPU {
		s += fmt.Sprintf("; pid %d cpu %.2f cores", rs[0].usage.pids[i],
			med(func(r loadResult) float64 { return r.usage.pidCPU[i] }))
	}
	s += fmt.Sprintf("; loader cpu %.2f cores", med(func(r loadResult) float64 { return r.usage.selfCPU }))
	return s
}

// roundDur rounds a latency for printing.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	default:
		return d.Round(10 * time.Microsecond)
	}
}
