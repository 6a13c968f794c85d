package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/skywatch/skywatch/internal/testredis"
)

func TestMain(m *testing.M) {
	// go-redis retries a failed dial on a goroutine of its own that sees
	// the pool closed within a second.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}

// testFailover is short so that takeovers happen within a test; it is the
// minimum a config accepts.
const testFailover = MinFailover

// rig is a cluster of nodes in one process sharing a key prefix, with a
// plain client for looking at the keys.
type rig struct {
	t      testing.TB
	url    string
	prefix string
	rdb    *redis.Client
}

func newRig(t testing.TB) *rig {
	url := testredis.URL(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, url: url, prefix: testredis.Prefix(t, url, "skywatch-test:"), rdb: redis.NewClient(opts)}
	t.Cleanup(func() { r.rdb.Close() })
	return r
}

// node is one Cluster with a switch that cuts it off from Redis.
type node struct {
	*Cluster
	cut *partition
}

// node makes and starts a node; it is closed when the test ends.
func (r *rig) node(id string) *node {
	r.t.Helper()
	n := r.newNode(id, io.Discard)
	if err := n.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	return n
}

func (r *rig) newNode(id string, logs io.Writer) *node {
	r.t.Helper()
	c, err := New(Config{Node: id, HTTPURL: "http://127.0.0.1:1", Failover: testFailover}, r.url, r.prefix, time.Second,
		slog.New(slog.NewTextHandler(logs, nil)).With("node", id))
	if err != nil {
		r.t.Fatal(err)
	}
	p := &partition{}
	c.rdb.AddHook(p)
	r.t.Cleanup(func() {
		p.cut.Store(false)
		if err := c.Close(); err != nil {
			r.t.Errorf("close %s: %v", id, err)
		}
	})
	return &node{Cluster: c, cut: p}
}

// get returns a key's value, "" when it does not exist.
func (r *rig) get(key string) string {
	r.t.Helper()
	v, err := r.rdb.Get(context.Background(), key).Result()
	if errors.Is(err, redis.Nil) {
		return ""
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return v
}

// partition is a go-redis hook that fails every command while cut: the
// node is alive but cannot reach Redis, as behind a network partition or
// in a long pause.
type partition struct{ cut atomic.Bool }

var errPartitioned = errors.New("test: partitioned from redis")

func (p *partition) DialHook(next redis.DialHook) redis.DialHook { return next }

func (p *partition) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if p.cut.Load() {
			cmd.SetErr(errPartitioned)
			return errPartitioned
		}
		return next(ctx, cmd)
	}
}

func (p *partition) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if p.cut.Load() {
			for _, cmd := range cmds {
				cmd.SetErr(errPartitioned)
			}
			return errPartitioned
		}
		return next(ctx, cmds)
	}
}

// eventually polls cond every 20 ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(within)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ids(nodes []NodeInfo) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
	}
	return out
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
