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

// serve with a cluster: section takes the engine's lease, runs the engine's
// term under it, and gives the lease back on shutdown.
func TestServeLeadsTheEngine(t *testing.T) {
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
		for _, id := range []string{clientID, clientID + "-sky-e"} {
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
  node: sky-e
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
	waitForServeAddr(t, &logs)

	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	lease := prefix + "cluster:lease:engine"
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, _ := rdb.Get(ctx, lease).Result()
		if strings.HasPrefix(v, "sky-e/") && strings.Contains(logs.String(), "incident engine: leading") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease %q; the engine did not lead\n%s", v, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
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
	if n, err := rdb.Exists(context.Background(), lease).Result(); err != nil || n != 0 {
		t.Fatalf("the engine's lease is still held after shutdown: %d %v", n, err)
	}
}
