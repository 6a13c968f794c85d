package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/storetest"
	"github.com/skywatch/skywatch/internal/testredis"
)

// privateRedis starts a redis-server of its own with args (persistence
// settings), on a free loopback port, stopped at the end of the test. Its
// settings are its own: the shared test Redis is not changed.
func privateRedis(t testing.TB, args ...string) string {
	t.Helper()
	testredis.URL(t) // the Redis tests run only where Redis is
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not on the PATH under CI")
		}
		t.Skip("redis-server is not on the PATH: skipping")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(bin, append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--dir", t.TempDir(), "--daemonize", "no"}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer rdb.Close()
	deadline := time.Now().Add(20 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("private redis-server does not answer")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return url
}

// Open reads Redis's persistence settings: it warns, in plain words, about
// those that can lose acknowledged alarms; in strict mode it refuses them
// (or, on Redis 7.2 and later, waits for each event with WAITAOF).
func TestDurability(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		warn string // "" for none
		// strictOld tells whether strict mode opens on Redis before 7.2.
		strictOld bool
	}{
		{"nothing kept", []string{"--appendonly", "no", "--save", ""}, "loses every stored alarm", false},
		{"snapshots only", []string{"--appendonly", "no", "--save", "3600 1"}, "since its last snapshot", false},
		{"everysec", []string{"--appendonly", "yes", "--appendfsync", "everysec", "--save", ""}, "about the last 2 s", false},
		{"no fsync", []string{"--appendonly", "yes", "--appendfsync", "no", "--save", ""}, "about every 30 s", false},
		{"always", []string{"--appendonly", "yes", "--appendfsync", "always", "--save", ""}, "", true},
		{"config disabled", []string{"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--rename-command", "CONFIG", ""},
			"cannot read Redis's persistence settings", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := privateRedis(t, tc.args...)
			ctx := context.Background()
			s, err := Open(ctx, Config{URL: url})
			if err != nil {
				t.Fatal(err)
			}
			d := s.Durability()
			_ = s.Close()
			if tc.warn == "" && d.Warning != "" || !strings.Contains(d.Warning, tc.warn) {
				t.Errorf("warning %q, want one containing %q", d.Warning, tc.warn)
			}
			if d.Summary == "" {
				t.Error("no summary")
			}

			s, err = Open(ctx, Config{URL: url, Durability: DurabilityStrict})
			opts, perr := redis.ParseURL(url)
			if perr != nil {
				t.Fatal(perr)
			}
			rdb := redis.NewClient(opts)
			newer := readPersistence(ctx, rdb).atLeast(7, 2)
			_ = rdb.Close()
			wantOpen := tc.strictOld || newer && strings.Contains(strings.Join(tc.args, " "), "--appendonly yes")
			switch {
			case wantOpen && err != nil:
				t.Fatalf("strict: %v", err)
			case !wantOpen && err == nil:
				_ = s.Close()
				t.Fatal("strict mode opened on settings that can lose acknowledged alarms")
			case !wantOpen:
				if !errors.Is(err, ErrDurability) || !strings.Contains(err.Error(), "store.redis_durability") {
					t.Fatalf("strict: %v, want ErrDurability naming the key", err)
				}
				return
			}
			defer s.Close()
			if d := s.Durability(); d.Warning != "" || !strings.HasPrefix(d.Summary, "strict") {
				t.Errorf("strict durability %+v", d)
			}
			e := &alarms.Event{ID: "e1", Device: "d1", Class: alarms.ClassAlarm, Qualifier: alarms.QualifierNew, ReceivedAt: time.Now()}
			if stored, err := s.AppendEvent(ctx, e, time.Minute); err != nil || !stored {
				t.Fatalf("strict append: stored %v, err %v", stored, err)
			}
		})
	}
}

// BenchmarkAppendEventDurability measures what Redis's persistence settings
// cost an append, on private redis-servers: no append-only file, appendfsync
// everysec, and strict mode (appendfsync always before Redis 7.2, WAITAOF
// after each event from 7.2 on, here with appendfsync everysec).
func BenchmarkAppendEventDurability(b *testing.B) {
	for _, bc := range []struct {
		name       string
		durability string
		args       []string
	}{
		{"appendonly-no", DurabilityNormal, []string{"--appendonly", "no", "--save", ""}},
		{"everysec", DurabilityNormal, []string{"--appendonly", "yes", "--appendfsync", "everysec", "--save", ""}},
		{"always", DurabilityNormal, []string{"--appendonly", "yes", "--appendfsync", "always", "--save", ""}},
		{"strict", DurabilityStrict, nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			args := bc.args
			if args == nil {
				// strict: WAITAOF where Redis has it, else always.
				args = []string{"--appendonly", "yes", "--appendfsync", "always", "--save", ""}
				if v := redisVersion(b); v.atLeast(7, 2) {
					args[3] = "everysec"
				}
			}
			url := privateRedis(b, args...)
			storetest.BenchmarkAppendEvent(b, func(b *testing.B) alarms.Store {
				s, err := Open(context.Background(), Config{URL: url, KeyPrefix: testredis.Prefix(b, url, "bench:"), Durability: bc.durability})
				if err != nil {
					b.Fatal(err)
				}
				return s
			})
		})
	}
}

// redisVersion reads the version of the test Redis.
func redisVersion(tb testing.TB) persistence {
	opts, err := redis.ParseURL(testredis.URL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	return readPersistence(context.Background(), rdb)
}
