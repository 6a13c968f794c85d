package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// claimLua takes a free camera or extends our own claim: 1, else 0.
// KEYS: camera. ARGV: node, TTL in ms.
const claimLua = `
local v = redis.call('GET', KEYS[1])
if v == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0`

// renewCamerasLua extends every claim still ours and answers, per key, 1
// (renewed) or 0 (gone or held by another: lost). A claim that expired is
// not taken back here: the node learns it lost it and claims again.
// KEYS: cameras. ARGV: node, TTL in ms.
const renewCamerasLua = `
local out = {}
for i, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then
    redis.call('PEXPIRE', k, ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out`

var claimScript = redis.NewScript(claimLua)

func (c *Cluster) cameraKey(camera string) string { return c.prefix + "camera:" + camera }

// CameraOwner returns the node that holds the camera's claim, or when none
// does the node that should take it: the rendezvous-hash winner among the
// live nodes.
func (c *Cluster) CameraOwner(ctx context.Context, camera string) (string, error) {
	if err := validateCameraID(camera); err != nil {
		return "", err
	}
	node, err := c.rdb.Get(ctx, c.cameraKey(camera)).Result()
	if err == nil {
		return node, nil
	}
	if !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("cluster: camera %s owner: %w", camera, err)
	}
	ids := c.liveNodeIDs()
	if len(ids) == 0 {
		ids = []string{c.cfg.Node}
	}
	return RendezvousOwner(camera, ids), nil
}

// Settled tells whether this node has seen the live nodes long enough to
// claim the cameras it pulls without viewers by the rendezvous rule: a
// heartbeat after its registration (one renew interval later) read the live
// set, so that nodes started together have seen each other; or, when Redis
// did not answer meanwhile, Failover/2 has passed since Start. Before
// Start it is false.
func (c *Cluster) Settled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started.IsZero() {
		return false
	}
	if time.Since(c.started) >= c.cfg.Failover/2 {
		return true
	}
	for _, n := range c.live {
		if n.ID == c.cfg.Node && n.Seen.Sub(c.started) >= c.interval/2 {
			return true
		}
	}
	return false
}

// RendezvousOwner returns the node among nodes with the highest hash of
// (node, camera): each camera's choice moves only when its winner leaves,
// and cameras spread evenly. "" when nodes is empty.
func RendezvousOwner(camera string, nodes []string) string {
	var best string
	var bestScore uint64
	for _, n := range nodes {
		h := fnv.New64a()
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write([]byte(camera))
		s := mix64(h.Sum64())
		if best == "" || s > bestScore || (s == bestScore && n < best) {
			best, bestScore = n, s
		}
	}
	return best
}

// mix64 is splitmix64's finalizer: FNV's high bits alone spread similar
// strings poorly.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// ClaimCamera takes the camera's claim for this node if it is free or
// already ours (true), or says another node holds it (false). A claim is
// renewed with the heartbeat until ReleaseCamera, Close, or its loss
// (OnCameraLost).
func (c *Cluster) ClaimCamera(ctx context.Context, camera string) (bool, error) {
	if err := validateCameraID(camera); err != nil {
		return false, err
	}
	if c.isClosed() {
		return false, ErrClosed
	}
	sent := time.Now()
	n, err := claimScript.Run(ctx, c.rdb, []string{c.cameraKey(camera)}, c.cfg.Node, c.cfg.Failover.Milliseconds()).Int64()
	if err != nil {
		return false, fmt.Errorf("cluster: claim camera %s: %w", camera, err)
	}
	if n != 1 {
		return false, nil
	}
	c.mu.Lock()
	c.cameras[camera] = sent
	held := len(c.cameras)
	c.mu.Unlock()
	c.metrics.camerasClaimed.Store(int64(held))
	return true, nil
}

// ReleaseCamera gives the camera's claim up, if this node holds it. After
// Close it does nothing.
func (c *Cluster) ReleaseCamera(ctx context.Context, camera string) error {
	if err := validateCameraID(camera); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.cameras, camera)
	held, closed := len(c.cameras), c.closed
	c.mu.Unlock()
	c.metrics.camerasClaimed.Store(int64(held))
	if closed {
		// Close released every claim; the camera manager, closed later,
		// still says goodbye to its cameras.
		return nil
	}
	if err := releaseScript.Run(ctx, c.rdb, []string{c.cameraKey(camera)}, c.cfg.Node).Err(); err != nil {
		return fmt.Errorf("cluster: release camera %s: %w", camera, err)
	}
	return nil
}

// Cameras returns the cameras this node holds, sorted.
func (c *Cluster) Cameras() []string {
	c.mu.Lock()
	cams := make([]string, 0, len(c.cameras))
	for cam := range c.cameras {
		cams = append(cams, cam)
	}
	c.mu.Unlock()
	slices.Sort(cams)
	return cams
}

// OnCameraLost adds fn, called on the heartbeat's goroutine with each camera
// whose claim this node lost: a renewal found it gone or held by another,
// or Redis did not answer for Failover minus one renew interval. The node
// should stop pulling the camera (and may claim it again).
func (c *Cluster) OnCameraLost(fn func(camera string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onCameraLost = append(c.onCameraLost, fn)
}

// renewedCameras handles the heartbeat's renewal of cameras (sent at
// sent, with the claims as they were then): renewed claims get a new time,
// lost ones are dropped and reported.
func (c *Cluster) renewedCameras(cams []string, claims map[string]time.Time, result any, sent time.Time) {
	res, _ := result.([]any)
	var lost []string
	c.mu.Lock()
	for i, cam := range cams {
		at, ok := c.cameras[cam]
		if !ok || !at.Equal(claims[cam]) {
			continue // released or claimed again meanwhile
		}
		var ok1 bool
		if i < len(res) {
			n, _ := res[i].(int64)
			ok1 = n == 1
		}
		if ok1 {
			c.cameras[cam] = sent
			continue
		}
		delete(c.cameras, cam)
		lost = append(lost, cam)
	}
	held := len(c.cameras)
	c.mu.Unlock()
	c.metrics.camerasClaimed.Store(int64(held))
	c.cameraLost(lost, "held by another node or expired")
}

// expireCameras drops the claims that might not be renewed in time (the
// heartbeat at now failed). Heartbeats come one interval apart, so a claim
// is given up when the next failure would find it past Failover minus one
// interval: before it can expire in Redis.
func (c *Cluster) expireCameras(now time.Time) {
	var lost []string
	c.mu.Lock()
	for cam, at := range c.cameras {
		if now.Sub(at) >= c.cfg.Failover-2*c.interval {
			delete(c.cameras, cam)
			lost = append(lost, cam)
		}
	}
	held := len(c.cameras)
	c.mu.Unlock()
	c.metrics.camerasClaimed.Store(int64(held))
	slices.Sort(lost)
	c.cameraLost(lost, "not renewed in time")
}

func (c *Cluster) cameraLost(cams []string, why string) {
	if len(cams) == 0 {
		return
	}
	c.metrics.camerasLost.Add(int64(len(cams)))
	c.logger.Warn("cluster: camera claims lost", "cameras", len(cams), "first", cams[0], "why", why)
	c.mu.Lock()
	fns := slices.Clone(c.onCameraLost)
	c.mu.Unlock()
	for _, cam := range cams {
		for _, fn := range fns {
			fn(cam)
		}
	}
}

func (c *Cluster) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}
