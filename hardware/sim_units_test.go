package hardware

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/skywatch/skywatch/alarms"
)

// unitRecord is one message a unit published, decoded as the incident
// engine reads it.
type unitRecord struct {
	unit  string
	pos   *recordedPos   // on {prefix}/unit/{id}/pos
	reply *recordedReply // on {prefix}/unit/{id}/reply
}

type recordedPos struct {
	Lat    *float64 `json:"lat"`
	Lon    *float64 `json:"lon"`
	Status string   `json:"status"`
	TS     time.Time
}

type recordedReply struct {
	Incident    string `json:"incident"`
	Action      string `json:"action"`
	Disposition string `json:"disposition"`
	Note        string `json:"note"`
}

// unitRecorder subscribes to the units' topics under a prefix, keeps what
// they publish in the order it arrives, and publishes dispatch messages.
type unitRecorder struct {
	t      *testing.T
	prefix string
	client mqtt.Client

	mu   sync.Mutex
	recs []unitRecord
	bad  []string
}

func startUnitRecorder(t *testing.T, broker, prefix string) *unitRecorder {
	t.Helper()
	r := &unitRecorder{t: t, prefix: prefix}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(uniqueName("rec-")).
		SetCleanSession(true) // in order: the handler runs on one goroutine
	r.client = mqtt.NewClient(opts)
	if err := waitToken(t.Context(), r.client.Connect(), failAfter); err != nil {
		t.Fatalf("recorder: connect: %v", err)
	}
	t.Cleanup(func() { r.client.Disconnect(250) })
	filters := map[string]byte{prefix + "/unit/+/pos": 1, prefix + "/unit/+/reply": 1}
	if err := waitToken(t.Context(), r.client.SubscribeMultiple(filters, r.onMessage), failAfter); err != nil {
		t.Fatalf("recorder: subscribe: %v", err)
	}
	return r
}

func (r *unitRecorder) onMessage(_ mqtt.Client, m mqtt.Message) {
	parts := strings.Split(strings.TrimPrefix(m.Topic(), r.prefix+"/unit/"), "/")
	rec := unitRecord{unit: parts[0]}
	var err error
	switch parts[1] {
	case "pos":
		rec.pos = new(recordedPos)
		err = json.Unmarshal(m.Payload(), rec.pos)
		if err == nil && (rec.pos.Lat == nil || rec.pos.Lon == nil) {
			err = fmt.Errorf("no lat or lon")
		}
		if s := rec.pos.Status; err == nil && s != "" && s != string(alarms.UnitAvailable) && s != string(alarms.UnitOffDuty) {
			err = fmt.Errorf("status %q is neither available nor off_duty", s)
		}
	case "reply":
		rec.reply = new(recordedReply)
		err = json.Unmarshal(m.Payload(), rec.reply)
		if err == nil && (rec.reply.Incident == "" || rec.reply.Action == "") {
			err = fmt.Errorf("no incident or action")
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.bad = append(r.bad, fmt.Sprintf("%s: %q: %v", m.Topic(), m.Payload(), err))
		return
	}
	r.recs = append(r.recs, rec)
}

// of returns what one unit published, in order.
func (r *unitRecorder) of(unit string) []unitRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []unitRecord
	for _, rec := range r.recs {
		if rec.unit == unit {
			out = append(out, rec)
		}
	}
	return out
}

// replies returns one unit's replies as "incident:action" in order.
func (r *unitRecorder) replies(unit string) []string {
	var out []string
	for _, rec := range r.of(unit) {
		if rec.reply != nil {
			out = append(out, rec.reply.Incident+":"+rec.reply.Action)
		}
	}
	return out
}

// positions returns one unit's position reports in order.
func (r *unitRecorder) positions(unit string) []recordedPos {
	var out []recordedPos
	for _, rec := range r.of(unit) {
		if rec.pos != nil {
			out = append(out, *rec.pos)
		}
	}
	return out
}

// check fails the test for any message that the engine would not take.
func (r *unitRecorder) check() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bad {
		r.t.Errorf("bad unit message: %s", b)
	}
}

// dispatch publishes a message to a unit as the engine does (QoS 1).
func (r *unitRecorder) dispatch(unit string, m alarms.DispatchMessage) {
	r.t.Helper()
	data, err := json.Marshal(m)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := waitToken(r.t.Context(), r.client.Publish(r.prefix+"/unit/"+unit+"/dispatch", 1, false, data), failAfter); err != nil {
		r.t.Fatalf("dispatch to %s: %v", unit, err)
	}
}

// offer makes an offer of an incident at a position.
func offer(incident string, lat, lon float64) alarms.DispatchMessage {
	now := time.Now()
	return alarms.DispatchMessage{
		Type: "offer", Incident: incident, State: alarms.StateOffered, Class: alarms.ClassPanic,
		Priority: 1, Device: "dev-1", Address: "3 Well Lane", Lat: lat, Lon: lon,
		Deadline: now.Add(time.Minute), Sent: now,
	}
}

// cleanUnitSessions removes the units' persistent sessions from the
// broker.
func cleanUnitSessions(t *testing.T, broker string, units []SimUnit) {
	t.Helper()
	for _, u := range units {
		opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(u.ID).SetCleanSession(true)
		if u.Username != "" {
			opts.SetUsername(u.Username).SetPassword(u.Password)
		}
		c := mqtt.NewClient(opts)
		if err := waitToken(context.Background(), c.Connect(), failAfter); err != nil {
			t.Errorf("clean %s: %v", u.ID, err)
			continue
		}
		c.Disconnect(250)
	}
}

// runUnitSim runs a simulator until the test ends (or stop is called) and
// checks that Run returns nil.
func runUnitSim(t *testing.T, cfg UnitSimConfig) (sim *UnitSim, stop func()) {
	t.Helper()
	t.Cleanup(func() { cleanUnitSessions(t, cfg.Broker, cfg.Units) })
	sim = NewUnitSim(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
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
	}
	t.Cleanup(stop)
	return sim, stop
}

// waitSubscribed waits for a unit's first position report, which it
// sends once it has subscribed to its dispatch topic.
func waitSubscribed(t *testing.T, rec *unitRecorder, unit string) {
	t.Helper()
	waitFor(t, unit+" reporting", func() bool { return len(rec.positions(unit)) > 0 })
}

// fastUnitConfig is a config that runs a unit's life in about a second.
func fastUnitConfig(broker, prefix string, units []SimUnit) UnitSimConfig {
	return UnitSimConfig{
		Broker:        broker,
		Prefix:        prefix,
		Units:         units,
		PositionEvery: 50 * time.Millisecond,
		AcceptDelay:   DurationRange{10 * time.Millisecond, 50 * time.Millisecond},
		OnSceneTime:   DurationRange{100 * time.Millisecond, 200 * time.Millisecond},
		TravelSpeed:   1000,
		Seed:          3,
	}
}

func TestUnitSimAcceptArriveClear(t *testing.T) {
	verifyNoLeaks(t)
	broker := testBroker(t)
	prefix := uniqueName("swtest-")
	unit := SimUnit{ID: uniqueName("u"), Username: "u", Password: "p", Kind: alarms.UnitPatrolCar, HomeLat: 30, HomeLon: 120, RadiusM: 100}
	rec := startUnitRecorder(t, broker, prefix)
	cfg := fastUnitConfig(broker, prefix, []SimUnit{unit})
	cfg.AcceptRatio = 1
	sim, stop := runUnitSim(t, cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stats %+v, replies %v", sim.Stats(), rec.replies(unit.ID))
		}
	})
	waitSubscribed(t, rec, unit.ID)

	// The incident is 2 km north of home: two seconds' drive.
	incLat, incLon := offsetM(unit.HomeLat, unit.HomeLon, 2000, 0)
	rec.dispatch(unit.ID, offer("inc-1", incLat, incLon))
	want := []string{"inc-1:accept", "inc-1:en_route", "inc-1:arrived", "inc-1:cleared"}
	waitFor(t, "accept, en_route, arrived, cleared", func() bool { return len(rec.replies(unit.ID)) >= len(want) })
	// It reports itself available again after clearing.
	waitFor(t, "available after clearing", func() bool {
		recs := rec.of(unit.ID)
		return recs[len(recs)-1].pos != nil && recs[len(recs)-1].pos.Status == "available"
	})
	stop()
	rec.check()
	if got := rec.replies(unit.ID); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("replies %v, want %v", got, want)
	}

	// Between en_route and arrived the unit reported positions without a
	// status (it is busy), closing in on the incident, some on the way;
	// its last one was at the incident. Before, it was available.
	var (
		phase  string
		dists  []float64
		before int
	)
	for _, r := range rec.of(unit.ID) {
		if r.reply != nil {
			phase = r.reply.Action
			if phase == "cleared" {
				if d := alarms.Disposition(r.reply.Disposition); !d.Valid() || d == alarms.DispUnfounded || d == alarms.DispDuplicate {
					t.Errorf("cleared with disposition %q", r.reply.Disposition)
				}
			}
			continue
		}
		p := r.pos
		switch phase {
		case "":
			before++
			if p.Status != "available" {
				t.Errorf("status %q before the offer", p.Status)
			}
		case "en_route":
			if p.Status != "" {
				t.Errorf("status %q en route", p.Status)
			}
			dists = append(dists, alarms.Distance(*p.Lat, *p.Lon, incLat, incLon))
		case "arrived":
			if p.Status != "" {
				t.Errorf("status %q on scene", p.Status)
			}
		}
	}
	if before == 0 {
		t.Error("no position before the offer")
	}
	if len(dists) < 3 {
		t.Fatalf("%d positions en route, want a few: %v", len(dists), dists)
	}
	mid := 0
	for i, d := range dists {
		if i > 0 && d > dists[i-1]+1 {
			t.Errorf("moved away from the incident: %v", dists)
			break
		}
		if d > 100 && d < 1800 {
			mid++
		}
	}
	if mid == 0 {
		t.Errorf("no position on the way: %v", dists)
	}
	if last := dists[len(dists)-1]; last > 1 {
		t.Errorf("last position en route %.1f m from the incident, want at it", last)
	}
	st := sim.Stats()
	if st.Offers != 1 || st.Accepted != 1 || st.Arrived != 1 || st.Cleared != 1 || st.Declined+st.Ignored+st.Errors+st.Refused != 0 || st.Positions == 0 {
		t.Errorf("stats %+v", st)
	}
	if st.Connected != 0 || st.Units != 0 || st.Connects != 1 {
		t.Errorf("after Run: stats %+v", st)
	}
}

func TestUnitSimDecline(t *testing.T) {
	verifyNoLeaks(t)
	broker := testBroker(t)
	prefix := uniqueName("swtest-")
	unit := SimUnit{ID: uniqueName("u"), Kind: alarms.UnitFootPatrol, HomeLat: 30, HomeLon: 120}
	rec := startUnitRecorder(t, broker, prefix)
	cfg := fastUnitConfig(broker, prefix, []SimUnit{unit})
	cfg.DeclineRatio = 1
	sim, stop := runUnitSim(t, cfg)
	waitSubscribed(t, rec, unit.ID)

	// A repeated delivery of one offer is answered once.
	o := offer("inc-1", 30.01, 120)
	rec.dispatch(unit.ID, o)
	rec.dispatch(unit.ID, o)
	waitFor(t, "a decline", func() bool { return len(rec.replies(unit.ID)) >= 1 })
	rec.dispatch(unit.ID, offer("inc-2", 30.01, 120))
	waitFor(t, "two declines", func() bool { return len(rec.replies(unit.ID)) >= 2 })
	stop()
	rec.check()
	if got, want := strings.Join(rec.replies(unit.ID), " "), "inc-1:decline inc-2:decline"; got != want {
		t.Fatalf("replies %q, want %q", got, want)
	}
	st := sim.Stats()
	if st.Offers != 2 || st.Declined != 2 || st.Accepted+st.Ignored+st.Errors != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestUnitSimIgnore(t *testing.T) {
	verifyNoLeaks(t)
	broker := testBroker(t)
	prefix := uniqueName("swtest-")
	unit := SimUnit{ID: uniqueName("u"), Kind: alarms.UnitGridManager, HomeLat: 30, HomeLon: 120}
	rec := startUnitRecorder(t, broker, prefix)
	cfg := fastUnitConfig(broker, prefix, []SimUnit{unit})
	cfg.IgnoreRatio = 1
	sim, stop := runUnitSim(t, cfg)
	waitSubscribed(t, rec, unit.ID)

	rec.dispatch(unit.ID, offer("inc-1", 30.01, 120))
	rec.dispatch(unit.ID, offer("inc-2", 30.01, 120))
	waitFor(t, "two offers ignored", func() bool { return sim.Stats().Ignored == 2 })
	stop()
	rec.check()
	// An ignored offer does not make the unit busy: the second offer was
	// ignored too, not declined.
	if got := rec.replies(unit.ID); len(got) != 0 {
		t.Fatalf("replies %v, want none", got)
	}
}

func TestUnitSimCancelAndReconnect(t *testing.T) {
	verifyNoLeaks(t)
	broker := testBroker(t)
	prefix := uniqueName("swtest-")
	unit := SimUnit{ID: uniqueName("u"), Kind: alarms.UnitVolunteerPatrol, HomeLat: 30, HomeLon: 120, RadiusM: 100}
	rec := startUnitRecorder(t, broker, prefix)
	cfg := fastUnitConfig(broker, prefix, []SimUnit{unit})
	cfg.AcceptRatio = 1
	cfg.TravelSpeed = 100 // 100 s to the incident: it is cancelled on the way
	sim, stop := runUnitSim(t, cfg)
	waitSubscribed(t, rec, unit.ID)

	incLat, incLon := offsetM(unit.HomeLat, unit.HomeLon, 10_000, 0)
	rec.dispatch(unit.ID, offer("inc-1", incLat, incLon))
	waitFor(t, "en route", func() bool { return len(rec.replies(unit.ID)) == 2 })
	// A unit on an incident declines another at once.
	rec.dispatch(unit.ID, offer("inc-x", incLat, incLon))
	waitFor(t, "inc-x declined", func() bool { return len(rec.replies(unit.ID)) == 3 })
	rec.dispatch(unit.ID, alarms.DispatchMessage{Type: "cancelled", Incident: "inc-1", State: alarms.StateCancelled, Sent: time.Now()})
	waitFor(t, "cancelled", func() bool { return sim.Stats().Cancelled == 1 })
	n := len(rec.of(unit.ID))
	waitFor(t, "available after the cancel", func() bool {
		recs := rec.of(unit.ID)
		return len(recs) > n && recs[len(recs)-1].pos != nil && recs[len(recs)-1].pos.Status == "available"
	})

	// Another client taking the unit's client id throws it off the broker
	// (and its clean session drops the subscription): the unit comes back,
	// subscribes again, and takes the next offer.
	intruder := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(unit.ID).SetCleanSession(true))
	if err := waitToken(t.Context(), intruder.Connect(), failAfter); err != nil {
		t.Fatal(err)
	}
	intruder.Disconnect(0)
	waitFor(t, "a reconnection", func() bool { st := sim.Stats(); return st.Connects >= 2 && st.Connected == 1 })
	n = len(rec.positions(unit.ID))
	waitFor(t, "a report after reconnecting", func() bool { return len(rec.positions(unit.ID)) > n })
	rec.dispatch(unit.ID, offer("inc-2", incLat, incLon))
	waitFor(t, "inc-2 accepted", func() bool { return strings.Contains(strings.Join(rec.replies(unit.ID), " "), "inc-2:accept") })
	stop()
	rec.check()
	if got := strings.Join(rec.replies(unit.ID), " "); !strings.HasPrefix(got, "inc-1:accept inc-1:en_route inc-x:decline inc-2:accept") {
		t.Errorf("replies %q", got)
	}
	if st := sim.Stats(); st.Cleared != 0 || st.Arrived != 0 || st.Accepted != 2 || st.Declined != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestUnitSimPatrolStaysOnBeat(t *testing.T) {
	verifyNoLeaks(t)
	broker := testBroker(t)
	prefix := uniqueName("swtest-")
	id := uniqueName("u")
	units := []SimUnit{
		{ID: id + "-car", Kind: alarms.UnitPatrolCar, HomeLat: 30, HomeLon: 120, RadiusM: 300},
		{ID: id + "-foot", Kind: alarms.UnitFootPatrol, HomeLat: 30.1, HomeLon: 120.1, RadiusM: 200},
		{ID: id + "-north", Kind: alarms.UnitGridManager, HomeLat: 60, HomeLon: 10, RadiusM: 500},
	}
	rec := startUnitRecorder(t, broker, prefix)
	cfg := fastUnitConfig(broker, prefix, units)
	cfg.PositionEvery = 20 * time.Millisecond
	cfg.TravelSpeed = 2000 // patrols at 1 km/s: many legs in a second
	sim, stop := runUnitSim(t, cfg)
	waitFor(t, "positions", func() bool {
		for _, u := range units {
			if len(rec.positions(u.ID)) < 50 {
				return false
			}
		}
		return true
	})
	stop()
	rec.check()
	for _, u := range units {
		distinct := map[[2]float64]bool{}
		for _, p := range rec.positions(u.ID) {
			if d := alarms.Distance(u.HomeLat, u.HomeLon, *p.Lat, *p.Lon); d > u.RadiusM {
				t.Errorf("%s: %.1f m from home, radius %g", u.ID, d, u.RadiusM)
			}
			if p.Status != "available" || p.TS.IsZero() {
				t.Errorf("%s: status %q, ts %v", u.ID, p.Status, p.TS)
			}
			distinct[[2]float64{*p.Lat, *p.Lon}] = true
		}
		if len(distinct) < 5 {
			t.Errorf("%s: only %d distinct positions", u.ID, len(distinct))
		}
	}
	if st := sim.Stats(); st.Positions < 150 || st.Offers != 0 || st.Errors != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestUnitSimConfig(t *testing.T) {
	good := UnitSimConfig{Broker: "tcp://127.0.0.1:1883", Units: []SimUnit{{ID: "a", HomeLat: 30, HomeLon: 120}}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		edit       func(*UnitSimConfig)
	}{
		{"no broker", "broker: required", func(c *UnitSimConfig) { c.Broker = "" }},
		{"websocket", "broker: scheme", func(c *UnitSimConfig) { c.Broker = "ws://127.0.0.1:80" }},
		{"no port", "broker: no port", func(c *UnitSimConfig) { c.Broker = "tcp://127.0.0.1" }},
		{"negative interval", "position_every", func(c *UnitSimConfig) { c.PositionEvery = -1 }},
		{"negative ratio", "decline_ratio", func(c *UnitSimConfig) { c.DeclineRatio = -0.1 }},
		{"ratio NaN", "accept_ratio", func(c *UnitSimConfig) { c.AcceptRatio = math.NaN() }},
		{"speed", "travel_speed", func(c *UnitSimConfig) { c.TravelSpeed = -1 }},
		{"delay range", "accept_delay.max", func(c *UnitSimConfig) { c.AcceptDelay = DurationRange{2 * time.Second, time.Second} }},
		{"scene range", "on_scene_time.min", func(c *UnitSimConfig) { c.OnSceneTime = DurationRange{-1, time.Second} }},
		{"no id", "units[1].id: required", func(c *UnitSimConfig) { c.Units = append(c.Units, SimUnit{}) }},
		{"id with wildcard", "units[0].id", func(c *UnitSimConfig) { c.Units = []SimUnit{{ID: "a+"}} }},
		{"repeated id", "units[1].id: \"a\" is repeated", func(c *UnitSimConfig) { c.Units = append(c.Units, c.Units[0]) }},
		{"kind", "units[0].kind", func(c *UnitSimConfig) { c.Units = []SimUnit{{ID: "a", Kind: "helicopter"}} }},
		{"latitude", "units[0].home_lat", func(c *UnitSimConfig) { c.Units = []SimUnit{{ID: "a", HomeLat: 91}} }},
		{"longitude", "units[0].home_lon", func(c *UnitSimConfig) { c.Units = []SimUnit{{ID: "a", HomeLon: -181}} }},
		{"radius", "units[0].radius_m", func(c *UnitSimConfig) { c.Units = []SimUnit{{ID: "a", RadiusM: -5}} }},
		{"password without user", "units[0].username", func(c *UnitSimConfig) { c.Units = []SimUnit{{ID: "a", Password: "p"}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			cfg.Units = append([]SimUnit(nil), good.Units...)
			tc.edit(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want %q", err, tc.want)
			}
			if err := NewUnitSim(cfg).Run(t.Context()); err == nil {
				t.Fatal("Run accepted a bad config")
			}
		})
	}
}

func TestUnitSimRatios(t *testing.T) {
	for _, tc := range []struct {
		name         string
		a, d, i      float64
		wantA, wantD float64
		wantI        float64
	}{
		{"defaults", 0, 0, 0, 0.85, 0.1, 0.05},
		{"accept only", 1, 0, 0, 1, 0, 0},
		{"decline only", 0, 1, 0, 0, 1, 0},
		{"ignore only", 0, 0, 1, 0, 0, 1},
		{"rest ignored", 0.5, 0.2, 0, 0.5, 0.2, 0.3},
		{"weights", 0.6, 0.6, 0, 0.5, 0.5, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := UnitSimConfig{AcceptRatio: tc.a, DeclineRatio: tc.d, IgnoreRatio: tc.i}.withDefaults()
			if math.Abs(c.AcceptRatio-tc.wantA) > 1e-9 || math.Abs(c.DeclineRatio-tc.wantD) > 1e-9 || math.Abs(c.IgnoreRatio-tc.wantI) > 1e-9 {
				t.Errorf("ratios %g %g %g, want %g %g %g", c.AcceptRatio, c.DeclineRatio, c.IgnoreRatio, tc.wantA, tc.wantD, tc.wantI)
			}
		})
	}
}

func TestSimUnits(t *testing.T) {
	areas := []string{"g1", "g2", "g3", "g4", "g5"}
	fleet := SimUnits(300, "p", areas, 7)
	if fmt.Sprint(fleet) != fmt.Sprint(SimUnits(300, "p", areas, 7)) {
		t.Fatal("the same seed made another fleet")
	}
	if fmt.Sprint(fleet) == fmt.Sprint(SimUnits(300, "p", areas, 8)) {
		t.Fatal("another seed made the same fleet")
	}
	cfg := UnitSimConfig{Broker: "tcp://127.0.0.1:1883", Units: fleet}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	kinds := map[alarms.UnitKind]int{}
	perArea := map[string]int{}
	centre := map[string][2]float64{}
	for _, u := range fleet {
		kinds[u.Kind]++
		perArea[u.Area]++
		if u.Username != u.ID || len(u.Password) != 16 || !strings.HasPrefix(u.ID, "p") {
			t.Errorf("unit %+v", u)
		}
		c := centre[u.Area]
		centre[u.Area] = [2]float64{c[0] + u.HomeLat/60, c[1] + u.HomeLon/60}
	}
	for _, k := range []alarms.UnitKind{alarms.UnitPatrolCar, alarms.UnitFootPatrol, alarms.UnitVolunteerPatrol, alarms.UnitGridManager} {
		if kinds[k] < 300/10 {
			t.Errorf("%d units of kind %s", kinds[k], k)
		}
	}
	for _, a := range areas {
		if perArea[a] != 60 {
			t.Errorf("area %s: %d units, want 60", a, perArea[a])
		}
	}
	// Areas are kilometres apart; a unit's home is near its area's.
	for i, a := range areas {
		for _, b := range areas[i+1:] {
			if d := alarms.Distance(centre[a][0], centre[a][1], centre[b][0], centre[b][1]); d < 3000 {
				t.Errorf("areas %s and %s: %.0f m apart", a, b, d)
			}
		}
	}
	for _, u := range fleet {
		if d := alarms.Distance(u.HomeLat, u.HomeLon, centre[u.Area][0], centre[u.Area][1]); d > 2000 {
			t.Errorf("%s: home %.0f m from its area's centre", u.ID, d)
		}
	}
	// A small fleet still has every kind.
	small := map[alarms.UnitKind]bool{}
	for _, u := range SimUnits(4, "s", nil, 1) {
		small[u.Kind] = true
		if u.Area != "" {
			t.Errorf("area %q without areas", u.Area)
		}
	}
	if len(small) != 4 {
		t.Errorf("4 units: kinds %v", small)
	}
}
