package redisstore

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/storetest"

	"github.com/skywatch/skywatch/internal/testproxy"
	"github.com/skywatch/skywatch/internal/testredis"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	url := testredis.URL(t)
	storetest.Run(t, func(t *testing.T) func() alarms.Store {
		cfg := Config{URL: url, KeyPrefix: testredis.Prefix(t, url, "skywatch-test:")}
		return func() alarms.Store {
			s, err := Open(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}

// TestKeyLayout checks that every key is under the prefix and that the
// dedup keys expire.
func TestKeyLayout(t *testing.T) {
	url := testredis.URL(t)
	prefix := testredis.Prefix(t, url, "skywatch-test:")
	ctx := context.Background()
	s, err := Open(ctx, Config{URL: url, KeyPrefix: prefix, DedupRetention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e := &alarms.Event{ID: "e1", Device: "d1", Area: "north", Class: alarms.ClassFire, Qualifier: alarms.QualifierNew, ReceivedAt: time.Now()}
	if _, err := s.AppendEvent(ctx, e, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRejected(ctx, &alarms.Rejected{Device: "d1", Payload: []byte("x")}, alarms.RejectedLimits{}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDevice(ctx, alarms.DeviceState{ID: "d1"}); err != nil {
		t.Fatal(err)
	}
	keys, err := s.rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"dedup:d1/e1", "devices", "events", "format", "idx:all", "idx:area:north", "idx:class:fire", "idx:device:d1", "rejected", "rejected:device:d1"}
	got := map[string]bool{}
	for _, k := range keys {
		got[strings.TrimPrefix(k, prefix)] = true
	}
	if len(got) != len(want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	for _, k := range want {
		if !got[k] {
			t.Errorf("no key %s%s", prefix, k)
		}
	}
	ttl, err := s.rdb.PTTL(ctx, prefix+"dedup:d1/e1").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("dedup key TTL %v, want about 1h", ttl)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string // substring of the error; "" for none
	}{
		{Config{URL: "redis://127.0.0.1:6379/0"}, ""},
		{Config{URL: "rediss://user:secret@example.org:6380/2", KeyPrefix: "sw:"}, ""},
		{Config{}, "store.redis_url: required"},
		{Config{URL: "http://127.0.0.1:6379"}, "store.redis_url: scheme"},
		{Config{URL: "redis://:s3cret-pw@127.0.0.1:6379/notadb"}, "store.redis_url: "},
		{Config{URL: "redis://:s3cret-pw@127.0.0.1:6379/0/1"}, "store.redis_url: "},
		{Config{URL: "redis://:s3cret-pw@127.0.0.1:port/0"}, "store.redis_url: "},
		{Config{URL: "redis://127.0.0.1:6379", KeyPrefix: "a*"}, "store.redis_key_prefix: "},
		{Config{URL: "redis://127.0.0.1:6379", Timeout: -1}, "store.redis_timeout: "},
		{Config{URL: "redis://127.0.0.1:6379", DedupRetention: time.Millisecond}, "store.dedup_retention: "},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: err = %v, want %q", tc.cfg, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "s3cret"):
			t.Errorf("%+v: error shows the password: %v", tc.cfg, err)
		}
	}
}

// TestUnreachable points a store at a port nobody listens on: Open fails
// promptly and does not show the password.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start := time.Now()
	_, err = Open(context.Background(), Config{URL: "redis://:s3cret-pw@" + addr + "/0"})
	if err == nil {
		t.Fatal("open of a closed port: no error")
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("open took %v", d)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the password: %v", err)
	}
	t.Log(err)
}

// TestRedisAway stores through a proxy to the test Redis, stops the proxy
// (Redis has gone away): operations fail promptly; starts it again on the
// same port: the same store works again.
func TestRedisAway(t *testing.T) {
	url := testredis.URL(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	p := testproxy.Start(t, "127.0.0.1:0", opts.Addr, nil)
	cfg := Config{URL: strings.Replace(url, opts.Addr, p.Addr(), 1), KeyPrefix: testredis.Prefix(t, url, "skywatch-test:")}
	ctx := context.Background()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := func(id string) *alarms.Event {
		return &alarms.Event{ID: id, Device: "d1", Class: alarms.ClassAlarm, Qualifier: alarms.QualifierNew, ReceivedAt: time.Now()}
	}
	if _, err := s.AppendEvent(ctx, ev("e1"), time.Minute); err != nil {
		t.Fatal(err)
	}

	p.Stop()
	start := time.Now()
	if _, err := s.AppendEvent(ctx, ev("e2"), time.Minute); err == nil {
		t.Fatal("append with Redis away: no error")
	} else {
		t.Log(err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("ping with Redis away: no error")
	}
	if _, err := s.Events(ctx, alarms.EventQuery{}); err == nil {
		t.Error("events with Redis away: no error")
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("failing took %v", d)
	}

	testproxy.Start(t, p.Addr(), opts.Addr, nil)
	deadline := time.Now().Add(10 * time.Second)
	for s.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("store does not come back with Redis")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if stored, err := s.AppendEvent(ctx, ev("e2"), time.Minute); err != nil || !stored {
		t.Fatalf("append after Redis is back: stored %v, err %v", stored, err)
	}
	page, err := s.Events(ctx, alarms.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 {
		t.Errorf("%d events, want 2", len(page.Events))
	}
}

// TestLostReplyRetried cuts the connection after Redis ran the append
// script and before its reply reached the store, so that go-redis sends the
// script again: that retry must report the event as stored (it is this
// call's own write, to be announced), not as a duplicate, and the event must
// be stored once. A later append of the same event is a duplicate.
func TestLostReplyRetried(t *testing.T) {
	url := testredis.URL(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	// Arm loseReply to cut the reply to the next script call (EVALSHA):
	// Redis runs it, the store never hears back.
	var loseReply atomic.Bool
	var lost atomic.Int64 // replies so cut
	p := testproxy.Start(t, "127.0.0.1:0", opts.Addr, func(sent []byte) bool {
		if bytes.Contains(bytes.ToLower(sent), []byte("evalsha")) && loseReply.CompareAndSwap(true, false) {
			lost.Add(1)
			return true
		}
		return false
	})
	cfg := Config{URL: strings.Replace(url, opts.Addr, p.Addr(), 1), KeyPrefix: testredis.Prefix(t, url, "skywatch-test:")}
	ctx := context.Background()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := func(id string) *alarms.Event {
		return &alarms.Event{ID: id, Device: "d1", Class: alarms.ClassAlarm, Qualifier: alarms.QualifierNew, ReceivedAt: time.Now()}
	}
	// The first append loads the script, so that the next one is an EVALSHA.
	if stored, err := s.AppendEvent(ctx, ev("e1"), time.Minute); err != nil || !stored {
		t.Fatalf("append e1: stored %v, err %v", stored, err)
	}
	loseReply.Store(true)
	e2 := ev("e2")
	stored, err := s.AppendEvent(ctx, e2, time.Minute)
	if lost.Load() != 1 {
		t.Fatalf("%d replies cut, want 1", lost.Load())
	}
	if err != nil || !stored {
		t.Fatalf("append e2 whose first reply was lost: stored %v, err %v; want stored, as go-redis's retry found its own write", stored, err)
	}
	if e2.Offset == "" {
		t.Error("e2: no offset")
	}
	if stored, err := s.AppendEvent(ctx, ev("e2"), time.Minute); err != nil || stored {
		t.Fatalf("append e2 again: stored %v, err %v; want a duplicate", stored, err)
	}
	page, err := s.Events(ctx, alarms.EventQuery{Device: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 {
		t.Fatalf("%d events stored, want 2 (e1 and e2 once)", len(page.Events))
	}
}

// Rejected messages of many device names (unknown devices at an external
// broker) are bounded in all, and their emptied device streams removed.
func TestRejectedManyDevicesNoKeys(t *testing.T) {
	url := testredis.URL(t)
	prefix := testredis.Prefix(t, url, "skywatch-test:")
	ctx := context.Background()
	s, err := Open(ctx, Config{URL: url, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lim := alarms.RejectedLimits{PerDevice: 3, Total: 5}
	for i := range 50 {
		r := &alarms.Rejected{Device: "unknown-" + strconv.Itoa(i), Payload: []byte("x"), ReceivedAt: time.Now()}
		if _, err := s.AddRejected(ctx, r, lim); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := s.rdb.Keys(ctx, prefix+"rejected:device:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 5 {
		t.Fatalf("%d device streams of rejected messages left, want 5 (the newest): %v", len(keys), keys)
	}
}

func TestClosedStoreError(t *testing.T) {
	url := testredis.URL(t)
	s, err := Open(context.Background(), Config{URL: url, KeyPrefix: testredis.Prefix(t, url, "skywatch-test:")})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Ping(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("ping after close: %v, want ErrClosed", err)
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	url := testredis.URL(b)
	storetest.BenchmarkAppendEvent(b, func(b *testing.B) alarms.Store {
		s, err := Open(context.Background(), Config{URL: url, KeyPrefix: testredis.Prefix(b, url, "skywatch-test:")})
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}
