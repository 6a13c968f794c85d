package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/internal/testredis"
)

// clusterServe is `skywatch serve` with a cluster: section, run in this
// process on the test Redis and broker.
type clusterServe struct {
	rdb    *redis.Client
	prefix string // the node's Redis key prefix
	base   string // its HTTP address
	path   string // its config file
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan int
}

// serveClusterNode starts serve as cluster node `node` (failover 2 s).
func serveClusterNode(t *testing.T, node string) *clusterServe {
	t.Helper()
	redisURL, mqttURL := os.Getenv("SKYWATCH_TEST_REDIS"), os.Getenv("SKYWATCH_TEST_MQTT")
	if redisURL == "" || mqttURL == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("SKYWATCH_TEST_REDIS and SKYWATCH_TEST_MQTT are required in CI")
		}
		t.Skip("SKYWATCH_TEST_REDIS or SKYWATCH_TEST_MQTT is not set")
	}
	prefix := testredis.Prefix(t, redisURL, "skywatch-test:")
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	clientID := "skywatch-test-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		// The intake's persistent sessions (its own id and the cluster's).
		for _, id := range []string{clientID, clientID + "-" + node} {
			c := paho.NewClient(paho.NewClientOptions().AddBroker(mqttURL).SetClientID(id).SetCleanSession(true))
			if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
				c.Disconnect(0)
			}
		}
	})
	cfg := fmt.Sprintf(`
http:
  address: 127.0.0.1:0
webrtc:
  udp_address: 127.0.0.1:0
  tcp_address: 127.0.0.1:0
mqtt:
  url: %s
  client_id: %s
  topic_prefix: %s
store:
  redis_url: %s
  redis_key_prefix: %q
users:
  - username: admin
    role: admin
    password_hash: "%s"
cluster:
  node: %s
  http_url: http://127.0.0.1:1
  failover: 2s
`, mqttURL, clientID, clientID, redisURL, prefix, testPasswordHash(t, "serve-secret"), node)
	path := t.TempDir() + "/skywatch.yaml"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &clusterServe{rdb: redis.NewClient(opts), prefix: prefix, path: path, logs: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	t.Cleanup(func() {
		cancel()
		_ = s.rdb.Close()
	})
	go func() { s.done <- run(ctx, []string{"serve", "-config", path}, s.logs, s.logs) }()
	s.base = waitForServeAddr(t, s.logs)
	return s
}

// stop shuts serve down and fails unless it exits 0 within 20 s.
func (s *clusterServe) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case code := <-s.done:
		if code != 0 {
			t.Fatalf("serve exited %d\n%s", code, s.logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop within 20 s")
	}
}

// serve with a cluster: section registers the node in Redis and shows the
// cluster's metrics, and on shutdown removes its record at once.
func TestServeJoinsAndLeavesTheCluster(t *testing.T) {
	s := serveClusterNode(t, "sky-t")
	ctx := context.Background()
	record := s.prefix + "cluster:node:sky-t"
	if v, err := s.rdb.Get(ctx, record).Result(); err != nil || !strings.Contains(v, `"id":"sky-t"`) {
		t.Fatalf("node record %q %v\n%s", v, err, s.logs.String())
	}
	body, err := get(s.base + "/metrics")
	if err != nil || !strings.Contains(body, "skywatch_cluster_live_nodes 1") {
		t.Fatalf("metrics: %v\n%s", err, body)
	}
	s.stop(t)
	if n, err := s.rdb.Exists(ctx, record).Result(); err != nil || n != 0 {
		t.Fatalf("node record still there after shutdown: %d %v", n, err)
	}
}

// serve with a cluster: section takes the engine's lease, runs the engine's
// term under it, and gives the lease back on shutdown.
func TestServeLeadsTheEngine(t *testing.T) {
	s := serveClusterNode(t, "sky-e")
	ctx := context.Background()
	lease := s.prefix + "cluster:lease:engine"
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, _ := s.rdb.Get(ctx, lease).Result()
		if strings.HasPrefix(v, "sky-e/") && strings.Contains(s.logs.String(), "incident engine: leading") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease %q; the engine did not lead\n%s", v, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop(t)
	if n, err := s.rdb.Exists(ctx, lease).Result(); err != nil || n != 0 {
		t.Fatalf("the engine's lease is still held after shutdown: %d %v", n, err)
	}
}
