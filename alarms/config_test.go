package alarms_test

import (
	"strings"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/hardware"
)

func TestConfigValidate(t *testing.T) {
	dev := func(mod func(*alarms.DeviceConfig)) alarms.Config {
		d := alarms.DeviceConfig{ID: "d1", PasswordHash: hashD3}
		mod(&d)
		return alarms.Config{Devices: []alarms.DeviceConfig{{ID: "d0", Password: "x"}, d}}
	}
	for _, tc := range []struct {
		name string
		cfg  alarms.Config
		want string // "" for valid
	}{
		{"zero", alarms.Config{}, ""},
		{"device", dev(func(*alarms.DeviceConfig) {}), ""},
		{"external", alarms.Config{MQTT: alarms.MQTTConfig{URL: "ssl://broker:8883"},
			Devices: []alarms.DeviceConfig{{ID: "d1"}}}, ""},
		{"url scheme", alarms.Config{MQTT: alarms.MQTTConfig{URL: "http://x"}}, "mqtt.url: scheme must be tcp, ssl, ws or wss"},
		{"url credentials", alarms.Config{MQTT: alarms.MQTTConfig{URL: "tcp://u:secret@x:1883"}}, "mqtt.url: must not contain credentials"},
		{"tls without cert", alarms.Config{MQTT: alarms.MQTTConfig{TLSAddress: ":8883"}}, "mqtt.tls_address:"},
		{"prefix", alarms.Config{MQTT: alarms.MQTTConfig{TopicPrefix: "a/+"}}, "mqtt.topic_prefix:"},
		{"model", dev(func(d *alarms.DeviceConfig) { d.Model = "x" }), `devices[1].model: unknown model "x"`},
		{"id", dev(func(d *alarms.DeviceConfig) { d.ID = "a/b" }), "devices[1].id:"},
		{"dup id", dev(func(d *alarms.DeviceConfig) { d.ID = "d0"; d.Username = "other" }), `devices[1].id: duplicate "d0"`},
		{"dup user", dev(func(d *alarms.DeviceConfig) { d.Username = "d0" }), `devices[1].username: duplicate user name "d0"`},
		{"no secret", dev(func(d *alarms.DeviceConfig) { d.PasswordHash = "" }), "devices[1].password_hash: must be set"},
		{"bad hash", dev(func(d *alarms.DeviceConfig) { d.PasswordHash = "plain" }), "devices[1].password_hash: not a bcrypt hash"},
		{"both", dev(func(d *alarms.DeviceConfig) { d.Password = "x" }), "devices[1].password: set together"},
		{"lat", dev(func(d *alarms.DeviceConfig) { d.Lat = 91 }), "devices[1].lat:"},
		{"decoder", alarms.Config{Models: []alarms.ModelConfig{{Name: "m", Decoder: "nope"}}}, `models[0].decoder: unknown decoder "nope"`},
		{"window", alarms.Config{Models: []alarms.ModelConfig{{Name: "m", Decoder: "skywatch",
			Heartbeat: time.Minute, Supervision: time.Second}}}, "models[0].supervision: must be longer"},
		{"unit", alarms.Config{Units: []alarms.UnitConfig{{ID: "u1"}}}, "units[0].password_hash: must be set"},
		{"rate", alarms.Config{Limits: alarms.Limits{DeviceRate: -1}}, "alarms.device_rate: must not be negative"},
		{"hold", alarms.Config{Limits: alarms.Limits{StoreHold: -time.Second}}, "alarms.store_hold: must not be negative"},
		{"rejected", alarms.Config{Limits: alarms.Limits{RejectedMax: -1}}, "alarms.rejected_max: must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error shows a password: %v", err)
			}
		})
	}
}

// The default model names work without being listed, and a model's
// decoder must be given.
func TestNewIntakeDecoders(t *testing.T) {
	cfg := alarms.Config{Devices: []alarms.DeviceConfig{
		{ID: "a", Model: "contactid", Password: "x"}, {ID: "b", Model: "zigbee2mqtt", Password: "x"}}}
	if _, err := alarms.NewIntake(cfg, newStore(t), hardware.Decoders(), nil); err != nil {
		t.Fatal(err)
	}
	_, err := alarms.NewIntake(cfg, newStore(t), map[string]alarms.Decoder{}, nil)
	if err == nil || !strings.Contains(err.Error(), ".decoder: no decoder") {
		t.Fatalf("missing decoder: %v", err)
	}
}

// The collector registers and reports what happened.
func TestCollector(t *testing.T) {
	cfg := testConfig(t)
	store := newStore(t)
	in := startIntake(t, cfg, store)
	c := connect(t, "tcp://"+in.BrokerAddr(), "d1", "pw-d1", nil)
	publish(t, c, devTopic(cfg, "d1", "event"), `{"id":"m1","class":"alarm"}`)
	publish(t, c, devTopic(cfg, "d1", "event"), `{"id":"m1","class":"alarm"}`)
	publish(t, c, devTopic(cfg, "d1", "event"), `nope`)

	got := metricValues(t, in)
	for name, want := range map[string]float64{
		"skywatch_alarms_events_stored_total":    1,
		"skywatch_alarms_events_duplicate_total": 1,
		"skywatch_alarms_rejected_total":         1,
		"skywatch_alarms_broker_connected":       1,
		"skywatch_alarms_store_ok":               1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}
