package viewer

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/boltstore"
	"github.com/skywatch/skywatch/hardware"
)

// startIntake runs a real intake: the embedded broker on loopback and a
// bolt store in a temporary file, with devices d1 and d2.
func startIntake(t *testing.T) (*alarms.Intake, alarms.Config) {
	t.Helper()
	in, cfg, _ := startIntakeStore(t)
	return in, cfg
}

// startIntakeStore is startIntake that also gives the intake's store.
func startIntakeStore(t *testing.T) (*alarms.Intake, alarms.Config, *boltstore.Store) {
	t.Helper()
	cfg := alarms.Config{
		MQTT: alarms.MQTTConfig{Address: "127.0.0.1:0", TopicPrefix: "sw"},
		Devices: []alarms.DeviceConfig{
			{ID: "d1", Name: "Village shop", Area: "village-1", Lat: 30.25, Lon: 120.17, Password: "pw-d1"},
			{ID: "d2", Area: "village-2", Model: "skywatch", Password: "pw-d2"},
		},
	}
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "alarms.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	logger := slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelWarn}))
	in, err := alarms.NewIntake(cfg, store, hardware.Decoders(), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close() })
	if err := in.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return in, cfg, store
}

// mqttDevice connects a paho client as a device.
func mqttDevice(t *testing.T, in *alarms.Intake, id string) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker("tcp://" + in.BrokerAddr()).SetClientID(id + ":test").
		SetUsername(id).SetPassword("pw-" + id).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(testTimeout) || tok.Error() != nil {
		t.Fatalf("device %s: connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(250) })
	return c
}

// publish publishes with QoS 1 and waits for the PUBACK: the intake has
// stored the message then.
func publish(t *testing.T, c paho.Client, topic string, payload any) {
	t.Helper()
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(testTimeout) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// getJSON gets path and decodes its JSON body into v, failing unless the
// status is code.
func getJSON(t *testing.T, srv *Server, path string, code int, v any) {
	t.Helper()
	resp, body := doRequest(t, "GET", baseURL(srv)+path, "", "")
	if resp.StatusCode != code {
		t.Fatalf("GET %s: %d %s, want %d", path, resp.StatusCode, body, code)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(body), v); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
}

// keys lists events as device/id.
func keys(evs []alarms.Event) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.Key())
	}
	return out
}

// The alarm API over a real intake: devices publish over MQTT, the stream
// pushes the events as they are stored, the REST API lists and filters
// them, shows devices and rejected messages, a resumed stream replays what
// it missed, and closing the server ends open streams.
func TestAlarmAPIWithIntake(t *testing.T) {
	in, cfg := startIntake(t)
	srv := startAlarmServer(t, in, nil)
	topic := func(dev, kind string) string { return fmt.Sprintf("%s/dev/%s/%s", cfg.MQTT.TopicPrefix, dev, kind) }

	first := openStream(t, baseURL(srv), "")
	d1, d2 := mqttDevice(t, in, "d1"), mqttDevice(t, in, "d2")
	var want []string
	for i := 1; i <= 6; i++ {
		class := []string{"alarm", "fire"}[i%2]
		publish(t, d1, topic("d1", "event"), fmt.Sprintf(`{"id":"e%d","class":"%s","zone":"%d"}`, i, class, i))
		want = append(want, fmt.Sprintf("d1/e%d", i))
	}
	publish(t, d2, topic("d2", "event"), `{"id":"p1","class":"panic"}`)
	want = append(want, "d2/p1")
	publish(t, d1, topic("d1", "hb"), `{"battery":15,"rssi":-70}`)
	garbage := []byte{0xff, 0xfe, 0x00, 'x', 0x80}
	publish(t, d2, topic("d2", "event"), garbage)

	// The stream: every event once, in the order stored.
	var streamed []alarms.Event
	var lastID string
	for range want {
		ev := first.next(t)
		streamed = append(streamed, eventOf(t, ev))
		lastID = ev.id
	}
	if got := keys(streamed); !slices.Equal(got, want) {
		t.Fatalf("streamed %v, want %v", got, want)
	}

	// The REST list: the same events, newest first, filtered and paged.
	list := func(query string) []alarms.Event {
		t.Helper()
		var page eventsJSON
		getJSON(t, srv, "/api/events"+query, 200, &page)
		return page.Events
	}
	all := list("")
	newestFirst := slices.Clone(want)
	slices.Reverse(newestFirst)
	if got := keys(all); !slices.Equal(got, newestFirst) {
		t.Fatalf("events %v, want %v", got, newestFirst)
	}
	for i, e := range all {
		if s := streamed[len(streamed)-1-i]; e.Offset != s.Offset || !e.ReceivedAt.Equal(s.ReceivedAt) {
			t.Errorf("listed %s (offset %s) differs from streamed (offset %s)", e.Key(), e.Offset, s.Offset)
		}
	}
	cut := url.QueryEscape(streamed[3].ReceivedAt.Format(time.RFC3339Nano)) // d1/e4
	for query, wantKeys := range map[string][]string{
		"?device=d1":                     {"d1/e6", "d1/e5", "d1/e4", "d1/e3", "d1/e2", "d1/e1"},
		"?class=fire":                    {"d1/e5", "d1/e3", "d1/e1"},
		"?area=village-2":                {"d2/p1"},
		"?device=d2&class=alarm":         {},
		"?since=" + cut:                  {"d2/p1", "d1/e6", "d1/e5", "d1/e4"},
		"?until=" + cut:                  {"d1/e3", "d1/e2", "d1/e1"},
		"?since=" + cut + "&class=alarm": {"d1/e6", "d1/e4"},
	} {
		if got := keys(list(query)); !slices.Equal(got, wantKeys) {
			t.Errorf("events%s: %v, want %v", query, got, wantKeys)
		}
	}
	var paged []alarms.Event
	pages := 0
	for cursor := ""; pages == 0 || cursor != ""; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		var page eventsJSON
		getJSON(t, srv, "/api/events?limit=3&cursor="+url.QueryEscape(cursor), 200, &page)
		paged = append(paged, page.Events...)
		cursor = page.Next
	}
	if !slices.Equal(keys(paged), keys(all)) || pages != 3 {
		t.Errorf("paged by 3: %v in %d pages, want %v in 3", keys(paged), pages, keys(all))
	}
	getJSON(t, srv, "/api/events?cursor=not-a-cursor", 400, nil)

	// The garbage payload is kept, shown in base64.
	var rejected []rejectedJSON
	getJSON(t, srv, "/api/rejected?device=d2", 200, &rejected)
	if len(rejected) != 1 || rejected[0].PayloadEncoding != "base64" || rejected[0].Topic != topic("d2", "event") {
		t.Fatalf("rejected %+v", rejected)
	}
	if raw, err := base64.StdEncoding.DecodeString(rejected[0].Payload); err != nil || string(raw) != string(garbage) {
		t.Errorf("rejected payload %q: %v", raw, err)
	}

	// Devices with their state.
	var devices []alarms.DeviceView
	getJSON(t, srv, "/api/devices", 200, &devices)
	if len(devices) != 2 || devices[0].ID != "d1" || devices[1].ID != "d2" {
		t.Fatalf("devices %+v", devices)
	}
	st := devices[0].State
	if devices[0].Area != "village-1" || devices[0].Name != "Village shop" || devices[0].Lat != 30.25 ||
		!st.Online || !st.BatteryLow || st.RSSI == nil || *st.RSSI != -70 || st.LastHeartbeat.IsZero() || st.Supervision {
		t.Errorf("device d1 %+v state %+v", devices[0], st)
	}
	var dev alarms.DeviceView
	getJSON(t, srv, "/api/devices/d1", 200, &dev)
	if got := keys(dev.LastEvents); !slices.Equal(got, keys(list("?device=d1"))) {
		t.Errorf("d1's last events %v", got)
	}
	getJSON(t, srv, "/api/devices/nope", 404, nil)

	var status alarms.IntakeStatus
	getJSON(t, srv, "/api/alarms/status", 200, &status)
	if status.Broker != "embedded" || !status.Connected || !status.StoreOK || status.Clients != 2 || status.Devices != 2 {
		t.Errorf("status %+v", status)
	}
	getJSON(t, srv, "/readyz", 200, nil)

	// A client that went away resumes with Last-Event-ID: it gets what was
	// stored meanwhile, then live events, each once.
	first.close()
	for i := 7; i <= 9; i++ {
		publish(t, d1, topic("d1", "event"), fmt.Sprintf(`{"id":"e%d","class":"tamper"}`, i))
	}
	resumed := openStream(t, baseURL(srv), lastID)
	publish(t, d2, topic("d2", "event"), `{"id":"p2","class":"panic"}`)
	var got []alarms.Event
	for range 4 {
		got = append(got, eventOf(t, resumed.next(t)))
	}
	if !slices.Equal(keys(got), []string{"d1/e7", "d1/e8", "d1/e9", "d2/p2"}) {
		t.Errorf("resumed stream %v, want d1/e7..e9 then d2/p2", keys(got))
	}

	// Closing the server ends the open streams.
	other := openStream(t, baseURL(srv), "")
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	if left := resumed.ended(t); len(left) != 0 {
		t.Errorf("resumed stream sent %v after the last event", left)
	}
	other.ended(t)
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Close hangs on open streams")
	}
}

// A client resuming with Last-Event-ID gets every event stored after its
// last one in the log's order, also one received before it: with several
// nodes, another node may store an event it received earlier only after
// this node stored the client's last one. A replay by receive time missed
// it.
func TestStreamReplayFollowsTheLog(t *testing.T) {
	in, cfg, store := startIntakeStore(t)
	srv := startAlarmServer(t, in, nil)
	topic := func(dev, kind string) string { return fmt.Sprintf("%s/dev/%s/%s", cfg.MQTT.TopicPrefix, dev, kind) }
	first := openStream(t, baseURL(srv), "")
	d1 := mqttDevice(t, in, "d1")
	publish(t, d1, topic("d1", "event"), `{"id":"a1","class":"alarm"}`)
	lastID := first.next(t).id
	first.close()

	late := alarms.Event{ID: "late", Device: "d1", Area: "village-1", Class: alarms.ClassAlarm,
		Qualifier: alarms.QualifierNew, ReceivedAt: time.Now().Add(-time.Minute)}
	if stored, err := store.AppendEvent(t.Context(), &late, time.Hour); err != nil || !stored {
		t.Fatalf("append: %v %v", stored, err)
	}
	publish(t, d1, topic("d1", "event"), `{"id":"a2","class":"alarm"}`)

	resumed := openStream(t, baseURL(srv), lastID)
	var got []alarms.Event
	for range 2 {
		got = append(got, eventOf(t, resumed.next(t)))
	}
	if !slices.Equal(keys(got), []string{"d1/late", "d1/a2"}) {
		t.Errorf("resumed stream %v, want d1/late then d1/a2", keys(got))
	}
}
