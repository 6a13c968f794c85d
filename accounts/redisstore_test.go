package accounts

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/internal/testredis"
)

// testRedisURL is the Redis of the tests: $SKYWATCH_TEST_REDIS (a URL or
// host:port), by default 127.0.0.1:6379. When it does not answer, the
// Redis tests are skipped, or fail under CI=true.
func testRedisURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("SKYWATCH_TEST_REDIS")
	if u == "" {
		u = "127.0.0.1:6379"
	}
	if !strings.Contains(u, "://") {
		u = "redis://" + u
	}
	opts, err := redis.ParseURL(u)
	if err != nil {
		tb.Fatalf("SKYWATCH_TEST_REDIS: %v", err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("no Redis at %s (SKYWATCH_TEST_REDIS): %v", opts.Addr, err)
		}
		tb.Skipf("no Redis at %s (set SKYWATCH_TEST_REDIS): %v", opts.Addr, err)
	}
	return u
}

func TestRedisStoreConformance(t *testing.T) {
	url := testRedisURL(t)
	testStore(t, func(t *testing.T) func() store {
		cfg := RedisConfig{URL: url, KeyPrefix: testredis.Prefix(t, url, "skywatch-test:")}
		return func() store {
			s, err := OpenRedisStore(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}

// TestRedisStoreKeys checks the keys: a stream and a hash under the prefix,
// the stream not trimmed.
func TestRedisStoreKeys(t *testing.T) {
	url := testRedisURL(t)
	prefix := testredis.Prefix(t, url, "skywatch-test:")
	ctx := context.Background()
	s, err := OpenRedisStore(ctx, RedisConfig{URL: url, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendAll(t, s, sample())
	if err := s.SetPrefs(ctx, "Li", json.RawMessage(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	keys, err := s.rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(slices.Sorted(slices.Values(keys)), " ") != prefix+"audit "+prefix+"format "+prefix+"prefs" {
		t.Errorf("keys %v, want %saudit, %sformat and %sprefs", keys, prefix, prefix, prefix)
	}
	if typ, _ := s.rdb.Type(ctx, prefix+"audit").Result(); typ != "stream" {
		t.Errorf("audit is a %s", typ)
	}
	if n, _ := s.rdb.XLen(ctx, prefix+"audit").Result(); n != 10 {
		t.Errorf("audit stream has %d entries, want 10", n)
	}
	if v, _ := s.rdb.HGet(ctx, prefix+"prefs", "li").Result(); v != `{"a":1}` {
		t.Errorf("prefs hash field li = %q", v)
	}
	// Entries that are not records are skipped.
	if err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: prefix + "audit", Values: []any{"x", "y"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if got := details(query(t, s, AuditQuery{Limit: 2}).Records); got != "9,8" {
		t.Errorf("with a foreign entry: %s, want 9,8", got)
	}
}

func TestRedisConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  RedisConfig
		want string // substring of the error; "" for none
	}{
		{RedisConfig{URL: "redis://127.0.0.1:6379/0"}, ""},
		{RedisConfig{URL: "rediss://user:secret@example.org:6380/2", KeyPrefix: "sw:"}, ""},
		{RedisConfig{}, "store.redis_url: required"},
		{RedisConfig{URL: "http://127.0.0.1:6379"}, "store.redis_url: scheme"},
		{RedisConfig{URL: "redis://:s3cret-pw@127.0.0.1:6379/notadb"}, "store.redis_url: "},
		{RedisConfig{URL: "redis://:s3cret-pw@127.0.0.1:port/0"}, "store.redis_url: "},
		{RedisConfig{URL: "redis://127.0.0.1:6379", KeyPrefix: "a*"}, "store.redis_key_prefix: "},
		{RedisConfig{URL: "redis://127.0.0.1:6379", Timeout: -1}, "store.redis_timeout: "},
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
	var c RedisConfig
	c.setDefaults()
	if c.KeyPrefix != "skywatch:" || c.Timeout != 2*time.Second {
		t.Errorf("defaults %+v", c)
	}
}

// TestRedisStoreUnreachable opens a store on a port nobody listens on: it
// fails without showing the password.
func TestRedisStoreUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = OpenRedisStore(context.Background(), RedisConfig{URL: "redis://:s3cret-pw@" + addr + "/0"})
	if err == nil {
		t.Fatal("open of a closed port: no error")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the password: %v", err)
	}
}

// BenchmarkRedisStoreScan measures a query that reads a stream of 100 000
// records to its start without finding anything.
func BenchmarkRedisStoreScan(b *testing.B) {
	url := testRedisURL(b)
	prefix := testredis.Prefix(b, url, "skywatch-test:")
	ctx := context.Background()
	s, err := OpenRedisStore(ctx, RedisConfig{URL: url, KeyPrefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 100_000
	pipe := s.rdb.Pipeline()
	for i := range n {
		r := AuditRecord{
			Time: base.Add(time.Duration(i) * time.Second), User: "operator-" + fmt.Sprint(i%40), Role: "operator",
			Addr: "10.20.30.40:51234", Action: AuditWatch, Target: "camera:cam-" + fmt.Sprint(i%300), Outcome: "ok",
			Start: base, End: base.Add(time.Duration(i) * time.Second), Detail: "main stream",
		}
		data, _ := json.Marshal(r)
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: s.auditStream(), Values: []any{"r", data}})
		if i%1000 == 999 {
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	for b.Loop() {
		p, err := s.QueryAudit(ctx, AuditQuery{User: "nobody"})
		if err != nil || len(p.Records) != 0 {
			b.Fatal(p, err)
		}
	}
}
