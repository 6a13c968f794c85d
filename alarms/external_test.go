package alarms_test

import (
	"os"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/skywatch/skywatch/alarms"
)

// externalURL returns the test broker (Mosquitto) from SKYWATCH_TEST_MQTT,
// skipping the test when there is none (failing it under CI).
func externalURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("SKYWATCH_TEST_MQTT")
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("SKYWATCH_TEST_MQTT is not set under CI")
		}
		t.Skip("SKYWATCH_TEST_MQTT is not set (e.g. tcp://127.0.0.1:1883)")
	}
	return u
}

// externalConfig uses the external broker with a fresh client id (so a
// fresh persistent session) and topic prefix; the session is removed at
// the end of the test.
func externalConfig(t *testing.T) alarms.Config {
	url := externalURL(t)
	cfg := testConfig(t)
	cfg.MQTT = alarms.MQTTConfig{URL: url, ClientID: uniq("intake-"), TopicPrefix: uniq("t")}
	t.Cleanup(func() {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(cfg.MQTT.ClientID).SetCleanSession(true))
		if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			c.Disconnect(0)
		}
	})
	return cfg
}

func waitConnected(t *testing.T, in *alarms.Intake) {
	t.Helper()
	waitFor(t, "the intake's subscription at the broker", func() bool { return in.Status().Connected })
}

// Through an external broker: an event is stored once however often it
// comes, unknown devices and bad payloads are rejected, and the status
// shows the connection.
func TestExternalStoredOnce(t *testing.T) {
	cfg := externalConfig(t)
	store := newStore(t)
	in := startIntake(t, cfg, store)
	waitConnected(t, in)
	live := in.Subscribe(t.Context())

	dev := connect(t, cfg.MQTT.URL, "", "", nil)
	topic := devTopic(cfg, "d1", "event")
	publish(t, dev, topic, `{"id":"x1","class":"alarm"}`)
	publish(t, dev, topic, `{"id":"x1","class":"alarm"}`)
	publish(t, dev, devTopic(cfg, "ghost", "event"), `{"id":"g1","class":"alarm"}`)
	publish(t, dev, topic, `garbage`)
	publish(t, dev, topic, `{"id":"x2","class":"fire"}`)

	waitFor(t, "x2", func() bool { return len(withID(events(t, store, "d1"), "x2")) == 1 })
	waitFor(t, "the rejected messages", func() bool {
		r1, _ := in.Rejected(t.Context(), alarms.RejectedQuery{Device: "d1"})
		r2, _ := in.Rejected(t.Context(), alarms.RejectedQuery{Device: "ghost"})
		return len(r1) == 1 && len(r2) == 1 && r2[0].Reason == "unknown device"
	})
	time.Sleep(300 * time.Millisecond) // let a late duplicate show
	if got := withID(events(t, store, "d1"), "x1"); len(got) != 1 {
		t.Fatalf("%d events x1, want 1", len(got))
	}
	seen := map[string]int{}
	for len(seen) < 2 {
		select {
		case e := <-live:
			seen[e.ID]++
		case <-time.After(10 * time.Second):
			t.Fatalf("live events %v", seen)
		}
	}
	st := in.Status()
	if st.Broker != alarms.BrokerExternal || !st.Connected || strings.Contains(st.Address, "@") {
		t.Errorf("status %+v", st)
	}
}

// While the store fails nothing is acknowledged; the intake retries and
// stores the message once when the store is back. A message still
// unacknowledged when the intake stops is delivered again to the next
// intake with the same client id, and stored once.
func TestExternalStoreFailingThenRestart(t *testing.T) {
	cfg := externalConfig(t)
	store := newStore(t)
	in := startIntake(t, cfg, store)
	waitConnected(t, in)
	dev := connect(t, cfg.MQTT.URL, "", "", nil)
	topic := devTopic(cfg, "d2", "event")

	store.fail.Store(true)
	publish(t, dev, topic, `{"id":"r1","class":"panic"}`)
	waitFor(t, "failed store attempts", func() bool { return store.writes.Load() >= 2 })
	if st := in.Status(); st.StoreOK || !strings.Contains(st.StoreError, "connection refused") {
		t.Errorf("status while the store fails: %+v", st)
	}
	store.fail.Store(false)
	waitFor(t, "r1 stored after the store came back", func() bool {
		return len(withID(events(t, store, "d2"), "r1")) == 1
	})

	// Now a message that is never stored by this intake.
	store.fail.Store(true)
	before := store.writes.Load()
	publish(t, dev, topic, `{"id":"r2","class":"burglary-like","code":"130"}`)
	publish(t, dev, topic, `{"id":"r3","class":"alarm"}`)
	waitFor(t, "failed store attempts", func() bool { return store.writes.Load() >= before+2 })
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	store.fail.Store(false)

	in2 := startIntake(t, cfg, store)
	waitFor(t, "r3 delivered again to the next intake", func() bool {
		return len(withID(events(t, store, "d2"), "r3")) == 1
	})
	waitFor(t, "r2 rejected (bad class) after redelivery", func() bool {
		r, _ := in2.Rejected(t.Context(), alarms.RejectedQuery{Device: "d2"})
		return len(r) == 1
	})
	time.Sleep(300 * time.Millisecond)
	evs := events(t, store, "d2")
	if len(withID(evs, "r1")) != 1 || len(withID(evs, "r3")) != 1 || len(evs) != 2 {
		t.Fatalf("events %+v, want r1 and r3 once each", evs)
	}
}
