package alarms_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/redisstore"
	"github.com/skywatch/skywatch/hardware"

	"github.com/skywatch/skywatch/internal/testredis"
)

// fullStore is a store for both the intake and the engine.
type fullStore interface {
	alarms.Store
	alarms.IncidentStore
}

// storage makes fresh storage for one test (a bolt file, or a Redis key
// prefix when SKYWATCH_TEST_REDIS is set) and returns a function that
// opens a store on it; each store is closed at the end of the test, and
// may be closed earlier to imitate a restart.
func storage(t *testing.T) func() fullStore {
	t.Helper()
	url := os.Getenv("SKYWATCH_TEST_REDIS")
	if url == "" {
		path := filepath.Join(t.TempDir(), "alarms.db")
		return func() fullStore { return openBolt(t, path) }
	}
	prefix := testredis.Prefix(t, url, "skywatch-test:")
	return func() fullStore {
		s, err := redisstore.Open(t.Context(), redisstore.Config{URL: url, KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
}

// metresNorth moves a latitude by m metres.
func metresNorth(lat, m float64) float64 { return lat + m/111195 }

// Where the test device is.
const (
	devLat = 30.0
	devLon = 120.0
)

// incidentConfig is a jurisdiction tree (county c > township t1 > villages
// v1, v2 > grid g1 under v1), a panic button p1 in g1, and units:
// u1 (g1, 200 m north of p1), u2 (g1, 400 m), u3 (g1, 900 m, foot patrol),
// t1car (township t1, 1500 m), v2car (village v2, 300 m).
func incidentConfig(t *testing.T) alarms.Config {
	cfg := testConfig(t)
	cfg.Areas = []alarms.AreaConfig{
		{ID: "c", Kind: alarms.AreaCounty},
		{ID: "t1", Parent: "c", Kind: alarms.AreaTownship},
		{ID: "v1", Parent: "t1", Kind: alarms.AreaVillage},
		{ID: "v2", Parent: "t1", Kind: alarms.AreaVillage},
		{ID: "g1", Parent: "v1", Kind: alarms.AreaGrid},
	}
	for i := range cfg.Devices {
		cfg.Devices[i].Area = "v2"
	}
	cfg.Devices = append(cfg.Devices, alarms.DeviceConfig{ID: "p1", Area: "g1", Password: "pw-p1",
		Lat: devLat, Lon: devLon, Address: "3 Well Lane", Cameras: []string{"cam-linked"}})
	unit := func(id, area string, kind alarms.UnitKind, m float64) alarms.UnitConfig {
		return alarms.UnitConfig{ID: id, Password: "pw-" + id, Area: area, Kind: kind, Lat: metresNorth(devLat, m), Lon: devLon}
	}
	cfg.Units = []alarms.UnitConfig{
		unit("u1", "g1", alarms.UnitPatrolCar, 200),
		unit("u2", "g1", alarms.UnitPatrolCar, 400),
		unit("u3", "g1", alarms.UnitFootPatrol, 900),
		unit("t1car", "t1", alarms.UnitPatrolCar, 1500),
		unit("v2car", "v2", alarms.UnitPatrolCar, 300),
	}
	return cfg
}

// testCameras are camera sites around p1.
func testCameras() []alarms.CameraSite {
	return []alarms.CameraSite{
		{ID: "cam-linked", Lat: metresNorth(devLat, 2000), Lon: devLon},
		{ID: "cam-50", Lat: metresNorth(devLat, 50), Lon: devLon},
		{ID: "cam-250", Lat: metresNorth(devLat, 250), Lon: devLon},
		{ID: "cam-600", Lat: metresNorth(devLat, 600), Lon: devLon},
	}
}

// system is an intake with its engine.
type system struct {
	cfg alarms.Config
	in  *alarms.Intake
	eng *alarms.Engine
}

// url is the embedded broker's URL (or the external one's).
func (s *system) url() string {
	if s.cfg.MQTT.URL != "" {
		return s.cfg.MQTT.URL
	}
	return "tcp://" + s.in.BrokerAddr()
}

// startSystem starts an intake and its engine on store; both are closed
// at the end of the test (and may be closed earlier).
func startSystem(t *testing.T, cfg alarms.Config, store fullStore) *system {
	t.Helper()
	in, err := alarms.NewIntake(cfg, store, hardware.Decoders(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := alarms.NewEngine(in, store, alarms.EngineOptions{Cameras: testCameras(), Poll: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close() })
	t.Cleanup(func() { _ = eng.Close() }) // runs first
	if err := in.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &system{cfg: cfg, in: in, eng: eng}
}

func (s *system) close() {
	_ = s.eng.Close()
	_ = s.in.Close()
}

// unitClient is a patrol unit over MQTT.
type unitClient struct {
	t      *testing.T
	id     string
	c      paho.Client
	prefix string
	msgs   chan alarms.DispatchMessage
}

// connectUnit connects unit id and subscribes to its dispatch topic.
func connectUnit(t *testing.T, s *system, id string) *unitClient {
	t.Helper()
	u := &unitClient{t: t, id: id, prefix: s.cfg.MQTT.TopicPrefix, msgs: make(chan alarms.DispatchMessage, 100)}
	user, pass := id, "pw-"+id
	if s.cfg.MQTT.URL != "" {
		user, pass = "", ""
	}
	u.c = connect(t, s.url(), user, pass, nil)
	tok := u.c.Subscribe(u.topic("dispatch"), 1, func(_ paho.Client, m paho.Message) {
		var dm alarms.DispatchMessage
		if err := json.Unmarshal(m.Payload(), &dm); err != nil {
			t.Errorf("unit %s: bad dispatch message %q: %v", id, m.Payload(), err)
			return
		}
		select {
		case u.msgs <- dm:
		default:
			t.Errorf("unit %s: too many dispatch messages", id)
		}
	})
	if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("unit %s: subscribe: %v", id, tok.Error())
	}
	return u
}

func (u *unitClient) topic(kind string) string {
	return fmt.Sprintf("%s/unit/%s/%s", u.prefix, u.id, kind)
}

// report publishes a position, metres north of the device.
func (u *unitClient) report(m float64, status alarms.UnitStatus) {
	u.t.Helper()
	b, _ := json.Marshal(map[string]any{"lat": metresNorth(devLat, m), "lon": devLon, "status": status})
	publish(u.t, u.c, u.topic("pos"), string(b))
}

// reply publishes a reply about an incident.
func (u *unitClient) reply(incident string, action alarms.ReplyAction, disp alarms.Disposition) {
	u.t.Helper()
	b, _ := json.Marshal(map[string]any{"incident": incident, "action": action, "disposition": disp, "note": "from " + u.id})
	publish(u.t, u.c, u.topic("reply"), string(b))
}

// next waits for the unit's next dispatch message.
func (u *unitClient) next(what string) alarms.DispatchMessage {
	u.t.Helper()
	select {
	case m := <-u.msgs:
		return m
	case <-time.After(20 * time.Second):
		u.t.Fatalf("unit %s: no %s message", u.id, what)
	}
	return alarms.DispatchMessage{}
}

// expect waits for the unit's next message and checks its type.
func (u *unitClient) expect(typ, incident string) alarms.DispatchMessage {
	u.t.Helper()
	m := u.next(typ)
	if m.Type != typ || (incident != "" && m.Incident != incident) {
		u.t.Fatalf("unit %s: got %s of %s (%s), want %s of %s", u.id, m.Type, m.Incident, m.Reason, typ, incident)
	}
	return m
}

// quiet checks that the unit gets no message for a while.
func (u *unitClient) quiet(d time.Duration) {
	u.t.Helper()
	select {
	case m := <-u.msgs:
		u.t.Fatalf("unit %s: unexpected %s of %s (%s)", u.id, m.Type, m.Incident, m.Reason)
	case <-time.After(d):
	}
}

// waitUnit waits until the engine shows a unit's status.
func waitUnit(t *testing.T, eng *alarms.Engine, id string, want alarms.UnitStatus) {
	t.Helper()
	waitFor(t, fmt.Sprintf("unit %s %s", id, want), func() bool {
		v, err := eng.Unit(t.Context(), id)
		return err == nil && v.Status == want
	})
}

// waitIncident waits until the device's latest incident satisfies cond.
func waitIncident(t *testing.T, eng *alarms.Engine, what string, cond func(alarms.Incident) bool) alarms.Incident {
	t.Helper()
	var got alarms.Incident
	waitFor(t, what, func() bool {
		page, err := eng.Incidents(t.Context(), alarms.IncidentQuery{Limit: 1})
		if err != nil || len(page.Incidents) == 0 {
			return false
		}
		got = page.Incidents[0]
		return cond(got)
	})
	return got
}

// actions lists the actions of a timeline.
func actions(inc alarms.Incident) []string {
	var out []string
	for _, e := range inc.Timeline {
		out = append(out, e.Action)
	}
	return out
}
