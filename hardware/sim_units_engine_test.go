package hardware

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/boltstore"
)

// The simulated units speak the incident engine's language: against a
// real intake and engine (embedded broker, bolt store), the nearest unit
// declines a panic, the next accepts it, drives there, arrives and clears
// it, and the incident is resolved with every step in its timeline.
func TestUnitSimWithEngine(t *testing.T) {
	verifyNoLeaks(t)
	const devLat, devLon = 30.0, 120.0
	nearLat, nearLon := offsetM(devLat, devLon, 300, 0)
	farLat, farLon := offsetM(devLat, devLon, 700, 0)
	cfg := alarms.Config{
		MQTT: alarms.MQTTConfig{Address: "127.0.0.1:0", TopicPrefix: uniqueName("swtest-")},
		Areas: []alarms.AreaConfig{
			{ID: "c", Kind: alarms.AreaCounty},
			{ID: "g1", Parent: "c", Kind: alarms.AreaGrid},
		},
		Devices: []alarms.DeviceConfig{{ID: "p1", Area: "g1", Password: "pw-p1", Lat: devLat, Lon: devLon, Address: "3 Well Lane"}},
		Units: []alarms.UnitConfig{
			{ID: "near", Area: "g1", Password: "pw-near", Lat: nearLat, Lon: nearLon},
			{ID: "far", Area: "g1", Password: "pw-far", Lat: farLat, Lon: farLon},
		},
	}
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "skywatch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	in, err := alarms.NewIntake(cfg, store, Decoders(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close() })
	eng, err := alarms.NewEngine(in, store, alarms.EngineOptions{Poll: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	if err := in.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	broker := "tcp://" + in.BrokerAddr()

	// One simulator declines every offer, the other accepts.
	sims := map[string]*UnitSim{}
	for _, u := range cfg.Units {
		sc := fastUnitConfig(broker, cfg.MQTT.TopicPrefix, []SimUnit{{
			ID: u.ID, Username: u.ID, Password: u.Password, Kind: alarms.UnitPatrolCar,
			HomeLat: u.Lat, HomeLon: u.Lon, RadiusM: 20,
		}})
		sc.TravelSpeed = 400
		if u.ID == "near" {
			sc.DeclineRatio = 1
		} else {
			sc.AcceptRatio = 1
		}
		sims[u.ID], _ = runUnitSim(t, sc)
	}
	waitFor(t, "both units available", func() bool {
		units, err := eng.Units(t.Context())
		if err != nil {
			return false
		}
		for _, u := range units {
			if u.Status != alarms.UnitAvailable {
				return false
			}
		}
		return len(units) == 2
	})

	dev := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("p1").SetUsername("p1").SetPassword("pw-p1"))
	if err := waitToken(t.Context(), dev.Connect(), failAfter); err != nil {
		t.Fatal(err)
	}
	defer dev.Disconnect(250)
	tok := dev.Publish(cfg.MQTT.TopicPrefix+"/dev/p1/event", 1, false, []byte(`{"id":"e1","class":"panic"}`))
	if err := waitToken(t.Context(), tok, failAfter); err != nil {
		t.Fatal(err)
	}

	var inc alarms.Incident
	waitFor(t, "the incident resolved", func() bool {
		page, err := eng.Incidents(t.Context(), alarms.IncidentQuery{Limit: 1})
		if err != nil || len(page.Incidents) == 0 {
			return false
		}
		inc = page.Incidents[0]
		return inc.State == alarms.StateResolved
	})
	inc, err = eng.Incident(t.Context(), inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range inc.Timeline {
		actions = append(actions, e.Action)
	}
	want := []string{"opened", "offer", "decline", "escalated", "offer", "accept", "en_route", "arrived", "cleared"}
	if !slices.Equal(actions, want) {
		t.Errorf("timeline %v, want %v", actions, want)
	}
	if inc.Unit != "far" || !inc.Disposition.Valid() || !slices.Equal(inc.Tried, []string{"near"}) {
		t.Errorf("incident: unit %q, disposition %q, tried %v", inc.Unit, inc.Disposition, inc.Tried)
	}
	// The unit became available again once it cleared.
	waitFor(t, "far available", func() bool {
		u, err := eng.Unit(t.Context(), "far")
		return err == nil && u.Status == alarms.UnitAvailable
	})
	// Nothing the units sent was refused.
	for id, s := range sims {
		if st := s.Stats(); st.Refused != 0 || st.Errors != 0 {
			t.Errorf("%s: stats %+v", id, st)
		}
	}
	if near, far := sims["near"].Stats(), sims["far"].Stats(); near.Declined != 1 || far.Accepted != 1 || far.Arrived != 1 || far.Cleared != 1 {
		t.Errorf("stats near %+v, far %+v", near, far)
	}
}
