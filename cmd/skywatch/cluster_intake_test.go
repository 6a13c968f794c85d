package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/redisstore"
	"github.com/skywatch/skywatch/cluster"
	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/internal/testredis"
)

// Every node picks the same adopter for a dead node from the same live
// set, a live one, and the dead nodes spread over the live ones.
func TestAdopterOf(t *testing.T) {
	live := []string{"sky-a", "sky-b", "sky-c"}
	picked := map[string]int{}
	for _, dead := range []string{"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10", "n11"} {
		a := adopterOf(dead, live)
		if b := adopterOf(dead, []string{"sky-c", "sky-a", "sky-b"}); a != b {
			t.Fatalf("adopter of %s: %s or %s by the order of the live set", dead, a, b)
		}
		picked[a]++
	}
	if len(picked) < 2 {
		t.Errorf("all dead nodes adopted by one node: %v", picked)
	}
	if got := adopterOf("x", nil); got != "" {
		t.Errorf("adopter with no live node: %q", got)
	}
}

// A node leaves the cluster with messages parked in its broker session
// (some received and never acknowledged, a share of later ones queued):
// the remaining node sees it go and adopts the session, and every event is
// stored once.
func TestClusterIntakeAdoptsLeavingNode(t *testing.T) {
	redisURL, mqttURL := os.Getenv("SKYWATCH_TEST_REDIS"), os.Getenv("SKYWATCH_TEST_MQTT")
	if redisURL == "" || mqttURL == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("SKYWATCH_TEST_REDIS and SKYWATCH_TEST_MQTT are required in CI")
		}
		t.Skip("SKYWATCH_TEST_REDIS or SKYWATCH_TEST_MQTT is not set")
	}
	ctx := t.Context()
	prefix := testredis.Prefix(t, redisURL, "skywatch-test:")
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	clientID, topicPrefix := "skywatch-test-"+hex.EncodeToString(b), "t"+hex.EncodeToString(b)
	forget := func(id string) {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(mqttURL).SetClientID(id).SetCleanSession(true))
		if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			c.Disconnect(0)
		}
	}
	t.Cleanup(func() { forget(clientID + "-sky-a"); forget(clientID + "-sky-x") })

	node := func(id string) *cluster.Cluster {
		c, err := cluster.New(cluster.Config{Node: id, HTTPURL: "http://127.0.0.1:1", Failover: 2 * time.Second}, redisURL, prefix, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	ca, cx := node("sky-a"), node("sky-x")

	store, err := redisstore.Open(ctx, redisstore.Config{URL: redisURL, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cfg := alarms.Config{MQTT: alarms.MQTTConfig{URL: mqttURL, ClientID: clientID, TopicPrefix: topicPrefix},
		Devices: []alarms.DeviceConfig{{ID: "d1"}, {ID: "d2"}}}
	in, err := alarms.NewIntake(cfg, store, hardware.Decoders(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ci, err := newClusterIntake(ctx, in, ca, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer ci.Close()
	if err := in.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ci.Start()
	waitUntil(t, "the intake's subscription", func() bool { return in.Status().Connected })

	// sky-x's intake: takes its share and never acknowledges, then its
	// connection drops.
	var (
		mu   sync.Mutex
		conn net.Conn
		took int
	)
	// Every node joins one group, made at random and kept in Redis: a
	// device that knows the config's names cannot join it.
	group, err := cx.ShareGroup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := ca.ShareGroup(ctx); again != group || group == clientID || !strings.HasPrefix(group, "skywatch-") {
		t.Fatalf("share groups %q and %q (client id %q)", group, again, clientID)
	}
	x := paho.NewClient(paho.NewClientOptions().AddBroker(mqttURL).SetClientID(clientID + "-sky-x").
		SetCleanSession(false).SetAutoReconnect(false).SetAutoAckDisabled(true).SetOrderMatters(false).
		SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			c, err := net.Dial("tcp", u.Host)
			mu.Lock()
			conn = c
			mu.Unlock()
			return c, err
		}).
		SetDefaultPublishHandler(func(paho.Client, paho.Message) { mu.Lock(); took++; mu.Unlock() }))
	if tok := x.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect sky-x: %v", tok.Error())
	}
	defer x.Disconnect(0)
	if tok := x.Subscribe("$share/"+group+"/"+topicPrefix+"/dev/+/event", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe sky-x: %v", tok.Error())
	}
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(mqttURL).SetClientID(clientID + "-pub"))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect publisher: %v", tok.Error())
	}
	defer pub.Disconnect(0)
	send := func(from, to int) {
		for n := from; n < to; n++ {
			tok := pub.Publish(fmt.Sprintf("%s/dev/d%d/event", topicPrefix, 1+n%2), 1, false, fmt.Sprintf(`{"id":"e%03d","class":"alarm"}`, n))
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatalf("publish: %v", tok.Error())
			}
		}
	}
	stored := func() (n int, doubled bool) {
		for _, d := range []string{"d1", "d2"} {
			page, err := store.Events(ctx, alarms.EventQuery{Device: d, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, e := range page.Events {
				doubled = doubled || seen[e.ID]
				seen[e.ID] = true
			}
			n += len(page.Events)
		}
		return n, doubled
	}
	send(0, 40)
	waitUntil(t, "sky-x's share", func() bool { mu.Lock(); defer mu.Unlock(); return took > 0 })
	mu.Lock()
	conn.Close()
	mu.Unlock()
	time.Sleep(500 * time.Millisecond) // for the broker to see it
	send(40, 80)
	if n, _ := stored(); n == 80 {
		t.Fatal("nothing parked in sky-x's session: the test proves nothing")
	}
	if err := cx.Close(); err != nil { // sky-x leaves the live set
		t.Fatal(err)
	}
	waitUntil(t, "all 80 events, sky-x's adopted", func() bool { n, _ := stored(); return n >= 80 })
	time.Sleep(300 * time.Millisecond)
	if n, doubled := stored(); n != 80 || doubled {
		t.Fatalf("%d events stored (want 80), doubled: %v", n, doubled)
	}
}
