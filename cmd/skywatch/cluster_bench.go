package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skywatch/skywatch/hardware"
)

const clusterBenchUsage = `usage: skywatch sim cluster [flags]

Measures Skywatch as a cluster of 1, 2, 3... nodes on this machine. For
each node count of -nodes, and -rounds times over, it starts from nothing:
a private Mosquitto (persistence on, set_tcp_nodelay true, no queue
limit), a private Redis (appendonly yes, appendfsync everysec), and N
"skywatch serve" processes of this binary with cluster: sections (failover
10 s, an external broker, the Redis store, no operator accounts), all on
loopback, sharing one simulated camera with -cameras paths (the synthetic
2 Mbit/s field stream, 2 s GOP, pulled always: each by the node that holds
its lease). Then:

 1. Events: the flood of "sim load" (its fleet of -n devices; -burst-devices
    publish Skywatch JSON events with QoS 1, at most -inflight outstanding,
    at -rate per second or as fast as the window allows), -runs runs of
    -duration, observed on the first node's GET /api/stream (every node
    streams every node's events): events stored per second, acknowledged
    by Mosquitto per second, latency from publication to the stored event
    and to its incident, CPU of the nodes (summed), Mosquitto and Redis.
 2. Viewers: -viewers WHEP viewers, spread round robin over the nodes and
    the cameras (a viewer on a node that does not pull its camera has its
    offer proxied to the owner, and media from the owner); the nodes' CPU
    over -view-duration with the viewers, less their CPU over as long
    before the viewers joined.

Every process shares the machine's cores with the others and with this
one: on a machine with fewer cores than nodes, more nodes measure the
cluster's overhead, not scale-out. The tables at the end are Markdown,
with the medians over the rounds.
`

// clusterBenchSettings are the flags of sim cluster.
type clusterBenchSettings struct {
	binary, mosquitto, redisServer, dir string
	nodes                               []int
	rounds, cameras, viewers            int
	viewDuration, failover              time.Duration
	keep                                bool
	load                                loadSettings
}

func runClusterBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, clusterBenchUsage); fs.PrintDefaults() }
	var s clusterBenchSettings
	nodes := fs.String("nodes", "1,2,3", "node counts to measure, comma-separated")
	fs.StringVar(&s.binary, "binary", "", "the skywatch binary the nodes run (default: this one)")
	fs.StringVar(&s.mosquitto, "mosquitto", "mosquitto", "the mosquitto binary")
	fs.StringVar(&s.redisServer, "redis-server", "redis-server", "the redis-server binary")
	fs.StringVar(&s.dir, "dir", "", "where configs, logs and data go (default: a new temporary directory)")
	fs.BoolVar(&s.keep, "keep", false, "keep -dir afterwards")
	fs.IntVar(&s.rounds, "rounds", 1, "times each node count is measured from nothing")
	fs.IntVar(&s.cameras, "cameras", 6, "cameras (paths of the simulated camera), pulled always")
	fs.IntVar(&s.viewers, "viewers", 30, "WHEP viewers (0: no viewer measurement)")
	fs.DurationVar(&s.viewDuration, "view-duration", 10*time.Second, "the viewers' measurement window")
	fs.DurationVar(&s.failover, "failover", 10*time.Second, "cluster.failover of the nodes")
	l := &s.load
	fs.IntVar(&l.n, "n", 1000, "devices connected (heartbeats only, except the burst devices)")
	fs.IntVar(&l.burst, "burst-devices", 100, "devices that publish the flood")
	fs.IntVar(&l.inflight, "inflight", 200, "events published but not yet observed, at most")
	fs.Float64Var(&l.rate, "rate", 0, "events per second to offer (0: as fast as the window allows)")
	fs.IntVar(&l.runs, "runs", 3, "flood runs per node count and round")
	fs.DurationVar(&l.duration, "duration", 15*time.Second, "length of each flood")
	fs.DurationVar(&l.pause, "pause", 3*time.Second, "quiet time before each flood")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, f := range strings.Split(*nodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 9 {
			fmt.Fprintf(stderr, "skywatch sim cluster: -nodes: %q is not a count from 1 to 9\n", f)
			return 2
		}
		s.nodes = append(s.nodes, n)
	}
	if s.rounds < 1 || s.cameras < 1 || s.viewers < 0 || l.runs < 1 || l.n < l.burst || l.burst < 1 || l.inflight < 1 {
		fmt.Fprintln(stderr, "skywatch sim cluster: -rounds, -cameras, -runs, -burst-devices and -inflight must be positive, -viewers not negative, -n at least -burst-devices")
		return 2
	}
	l.observe, l.prefix, l.idPrefix, l.seed = "sse", "skywatch", "sim-dev-", 1
	l.observeTimeout, l.connWait, l.connectRate = 20*time.Second, 3*time.Minute, 500
	if err := defaultBinary(&s.binary); err != nil {
		fmt.Fprintln(stderr, "skywatch sim cluster:", err)
		return 1
	}
	for _, p := range []*string{&s.mosquitto, &s.redisServer} {
		path, err := lookPath(*p)
		if err != nil {
			fmt.Fprintln(stderr, "skywatch sim cluster:", err)
			return 1
		}
		*p = path
	}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "skywatch-cluster-bench-")
		if err != nil {
			fmt.Fprintln(stderr, "skywatch sim cluster:", err)
			return 1
		}
		s.dir = d
		if !s.keep {
			defer os.RemoveAll(d)
		}
	}
	logger, _ := newLogger(logConfig{}, stderr)
	results, err := clusterBench(ctx, s, logger, stdout)
	writeClusterReport(stdout, s, results)
	if err != nil {
		fmt.Fprintln(stderr, "skywatch sim cluster:", err)
		return 1
	}
	return 0
}

// lookPath finds a program, also in /usr/sbin (Debian's mosquitto), which
// a user's PATH often lacks.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if !strings.Contains(name, "/") {
		if p, err := exec.LookPath(filepath.Join("/usr/sbin", name)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// clusterBenchResult is one node count's figures in one round.
type clusterBenchResult struct {
	nodes, round int
	events       []loadResult
	// Viewers: joined, with a keyframe, and the nodes' CPU seconds over
	// the window with them and over the idle window before.
	joined, withKey    int
	viewCPU, idleCPU   float64
	window             time.Duration
	packetsPerViewer   float64
	err                string
	nodeCPU, brokerCPU []float64 // per event run: cores of the nodes (sum), of Mosquitto
	redisCPU           []float64 // per event run: cores of Redis
	// Redis commands processed and memory grown per stored event, over
	// all the event runs.
	redisOpsPerEvent, redisBytesPerEvent float64
	// Resident memory after the event runs, in bytes.
	nodeRSS, brokerRSS, redisRSS float64
}

// clusterBench measures every node count, -rounds times, from nothing
// each time.
func clusterBench(ctx context.Context, s clusterBenchSettings, logger *slog.Logger, stdout io.Writer) ([]clusterBenchResult, error) {
	cfg := hardware.CameraConfig{Logger: logger.With("component", "camera")}
	for i := range s.cameras {
		cfg.Paths = append(cfg.Paths, hardware.CameraPath{Path: fmt.Sprintf("/cam-%d", i+1), Clip: hardware.ClipSynth2MGOP2s,
			Audio: true, StartFrame: i * 50 / s.cameras})
	}
	cam := hardware.NewCamera(cfg)
	if err := cam.Start(); err != nil {
		return nil, fmt.Errorf("camera: %w", err)
	}
	defer cam.Close()
	var out []clusterBenchResult
	for round := 1; round <= s.rounds; round++ {
		for _, n := range s.nodes {
			dir := filepath.Join(s.dir, fmt.Sprintf("round%d-nodes%d", round, n))
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return out, err
			}
			logger.Info("measuring", "round", round, "nodes", n)
			fmt.Fprintf(stdout, "round %d, %d node(s):\n", round, n)
			r := measureCluster(ctx, s, cam, dir, n, logger, stdout)
			r.round = round
			if r.err != "" {
				logger.Error("measurement failed", "round", round, "nodes", n, "err", r.err)
			}
			out = append(out, r)
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
		}
	}
	return out, nil
}

// measureCluster starts a broker, a Redis and n nodes in dir, measures
// them and stops them.
func measureCluster(ctx context.Context, s clusterBenchSettings, cam *hardware.Camera, dir string, n int, logger *slog.Logger, stdout io.Writer) clusterBenchResult {
	res := clusterBenchResult{nodes: n}
	fail := func(format string, args ...any) clusterBenchResult {
		res.err = fmt.Sprintf(format, args...)
		return res
	}
	rig, err := startClusterRig(ctx, s, cam, dir, n)
	defer rig.stop()
	if err != nil {
		return fail("start: %v", err)
	}

	// 1. Events.
	l := s.load
	l.broker = rig.brokerURL
	l.httpURL = rig.bases[0]
	l.metricsURLs = rig.bases
	l.header = rig.auth
	l.pids = append(slices.Clone(rig.nodePIDs()), rig.broker.cmd.Process.Pid, rig.redis.cmd.Process.Pid)
	stats0, _ := rig.redisStats(ctx)
	events, err := loadRuns(ctx, l, logger, stdout)
	if err != nil {
		return fail("events: %v", err)
	}
	res.events = events
	res.brokerRSS, res.redisRSS = procRSS(rig.broker.cmd.Process.Pid), procRSS(rig.redis.cmd.Process.Pid)
	for _, pid := range rig.nodePIDs() {
		res.nodeRSS += procRSS(pid)
	}
	fmt.Fprintf(stdout, "resident memory after the floods (%d devices connected): nodes %.0f MB (sum), mosquitto %.0f MB, redis %.0f MB\n",
		l.n, res.nodeRSS/1e6, res.brokerRSS/1e6, res.redisRSS/1e6)
	if stats1, err := rig.redisStats(ctx); err == nil && stats0.commands > 0 {
		var stored int
		for _, e := range events {
			stored += e.observed
		}
		if stored > 0 {
			res.redisOpsPerEvent = float64(stats1.commands-stats0.commands) / float64(stored)
			res.redisBytesPerEvent = float64(stats1.memory-stats0.memory) / float64(stored)
			fmt.Fprintf(stdout, "redis: %.1f commands and %.0f bytes of memory per stored event (heartbeats and the nodes' heartbeats included)\n",
				res.redisOpsPerEvent, res.redisBytesPerEvent)
		}
	}
	for _, e := range events {
		var nodes float64
		for i := range n {
			nodes += e.usage.pidCPU[i]
		}
		res.nodeCPU = append(res.nodeCPU, nodes)
		res.brokerCPU = append(res.brokerCPU, e.usage.pidCPU[n])
		res.redisCPU = append(res.redisCPU, e.usage.pidCPU[n+1])
	}
	if s.viewers == 0 {
		return res
	}

	// 2. Viewers, after the fleet has gone.
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return fail("%v", err)
	}
	idle0 := rig.cpu()
	if err := sleepCtx(ctx, s.viewDuration); err != nil {
		return fail("%v", err)
	}
	res.idleCPU = rig.cpu() - idle0
	viewers, err := rig.joinViewers(ctx, s.viewers)
	defer closeViewers(viewers)
	res.joined = len(viewers)
	if err != nil {
		logger.Warn("viewers failed to join", "joined", len(viewers), "of", s.viewers, "err", err)
	}
	if len(viewers) == 0 {
		return fail("no viewer joined: %v", err)
	}
	missing := waitKeyframes(ctx, viewers, 20*time.Second)
	res.withKey = len(viewers) - missing
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return fail("%v", err)
	}
	before := make([]viewerCounts, len(viewers))
	for i, v := range viewers {
		before[i] = v.snapshot()
	}
	start, cpu0 := time.Now(), rig.cpu()
	if err := sleepCtx(ctx, s.viewDuration); err != nil {
		return fail("%v", err)
	}
	res.viewCPU, res.window = rig.cpu()-cpu0, time.Since(start)
	var packets int64
	for i, v := range viewers {
		after := v.snapshot()
		packets += after.videoPackets + after.audioPackets - before[i].videoPackets - before[i].audioPackets
	}
	res.packetsPerViewer = float64(packets) / float64(len(viewers)) / res.window.Seconds()
	fmt.Fprintf(stdout, "viewers: %d joined, %d with a keyframe; nodes' cpu %.2f cores with them, %.2f before (%.2f ms/s per viewer); %.0f packets/s per viewer\n",
		res.joined, res.withKey, res.viewCPU/res.window.Seconds(), res.idleCPU/s.viewDuration.Seconds(),
		res.perViewer(s.viewDuration), res.packetsPerViewer)
	return res
}

// perViewer is the nodes' CPU per viewer in ms per second.
func (r clusterBenchResult) perViewer(idleWindow time.Duration) float64 {
	if r.joined == 0 || r.window <= 0 {
		return 0
	}
	net := r.viewCPU/r.window.Seconds() - r.idleCPU/idleWindow.Seconds()
	return net * 1000 / float64(r.joined)
}

// writeClusterReport prints the tables: medians over the rounds (and the
// event runs within them) per node count.
func writeClusterReport(w io.Writer, s clusterBenchSettings, results []clusterBenchResult) {
	med := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}
	ms := func(d float64) string { return roundDur(time.Duration(d)).String() }
	fmt.Fprintln(w, "\n| nodes | runs | events/s stored | acknowledged/s | publish→stored p50 | p99 | publish→incident p50 | p99 | nodes' CPU (cores) | Mosquitto CPU | Redis CPU | Redis commands per event | Redis bytes per event | lost |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, n := range s.nodes {
		var rate, ack, p50, p99, i50, i99, ncpu, bcpu, rcpu, rops, rbytes []float64
		lost, runs := 0, 0
		for _, r := range results {
			if r.nodes != n {
				continue
			}
			if r.redisOpsPerEvent > 0 {
				rops, rbytes = append(rops, r.redisOpsPerEvent), append(rbytes, r.redisBytesPerEvent)
			}
			for i, e := range r.events {
				runs++
				rate, ack = append(rate, e.rate), append(ack, e.ackRate)
				p50, p99 = append(p50, float64(e.p50)), append(p99, float64(e.p99))
				i50, i99 = append(i50, float64(e.incP50)), append(i99, float64(e.incP99))
				ncpu, bcpu, rcpu = append(ncpu, r.nodeCPU[i]), append(bcpu, r.brokerCPU[i]), append(rcpu, r.redisCPU[i])
				lost += e.lost
			}
		}
		if runs == 0 {
			fmt.Fprintf(w, "| %d | 0 | (failed) | | | | | | | | | | | |\n", n)
			continue
		}
		fmt.Fprintf(w, "| %d | %d | %.0f | %.0f | %s | %s | %s | %s | %.2f | %.2f | %.2f | %.1f | %.0f | %d |\n", n, runs,
			med(rate), med(ack), ms(med(p50)), ms(med(p99)), ms(med(i50)), ms(med(i99)), med(ncpu), med(bcpu), med(rcpu),
			med(rops), med(rbytes), lost)
	}
	if s.viewers == 0 {
		return
	}
	fmt.Fprintln(w, "\n| nodes | rounds | viewers joined | with a keyframe | nodes' CPU per viewer (ms/s) | nodes' CPU idle (cores) | packets/s per viewer |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- |")
	for _, n := range s.nodes {
		var per, idle, pkts []float64
		joined, key, rounds := 0, 0, 0
		for _, r := range results {
			if r.nodes != n || r.joined == 0 {
				continue
			}
			rounds++
			per = append(per, r.perViewer(s.viewDuration))
			idle = append(idle, r.idleCPU/s.viewDuration.Seconds())
			pkts = append(pkts, r.packetsPerViewer)
			joined, key = r.joined, r.withKey
		}
		if rounds == 0 {
			fmt.Fprintf(w, "| %d | 0 | (failed) | | | | |\n", n)
			continue
		}
		fmt.Fprintf(w, "| %d | %d | %d | %d | %.2f | %.2f | %.0f |\n", n, rounds, joined, key, med(per), med(idle), med(pkts))
	}
	for _, r := range results {
		if r.err != "" {
			fmt.Fprintf(w, "\nround %d, %d node(s) failed: %s\n", r.round, r.nodes, r.err)
		}
	}
}

// errNotReady is returned when a process of the rig does not come up.
var errNotReady = errors.New("not ready")
