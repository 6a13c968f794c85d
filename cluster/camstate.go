package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// MaxCameraState bounds one camera's published state (bytes): a larger one
// is left out of the heartbeat, and the other nodes show the camera as held
// by this node without its details.
const MaxCameraState = 8 << 10

// CameraState is what a camera's holder last published about it.
type CameraState struct {
	// Node holds the camera's claim; "" when nobody does.
	Node string
	// State is what Node published with its last heartbeat (an encoding
	// the publisher chooses); nil when it has not published any yet.
	State []byte
}

// cameraStateKey holds the state a camera's holder last published:
// "{node}\n{state}". One key per camera, written whole (atomically) and
// expiring after Failover, so that a reader never sees a half-written state
// and a dead node's states vanish with it; a key left by a former holder is
// ignored because its node is not the holder any more.
func (c *Cluster) cameraStateKey(camera string) string { return c.prefix + "camstate:" + camera }

// PublishCameraStates makes every heartbeat publish the state of the
// cameras this node holds: fn gets their ids and returns each one's encoded
// state (at most MaxCameraState bytes). fn runs on the heartbeat's
// goroutine and must be quick. Call it before Start.
func (c *Cluster) PublishCameraStates(fn func(cameras []string) map[string][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cameraStates = fn
}

// publishStates adds to the heartbeat's pipeline the states of the
// cameras this node holds.
func (c *Cluster) publishStates(ctx context.Context, pipe redis.Pipeliner, fn func([]string) map[string][]byte, cams []string) {
	if fn == nil || len(cams) == 0 {
		return
	}
	states := fn(slices.Clone(cams))
	for _, cam := range cams {
		s, ok := states[cam]
		if !ok {
			continue
		}
		if len(s) > MaxCameraState {
			c.logger.Warn("cluster: camera state too large to publish", "camera", cam, "bytes", len(s))
			continue
		}
		v := make([]byte, 0, len(c.cfg.Node)+1+len(s))
		v = append(append(append(v, c.cfg.Node...), '\n'), s...)
		pipe.Set(ctx, c.cameraStateKey(cam), v, c.cfg.Failover)
	}
}

// CameraStates returns, for each of the given cameras, its holder and the
// state the holder last published (one round trip to Redis). A camera
// nobody holds has an empty Node.
func (c *Cluster) CameraStates(ctx context.Context, cameras []string) (map[string]CameraState, error) {
	out := make(map[string]CameraState, len(cameras))
	if len(cameras) == 0 {
		return out, nil
	}
	keys := make([]string, 0, 2*len(cameras))
	for _, cam := range cameras {
		if err := validateCameraID(cam); err != nil {
			return nil, err
		}
		keys = append(keys, c.cameraKey(cam), c.cameraStateKey(cam))
	}
	vals, err := c.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: read camera states: %w", err)
	}
	for i, cam := range cameras {
		node, _ := vals[2*i].(string)
		st := CameraState{Node: node}
		if v, ok := vals[2*i+1].(string); ok && node != "" {
			if from, state, ok := strings.Cut(v, "\n"); ok && from == node {
				st.State = []byte(state)
			}
		}
		out[cam] = st
	}
	return out, nil
}
