package boltstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() alarms.Store {
		path := filepath.Join(t.TempDir(), "alarms.db")
		return func() alarms.Store {
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alarms.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// bbolt's flock is per open file, so a second Open in this process
	// meets the lock as another process would.
	start := time.Now()
	_, err = Open(path, WithLockTimeout(100*time.Millisecond))
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: err = %v, want ErrLocked", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("second open took %v", time.Since(start))
	}
	t.Log(err)
}

// TestDedupClock checks the synthetic window and the retention of device
// ids against an injected clock, including the pruning of expired keys on
// open.
func TestDedupClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alarms.db")
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s, err := Open(path, WithClock(clock), WithDedupRetention(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	add := func(s *Store, id string, synthetic, want bool) {
		t.Helper()
		e := &alarms.Event{ID: id, Device: "d1", Class: alarms.ClassAlarm, Qualifier: alarms.QualifierNew, ReceivedAt: now, SyntheticID: synthetic}
		stored, err := s.AppendEvent(ctx, e, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if stored != want {
			t.Fatalf("at %v: append %s: stored = %v, want %v", now, id, stored, want)
		}
	}
	add(s, "h1", true, true)
	add(s, "r1", false, true)
	now = now.Add(9 * time.Second)
	add(s, "h1", true, false)
	now = now.Add(time.Second) // the window is over
	add(s, "h1", true, true)
	add(s, "r1", false, false)
	now = now.Add(24 * time.Hour) // the retention is over
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, WithClock(clock), WithDedupRetention(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketDedup).Stats().KeyN; n != 0 {
			t.Errorf("%d dedup keys left after the retention", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	add(s, "r1", false, true)
}

// BenchmarkAppendEvent compares batch delays: the default (1 ms), none,
// and bbolt's own default (10 ms).
func BenchmarkAppendEvent(b *testing.B) {
	for _, delay := range []time.Duration{time.Millisecond, 0, 10 * time.Millisecond} {
		b.Run("delay="+delay.String(), func(b *testing.B) {
			storetest.BenchmarkAppendEvent(b, func(b *testing.B) alarms.Store {
				s, err := Open(filepath.Join(b.TempDir(), "alarms.db"), WithBatchDelay(delay))
				if err != nil {
					b.Fatal(err)
				}
				return s
			})
		})
	}
}

// Rejected messages of many device names (unknown devices at an external
// broker) are bounded in all, and their emptied device buckets removed.
func TestRejectedManyDevicesNoBuckets(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "alarms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	lim := alarms.RejectedLimits{PerDevice: 3, Total: 5}
	for i := range 50 {
		r := &alarms.Rejected{Device: fmt.Sprintf("unknown-%d", i), Payload: []byte("x"), ReceivedAt: time.Now()}
		if _, err := s.AddRejected(ctx, r, lim); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRejectedDevice).ForEachBucket(func([]byte) error { n++; return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Fatalf("%d device buckets of rejected messages left, want 5 (the newest)", n)
	}
}
