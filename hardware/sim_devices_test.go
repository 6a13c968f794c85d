package hardware

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/skywatch/skywatch/alarms"
)

// testBroker returns the MQTT broker for tests from SKYWATCH_TEST_MQTT,
// skipping the test when it is unset, except in CI where it is required.
func testBroker(t *testing.T) string {
	t.Helper()
	url := os.Getenv("SKYWATCH_TEST_MQTT")
	if url == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("SKYWATCH_TEST_MQTT is required in CI")
		}
		t.Skip("SKYWATCH_TEST_MQTT is not set (e.g. tcp://127.0.0.1:1883)")
	}
	return url
}

// uniqueName returns prefix and random hex, so that parallel runs on one
// broker use their own topics and client ids.
func uniqueName(prefix string) string {
	b := make([]byte, 6)
	crand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// mqttMessage is one message a recorder received.
type mqttMessage struct {
	topic    string
	payload  []byte
	retained bool
}

// recorder subscribes to every device topic under a prefix and keeps
// what arrives.
type recorder struct {
	prefix string
	mu     sync.Mutex
	msgs   []mqttMessage
}

func startRecorder(t *testing.T, broker, prefix string) *recorder {
	t.Helper()
	r := &recorder{prefix: prefix}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(uniqueName("rec-")).
		SetCleanSession(true) // in order: the handler runs on one goroutine
	c := mqtt.NewClient(opts)
	if err := waitToken(t.Context(), c.Connect(), failAfter); err != nil {
		t.Fatalf("recorder: connect: %v", err)
	}
	t.Cleanup(func() { c.Disconnect(250) })
	tok := c.Subscribe(prefix+"/dev/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		r.mu.Lock()
		r.msgs = append(r.msgs, mqttMessage{m.Topic(), append([]byte(nil), m.Payload()...), m.Retained()})
		r.mu.Unlock()
	})
	if err := waitToken(t.Context(), tok, failAfter); err != nil {
		t.Fatalf("recorder: subscribe: %v", err)
	}
	return r
}

// of returns the messages of one device's topic ("event", "hb", "state").
func (r *recorder) of(device, kind string) []mqttMessage {
	topic := r.prefix + "/dev/" + device + "/" + kind
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []mqttMessage
	for _, m := range r.msgs {
		if m.topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// states returns the payloads on a device's state topic, in order.
func (r *recorder) states(device string) string {
	var s []string
	for _, m := range r.of(device, "state") {
		s = append(s, string(m.payload))
	}
	return strings.Join(s, ",")
}

// cleanBroker removes what the devices leave on the broker: retained
// state messages and persistent sessions.
func cleanBroker(t *testing.T, broker, prefix string, devs []SimDevice) {
	t.Helper()
	for _, d := range devs {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(d.ID).SetCleanSession(true))
		if err := waitToken(context.Background(), c.Connect(), failAfter); err != nil {
			t.Errorf("clean %s: %v", d.ID, err)
			continue
		}
		_ = waitToken(context.Background(), c.Publish(prefix+"/dev/"+d.ID+"/state", 1, true, []byte{}), failAfter)
		c.Disconnect(250)
	}
}

// runSim runs a simulator until the test ends and checks that Run
// returns nil.
func runSim(t *testing.T, cfg DeviceSimConfig) *DeviceSim {
	t.Helper()
	sim := NewDeviceSim(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(failAfter):
			t.Error("Run did not return")
		}
	})
	return sim
}

func TestDeviceSim(t *testing.T) {
	verifyNoLeaks(t)
	broker := testBroker(t)
	prefix := uniqueName("swtest-")
	id := uniqueName("d")
	devs := []SimDevice{
		{ID: id + "-sky", Format: FormatSkywatch, Username: "u", Password: "p"},
		{ID: id + "-cid", Format: FormatContactID},
		{ID: id + "-zb", Format: FormatZigbee2MQTT},
		{ID: id + "-flaky", Format: FormatSkywatch, Behaviour: BehaviourFlaky},
		{ID: id + "-silent", Format: FormatContactID, Behaviour: BehaviourSilent},
		{ID: id + "-garbage", Format: FormatZigbee2MQTT, Behaviour: BehaviourGarbage},
	}
	t.Cleanup(func() { cleanBroker(t, broker, prefix, devs) })
	rec := startRecorder(t, broker, prefix)

	const heartbeat = 100 * time.Millisecond
	sim := NewDeviceSim(DeviceSimConfig{
		Broker:      broker,
		Prefix:      prefix,
		Devices:     devs,
		Heartbeat:   heartbeat,
		AlarmEvery:  40 * time.Millisecond,
		SilentAfter: 3 * heartbeat,
		FlakyEvery:  500 * time.Millisecond,
		Seed:        1,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	defer cancel()

	normal := []SimDevice{devs[0], devs[1], devs[2]}
	t.Cleanup(func() {
		if t.Failed() {
			for _, d := range devs {
				t.Logf("%s: %d hb, %d events, states %s", d.ID, len(rec.of(d.ID, "hb")), len(rec.of(d.ID, "event")), rec.states(d.ID))
			}
			t.Logf("stats %+v", sim.Stats())
		}
	})
	waitFor(t, "heartbeats, events, a cut and a reconnection", func() bool {
		for _, d := range normal {
			if len(rec.of(d.ID, "hb")) < 20 || len(rec.of(d.ID, "event")) < 10 {
				return false
			}
		}
		return strings.Contains(rec.states(devs[3].ID), "online,offline,online") &&
			len(rec.of(devs[5].ID, "event")) >= 10
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(failAfter):
		t.Fatal("Run did not return")
	}
	st := sim.Stats()
	t.Logf("stats %+v", st)

	// Every device announced itself; on stopping, each said offline.
	for _, d := range devs {
		waitFor(t, d.ID+" offline", func() bool { return strings.HasSuffix(rec.states(d.ID), ",offline") })
		if s := rec.states(d.ID); !strings.HasPrefix(s, "online") {
			t.Errorf("%s: states %s, want online first", d.ID, s)
		}
	}

	// Events of well-behaved devices decode with their format's decoder;
	// Skywatch JSON ids are unique.
	for _, d := range []SimDevice{devs[0], devs[1], devs[2], devs[3], devs[4]} {
		ids := map[string]string{}
		classes := map[alarms.Class]bool{}
		for _, m := range rec.of(d.ID, "event") {
			evs, err := Decoders()[d.Format].Decode(m.payload)
			if err != nil {
				t.Fatalf("%s: %q: %v", d.ID, m.payload, err)
			}
			if len(evs) == 0 {
				t.Fatalf("%s: %q: no events", d.ID, m.payload)
			}
			checkEvents(t, evs)
			for _, ev := range evs {
				classes[ev.Class] = true
				if d.Format == FormatSkywatch {
					// A flaky device may send an event twice (QoS 1):
					// the same id must then carry the same payload.
					if prev, ok := ids[ev.ID]; ok && (d.Behaviour != BehaviourFlaky || prev != string(m.payload)) {
						t.Errorf("%s: event id %q repeated", d.ID, ev.ID)
					}
					if !strings.HasPrefix(ev.ID, "ev-"+d.ID+"-") {
						t.Errorf("%s: event id %q is not ev-<device>-...", d.ID, ev.ID)
					}
					ids[ev.ID] = string(m.payload)
				}
			}
		}
		if len(classes) < 3 && d.Behaviour == BehaviourNormal {
			t.Errorf("%s: only classes %v", d.ID, classes)
		}
	}

	// The silent device stopped heartbeating after SilentAfter (at most 4
	// beats fit in 300 ms) while the others went on.
	if n := len(rec.of(devs[4].ID, "hb")); n == 0 || n > 5 {
		t.Errorf("silent device sent %d heartbeats, want 1 to 5", n)
	}

	// The garbage device sent some payloads that do not decode, never
	// more than it counted.
	bad := 0
	for _, m := range rec.of(devs[5].ID, "event") {
		if _, err := (Zigbee2MQTT{}).Decode(m.payload); err != nil {
			bad++
		}
	}
	if bad == 0 || uint64(bad) > st.Garbage {
		t.Errorf("garbage device: %d payloads did not decode, sim counted %d garbage", bad, st.Garbage)
	}

	// The flaky device's cuts made the broker publish its will.
	if st.Cuts == 0 || st.Connects < uint64(len(devs))+1 {
		t.Errorf("cuts %d, connects %d: want cuts and reconnections", st.Cuts, st.Connects)
	}
	if st.Connected != 0 || st.Devices != 0 {
		t.Errorf("after Run: connected %d, devices %d", st.Connected, st.Devices)
	}
	if st.Acked == 0 || st.Acked > st.Published || st.Heartbeats == 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestDeviceSimPublishEvent(t *testing.T) {
	verifyNoLeaks(t)
	broker := testBroker(t)
	prefix := uniqueName("swtest-")
	devs := []SimDevice{{ID: uniqueName("d"), Format: FormatContactID}}
	t.Cleanup(func() { cleanBroker(t, broker, prefix, devs) })
	rec := startRecorder(t, broker, prefix)

	cfg := DeviceSimConfig{Broker: broker, Prefix: prefix, Devices: devs}
	if err := NewDeviceSim(cfg).PublishEvent(t.Context(), devs[0].ID, []byte("x")); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("before Run: %v, want ErrUnknownDevice", err)
	}
	sim := runSim(t, cfg)
	waitFor(t, "Run to start", func() bool { return sim.Stats().Devices == 1 })
	if err := sim.PublishEvent(t.Context(), "other", []byte("x")); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("other device: %v, want ErrUnknownDevice", err)
	}
	payloads := []string{"1234 18 1130 01 015", "garbage is published too"}
	for _, p := range payloads {
		ctx, cancel := context.WithTimeout(t.Context(), failAfter)
		err := sim.PublishEvent(ctx, devs[0].ID, []byte(p))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	if st := sim.Stats(); st.Published != 2 || st.Acked != 2 || st.Errors != 0 {
		t.Fatalf("stats %+v, want 2 published and acked", st)
	}
	waitFor(t, "both events", func() bool { return len(rec.of(devs[0].ID, "event")) == 2 })
	for i, m := range rec.of(devs[0].ID, "event") {
		if string(m.payload) != payloads[i] || m.retained {
			t.Errorf("event %d: %q retained %v, want %q", i, m.payload, m.retained, payloads[i])
		}
	}
	// "online" is retained: a subscriber that comes later still gets it.
	late := startRecorder(t, broker, prefix)
	waitFor(t, "retained online", func() bool {
		st := late.of(devs[0].ID, "state")
		return len(st) == 1 && string(st[0].payload) == "online" && st[0].retained
	})
}

func TestDeviceSimConfig(t *testing.T) {
	good := DeviceSimConfig{Broker: "tcp://127.0.0.1:1883", Devices: []SimDevice{{ID: "a", Format: FormatSkywatch}}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		edit       func(*DeviceSimConfig)
	}{
		{"no broker", "broker: required", func(c *DeviceSimConfig) { c.Broker = "" }},
		{"websocket", "broker: scheme", func(c *DeviceSimConfig) { c.Broker = "ws://127.0.0.1:80" }},
		{"no port", "broker: no port", func(c *DeviceSimConfig) { c.Broker = "tcp://127.0.0.1" }},
		{"negative heartbeat", "heartbeat", func(c *DeviceSimConfig) { c.Heartbeat = -1 }},
		{"no id", "devices[1].id: required", func(c *DeviceSimConfig) { c.Devices = append(c.Devices, SimDevice{Format: FormatSkywatch}) }},
		{"id with slash", "devices[0].id", func(c *DeviceSimConfig) { c.Devices = []SimDevice{{ID: "a/b", Format: FormatSkywatch}} }},
		{"repeated id", "devices[1].id: \"a\" is repeated", func(c *DeviceSimConfig) { c.Devices = append(c.Devices, c.Devices[0]) }},
		{"format", "devices[0].format", func(c *DeviceSimConfig) { c.Devices = []SimDevice{{ID: "a", Format: "sia"}} }},
		{"behaviour", "devices[0].behaviour", func(c *DeviceSimConfig) {
			c.Devices = []SimDevice{{ID: "a", Format: FormatSkywatch, Behaviour: "odd"}}
		}},
		{"password without user", "devices[0].username", func(c *DeviceSimConfig) {
			c.Devices = []SimDevice{{ID: "a", Format: FormatSkywatch, Password: "p"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			cfg.Devices = append([]SimDevice(nil), good.Devices...)
			tc.edit(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want %q", err, tc.want)
			}
			if err := NewDeviceSim(cfg).Run(t.Context()); err == nil {
				t.Fatal("Run accepted a bad config")
			}
		})
	}
}

func TestSimDevices(t *testing.T) {
	fleet := SimDevices(1000, "v", 7)
	if !equalFleets(fleet, SimDevices(1000, "v", 7)) {
		t.Fatal("the same seed made another fleet")
	}
	if equalFleets(fleet, SimDevices(1000, "v", 8)) {
		t.Fatal("another seed made the same fleet")
	}
	ids := map[string]bool{}
	formats := map[string]int{}
	behaviours := map[Behaviour]int{}
	for i, d := range fleet {
		if err := d.validate(i); err != nil {
			t.Fatal(err)
		}
		if ids[d.ID] {
			t.Fatalf("id %s repeated", d.ID)
		}
		ids[d.ID] = true
		formats[d.Format]++
		behaviours[d.Behaviour]++
	}
	if fleet[0].ID != "v00001" || fleet[0].Username != fleet[0].ID || len(fleet[0].Password) != 16 {
		t.Errorf("device 0: %+v", fleet[0])
	}
	want := map[Behaviour]int{BehaviourSilent: 20, BehaviourFlaky: 50, BehaviourGarbage: 20, BehaviourNormal: 910}
	for b, n := range want {
		if behaviours[b] != n {
			t.Errorf("behaviours %v, want %v", behaviours, want)
			break
		}
	}
	for _, f := range []string{FormatSkywatch, FormatContactID, FormatZigbee2MQTT} {
		if formats[f] < 100 {
			t.Errorf("formats %v: too few %s", formats, f)
		}
	}
	small := SimDevices(4, "s", 1)
	seen := map[Behaviour]bool{}
	for _, d := range small {
		seen[d.Behaviour] = true
	}
	if len(seen) != 4 {
		t.Errorf("a fleet of 4 has behaviours %v, want one of each", seen)
	}
}

func equalFleets(a, b []SimDevice) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSimPayloads checks that what the simulator sends decodes with the
// device's decoder, covers every class, and that garbage never decodes.
func TestSimPayloads(t *testing.T) {
	classes := map[alarms.Class]bool{}
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 1))
		for format, p := range map[string][]byte{
			FormatSkywatch:    simSkywatchPayload(rng, "ev-x-1", 1, time.Now()),
			FormatContactID:   simContactIDPayload(rng, simAccount("dev")),
			FormatZigbee2MQTT: simZigbeeReport(rng),
		} {
			dec := Decoders()[format]
			evs, err := dec.Decode(p)
			if err != nil || len(evs) == 0 {
				t.Fatalf("%s %q: %d events, %v", format, p, len(evs), err)
			}
			checkEvents(t, evs)
			for _, ev := range evs {
				classes[ev.Class] = true
			}
			if g := simGarbage(rng, dec, p); g != nil {
				if _, err := dec.Decode(g); err == nil {
					t.Fatalf("%s garbage %q decodes", format, g)
				}
			}
		}
	}
	for _, c := range alarms.Classes() {
		if !classes[c] {
			t.Errorf("no %s event in 300 payloads of each format", c)
		}
	}
}
