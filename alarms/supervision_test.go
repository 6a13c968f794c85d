package alarms_test

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// fastConfig gives every device a model with a 100 ms heartbeat and a
// 600 ms supervision window.
func fastConfig(t *testing.T) alarms.Config {
	cfg := testConfig(t)
	cfg.Models = []alarms.ModelConfig{{Name: "fast", Decoder: "skywatch",
		Heartbeat: 100 * time.Millisecond, Supervision: 600 * time.Millisecond}}
	for i := range cfg.Devices {
		cfg.Devices[i].Model = "fast"
	}
	return cfg
}

// A device silent past its window raises exactly one trouble; a heartbeat
// raises one restore.
func TestSupervisionSilentThenHeard(t *testing.T) {
	cfg := fastConfig(t)
	store := newStore(t)
	in := startIntake(t, cfg, store)
	c := connect(t, "tcp://"+in.BrokerAddr(), "d1", "pw-d1", nil)
	publish(t, c, devTopic(cfg, "d1", "hb"), `{"battery":15,"rssi":-71}`)

	v, _ := in.Device(t.Context(), "d1")
	if v.State.LastHeartbeat.IsZero() || !v.State.BatteryLow || v.State.RSSI == nil || *v.State.RSSI != -71 {
		t.Errorf("state after heartbeat: %+v", v.State)
	}
	waitFor(t, "the supervision trouble", func() bool {
		tr, _ := supervision(t, store, "d1")
		return tr >= 1
	})
	time.Sleep(1500 * time.Millisecond) // more than two windows: no second trouble
	if tr, re := supervision(t, store, "d1"); tr != 1 || re != 0 {
		t.Fatalf("silent device: %d troubles, %d restores, want 1 and 0", tr, re)
	}
	publish(t, c, devTopic(cfg, "d1", "hb"), "")
	if tr, re := supervision(t, store, "d1"); tr != 1 || re != 1 {
		t.Fatalf("after a heartbeat: %d troubles, %d restores, want 1 and 1", tr, re)
	}
	evs := events(t, store, "d1")
	if evs[0].Qualifier != alarms.QualifierRestore || evs[0].Source != "supervisor" || evs[0].Area != "village-1" {
		t.Errorf("restore event %+v", evs[0])
	}
}

// A restart (a new intake on the same bolt file) gives devices a fresh
// window and does not raise again a trouble that was open; the restore
// still comes when the device is heard.
func TestSupervisionSurvivesRestart(t *testing.T) {
	cfg := fastConfig(t)
	path := filepath.Join(t.TempDir(), "alarms.db")

	s1 := openBolt(t, path)
	in1 := startIntake(t, cfg, s1)
	c := connect(t, "tcp://"+in1.BrokerAddr(), "d1", "pw-d1", nil)
	publish(t, c, devTopic(cfg, "d1", "hb"), "")
	c.Disconnect(0)
	waitFor(t, "the supervision troubles", func() bool {
		tr1, _ := supervision(t, s1, "d1")
		tr2, _ := supervision(t, s1, "d2")
		tr3, _ := supervision(t, s1, "d3")
		return tr1 == 1 && tr2 == 1 && tr3 == 1
	})
	if err := in1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openBolt(t, path)
	in2 := startIntake(t, cfg, s2)
	if got := in2.Status().SupervisionLost; got != 3 {
		t.Errorf("after restart %d devices with supervision lost, want 3", got)
	}
	time.Sleep(1500 * time.Millisecond)
	for _, d := range []string{"d1", "d2", "d3"} {
		if tr, re := supervision(t, s2, d); tr != 1 || re != 0 {
			t.Fatalf("%s after restart: %d troubles, %d restores, want 1 and 0", d, tr, re)
		}
	}
	c2 := connect(t, "tcp://"+in2.BrokerAddr(), "d1", "pw-d1", nil)
	publish(t, c2, devTopic(cfg, "d1", "hb"), "")
	if tr, re := supervision(t, s2, "d1"); tr != 1 || re != 1 {
		t.Fatalf("d1 heard after restart: %d troubles, %d restores, want 1 and 1", tr, re)
	}
}

// A restart must not raise troubles for devices that were fine: they get
// a fresh window, even if they were last heard long ago.
func TestSupervisionFreshWindowOnStart(t *testing.T) {
	cfg := testConfig(t) // default models: a window of 190 s
	store := newStore(t)
	for _, d := range []string{"d1", "d2", "d3"} {
		err := store.PutDevice(t.Context(), alarms.DeviceState{ID: d, LastSeen: time.Now().Add(-24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
	}
	in := startIntake(t, cfg, store)
	time.Sleep(1500 * time.Millisecond) // several supervisor ticks
	for _, d := range []string{"d1", "d2", "d3"} {
		if tr, _ := supervision(t, store, d); tr != 0 {
			t.Errorf("%s: %d troubles right after start", d, tr)
		}
	}
	if in.Status().SupervisionLost != 0 {
		t.Errorf("status %+v", in.Status())
	}
}

// A crash between storing a trouble and saving the device's state leaves
// the device unmarked; raising the trouble again after the restart is a
// duplicate (same ID), not a second trouble.
func TestSupervisionTroubleNotDoubledAfterCrash(t *testing.T) {
	cfg := fastConfig(t)
	store := newStore(t)
	seen := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	if err := store.PutDevice(t.Context(), alarms.DeviceState{ID: "d1", LastSeen: seen}); err != nil {
		t.Fatal(err)
	}
	first := alarms.Event{ID: "sup-" + strconv.FormatInt(seen.UnixMilli(), 10), Class: alarms.ClassSupervision,
		Qualifier: alarms.QualifierNew, Device: "d1", ReceivedAt: time.Now(), Source: "supervisor"}
	if _, err := store.AppendEvent(t.Context(), &first, time.Minute); err != nil {
		t.Fatal(err)
	}
	in := startIntake(t, cfg, store)
	waitFor(t, "d1 marked", func() bool {
		v, _ := in.Device(t.Context(), "d1")
		return v.State.Supervision
	})
	if tr, _ := supervision(t, store, "d1"); tr != 1 {
		t.Fatalf("%d troubles, want 1", tr)
	}
}
