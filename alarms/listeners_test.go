package alarms_test

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/skywatch/skywatch/internal/testcert"
)

// TestEmbeddedTLSAndWebSocket: devices reach the embedded broker over TLS
// and over WebSocket as well as plain TCP, with the same credentials, and
// their events are stored before the PUBACK on every listener.
func TestEmbeddedTLSAndWebSocket(t *testing.T) {
	certFile, keyFile, pool := testcert.Write(t)
	cfg := testConfig(t)
	cfg.MQTT.TLSAddress = freeAddr(t)
	cfg.MQTT.CertFile, cfg.MQTT.KeyFile = certFile, keyFile
	cfg.MQTT.WSAddress = freeAddr(t)
	store := newStore(t)
	startIntake(t, cfg, store)

	tlsClient := connect(t, "ssl://"+cfg.MQTT.TLSAddress, "d1", "pw-d1", func(o *paho.ClientOptions) {
		o.SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	})
	publish(t, tlsClient, devTopic(cfg, "d1", "event"), `{"id":"over-tls","class":"alarm"}`)
	if got := withID(events(t, store, "d1"), "over-tls"); len(got) != 1 {
		t.Fatalf("event over TLS stored %d times, want 1", len(got))
	}

	wsClient := connect(t, "ws://"+cfg.MQTT.WSAddress, "d2", "pw-d2", nil)
	publish(t, wsClient, devTopic(cfg, "d2", "event"), `{"id":"over-ws","class":"panic"}`)
	if got := withID(events(t, store, "d2"), "over-ws"); len(got) != 1 {
		t.Fatalf("event over WebSocket stored %d times, want 1", len(got))
	}

	// A wrong password is refused over TLS too.
	o := paho.NewClientOptions().AddBroker("ssl://" + cfg.MQTT.TLSAddress).SetClientID(uniq("c-")).
		SetUsername("d1").SetPassword("wrong").SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	c := paho.NewClient(o)
	if tok := c.Connect(); tok.WaitTimeout(15*time.Second) && tok.Error() == nil {
		c.Disconnect(0)
		t.Fatal("wrong password accepted over TLS")
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago, for listeners whose bound address the intake does not report.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
