package alarms_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/internal/testcert"
)

// Only a device's small state is retained; other retained publishes keep
// their message but lose the flag, and payloads over their topic kind's
// cap are refused, over MQTT 3.1.1 and 5. Subscriptions are capped.
func TestBrokerRetainedAndPayloadCaps(t *testing.T) {
	cfg := testConfig(t)
	cfg.MQTT.MaxSubscriptions = 2
	in := startIntake(t, cfg, newStore(t))
	url := "tcp://" + in.BrokerAddr()
	d1 := connect(t, url, "d1", "pw-d1", nil)
	retain := func(c paho.Client, kind, payload string) error {
		tok := c.Publish(devTopic(cfg, "d1", kind), 1, true, payload)
		if !tok.WaitTimeout(failAfter) {
			return errors.New("no PUBACK")
		}
		return tok.Error()
	}
	for _, m := range []struct{ kind, payload string }{{"state", "online"}, {"other", "x"}, {"hb", "{}"}} {
		if err := retain(d1, m.kind, m.payload); err != nil {
			t.Fatalf("retained %s: %v", m.kind, err)
		}
	}
	// 200 KB retained, and a state over its cap: the connection is closed
	// without a PUBACK.
	for _, m := range []struct{ kind, payload string }{{"big", strings.Repeat("x", 200<<10)}, {"state", strings.Repeat("o", 65)}} {
		c := connect(t, url, "d1", "pw-d1", nil)
		if err := retain(c, m.kind, m.payload); err == nil {
			t.Fatalf("retained %d bytes on %s: acknowledged", len(m.payload), m.kind)
		}
	}
	if got := metric(t, in, "skywatch_alarms_mqtt_publish_refused_total", ""); got != 2 {
		t.Fatalf("publish_refused_total %v, want 2", got)
	}

	// A new subscriber to all of d1's topics gets only its state retained.
	got := make(chan string, 10)
	sub := connect(t, url, "d1", "pw-d1", func(o *paho.ClientOptions) {
		o.SetOrderMatters(true).SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			got <- m.Topic() + "=" + string(m.Payload())
		})
	})
	tok := sub.SubscribeMultiple(map[string]byte{
		devTopic(cfg, "d1", "#"): 1, devTopic(cfg, "d1", "+"): 1, devTopic(cfg, "d1", "x"): 1,
	}, nil)
	if !tok.WaitTimeout(failAfter) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	granted := 0
	for _, code := range tok.(*paho.SubscribeToken).Result() {
		if code < 0x80 {
			granted++
		}
	}
	if granted != 2 {
		t.Fatalf("%d subscriptions granted, want mqtt.max_subscriptions_per_client (2): %v", granted, tok.(*paho.SubscribeToken).Result())
	}
	publish(t, d1, devTopic(cfg, "d1", "hb"), `{"mark":1}`)
	var retained []string
	for done := false; !done; {
		select {
		case m := <-got:
			if strings.Contains(m, `"mark"`) {
				done = true
			} else {
				retained = append(retained, m)
			}
		case <-timeout():
			t.Fatalf("no marker; retained so far %v", retained)
		}
	}
	for _, m := range retained {
		if m != devTopic(cfg, "d1", "state")+"=online" {
			t.Fatalf("retained %q delivered; only d1's state may be retained", m)
		}
	}
	if len(retained) == 0 {
		t.Fatal("d1's retained state was not delivered")
	}

	// MQTT 5: PUBACK "packet too large" (0x95) but for an event, which is kept as rejected; the connection stays.
	conn, err := net.Dial("tcp", in.BrokerAddr())
	if err != nil {
		t.Fatal(err)
	}
	c5 := paho5.NewClient(paho5.ClientConfig{Conn: conn})
	ctx, cancel := context.WithTimeout(t.Context(), failAfter)
	defer cancel()
	if _, err := c5.Connect(ctx, &paho5.Connect{ClientID: "d1:v5", KeepAlive: 30, CleanStart: true,
		Username: "d1", UsernameFlag: true, Password: []byte("pw-d1"), PasswordFlag: true}); err != nil {
		t.Fatalf("MQTT 5 connect: %v", err)
	}
	defer c5.Disconnect(&paho5.Disconnect{})
	for _, m := range []struct {
		kind, payload string
		code          byte
	}{
		{"hb", strings.Repeat("x", alarms.DefaultMaxHeartbeatPayload+1), 0x95},
		// An oversized event is acknowledged and kept in the rejected list.
		{"event", strings.Repeat("x", alarms.DefaultMaxEventPayload+1), 0},
		{"event", `{"id":"v5-ok","class":"panic"}`, 0},
	} {
		resp, err := c5.Publish(ctx, &paho5.Publish{Topic: devTopic(cfg, "d1", m.kind), QoS: 1, Payload: []byte(m.payload)})
		if err != nil && resp == nil {
			t.Fatalf("MQTT 5 publish: %v", err)
		}
		if resp.ReasonCode != m.code {
			t.Fatalf("MQTT 5 publish of %d bytes: reason 0x%x, want 0x%x", len(m.payload), resp.ReasonCode, m.code)
		}
	}
	rej, err := in.Rejected(ctx, alarms.RejectedQuery{Device: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, r := range rej {
		if strings.Contains(r.Reason, "mqtt.max_payload.event") && r.Truncated {
			return
		}
		reasons = append(reasons, r.Reason)
	}
	t.Fatalf("no oversized event in the rejected list: %q", reasons)
}

// Connections that never send CONNECT are capped in all and closed after
// mqtt.connect_timeout; a device connects once they are gone. (Loopback
// peers are not capped per address: TestConnLimiterCaps covers that cap.)
func TestBrokerIdleConnections(t *testing.T) {
	cfg := testConfig(t)
	cfg.MQTT.ConnectTimeout = time.Second
	cfg.MQTT.MaxConnections = 200
	cfg.MQTT.MaxConnectionsPerAddress = 10
	store := newStore(t)
	in := startIntake(t, cfg, store)

	idle := dialIdle(t, in.BrokerAddr(), 250)
	waitFor(t, "50 connections refused past the total cap", func() bool {
		return metric(t, in, "skywatch_alarms_mqtt_connections_refused_total", "total") == 50
	})
	if got := metric(t, in, "skywatch_alarms_mqtt_max_connections", ""); got != 200 {
		t.Fatalf("skywatch_alarms_mqtt_max_connections = %v, want 200 (mqtt.max_connections)", got)
	}
	// Every connection ends: refused at once, or closed at the timeout.
	for i, c := range idle {
		_ = c.SetReadDeadline(time.Now().Add(failAfter))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
			t.Fatalf("idle connection %d: %v, want closed by the broker", i, err)
		}
	}
	waitFor(t, "200 connect timeouts", func() bool {
		return metric(t, in, "skywatch_alarms_mqtt_connect_timeouts_total", "") == 200
	})
	waitFor(t, "no open connections", func() bool {
		return metric(t, in, "skywatch_alarms_mqtt_connections", "") == 0
	})
	d1 := connect(t, "tcp://"+in.BrokerAddr(), "d1", "pw-d1", nil)
	publish(t, d1, devTopic(cfg, "d1", "event"), `{"id":"after-idle","class":"panic"}`)
	if got := withID(events(t, store, "d1"), "after-idle"); len(got) != 1 {
		t.Fatalf("event after the idle connections stored %d times, want 1", len(got))
	}
	if st := in.Status(); !st.Connected || st.Clients != 1 || st.Connections != 1 ||
		st.ConnectionsRefused != 50 || st.ConnectTimeouts != 200 {
		t.Fatalf("status %+v, want connected with 1 client and connection, 50 refused, 200 timed out", st)
	}
}

// Close does not wait for connections that never sent CONNECT.
func TestBrokerCloseWithIdleConnections(t *testing.T) {
	cfg := testConfig(t)
	cfg.MQTT.ConnectTimeout = time.Hour
	in := startIntake(t, cfg, newStore(t))
	dialIdle(t, in.BrokerAddr(), 50)
	waitFor(t, "50 open connections", func() bool {
		return metric(t, in, "skywatch_alarms_mqtt_connections", "") == 50
	})
	done := make(chan struct{})
	go func() {
		_ = in.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-timeout():
		t.Fatal("Close waited for connections that never sent CONNECT")
	}
}

// dialIdle opens n TCP connections to addr that send nothing; they are
// closed at the end of the test.
func dialIdle(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	return conns
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !errors.Is(err, os.ErrDeadlineExceeded)
}

// The TLS and WebSocket listeners close connections that send no CONNECT
// too: one that never starts TLS or HTTP, and one that upgrades to a
// WebSocket and stays silent.
func TestBrokerIdleTLSAndWebSocket(t *testing.T) {
	certFile, keyFile, _ := testcert.Write(t)
	cfg := testConfig(t)
	cfg.MQTT.ConnectTimeout = time.Second
	cfg.MQTT.TLSAddress = freeAddr(t)
	cfg.MQTT.CertFile, cfg.MQTT.KeyFile = certFile, keyFile
	cfg.MQTT.WSAddress = freeAddr(t)
	in := startIntake(t, cfg, newStore(t))

	conns := append(dialIdle(t, cfg.MQTT.TLSAddress, 1), dialIdle(t, cfg.MQTT.WSAddress, 1)...)
	ws, _, err := websocket.DefaultDialer.DialContext(t.Context(), "ws://"+cfg.MQTT.WSAddress+"/mqtt",
		http.Header{"Sec-WebSocket-Protocol": {"mqtt"}})
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	conns = append(conns, ws.NetConn())
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(failAfter))
		if _, err := io.ReadAll(c); err != nil && !isReset(err) {
			t.Fatalf("idle connection %d: %v, want closed by the broker", i, err)
		}
	}
	waitFor(t, "3 connect timeouts", func() bool {
		return metric(t, in, "skywatch_alarms_mqtt_connect_timeouts_total", "") == 3
	})
}

// Topic aliases are refused: mochi would keep each aliased topic, of up
// to 64 KiB, before any hook sees it.
func TestBrokerNoTopicAliases(t *testing.T) {
	cfg := testConfig(t)
	in := startIntake(t, cfg, newStore(t))
	conn, err := net.Dial("tcp", in.BrokerAddr())
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan byte, 1)
	c5 := paho5.NewClient(paho5.ClientConfig{Conn: conn,
		OnServerDisconnect: func(d *paho5.Disconnect) { refused <- d.ReasonCode }})
	ctx, cancel := context.WithTimeout(t.Context(), failAfter)
	defer cancel()
	if _, err := c5.Connect(ctx, &paho5.Connect{ClientID: "d1", KeepAlive: 30, CleanStart: true,
		Username: "d1", UsernameFlag: true, Password: []byte("pw-d1"), PasswordFlag: true}); err != nil {
		t.Fatalf("MQTT 5 connect: %v", err)
	}
	defer c5.Disconnect(&paho5.Disconnect{})
	alias := uint16(1)
	go func() {
		_, _ = c5.Publish(ctx, &paho5.Publish{Topic: devTopic(cfg, "d1", "x"+strings.Repeat("y", 30000)), QoS: 1,
			Payload: []byte("{}"), Properties: &paho5.PublishProperties{TopicAlias: &alias}})
	}()
	select {
	case code := <-refused:
		if code != 0x94 {
			t.Fatalf("disconnected with 0x%x, want 0x94 (topic alias invalid)", code)
		}
	case <-ctx.Done():
		t.Fatal("a publish with a topic alias did not end the connection")
	}
}
