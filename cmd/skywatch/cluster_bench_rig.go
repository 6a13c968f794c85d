package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/hardware"
)

// clusterRig is one measurement's processes: a broker, a Redis and the
// nodes.
type clusterRig struct {
	s         clusterBenchSettings
	cameras   []string
	broker    *skywatchProc
	redis     *skywatchProc
	nodes     []*skywatchProc
	brokerURL string
	redisAddr string
	bases     []string // the nodes' HTTP base URLs
	// auth is what the loader's stream and the viewers send: an API token
	// of the config.
	auth http.Header
}

// redisStats is what Redis counts: commands processed since its start
// and memory in use, in bytes.
type redisStats struct {
	commands, memory int64
}

// redisStats reads INFO stats and memory.
func (r *clusterRig) redisStats(ctx context.Context) (redisStats, error) {
	rdb := redis.NewClient(&redis.Options{Addr: r.redisAddr})
	defer rdb.Close()
	info, err := rdb.Info(ctx, "stats", "memory").Result()
	if err != nil {
		return redisStats{}, err
	}
	var st redisStats
	for line := range strings.Lines(info) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch k {
		case "total_commands_processed":
			st.commands, _ = strconv.ParseInt(v, 10, 64)
		case "used_memory":
			st.memory, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return st, nil
}

// startClusterRig starts Mosquitto, Redis and n nodes in dir and waits
// until every node is ready and every camera is pulled. The rig is
// returned even on an error, for stop.
func startClusterRig(ctx context.Context, s clusterBenchSettings, cam *hardware.Camera, dir string, n int) (*clusterRig, error) {
	r := &clusterRig{s: s}
	for i := range s.cameras {
		r.cameras = append(r.cameras, fmt.Sprintf("cam-%d", i+1))
	}
	mqttAddr, err := freeTCP()
	if err != nil {
		return r, err
	}
	_, mqttPort, _ := net.SplitHostPort(mqttAddr)
	conf := fmt.Sprintf(`listener %s 127.0.0.1
allow_anonymous true
max_queued_messages 0
max_inflight_messages 100
persistence true
persistence_location %s/
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
`, mqttPort, dir)
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return r, err
	}
	if r.broker, err = startBenchProc(filepath.Join(dir, "mosquitto.log"), s.mosquitto, "-c", confPath); err != nil {
		return r, fmt.Errorf("mosquitto: %w", err)
	}
	r.brokerURL = "tcp://" + mqttAddr
	redisAddr, err := freeTCP()
	if err != nil {
		return r, err
	}
	_, redisPort, _ := net.SplitHostPort(redisAddr)
	if r.redis, err = startBenchProc(filepath.Join(dir, "redis.log"), s.redisServer,
		"--bind", "127.0.0.1", "--port", redisPort, "--dir", dir, "--appendonly", "yes",
		"--appendfsync", "everysec", "--save", "", "--daemonize", "no"); err != nil {
		return r, fmt.Errorf("redis-server: %w", err)
	}
	r.redisAddr = redisAddr
	if err := waitRedis(ctx, redisAddr); err != nil {
		return r, err
	}
	if err := waitTCP(ctx, mqttAddr, r.broker.done); err != nil {
		return r, fmt.Errorf("mosquitto: %w", err)
	}

	devices := devicesYAML(hardware.SimDevices(s.load.n, s.load.idPrefix, s.load.seed))
	users, err := benchUsersYAML()
	if err != nil {
		return r, err
	}
	tok, sum := accounts.NewToken()
	r.auth = http.Header{"Authorization": {"Bearer " + tok}}
	access := fmt.Sprintf("%stokens:\n  - {name: bench, role: admin, token_sha256: %s}\n", users, sum)
	for i := range n {
		httpAddr, err := freeTCP()
		if err != nil {
			return r, err
		}
		base := "http://" + httpAddr
		id := fmt.Sprintf("node-%c", 'a'+i)
		var b strings.Builder
		fmt.Fprintf(&b, `log: {level: warn}
http: {address: %q}
webrtc: {udp_address: "127.0.0.1:0", tcp_address: "off", sessions_per_user: %d, sessions_per_address: %d}
mqtt: {url: %q, client_id: skywatch-bench, topic_prefix: %s}
store: {redis_url: "redis://%s/0", redis_key_prefix: "skywatch:"}
cluster: {node: %s, http_url: %q, failover: %s}
cameras:
`, httpAddr, s.viewers+10, s.viewers+10, r.brokerURL, s.load.prefix, redisAddr, id, base, s.failover)
		for _, c := range r.cameras {
			fmt.Fprintf(&b, "  - {id: %s, url: %q, transport: tcp, mode: always}\n", c, cam.URL("/"+c))
		}
		b.WriteString(access)
		b.WriteString(devices)
		path := filepath.Join(dir, id+".yaml")
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			return r, err
		}
		p, err := startBenchProc(filepath.Join(dir, id+".log"), s.binary, "serve", "-config", path)
		if err != nil {
			return r, fmt.Errorf("%s: %w", id, err)
		}
		r.nodes = append(r.nodes, p)
		r.bases = append(r.bases, base)
	}
	for i, base := range r.bases {
		if err := waitHealthy(ctx, base, r.nodes[i].done, time.Minute); err != nil {
			return r, fmt.Errorf("node %d: %w (log: %s)", i+1, err, lastLines(filepath.Join(dir, fmt.Sprintf("node-%c.log", 'a'+i)), 5))
		}
	}
	return r, r.waitCameras(ctx, time.Minute)
}

// devicesYAML is the devices: section of a fleet (no credentials: the
// external broker lets them in).
func devicesYAML(fleet []hardware.SimDevice) string {
	var b strings.Builder
	b.WriteString("devices:\n")
	for _, d := range fleet {
		fmt.Fprintf(&b, "  - {id: %s, model: %s}\n", d.ID, d.Format)
	}
	return b.String()
}

// waitCameras waits until the nodes together pull every camera's main
// stream.
func (r *clusterRig) waitCameras(ctx context.Context, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		online := 0.0
		for _, base := range r.bases {
			if lines := metricLines(ctx, base+"/metrics", 5*time.Second); lines != nil {
				online += sumLines(lines, "skywatch_camera_status", `stream="main"`, `status="online"`)
			}
		}
		if int(online) >= len(r.cameras) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%.0f of %d cameras online after %s: %w", online, len(r.cameras), wait, errNotReady)
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// nodePIDs are the nodes' process IDs.
func (r *clusterRig) nodePIDs() []int {
	var out []int
	for _, p := range r.nodes {
		out = append(out, p.cmd.Process.Pid)
	}
	return out
}

// cpu is the nodes' CPU time in seconds, summed.
func (r *clusterRig) cpu() float64 {
	sum := 0.0
	for _, p := range r.nodes {
		sum += procCPU(p.pid())
	}
	return sum
}

// joinViewers joins n viewers, viewer i on node i mod N for camera i mod
// K, as fast as they connect (a few at a time).
func (r *clusterRig) joinViewers(ctx context.Context, n int) ([]*benchViewer, error) {
	var (
		mu       sync.Mutex
		viewers  []*benchViewer
		firstErr error
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, 4)
	for i := range n {
		target := whepTarget{url: fmt.Sprintf("%s/whep/%s", r.bases[i%len(r.bases)], r.cameras[i%len(r.cameras)]),
			header: r.auth, client: &http.Client{Timeout: 30 * time.Second}}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var v *benchViewer
			var err error
			for range joinAttempts {
				if v, err = joinOnce(ctx, target); err == nil || ctx.Err() != nil {
					break
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("viewer %d (%s): %w", i+1, target.url, err)
				}
				return
			}
			viewers = append(viewers, v)
		})
	}
	wg.Wait()
	return viewers, firstErr
}

// stop stops the nodes, then Redis and Mosquitto.
func (r *clusterRig) stop() {
	var wg sync.WaitGroup
	for _, p := range r.nodes {
		wg.Go(func() { p.stop(sigTerm) })
	}
	wg.Wait()
	for _, p := range []*skywatchProc{r.redis, r.broker} {
		if p != nil {
			p.stop(sigTerm)
		}
	}
}

// waitRedis waits until Redis answers PING (it says LOADING while it reads
// its files).
func waitRedis(ctx context.Context, addr string) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := rdb.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server: no PING answer in 30 s: %w", err)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// waitTCP waits until something accepts connections at addr, or the
// process exits.
func waitTCP(ctx context.Context, addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before listening on %s", addr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s in 30 s: %w", addr, err)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}
