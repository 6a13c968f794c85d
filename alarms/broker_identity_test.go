package alarms_test

import (
	"encoding/json"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skywatch/skywatch/alarms"
)

// failAfter bounds a wait that should end at once, generously: the test
// machines are slow and shared.
const failAfter = 20 * time.Second

func timeout() <-chan time.Time { return time.After(failAfter) }

// metric reads a counter or gauge of the intake's collector (0 when it is
// not exported), with label value lv when the metric has one.
func metric(t *testing.T, in *alarms.Intake, name, lv string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(in.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if lv != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != lv) {
				continue
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}

// dispatchInbox collects what a client receives on any topic.
func dispatchInbox() (chan paho.Message, paho.MessageHandler) {
	ch := make(chan paho.Message, 100)
	return ch, func(_ paho.Client, m paho.Message) {
		select {
		case ch <- m:
		default:
		}
	}
}

// A device connecting with a unit's client id is refused ("identifier
// rejected"): it does not get the offer queued in the unit's persistent
// session, which the unit gets when it comes back, and a live unit is not
// kicked off.
func TestBrokerClientIDIsTheIdentity(t *testing.T) {
	cfg := incidentConfig(t)
	s := startSystem(t, cfg, storage(t)())

	// u1 keeps a persistent session, reports, and goes offline.
	inbox, handler := dispatchInbox()
	persistent := func(o *paho.ClientOptions) {
		o.SetCleanSession(false).SetDefaultPublishHandler(handler)
	}
	u1 := connect(t, s.url(), "u1", "pw-u1", persistent)
	tok := u1.Subscribe(cfg.MQTT.TopicPrefix+"/unit/u1/dispatch", 1, nil)
	if !tok.WaitTimeout(failAfter) || tok.Error() != nil {
		t.Fatalf("u1 subscribe: %v", tok.Error())
	}
	b, _ := json.Marshal(map[string]any{"lat": metresNorth(devLat, 200), "lon": devLon, "status": alarms.UnitAvailable})
	publish(t, u1, cfg.MQTT.TopicPrefix+"/unit/u1/pos", string(b))
	waitUnit(t, s.eng, "u1", alarms.UnitAvailable)
	u1.Disconnect(250)

	// The offer waits in u1's session.
	p1 := connect(t, s.url(), "p1", "pw-p1", nil)
	publish(t, p1, devTopic(cfg, "p1", "event"), `{"id":"takeover-1","class":"panic"}`)
	waitIncident(t, s.eng, "an offer to u1", func(inc alarms.Incident) bool {
		return inc.Offer != nil && inc.Offer.Unit == "u1"
	})

	// p1's credentials with u1's client id, persistent as the unit.
	stolen, stolenHandler := dispatchInbox()
	thief := paho.NewClient(paho.NewClientOptions().AddBroker(s.url()).SetClientID("u1").SetCleanSession(false).
		SetUsername("p1").SetPassword("pw-p1").SetAutoReconnect(false).SetDefaultPublishHandler(stolenHandler))
	tok = thief.Connect()
	if !tok.WaitTimeout(failAfter) {
		t.Fatal("connect as u1 with p1's password: no answer")
	}
	if err := tok.Error(); err == nil || !strings.Contains(err.Error(), "identifier rejected") {
		thief.Disconnect(0)
		t.Fatalf("connect as u1 with p1's password: %v, want identifier rejected", err)
	}

	// u1 comes back and gets its offer.
	u1 = connect(t, s.url(), "u1", "pw-u1", persistent)
	select {
	case m := <-inbox:
		var dm alarms.DispatchMessage
		if err := json.Unmarshal(m.Payload(), &dm); err != nil || dm.Type != "offer" {
			t.Fatalf("u1 got %q on %s, want its offer", m.Payload(), m.Topic())
		}
	case <-timeout():
		t.Fatal("u1 did not get the offer queued in its session")
	}
	if len(stolen) != 0 {
		t.Fatalf("the device got %d of u1's messages", len(stolen))
	}

	// A live unit stays connected when a device tries its id.
	u2 := connectUnit(t, s, "u2")
	thief = paho.NewClient(paho.NewClientOptions().AddBroker(s.url()).SetClientID("u2").
		SetUsername("p1").SetPassword("pw-p1").SetAutoReconnect(false))
	if tok := thief.Connect(); !tok.WaitTimeout(failAfter) || tok.Error() == nil {
		thief.Disconnect(0)
		t.Fatal("connect as u2 with p1's password: accepted")
	}
	u2.report(400, alarms.UnitAvailable) // fails if u2 lost its connection
	// paho tries MQTT 3.1.1, then 3.1: two refusals or more.
	if got := metric(t, s.in, "skywatch_alarms_mqtt_client_id_refused_total", ""); got < 2 {
		t.Fatalf("client_id_refused_total %v, want 2 or more", got)
	}

	// An empty client id is given the device's own; "{id}:..." is a second,
	// clean session of the same device.
	for _, id := range []string{"", "p1:tool"} {
		c := connect(t, s.url(), "p1", "pw-p1", func(o *paho.ClientOptions) { o.SetClientID(id) })
		publish(t, c, devTopic(cfg, "p1", "hb"), `{}`)
	}
}

// A last will is published only where its client may publish: a device
// cannot leave a fake offer on a unit's dispatch topic by dropping its
// connection.
func TestBrokerWillOnlyOnOwnTopics(t *testing.T) {
	cfg := incidentConfig(t)
	s := startSystem(t, cfg, storage(t)())
	u2 := connectUnit(t, s, "u2")

	var conn net.Conn
	fake := `{"type":"offer","incident":"fake","address":"trap"}`
	c := connect(t, s.url(), "p1", "pw-p1", func(o *paho.ClientOptions) {
		o.SetWill(cfg.MQTT.TopicPrefix+"/unit/u2/dispatch", fake, 1, false).
			SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
				var err error
				conn, err = net.Dial("tcp", u.Host)
				return conn, err
			})
	})
	_ = c
	if got := metric(t, s.in, "skywatch_alarms_mqtt_wills_dropped_total", ""); got != 1 {
		t.Fatalf("wills_dropped_total %v, want 1", got)
	}
	_ = conn.Close() // an abnormal end: mochi sends the will, if kept
	waitFor(t, "the device's connection to end", func() bool { return s.in.Status().Clients == 1 })

	// u2's next message is the engine's answer to its reply, not the will.
	u2.reply("no-such-incident", alarms.ReplyAccept, "")
	if m := u2.next("error"); m.Type != "error" {
		t.Fatalf("u2 got %s of %s, want the error answer only", m.Type, m.Incident)
	}
}

// A unit cannot share a device's id at the embedded broker: one client id
// would name both.
func TestConfigUnitIDIsNoDeviceID(t *testing.T) {
	cfg := testConfig(t)
	cfg.Units = append(cfg.Units, alarms.UnitConfig{ID: "d2", Username: "car-d2", Password: "x"})
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "units[1].id") {
		t.Fatalf("Validate: %v, want an error naming units[1].id", err)
	}
}
