package alarms_test

import (
	"context"
	"net"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
)

// TestEmbeddedMQTT5: a device speaking MQTT 5 connects with its
// credentials, and its QoS 1 event is stored before its PUBACK, which
// carries a success reason code; a wrong password gets a CONNACK refusal.
func TestEmbeddedMQTT5(t *testing.T) {
	cfg := testConfig(t)
	store := newStore(t)
	in := startIntake(t, cfg, store)
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()

	connect5 := func(user, pass string) (*paho5.Client, *paho5.Connack, error) {
		conn, err := net.Dial("tcp", in.BrokerAddr())
		if err != nil {
			t.Fatal(err)
		}
		c := paho5.NewClient(paho5.ClientConfig{Conn: conn})
		ack, err := c.Connect(ctx, &paho5.Connect{
			ClientID: uniq(user + ":"), KeepAlive: 30, CleanStart: true,
			Username: user, UsernameFlag: true, Password: []byte(pass), PasswordFlag: true,
		})
		if err != nil {
			conn.Close()
		}
		return c, ack, err
	}

	if _, ack, err := connect5("d1", "wrong"); err == nil {
		t.Fatalf("MQTT 5 connect with a wrong password accepted: %+v", ack)
	}

	c, _, err := connect5("d1", "pw-d1")
	if err != nil {
		t.Fatalf("MQTT 5 connect: %v", err)
	}
	defer c.Disconnect(&paho5.Disconnect{ReasonCode: 0})
	resp, err := c.Publish(ctx, &paho5.Publish{
		Topic: devTopic(cfg, "d1", "event"), QoS: 1, Payload: []byte(`{"id":"v5-1","class":"fire"}`),
	})
	if err != nil {
		t.Fatalf("MQTT 5 publish: %v", err)
	}
	if resp.ReasonCode >= 0x80 {
		t.Fatalf("PUBACK reason code 0x%x", resp.ReasonCode)
	}
	// The PUBACK came: the event is stored already.
	if got := withID(events(t, store, "d1"), "v5-1"); len(got) != 1 {
		t.Fatalf("%d events v5-1 stored after the PUBACK, want 1", len(got))
	}
}
