package alarms_test

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/hardware"
)

// An event is stored before its PUBACK, once however often it is sent, and
// reaches a live subscriber once.
func TestEmbeddedStoredOnceBeforeAck(t *testing.T) {
	cfg := testConfig(t)
	store := newStore(t)
	in := startIntake(t, cfg, store)
	live := in.Subscribe(t.Context())
	c := connect(t, "tcp://"+in.BrokerAddr(), "d1", "pw-d1", nil)

	topic := devTopic(cfg, "d1", "event")
	publish(t, c, topic, `{"id":"e1","class":"alarm","zone":"3"}`)
	// The PUBACK came: the event must be in the store already, no waiting.
	if got := withID(events(t, store, "d1"), "e1"); len(got) != 1 {
		t.Fatalf("after PUBACK: %d events e1 stored, want 1", len(got))
	}
	publish(t, c, topic, `{"id":"e1","class":"alarm","zone":"3"}`) // a retransmission
	// No id: the same content within the window is one event.
	publish(t, c, topic, `{"class":"panic"}`)
	publish(t, c, topic, `{"class":"panic"}`)

	evs := events(t, store, "d1")
	var alarmsN, panics int
	for _, e := range evs {
		switch e.Class {
		case alarms.ClassAlarm:
			alarmsN++
		case alarms.ClassPanic:
			panics++
			if !e.SyntheticID || !strings.HasPrefix(e.ID, "c-") || len(e.ID) != 2+32 {
				t.Errorf("event without id got ID %q synthetic %v", e.ID, e.SyntheticID)
			}
		}
	}
	if alarmsN != 1 || panics != 1 {
		t.Fatalf("stored %d alarms and %d panics, want 1 and 1: %+v", alarmsN, panics, evs)
	}
	e := withID(evs, "e1")[0]
	if e.Device != "d1" || e.Area != "village-1" || e.Source != "skywatch" || e.Zone != "3" || e.ReceivedAt.IsZero() {
		t.Errorf("server fields not stamped: %+v", e)
	}

	var got []alarms.Event
	timeout := time.After(10 * time.Second)
	for len(got) < 2 {
		select {
		case e := <-live:
			got = append(got, e)
		case <-timeout:
			t.Fatalf("live subscriber got %d events, want 2", len(got))
		}
	}
	select {
	case e := <-live:
		t.Fatalf("live subscriber got a duplicate: %+v", e)
	case <-time.After(200 * time.Millisecond):
	}
	if got[0].ID != "e1" || got[0].Offset == "" {
		t.Errorf("first live event %+v, want e1 with its offset", got[0])
	}
	st := in.Status()
	if st.Broker != alarms.BrokerEmbedded || !st.Connected || !st.StoreOK || st.Clients != 1 {
		t.Errorf("status %+v", st)
	}
}

// Events that arrive out of order and with device clocks hours off keep
// the device time and are ordered by the server's receive time.
func TestEmbeddedOutOfOrderWrongClock(t *testing.T) {
	cfg := testConfig(t)
	store := newStore(t)
	in := startIntake(t, cfg, store)
	c := connect(t, "tcp://"+in.BrokerAddr(), "d2", "pw-d2", nil)
	topic := devTopic(cfg, "d2", "event")

	past := time.Now().Add(-5 * time.Hour).Truncate(time.Second)
	future := time.Now().Add(3 * time.Hour).Truncate(time.Second)
	t0 := time.Now()
	publish(t, c, topic, `{"id":"o2","seq":2,"class":"tamper","ts":"`+past.Format(time.RFC3339)+`"}`)
	time.Sleep(5 * time.Millisecond) // distinct receive times
	publish(t, c, topic, `{"id":"o1","seq":1,"class":"tamper","ts":"`+future.Format(time.RFC3339)+`"}`)
	t1 := time.Now()

	evs := events(t, store, "d2")
	if len(evs) != 2 || evs[0].ID != "o1" || evs[1].ID != "o2" {
		t.Fatalf("events %+v, want o1 then o2 (newest received first)", evs)
	}
	for i, want := range []time.Time{future, past} {
		e := evs[i]
		if !e.DeviceTime.Equal(want) {
			t.Errorf("%s: device time %v, want %v", e.ID, e.DeviceTime, want)
		}
		if e.ReceivedAt.Before(t0.Add(-time.Second)) || e.ReceivedAt.After(t1.Add(time.Second)) {
			t.Errorf("%s: received at %v, not the server's time (%v..%v)", e.ID, e.ReceivedAt, t0, t1)
		}
	}
	if !evs[0].ReceivedAt.After(evs[1].ReceivedAt) {
		t.Errorf("receive times not in arrival order: %v, %v", evs[0].ReceivedAt, evs[1].ReceivedAt)
	}
}

// Wrong passwords and unknown users are refused at CONNECT; a bcrypt hash
// is accepted, also for a reconnect (the cache).
func TestEmbeddedAuth(t *testing.T) {
	cfg := testConfig(t)
	in := startIntake(t, cfg, newStore(t))
	url := "tcp://" + in.BrokerAddr()
	for _, tc := range []struct{ user, pass string }{
		{"d1", "wrong"}, {"d3", "pw-d1"}, {"nobody", "x"}, {"d1", ""},
	} {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(uniq("c-")).
			SetUsername(tc.user).SetPassword(tc.pass).SetAutoReconnect(false))
		tok := c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			t.Fatalf("%s: connect timed out", tc.user)
		}
		if tok.Error() == nil {
			c.Disconnect(0)
			t.Errorf("%s with password %q: connected, want refused", tc.user, tc.pass)
		}
	}
	for range 2 {
		c := connect(t, url, "d3", "pw-d3", nil)
		c.Disconnect(0)
	}
}

// A device cannot publish under another device's topic: it is disconnected
// and nothing is stored. A unit may publish only its own pos and reply.
func TestEmbeddedACL(t *testing.T) {
	cfg := testConfig(t)
	store := newStore(t)
	in := startIntake(t, cfg, store)
	lost := make(chan struct{}, 1)
	c := connect(t, "tcp://"+in.BrokerAddr(), "d1", "pw-d1", func(o *paho.ClientOptions) {
		o.SetConnectionLostHandler(func(paho.Client, error) { lost <- struct{}{} })
	})
	tok := c.Publish(devTopic(cfg, "d2", "event"), 1, false, `{"id":"x1","class":"alarm"}`)
	select {
	case <-lost:
	case <-time.After(15 * time.Second):
		t.Fatal("device publishing under another device's topic was not disconnected")
	}
	if tok.WaitTimeout(100*time.Millisecond) && tok.Error() == nil {
		t.Error("publish under another device's topic was acknowledged")
	}

	u := connect(t, "tcp://"+in.BrokerAddr(), "u1", "pw-u1", nil)
	publish(t, u, cfg.MQTT.TopicPrefix+"/unit/u1/pos", `{"lat":1,"lon":2}`)
	ulost := make(chan struct{}, 1)
	u2 := connect(t, "tcp://"+in.BrokerAddr(), "u1", "pw-u1", func(o *paho.ClientOptions) {
		o.SetConnectionLostHandler(func(paho.Client, error) { ulost <- struct{}{} })
	})
	u2.Publish(devTopic(cfg, "d2", "event"), 1, false, `{"id":"x2","class":"alarm"}`)
	select {
	case <-ulost:
	case <-time.After(15 * time.Second):
		t.Fatal("unit publishing under a device's topic was not disconnected")
	}
	if evs := events(t, store, "d2"); len(evs) != 0 {
		t.Fatalf("stored %+v for d2", evs)
	}
}

// While the store fails past alarms.store_hold, a device gets no PUBACK and is disconnected; it
// resends when it reconnects, and once the store is back the event is
// stored exactly once.
func TestEmbeddedStoreFailingNoAck(t *testing.T) {
	cfg := testConfig(t)
	// Past the hold, the device is disconnected without PUBACK.
	cfg.Limits.StoreHold = 200 * time.Millisecond
	store := newStore(t)
	in := startIntake(t, cfg, store)
	store.fail.Store(true)

	// paho completes a publish token when it resends the message after a
	// reconnect, acknowledged or not; its store keeps the message ("o."
	// keys) until the PUBACK comes, which tells what the broker did.
	ps := paho.NewMemoryStore()
	unacked := func() int {
		n := 0
		for _, k := range ps.All() {
			if strings.HasPrefix(k, "o.") {
				n++
			}
		}
		return n
	}
	lost := make(chan struct{}, 100)
	c := connect(t, "tcp://"+in.BrokerAddr(), "d1", "pw-d1", func(o *paho.ClientOptions) {
		o.SetCleanSession(false).SetStore(ps).SetAutoReconnect(true).SetMaxReconnectInterval(200 * time.Millisecond).
			SetConnectionLostHandler(func(paho.Client, error) {
				select {
				case lost <- struct{}{}:
				default:
				}
			})
	})
	c.Publish(devTopic(cfg, "d1", "event"), 1, false, `{"id":"f1","class":"fire"}`)
	select {
	case <-lost:
	case <-time.After(15 * time.Second):
		t.Fatal("device not disconnected while the store fails")
	}
	waitFor(t, "a few retransmissions", func() bool { return store.writes.Load() >= 3 })
	if unacked() != 1 {
		t.Fatalf("%d unacknowledged messages at the device while the store fails, want 1", unacked())
	}
	if got := withID(events(t, store, "d1"), "f1"); len(got) != 0 {
		t.Fatalf("stored while failing: %+v", got)
	}
	st := in.Status()
	if st.StoreOK || !strings.Contains(st.StoreError, "connection refused") {
		t.Errorf("status while failing: %+v", st)
	}

	store.fail.Store(false)
	waitFor(t, "the PUBACK after the store came back", func() bool { return unacked() == 0 })
	if got := withID(events(t, store, "d1"), "f1"); len(got) != 1 {
		t.Fatalf("%d events f1 stored, want 1", len(got))
	}
	waitFor(t, "store ok in the status", func() bool { return in.Status().StoreOK })
}

// Payloads that do not decode are kept as rejected, with their reason, and
// the intake goes on.
func TestEmbeddedRejected(t *testing.T) {
	cfg := testConfig(t)
	store := newStore(t)
	in := startIntake(t, cfg, store)
	c := connect(t, "tcp://"+in.BrokerAddr(), "d1", "pw-d1", nil)

	big := `{"class":"` + strings.Repeat("x", 2*alarms.MaxRejectedPayload) + `"}`
	publish(t, c, devTopic(cfg, "d1", "event"), "not json at all")
	publish(t, c, devTopic(cfg, "d1", "event"), `{"id":"b1","class":"bogus"}`)
	publish(t, c, devTopic(cfg, "d1", "event"), big)
	publish(t, c, devTopic(cfg, "d1", "weird"), `x`)
	publish(t, c, devTopic(cfg, "d1", "state"), `maybe`)
	publish(t, c, devTopic(cfg, "d1", "event"), `{"id":"ok1","class":"alarm"}`)

	if got := withID(events(t, store, "d1"), "ok1"); len(got) != 1 {
		t.Fatalf("good event after bad ones: %d stored", len(got))
	}
	rej, err := in.Rejected(context.Background(), alarms.RejectedQuery{Device: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rej) != 5 {
		t.Fatalf("%d rejected, want 5: %+v", len(rej), rej)
	}
	var truncated bool
	for _, r := range rej {
		if r.Reason == "" || r.Device != "d1" || !strings.HasPrefix(r.Topic, cfg.MQTT.TopicPrefix+"/dev/d1/") {
			t.Errorf("rejected %+v", r)
		}
		if len(r.Payload) > alarms.MaxRejectedPayload {
			t.Errorf("rejected payload of %d bytes", len(r.Payload))
		}
		truncated = truncated || r.Truncated
	}
	if !truncated {
		t.Error("big payload not marked truncated")
	}
}

// A taken port fails Start with the config key in the error.
func TestEmbeddedPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := testConfig(t)
	cfg.MQTT.Address = l.Addr().String()
	in, err := alarms.NewIntake(cfg, newStore(t), hardware.Decoders(), testLogger(t))
	if err == nil {
		defer in.Close()
		err = in.Start(t.Context())
	}
	if err == nil || !strings.HasPrefix(err.Error(), "mqtt.address: ") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start on a taken port: %v", err)
	}
}

// The device's last will ("offline" on its state topic) raises a
// supervision trouble at once; coming back online raises the restore.
func TestEmbeddedLastWill(t *testing.T) {
	cfg := testConfig(t)
	store := newStore(t)
	in := startIntake(t, cfg, store)
	stateTopic := devTopic(cfg, "d1", "state")

	var conn net.Conn
	c := connect(t, "tcp://"+in.BrokerAddr(), "d1", "pw-d1", func(o *paho.ClientOptions) {
		o.SetWill(stateTopic, "offline", 1, true).
			SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
				var err error
				conn, err = net.Dial("tcp", u.Host)
				return conn, err
			})
	})
	tok := c.Publish(stateTopic, 1, true, "online")
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish online: %v", tok.Error())
	}
	if tr, _ := supervision(t, store, "d1"); tr != 0 {
		t.Fatalf("%d troubles before the connection broke", tr)
	}
	_ = conn.Close() // the link dies without DISCONNECT: the broker sends the will

	waitFor(t, "the last-will trouble", func() bool {
		tr, _ := supervision(t, store, "d1")
		return tr == 1
	})
	v, err := in.Device(context.Background(), "d1")
	if err != nil {
		t.Fatal(err)
	}
	if v.State.Online || !v.State.Supervision || len(v.LastEvents) == 0 || v.LastEvents[0].Class != alarms.ClassSupervision {
		t.Errorf("device view after will: %+v", v)
	}
	if in.Status().SupervisionLost != 1 {
		t.Errorf("status %+v, want one device with supervision lost", in.Status())
	}

	c2 := connect(t, "tcp://"+in.BrokerAddr(), "d1", "pw-d1", nil)
	publish(t, c2, stateTopic, "online")
	tr, re := supervision(t, store, "d1")
	if tr != 1 || re != 1 {
		t.Fatalf("after coming back: %d troubles, %d restores, want 1 and 1", tr, re)
	}
}

// A write whose reply was lost stored the event all the same: when the
// device sends it again, the store calls it a duplicate, but it is the
// intake's own first success, announced once and counted as stored.
func TestEmbeddedLostStoreReply(t *testing.T) {
	cfg := testConfig(t)
	store := newStore(t)
	in := startIntake(t, cfg, store)
	live := in.Subscribe(t.Context())
	store.loseReply.Store(true)

	c := connect(t, "tcp://"+in.BrokerAddr(), "d1", "pw-d1", func(o *paho.ClientOptions) {
		o.SetCleanSession(false).SetAutoReconnect(true).SetMaxReconnectInterval(200 * time.Millisecond)
	})
	c.Publish(devTopic(cfg, "d1", "event"), 1, false, `{"id":"lost-reply","class":"panic"}`)
	select {
	case e := <-live:
		if e.ID != "lost-reply" || e.Offset == "" {
			t.Fatalf("announced %+v, want lost-reply with its offset", e)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the event whose store reply was lost was never announced")
	}
	if got := withID(events(t, store, "d1"), "lost-reply"); len(got) != 1 {
		t.Fatalf("%d events stored, want 1", len(got))
	}
	select {
	case e := <-live:
		t.Fatalf("announced twice: %+v", e)
	case <-time.After(300 * time.Millisecond):
	}
}

// An event whose store reply was lost is announced when a retry finds it;
// when a later write of the same message fails (its device state) and the
// message is taken again, a failed attempt in between must not make the
// event look uncertain again: it is announced exactly once.
func TestEmbeddedLostReplyAnnouncedOnce(t *testing.T) {
	cfg := testConfig(t)
	store := newStore(t)
	in := startIntake(t, cfg, store)
	live := in.Subscribe(t.Context())
	// Attempt 1: stored, reply lost. Attempt 2: found (announced), then
	// the device state fails. Attempt 3: fails. Attempt 4: found again,
	// a duplicate now; the device gets its PUBACK.
	store.planMu.Lock()
	store.appendPlan = []string{"lose", "", "fail", ""}
	store.putPlan = []string{"fail"}
	store.planMu.Unlock()

	c := connect(t, "tcp://"+in.BrokerAddr(), "d1", "pw-d1", nil)
	publish(t, c, devTopic(cfg, "d1", "event"), `{"id":"once","class":"panic"}`)
	n := 0
	for {
		select {
		case e := <-live:
			if e.ID != "once" {
				t.Fatalf("announced %+v", e)
			}
			n++
			continue
		default:
		}
		break
	}
	if n != 1 {
		t.Fatalf("the event was announced %d times, want once", n)
	}
	if got := withID(events(t, store, "d1"), "once"); len(got) != 1 {
		t.Fatalf("%d events stored, want 1", len(got))
	}
}
