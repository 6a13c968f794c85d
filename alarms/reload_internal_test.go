package alarms

import (
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// A client whose identity a reload removed may still publish on its own
// topics, and only there, until the next reload: what it sent as it was
// being disconnected reaches the intake, which keeps it as rejected
// (unknown device or unit), instead of being refused by the broker unseen.
// It may read nothing.
func TestRemovedIdentityPublishesOnlyItsOwn(t *testing.T) {
	cfg := Config{MQTT: MQTTConfig{TopicPrefix: "sky"},
		Devices: []DeviceConfig{{ID: "d1", Password: "a"}, {ID: "d2", Password: "b"}},
		Units:   []UnitConfig{{ID: "u1", Password: "c"}, {ID: "u2", Password: "d"}}}
	dec := DecoderFunc(func([]byte) ([]Event, error) { return nil, nil })
	in, err := NewIntake(cfg, struct{ Store }{}, map[string]Decoder{DecoderSkywatch: dec}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &hook{in: in}
	client := func(user string) *mqtt.Client {
		return &mqtt.Client{Properties: mqtt.ClientProperties{Username: []byte(user)}}
	}
	next := cfg
	next.Devices, next.Units = cfg.Devices[:1], cfg.Units[:1]
	if _, err := in.Apply(next); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		user, topic string
		write, want bool
	}{
		{"d2", "sky/dev/d2/event", true, true},
		{"d2", "sky/dev/d2/event", false, false},
		{"d2", "sky/dev/d1/event", true, false},
		{"u2", "sky/unit/u2/reply", true, true},
		{"u2", "sky/unit/u2/dispatch", false, false},
		{"nobody", "sky/dev/nobody/event", true, false},
		{"d1", "sky/dev/d1/event", true, true},
	}
	for _, c := range cases {
		if got := h.OnACLCheck(client(c.user), c.topic, c.write); got != c.want {
			t.Errorf("%s %s write=%v: %v, want %v", c.user, c.topic, c.write, got, c.want)
		}
	}
	// The next reload ends that grace.
	if _, err := in.Apply(next); err != nil {
		t.Fatal(err)
	}
	if h.OnACLCheck(client("d2"), "sky/dev/d2/event", true) {
		t.Error("removed d2 may still publish after a second reload")
	}
}
