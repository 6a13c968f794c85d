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

// serve with a cluster: section registers the node in Redis and shows the
// cluster's metrics, and on shutdown removes its record at once.
func TestServeJoinsAndLeavesTheCluster(t *testing.T) {
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
		for _, id := range []string{clientID, clientID + "-sky-t"} {
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
  node: sky-t
  http_url: http://127.0.0.1:1
  failover: 2s
`, mqttURL, clientID, clientID, redisURL, prefix, testPasswordHash(t, "serve-secret"))
	path := t.TempDir() + "/skywatch.yaml"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "-config", path}, &logs, &logs) }()
	base := waitForServeAddr(t, &logs)

	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	record := prefix + "cluster:node:sky-t"
	if v, err := rdb.Get(ctx, record).Result(); err != nil || !strings.Contains(v, `"id":"sky-t"`) {
		t.Fatalf("node record %q %v\n%s", v, err, logs.String())
	}
	body, err := get(base + "/metrics")
	if err != nil || !strings.Contains(body, "skywatch_cluster_live_nodes 1") {
		t.Fatalf("metrics: %v\n%s", err, body)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d\n%s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop within 20 s")
	}
	if n, err := rdb.Exists(context.Background(), record).Result(); err != nil || n != 0 {
		t.Fatalf("node record still there after shutdown: %d %v", n, err)
	}
}
