package cluster

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRegistryLiveAndOnChange(t *testing.T) {
	r := newRig(t)
	a, b, c := r.node("sky-a"), r.node("sky-b"), r.node("sky-c")
	want := []string{"sky-a", "sky-b", "sky-c"}
	for _, n := range []*node{a, b, c} {
		eventually(t, 2*testFailover, n.Node()+" sees three nodes", func() bool { return slices.Equal(ids(n.Live()), want) })
	}
	nodes, err := a.Nodes(context.Background())
	if err != nil || !slices.Equal(ids(nodes), want) {
		t.Fatalf("Nodes: %v %v", ids(nodes), err)
	}
	info, ok := b.NodeInfo("sky-c")
	if !ok || info.HTTPURL != "http://127.0.0.1:1" || info.Started.IsZero() || info.Seen.IsZero() {
		t.Fatalf("NodeInfo(sky-c) = %+v, %v", info, ok)
	}
	if _, ok := b.NodeInfo("sky-z"); ok {
		t.Fatal("NodeInfo of an unknown node")
	}
	if ttl := r.rdb.PTTL(context.Background(), r.prefix+"cluster:node:sky-a").Val(); ttl <= 0 || ttl > testFailover {
		t.Fatalf("node record TTL %s, want within the failover %s", ttl, testFailover)
	}

	// sky-c stops beating (cut off from Redis): the others see it gone
	// within the failover time, plus a heartbeat to notice.
	changes := make(chan []string, 10)
	a.OnChange(func(live []NodeInfo) { changes <- ids(live) })
	cutAt := time.Now()
	c.cut.cut.Store(true)
	select {
	case live := <-changes:
		if !slices.Equal(live, []string{"sky-a", "sky-b"}) {
			t.Fatalf("OnChange after sky-c died: %v", live)
		}
		if d := time.Since(cutAt); d > testFailover+2*a.interval {
			t.Fatalf("sky-c seen dead after %s, failover %s", d, testFailover)
		}
		t.Logf("a dead node left the live set after %s (failover %s)", time.Since(cutAt).Round(time.Millisecond), testFailover)
	case <-time.After(3 * testFailover):
		t.Fatal("OnChange not called after sky-c died")
	}

	// It comes back: OnChange again.
	c.cut.cut.Store(false)
	select {
	case live := <-changes:
		if !slices.Equal(live, want) {
			t.Fatalf("OnChange after sky-c returned: %v", live)
		}
	case <-time.After(3 * testFailover):
		t.Fatal("OnChange not called after sky-c came back")
	}

	// A node that closes deregisters: gone at the others' next heartbeat.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*a.interval, "sky-b gone after Close", func() bool {
		return slices.Equal(ids(a.Live()), []string{"sky-a", "sky-c"})
	})
}

func TestRedisAwayLogsOnceAndKeepsTrying(t *testing.T) {
	var logs syncBuffer
	// Nothing listens on port 1.
	c, err := New(Config{Node: "sky-a", HTTPURL: "http://127.0.0.1:1", Failover: testFailover}, "redis://127.0.0.1:1/0", "skywatch-test:", 200*time.Millisecond,
		slogTo(&logs))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("Start with Redis away: %v", err)
	}
	leadDone := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(leadDone)
		c.Lead(ctx, "engine", func(context.Context, Fence) { t.Error("led without Redis") })
	}()
	time.Sleep(4 * c.interval)
	cancel()
	<-leadDone
	if err := c.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if n := strings.Count(logs.String(), "redis unavailable"); n != 1 {
		t.Fatalf("outage logged %d times, want once:\n%s", n, logs.String())
	}
	if c.metrics.heartbeatErrors.Load() < 3 {
		t.Fatalf("heartbeat errors %d, want the heartbeat to keep trying", c.metrics.heartbeatErrors.Load())
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
