package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

func newDevice(id string, online bool) alarms.DeviceState {
	rssi := -80
	return alarms.DeviceState{
		ID:            id,
		Online:        online,
		LastSeen:      base.Add(time.Minute),
		LastHeartbeat: base.Add(30 * time.Second),
		LastEvent:     base.Add(time.Second + 5),
		BatteryLow:    !online,
		RSSI:          &rssi,
		Supervision:   !online,
		SupervisedAt:  base,
	}
}

func testDevices(t *testing.T, open func() alarms.Store) {
	s := openT(t, open)
	ctx := context.Background()
	if ds, err := s.Devices(ctx); err != nil || len(ds) != 0 {
		t.Fatalf("empty store: %d devices, err %v", len(ds), err)
	}
	if _, err := s.Device(ctx, "nobody"); !errors.Is(err, alarms.ErrNotFound) {
		t.Fatalf("unknown device: err = %v, want ErrNotFound", err)
	}
	for _, id := range []string{"d2", "d1", "d3"} {
		if err := s.PutDevice(ctx, newDevice(id, true)); err != nil {
			t.Fatalf("put %s: %v", id, err)
		}
	}
	d1 := newDevice("d1", false)
	d1.RSSI = nil
	if err := s.PutDevice(ctx, d1); err != nil {
		t.Fatalf("replace d1: %v", err)
	}
	got, err := s.Device(ctx, "d1")
	if err != nil {
		t.Fatalf("get d1: %v", err)
	}
	sameJSON(t, "d1", got, d1)
	ds, err := s.Devices(ctx)
	if err != nil {
		t.Fatalf("devices: %v", err)
	}
	sameJSON(t, "devices", ds, []alarms.DeviceState{d1, newDevice("d2", true), newDevice("d3", true)})
	if _, err := s.Device(ctx, "d4"); !errors.Is(err, alarms.ErrNotFound) {
		t.Fatalf("unknown device d4: err = %v, want ErrNotFound", err)
	}
}

func testDurability(t *testing.T, open func() alarms.Store) {
	ctx := context.Background()
	s := open()
	own := newEvent("d1", "e1", alarms.ClassFire, base)
	synth := newEvent("d1", "h1", alarms.ClassTamper, base.Add(time.Second))
	synth.SyntheticID = true
	mustAppend(t, s, own, time.Hour, true)
	mustAppend(t, s, synth, time.Hour, true)
	r := newRejected("d1", 1)
	if _, err := s.AddRejected(ctx, r, alarms.RejectedLimits{PerDevice: 10, Total: 10}); err != nil {
		t.Fatal(err)
	}
	dev := newDevice("d1", true)
	if err := s.PutDevice(ctx, dev); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	s = open()
	sameJSON(t, "events after reopening", listAll(t, s, alarms.EventQuery{}), []alarms.Event{*synth, *own})
	sameJSON(t, "rejected after reopening", listRejected(t, s, alarms.RejectedQuery{}), []alarms.Rejected{*r})
	got, err := s.Device(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "device after reopening", got, dev)

	// Dedup keys survive too.
	mustAppend(t, s, newEvent("d1", "e1", alarms.ClassFire, base), time.Hour, false)
	again := newEvent("d1", "h1", alarms.ClassTamper, base.Add(time.Second))
	again.SyntheticID = true
	mustAppend(t, s, again, time.Hour, false)
	newer := newEvent("d1", "e2", alarms.ClassAlarm, base.Add(time.Minute))
	mustAppend(t, s, newer, time.Hour, true)
	r2 := newRejected("d1", 2)
	if _, err := s.AddRejected(ctx, r2, alarms.RejectedLimits{PerDevice: 10, Total: 10}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	s = openT(t, open)
	sameJSON(t, "events after reopening twice", listAll(t, s, alarms.EventQuery{}), []alarms.Event{*newer, *synth, *own})
	sameJSON(t, "rejected after reopening twice", listRejected(t, s, alarms.RejectedQuery{}), []alarms.Rejected{*r2, *r})
}

func testClose(t *testing.T, open func() alarms.Store) {
	s := open()
	ctx := context.Background()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := s.AppendEvent(ctx, newEvent("d1", "e1", alarms.ClassAlarm, base), time.Hour); err == nil {
		t.Error("append after close: no error")
	}
	if _, err := s.Events(ctx, alarms.EventQuery{}); err == nil {
		t.Error("events after close: no error")
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("ping after close: no error")
	}
}
