package accounts

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/skywatch/skywatch/internal/testredis"
)

func openTestRedisStore(t *testing.T) *RedisStore {
	t.Helper()
	url := testRedisURL(t)
	s, err := OpenRedisStore(context.Background(), RedisConfig{URL: url, KeyPrefix: testredis.Prefix(t, url, "skywatch-test:")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Two stores on one prefix are two nodes: the attempts of both count
// against one bucket, and a reset on one is seen by the other.
func TestRedisLoginBucketsShared(t *testing.T) {
	a := openTestRedisStore(t)
	b := &RedisStore{rdb: a.rdb, cfg: a.cfg}
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	pair := LoginBucket{Name: "pair|ann|10.0.0.1", Burst: 3, Every: time.Minute}
	addr := LoginBucket{Name: "addr||10.0.0.1", Burst: 20, Every: time.Second}
	for i, s := range []*RedisStore{a, b, a} {
		if refused, _, err := s.TakeLogin(ctx, []LoginBucket{addr, pair}, now); err != nil || refused != -1 {
			t.Fatalf("attempt %d: refused %d, %v", i, refused, err)
		}
	}
	refused, wait, err := b.TakeLogin(ctx, []LoginBucket{addr, pair}, now)
	if err != nil || refused != 1 || wait != time.Minute {
		t.Fatalf("fourth attempt: refused %d after %s, %v; want bucket 1 for 1m", refused, wait, err)
	}
	locks, err := a.LoginLocks(ctx, now, 10)
	if err != nil || len(locks) != 1 || locks[0].Name != pair.Name || !locks[0].Until.Equal(now.Add(time.Minute)) {
		t.Fatalf("locks = %+v, %v", locks, err)
	}
	// A minute later one attempt is allowed again.
	if refused, _, _ := a.TakeLogin(ctx, []LoginBucket{addr, pair}, now.Add(time.Minute)); refused != -1 {
		t.Fatalf("a minute later: refused %d", refused)
	}
	if refused, _, _ := a.TakeLogin(ctx, []LoginBucket{addr, pair}, now.Add(time.Minute)); refused != 1 {
		t.Fatalf("second attempt a minute later: refused %d, want 1", refused)
	}
	n, err := b.ResetLogin(ctx, nil, func(name string) bool { return strings.HasPrefix(name, "pair|ann|") })
	if err != nil || n != 1 {
		t.Fatalf("reset: %d, %v", n, err)
	}
	if locks, _ := a.LoginLocks(ctx, now, 10); len(locks) != 0 {
		t.Fatalf("locks after reset = %+v", locks)
	}
	if refused, _, _ := a.TakeLogin(ctx, []LoginBucket{addr, pair}, now.Add(time.Minute)); refused != -1 {
		t.Fatalf("after reset: refused %d", refused)
	}
}

func TestRedisLoginKnownAddrs(t *testing.T) {
	s := openTestRedisStore(t)
	ctx := context.Background()
	now := time.Now()
	for i, addr := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		if err := s.KnowLoginAddr(ctx, "ann", addr, 2, now.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	for addr, want := range map[string]bool{"10.0.0.1": false, "10.0.0.2": true, "10.0.0.3": true, "10.0.0.4": false} {
		if got, err := s.KnownLoginAddr(ctx, "ann", addr); err != nil || got != want {
			t.Errorf("known %s = %v, %v; want %v", addr, got, err, want)
		}
	}
}

func TestRedisSessionLookup(t *testing.T) {
	s := openTestRedisStore(t)
	ctx := context.Background()
	sess := Session{Key: "k1", Username: "ann", Addr: "10.0.0.1", Created: time.Now().UTC().Truncate(time.Millisecond)}
	if err := s.SaveSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Session(ctx, "k1")
	if err != nil || !ok || got.Username != "ann" || !got.Created.Equal(sess.Created) {
		t.Fatalf("session = %+v, %v, %v", got, ok, err)
	}
	if _, ok, err := s.Session(ctx, "k2"); ok || err != nil {
		t.Fatalf("unknown session: %v, %v", ok, err)
	}
}
