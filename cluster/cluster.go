package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/internal/redisconn"
)

// ErrClosed is returned by the methods of a closed Cluster.
var ErrClosed = errors.New("cluster: closed")

// NodeInfo is what a node says about itself in its heartbeat.
type NodeInfo struct {
	ID        string    `json:"id"`
	HTTPURL   string    `json:"http_url"`
	WebRTCIPs []string  `json:"webrtc_ips,omitempty"`
	Started   time.Time `json:"started"`
	// Seen is when the node last wrote its record (its own clock).
	Seen time.Time `json:"seen"`
	// Cameras are the cameras the node holds, Leases the leases.
	Cameras []string `json:"cameras,omitempty"`
	Leases  []string `json:"leases,omitempty"`
}

// Cluster is this node's membership in the cluster: its heartbeat, the
// leases it leads under and the cameras it claims. One goroutine (the
// heartbeat) owns the registry; Lead runs on its caller's goroutine.
type Cluster struct {
	cfg      Config
	prefix   string
	timeout  time.Duration
	interval time.Duration
	logger   *slog.Logger
	rdb      *redisconn.Client
	metrics  *metrics

	done      chan struct{}
	closeOnce sync.Once
	// wg counts the heartbeat and the Lead calls, which Close waits for.
	wg sync.WaitGroup

	mu      sync.Mutex
	started time.Time
	closed  bool
	live    []NodeInfo
	// liveIDs is the live set OnChange was last called for.
	liveIDs      []string
	onChange     []func([]NodeInfo)
	onCameraLost []func(string)
	// cameraStates encodes the states the heartbeat publishes; nil:
	// none (PublishCameraStates).
	cameraStates func([]string) map[string][]byte
	// cameras maps each camera this node holds to when its claim was last
	// set or renewed (the time the command was sent).
	cameras map[string]time.Time
	// leases maps each lease this node holds to its token.
	leases map[string]int64
	// down is when the current Redis outage began (zero: none), so that an
	// outage is logged once.
	down time.Time
}

// staleMembers is how many failover times a node id stays in the node set
// after its last heartbeat (its record is gone long before).
const staleMembers = 10

// New makes a node's cluster membership. redisURL, keyPrefix and timeout
// are the store's Redis settings (store.redis_url, store.redis_key_prefix,
// store.redis_timeout). Nothing is sent to Redis before Start.
func New(cfg Config, redisURL, keyPrefix string, timeout time.Duration, logger *slog.Logger) (*Cluster, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	opts, err := redisconn.Options(redisURL, keyPrefix, timeout)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{
		cfg:      cfg,
		prefix:   keyPrefix + "cluster:",
		timeout:  timeout,
		interval: cfg.RenewInterval(),
		logger:   logger,
		rdb:      &redisconn.Client{Client: redis.NewClient(opts)},
		done:     make(chan struct{}),
		cameras:  map[string]time.Time{},
		leases:   map[string]int64{},
	}
	c.metrics = newMetrics(c)
	return c, nil
}

// Node returns this node's id.
func (c *Cluster) Node() string { return c.cfg.Node }

// Failover returns the failover time (the lease TTL).
func (c *Cluster) Failover() time.Duration { return c.cfg.Failover }

// Config returns the config the cluster runs with, defaults filled in.
func (c *Cluster) Config() Config {
	cfg := c.cfg
	cfg.WebRTCIPs = slices.Clone(cfg.WebRTCIPs)
	return cfg
}

func (c *Cluster) nodeKey(id string) string { return c.prefix + "node:" + id }
func (c *Cluster) nodesKey() string         { return c.prefix + "nodes" }

// Start registers this node and starts its heartbeat (every Failover/4).
// When Redis does not answer, Start logs it and the heartbeat keeps trying:
// it fails only when called twice or after Close.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if !c.started.IsZero() {
		c.mu.Unlock()
		return errors.New("cluster: already started")
	}
	c.started = time.Now()
	c.wg.Add(1)
	c.mu.Unlock()

	bctx, cancel := context.WithTimeout(ctx, c.timeout)
	c.beat(bctx)
	cancel()
	go c.run()
	c.logger.Info("cluster: node registered", "node", c.cfg.Node, "failover", c.cfg.Failover, "live", len(c.Live()))
	return nil
}

// run is the heartbeat loop.
func (c *Cluster) run() {
	defer c.wg.Done()
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), min(c.timeout, c.interval))
			c.beat(ctx)
			cancel()
		}
	}
}

// beat writes this node's record, renews its camera claims and reads the
// live nodes, then tells the callbacks what changed.
func (c *Cluster) beat(ctx context.Context) {
	now := time.Now()
	c.mu.Lock()
	info := NodeInfo{ID: c.cfg.Node, HTTPURL: c.cfg.HTTPURL, WebRTCIPs: c.cfg.WebRTCIPs, Started: c.started, Seen: now}
	claims := make(map[string]time.Time, len(c.cameras))
	for cam, at := range c.cameras {
		claims[cam] = at
		info.Cameras = append(info.Cameras, cam)
	}
	for name := range c.leases {
		info.Leases = append(info.Leases, name)
	}
	publish := c.cameraStates
	c.mu.Unlock()
	slices.Sort(info.Cameras)
	slices.Sort(info.Leases)
	record, err := json.Marshal(info)
	if err != nil {
		c.logger.Error("cluster: encode node record", "error", err)
		return
	}

	pipe := c.rdb.Pipeline()
	pipe.Set(ctx, c.nodeKey(c.cfg.Node), record, c.cfg.Failover)
	pipe.ZAdd(ctx, c.nodesKey(), redis.Z{Score: float64(now.UnixMilli()), Member: c.cfg.Node})
	pipe.ZRemRangeByScore(ctx, c.nodesKey(), "-inf", "("+strconv.FormatInt(now.Add(-staleMembers*c.cfg.Failover).UnixMilli(), 10))
	var renewed *redis.Cmd
	if len(info.Cameras) > 0 {
		keys := make([]string, len(info.Cameras))
		for i, cam := range info.Cameras {
			keys[i] = c.cameraKey(cam)
		}
		// EVAL rather than EVALSHA: a pipeline cannot fall back on NOSCRIPT.
		renewed = pipe.Eval(ctx, renewCamerasLua, keys, c.cfg.Node, c.cfg.Failover.Milliseconds())
	}
	c.publishStates(ctx, pipe, publish, info.Cameras)
	members := pipe.ZRange(ctx, c.nodesKey(), 0, -1)
	_, err = pipe.Exec(ctx)
	var live []NodeInfo
	if err == nil {
		live, err = c.readNodes(ctx, members.Val())
	}
	if err != nil {
		c.metrics.heartbeatErrors.Add(1)
		c.redisFailed("heartbeat", err)
		c.expireCameras(now)
		return
	}
	c.redisOK()
	if renewed != nil {
		c.renewedCameras(info.Cameras, claims, renewed.Val(), now)
	}
	c.setLive(live)
}

// readNodes reads the records of the given node ids; ids without a record
// (their node stopped beating) are left out.
func (c *Cluster) readNodes(ctx context.Context, ids []string) ([]NodeInfo, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = c.nodeKey(id)
	}
	vals, err := c.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("read node records: %w", err)
	}
	nodes := make([]NodeInfo, 0, len(vals))
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		var n NodeInfo
		if err := json.Unmarshal([]byte(s), &n); err != nil || n.ID != ids[i] {
			c.logger.Warn("cluster: unreadable node record", "node", ids[i], "error", err)
			continue
		}
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, func(a, b NodeInfo) int { return cmpString(a.ID, b.ID) })
	return nodes, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// setLive caches the live nodes and calls OnChange's functions when the set
// of ids changed.
func (c *Cluster) setLive(live []NodeInfo) {
	ids := make([]string, len(live))
	for i, n := range live {
		ids[i] = n.ID
	}
	c.mu.Lock()
	c.live = live
	changed := !slices.Equal(ids, c.liveIDs)
	c.liveIDs = ids
	fns := slices.Clone(c.onChange)
	c.mu.Unlock()
	c.metrics.liveNodes.Store(int64(len(live)))
	if !changed {
		return
	}
	c.logger.Info("cluster: live nodes changed", "live", ids)
	for _, fn := range fns {
		fn(cloneNodes(live))
	}
}

func cloneNodes(nodes []NodeInfo) []NodeInfo {
	out := make([]NodeInfo, len(nodes))
	for i, n := range nodes {
		n.WebRTCIPs = slices.Clone(n.WebRTCIPs)
		n.Cameras = slices.Clone(n.Cameras)
		n.Leases = slices.Clone(n.Leases)
		out[i] = n
	}
	return out
}

// Live returns the live nodes as of the last heartbeat, sorted by id. It
// is cached and cheap.
func (c *Cluster) Live() []NodeInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cloneNodes(c.live)
}

// liveIDs returns the ids of the live nodes as of the last heartbeat.
func (c *Cluster) liveNodeIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.liveIDs)
}

// Nodes reads the live nodes from Redis now, sorted by id.
func (c *Cluster) Nodes(ctx context.Context) ([]NodeInfo, error) {
	ids, err := c.rdb.ZRange(ctx, c.nodesKey(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: list nodes: %w", err)
	}
	nodes, err := c.readNodes(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return nodes, nil
}

// NodeInfo returns a live node's record as of the last heartbeat.
func (c *Cluster) NodeInfo(id string) (NodeInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.live {
		if n.ID == id {
			return cloneNodes([]NodeInfo{n})[0], true
		}
	}
	return NodeInfo{}, false
}

// OnChange adds fn, called on the heartbeat's goroutine with the live nodes
// whenever the set of live node ids changes (a node joined or died). fn
// must not block for long: it delays the heartbeat.
func (c *Cluster) OnChange(fn func(live []NodeInfo)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onChange = append(c.onChange, fn)
}

// redisFailed logs the first failure of an outage; later ones until
// redisOK are silent.
func (c *Cluster) redisFailed(what string, err error) {
	c.mu.Lock()
	first := c.down.IsZero()
	if first {
		c.down = time.Now()
	}
	c.mu.Unlock()
	if first {
		c.logger.Warn("cluster: redis unavailable; retrying (leases held are lost if it lasts)", "during", what, "error", err)
	}
}

// redisOK ends an outage, if one was going on.
func (c *Cluster) redisOK() {
	c.mu.Lock()
	since := c.down
	c.down = time.Time{}
	c.mu.Unlock()
	if !since.IsZero() {
		c.logger.Info("cluster: redis back", "outage", time.Since(since).Round(time.Millisecond))
	}
}

// enter counts a Lead call for Close to wait for; false after Close.
func (c *Cluster) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	return true
}

// bind returns ctx, also cancelled when the cluster closes. The goroutine
// it starts ends when the returned cancel is called.
func (c *Cluster) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Close stops the heartbeat and every Lead call (waiting for their fns to
// return), releases the leases and camera claims and removes this node's
// record, so that the others take over at once instead of after the
// failover time. It is idempotent.
func (c *Cluster) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		wasStarted := !c.started.IsZero()
		c.mu.Unlock()
		close(c.done)
		c.wg.Wait()
		if wasStarted {
			ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
			err = c.deregister(ctx)
			cancel()
		}
		if cerr := c.rdb.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("cluster: close redis: %w", cerr)
		}
	})
	return err
}

// deregister releases the camera claims and removes this node's record.
func (c *Cluster) deregister(ctx context.Context) error {
	c.mu.Lock()
	cams := make([]string, 0, len(c.cameras))
	for cam := range c.cameras {
		cams = append(cams, cam)
	}
	c.cameras = map[string]time.Time{}
	c.mu.Unlock()
	c.metrics.camerasClaimed.Store(0)
	pipe := c.rdb.Pipeline()
	for _, cam := range cams {
		pipe.Eval(ctx, releaseLua, []string{c.cameraKey(cam)}, c.cfg.Node)
	}
	pipe.Del(ctx, c.nodeKey(c.cfg.Node))
	pipe.ZRem(ctx, c.nodesKey(), c.cfg.Node)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("cluster: deregister node %s: %w", c.cfg.Node, err)
	}
	return nil
}
