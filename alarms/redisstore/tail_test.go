package redisstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/internal/testredis"
)

// TailEvents starts at the log's end, returns every later event once in
// log order whichever store (node) wrote it, resumes from any offset, and
// returns nothing after its block when no event comes.
func TestTailEvents(t *testing.T) {
	url := testredis.URL(t)
	cfg := Config{URL: url, KeyPrefix: testredis.Prefix(t, url, "skywatch-test:")}
	ctx := context.Background()
	open := func() *Store {
		s, err := Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	a, b := open(), open()
	_, end, err := a.TailEvents(ctx, "", 0, time.Second)
	if err != nil || end != "0-0" {
		t.Fatalf("end of an empty log: %q, %v", end, err)
	}
	add := func(s *Store, id string) {
		e := &alarms.Event{ID: id, Device: "d1", Class: alarms.ClassAlarm, ReceivedAt: time.Now()}
		if _, err := s.AppendEvent(ctx, e, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	add(a, "before")
	_, from, err := b.TailEvents(ctx, "", 0, time.Second)
	if err != nil || from == "0-0" {
		t.Fatalf("end after one event: %q, %v", from, err)
	}
	for i := range 5 {
		add([]*Store{a, b}[i%2], fmt.Sprintf("e%d", i))
	}
	evs, next, err := b.TailEvents(ctx, from, 3, time.Second)
	if err != nil || len(evs) != 3 || evs[0].ID != "e0" || evs[2].ID != "e2" || next != evs[2].Offset {
		t.Fatalf("first batch: %v, next %q, %v", evs, next, err)
	}
	evs, next, err = a.TailEvents(ctx, next, 100, time.Second)
	if err != nil || len(evs) != 2 || evs[0].ID != "e3" || evs[1].ID != "e4" {
		t.Fatalf("second batch: %v, %v", evs, err)
	}
	evs, again, err := a.TailEvents(ctx, next, 100, 200*time.Millisecond)
	if err != nil || len(evs) != 0 || again != next {
		t.Fatalf("idle read: %v, %q (want %q), %v", evs, again, next, err)
	}
	late := make(chan error, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, err := b.AppendEvent(ctx, &alarms.Event{ID: "late", Device: "d1", Class: alarms.ClassAlarm, ReceivedAt: time.Now()}, time.Minute)
		late <- err
	}()
	evs, _, err = a.TailEvents(ctx, next, 100, 10*time.Second)
	if err := <-late; err != nil {
		t.Fatal(err)
	}
	if err != nil || len(evs) != 1 || evs[0].ID != "late" {
		t.Fatalf("blocked read: %v, %v", evs, err)
	}
}

// PutDeviceIf saves only over the rev it was given: the second of two
// writers that read the same state is refused, and a state saved by
// PutDevice (no rev) counts as rev 0.
func TestPutDeviceIf(t *testing.T) {
	url := testredis.URL(t)
	s, err := Open(context.Background(), Config{URL: url, KeyPrefix: testredis.Prefix(t, url, "skywatch-test:")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.PutDevice(ctx, alarms.DeviceState{ID: "d1", Online: true}); err != nil {
		t.Fatal(err)
	}
	ok, err := s.PutDeviceIf(ctx, alarms.DeviceState{ID: "d1", Supervision: true}, 0)
	if err != nil || !ok {
		t.Fatalf("first write: %v, %v", ok, err)
	}
	ok, err = s.PutDeviceIf(ctx, alarms.DeviceState{ID: "d1", Online: true}, 0)
	if err != nil || ok {
		t.Fatalf("a write over a stale rev: %v, %v", ok, err)
	}
	got, err := s.Device(ctx, "d1")
	if err != nil || !got.Supervision || got.Rev != 1 {
		t.Fatalf("stored %+v, %v", got, err)
	}
	if ok, err := s.PutDeviceIf(ctx, alarms.DeviceState{ID: "d2"}, 0); err != nil || !ok {
		t.Fatalf("a new device: %v, %v", ok, err)
	}
}
