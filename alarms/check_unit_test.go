package alarms_test

import (
	"log/slog"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/hardware"
)

// CheckUnit, for the patrol page, takes a unit's bcrypt hash or plain demo
// password under its user name (its ID when none is given), and refuses
// devices, unknown names and units without a password; with an external
// broker too.
func TestCheckUnit(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, mqtt := range []alarms.MQTTConfig{
		{Address: "127.0.0.1:0"},
		{URL: "tcp://127.0.0.1:1"},
	} {
		cfg := alarms.Config{
			MQTT:    mqtt,
			Devices: []alarms.DeviceConfig{{ID: "d1", Password: "pw-d1"}},
			Units: []alarms.UnitConfig{
				{ID: "car-1", Username: "officer1", PasswordHash: string(hash)},
				{ID: "foot-2", Password: "plain"},
			},
		}
		if mqtt.URL != "" {
			cfg.Units = append(cfg.Units, alarms.UnitConfig{ID: "nopw"})
		}
		in, err := alarms.NewIntake(cfg, newStore(t), hardware.Decoders(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			user, pass, id string
			ok             bool
		}{
			{"officer1", "s3cret", "car-1", true},
			{"officer1", "s3cret", "car-1", true}, // from the cache
			{"officer1", "s3cret2", "", false},
			{"car-1", "s3cret", "", false}, // the user name, not the ID
			{"foot-2", "plain", "foot-2", true},
			{"foot-2", "plai", "", false},
			{"nopw", "", "", false},
			{"d1", "pw-d1", "", false}, // a device is no unit
			{"ghost", "x", "", false},
		} {
			id, err := in.CheckUnit(tt.user, tt.pass, "127.0.0.1:5000")
			if ok := err == nil; id != tt.id || ok != tt.ok {
				t.Errorf("%q %s/%s: %q %v, want %q %v", mqtt.URL, tt.user, tt.pass, id, ok, tt.id, tt.ok)
			}
		}
		_ = in.Close()
	}
}
