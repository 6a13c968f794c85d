package alarms_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/redisstore"
	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/internal/testredis"
)

// clusterRig is the shared part of a cluster of intakes: one broker, one
// Redis key prefix, one config (the group is its client id).
type clusterRig struct {
	t      *testing.T
	cfg    alarms.Config
	redis  string
	prefix string
}

// newClusterRig needs SKYWATCH_TEST_MQTT and SKYWATCH_TEST_REDIS; devs
// devices d00.. with the given model.
func newClusterRig(t *testing.T, devs int, model alarms.ModelConfig) *clusterRig {
	mqttURL := externalURL(t)
	redisURL := testredis.URL(t)
	cfg := alarms.Config{MQTT: alarms.MQTTConfig{URL: mqttURL, ClientID: uniq("grp"), TopicPrefix: uniq("t")}}
	cfg.Models = []alarms.ModelConfig{model}
	for i := range devs {
		cfg.Devices = append(cfg.Devices, alarms.DeviceConfig{ID: fmt.Sprintf("d%02d", i), Area: "village-1", Model: model.Name})
	}
	return &clusterRig{t: t, cfg: cfg, redis: redisURL, prefix: testredis.Prefix(t, redisURL, "cluster-intake-")}
}

// store opens a store of the rig's (each node has its own connections).
func (r *clusterRig) store() *redisstore.Store {
	s, err := redisstore.Open(r.t.Context(), redisstore.Config{URL: r.redis, KeyPrefix: r.prefix})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = s.Close() })
	return s
}

// forget removes the broker session of client id, at the end of the test.
func (r *clusterRig) forget(id string) {
	u := r.cfg.MQTT.URL
	r.t.Cleanup(func() {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(u).SetClientID(id).SetCleanSession(true))
		if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			c.Disconnect(0)
		}
	})
}

// node starts the intake of node id; mod may change its config.
func (r *clusterRig) node(id string, mod func(*alarms.Config)) (*alarms.Intake, *redisstore.Store) {
	r.t.Helper()
	cfg := r.cfg
	if mod != nil {
		mod(&cfg)
	}
	s := r.store()
	in, err := alarms.NewIntake(cfg, s, hardware.Decoders(), testLogger(r.t))
	if err != nil {
		r.t.Fatal(err)
	}
	if err := in.SetCluster(alarms.ClusterOptions{Node: id}); err != nil {
		r.t.Fatal(err)
	}
	r.forget(cfg.MQTT.ClientID + "-" + id)
	r.t.Cleanup(func() { _ = in.Close() })
	if err := in.Start(r.t.Context()); err != nil {
		r.t.Fatal(err)
	}
	return in, s
}

// collect reads a Subscribe channel into a count per event key.
type collect struct {
	mu   sync.Mutex
	seen map[string]int
}

func collectFrom(ch <-chan alarms.Event) *collect {
	c := &collect{seen: map[string]int{}}
	go func() {
		for e := range ch {
			c.mu.Lock()
			c.seen[e.Key()]++
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *collect) counts() (keys, max int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.seen {
		if n > max {
			max = n
		}
	}
	return len(c.seen), max
}

// countEvents counts the stored events of each device by ID.
func countEvents(t *testing.T, s alarms.Store, devs int) (total int, doubled []string) {
	t.Helper()
	for i := range devs {
		byID := map[string]int{}
		for _, e := range events(t, s, fmt.Sprintf("d%02d", i)) {
			byID[e.ID]++
			total++
		}
		for id, n := range byID {
			if n > 1 {
				doubled = append(doubled, fmt.Sprintf("d%02d/%s x%d", i, id, n))
			}
		}
	}
	return total, doubled
}

var slowModel = alarms.ModelConfig{Name: "m", Decoder: "skywatch", Heartbeat: time.Hour}

// Two intakes share a flood of 2,000 events from 50 devices through the
// broker's shared subscription: each event is stored exactly once, both
// intakes stored some, every message's device state is saved once over
// the last (nodes racing on one device do not undo each other), and the
// live stream of each shows every event once, whichever node stored it.
func TestClusterSharedFlood(t *testing.T) {
	const devs, per = 50, 40
	rig := newClusterRig(t, devs, slowModel)
	a, sa := rig.node("a", nil)
	b, _ := rig.node("b", nil)
	waitConnected(t, a)
	waitConnected(t, b)
	liveA, liveB := collectFrom(a.Subscribe(t.Context())), collectFrom(b.Subscribe(t.Context()))

	pub := connect(t, rig.cfg.MQTT.URL, "", "", nil)
	start := time.Now()
	var toks []paho.Token
	// Device by device: one device's messages reach both nodes at once,
	// so that they race on its state.
	for i := range devs {
		for n := range per {
			topic := devTopic(rig.cfg, fmt.Sprintf("d%02d", i), "event")
			toks = append(toks, pub.Publish(topic, 1, false, fmt.Sprintf(`{"id":"e%03d","class":"alarm","zone":%d}`, n, n)))
		}
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	waitFor(t, "2,000 stored events", func() bool { return alarms.StoredCount(a)+alarms.StoredCount(b) >= devs*per })
	t.Logf("2,000 events stored in %v", time.Since(start).Round(time.Millisecond))
	waitFor(t, "every event on both live streams", func() bool {
		ka, _ := liveA.counts()
		kb, _ := liveB.counts()
		return ka >= devs*per && kb >= devs*per
	})
	time.Sleep(300 * time.Millisecond) // let a late duplicate show
	total, doubled := countEvents(t, sa, devs)
	if total != devs*per || len(doubled) > 0 {
		t.Fatalf("stored %d events, want %d; doubled: %v", total, devs*per, doubled)
	}
	// Each message saved its device's state once, over the previous save:
	// no node undid another's.
	states, err := sa.Devices(t.Context())
	if err != nil || len(states) != devs {
		t.Fatalf("%d device states, %v", len(states), err)
	}
	for _, st := range states {
		if st.Rev != per {
			t.Errorf("device %s: state revision %d, want %d (one per message)", st.ID, st.Rev, per)
		}
	}
	for name, c := range map[string]*collect{"a": liveA, "b": liveB} {
		if k, m := c.counts(); k != devs*per || m != 1 {
			t.Errorf("live stream of %s: %d events, an event at most %d times; want %d, once", name, k, m, devs*per)
		}
	}
	na, nb := alarms.StoredCount(a), alarms.StoredCount(b)
	if na == 0 || nb == 0 || na+nb != devs*per {
		t.Errorf("stored by a %v, by b %v: want both some, %d in all", na, nb, devs*per)
	}
	t.Logf("stored by a: %v, by b: %v; state revisions that moved under a node: %v", na, nb, alarms.StateRetries(a)+alarms.StateRetries(b))
}

// Supervision runs on one node (Supervise) and reads the store: a device
// heard only by the other node is not silent; once silent it gets one
// trouble; heard again by the other node, one restore, and the supervising
// node then supervises it again (a second silence, a second trouble).
func TestClusterSupervisionHeardElsewhere(t *testing.T) {
	rig := newClusterRig(t, 2, alarms.ModelConfig{Name: "fast", Decoder: "skywatch",
		Heartbeat: 100 * time.Millisecond, Supervision: 600 * time.Millisecond})
	// The leader hears nothing: its broker is a closed port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "tcp://" + ln.Addr().String()
	ln.Close()
	leader, store := rig.node("lead", func(c *alarms.Config) { c.MQTT.URL = dead })
	other, _ := rig.node("other", nil)
	waitConnected(t, other)
	ctx, cancel := context.WithCancel(t.Context())
	supervised := make(chan error, 1)
	go func() { supervised <- leader.Supervise(ctx) }()
	defer func() { cancel(); <-supervised }()

	dev := connect(t, rig.cfg.MQTT.URL, "", "", nil)
	hb := devTopic(rig.cfg, "d00", "hb")
	for range 20 { // 2 s: more than three windows
		publish(t, dev, hb, "")
		time.Sleep(100 * time.Millisecond)
	}
	if tr, _ := supervision(t, store, "d00"); tr != 0 {
		t.Fatalf("a device heard by the other node got %d troubles", tr)
	}
	waitFor(t, "the trouble of the silent device", func() bool { tr, _ := supervision(t, store, "d00"); return tr == 1 })
	publish(t, dev, hb, "")
	waitFor(t, "the restore, by the other node", func() bool { _, re := supervision(t, store, "d00"); return re == 1 })
	waitFor(t, "the second trouble", func() bool { tr, _ := supervision(t, store, "d00"); return tr == 2 })
	time.Sleep(1500 * time.Millisecond)
	if tr, re := supervision(t, store, "d00"); tr != 2 || re != 1 {
		t.Fatalf("%d troubles and %d restores, want 2 and 1", tr, re)
	}
	v, err := leader.Device(t.Context(), "d00")
	if err != nil || !v.State.Supervision {
		t.Fatalf("the leader's view of the device: %+v, %v", v.State, err)
	}
}

// A node dies with messages it received but never acknowledged, and the
// broker (Mosquitto 2) goes on queueing a share of new ones for its
// session: AdoptSession on a live node stores all of them, once, and the
// broker then sends everything to the live node.
func TestClusterAdoptDeadSession(t *testing.T) {
	const devs = 10
	rig := newClusterRig(t, devs, slowModel)
	a, store := rig.node("a", nil)
	waitConnected(t, a)

	// The dead member: a raw client in the group that takes and never
	// acknowledges, whose TCP connection is then cut.
	deadID := rig.cfg.MQTT.ClientID + "-x"
	rig.forget(deadID)
	var (
		mu      sync.Mutex
		conn    net.Conn
		gotDead int
	)
	opts := paho.NewClientOptions().AddBroker(rig.cfg.MQTT.URL).SetClientID(deadID).
		SetCleanSession(false).SetAutoReconnect(false).SetAutoAckDisabled(true).SetOrderMatters(false).
		SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			c, err := net.Dial("tcp", u.Host)
			mu.Lock()
			conn = c
			mu.Unlock()
			return c, err
		}).
		SetDefaultPublishHandler(func(paho.Client, paho.Message) { mu.Lock(); gotDead++; mu.Unlock() })
	x := paho.NewClient(opts)
	if tok := x.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect the dead member: %v", tok.Error())
	}
	t.Cleanup(func() { x.Disconnect(0) })
	if tok := x.Subscribe("$share/"+rig.cfg.MQTT.ClientID+"/"+rig.cfg.MQTT.TopicPrefix+"/dev/+/event", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe the dead member: %v", tok.Error())
	}

	pub := connect(t, rig.cfg.MQTT.URL, "", "", nil)
	send := func(from, to int) {
		for n := from; n < to; n++ {
			publish(t, pub, devTopic(rig.cfg, fmt.Sprintf("d%02d", n%devs), "event"), fmt.Sprintf(`{"id":"e%03d","class":"alarm"}`, n))
		}
	}
	send(0, 100)
	waitFor(t, "the dead member's share", func() bool { mu.Lock(); defer mu.Unlock(); return gotDead > 0 })
	mu.Lock()
	conn.Close() // as the kernel does for a SIGKILLed process: no DISCONNECT
	mu.Unlock()
	time.Sleep(500 * time.Millisecond) // for the broker to see it (paho's own view can lag)
	send(100, 200)                     // a share of these is queued for the dead member's session
	waitFor(t, "the live node's share", func() bool { n, _ := countEvents(t, store, devs); return n >= 100 })
	before, _ := countEvents(t, store, devs)
	if before == 200 {
		t.Fatal("nothing was parked in the dead member's session: the test proves nothing")
	}
	t.Logf("stored before the adoption: %d of 200 (the dead member took %d)", before, gotDead)

	if err := a.AdoptSession(t.Context(), "x"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "all 200 events", func() bool { n, _ := countEvents(t, store, devs); return n >= 200 })
	send(200, 300) // the dead session is unsubscribed: all come to a
	waitFor(t, "all 300 events", func() bool { n, _ := countEvents(t, store, devs); return n >= 300 })
	time.Sleep(300 * time.Millisecond)
	if total, doubled := countEvents(t, store, devs); total != 300 || len(doubled) > 0 {
		t.Fatalf("stored %d events, want 300; doubled: %v", total, doubled)
	}
}

// After a takeover the new supervising node starts from the stored states:
// a device heard (by a third node) is not silent, a trouble raised by the
// old leader is not raised again, and a device that then goes silent gets
// its one trouble from the new leader.
func TestClusterSupervisionTakeover(t *testing.T) {
	rig := newClusterRig(t, 2, alarms.ModelConfig{Name: "fast", Decoder: "skywatch",
		Heartbeat: 100 * time.Millisecond, Supervision: 600 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deaf := func(c *alarms.Config) { c.MQTT.URL = "tcp://" + ln.Addr().String() }
	ln.Close()
	one, store := rig.node("one", deaf)
	two, _ := rig.node("two", deaf)
	ear, _ := rig.node("ear", nil)
	waitConnected(t, ear)
	term := func(in *alarms.Intake) (end func()) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- in.Supervise(ctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}
	dev := connect(t, rig.cfg.MQTT.URL, "", "", nil)
	beat := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			publish(t, dev, devTopic(rig.cfg, "d00", "hb"), "")
			time.Sleep(100 * time.Millisecond)
		}
	}
	end := term(one)
	beat(1500 * time.Millisecond)
	waitFor(t, "d01's trouble from the first leader", func() bool { tr, _ := supervision(t, store, "d01"); return tr == 1 })
	end()
	end = term(two)
	defer func() { end() }()
	beat(1500 * time.Millisecond)
	if tr, _ := supervision(t, store, "d00"); tr != 0 {
		t.Fatalf("d00, heard all along by another node, got %d troubles after the takeover", tr)
	}
	waitFor(t, "d00's trouble from the new leader", func() bool { tr, _ := supervision(t, store, "d00"); return tr == 1 })
	time.Sleep(1500 * time.Millisecond)
	for dev, want := range map[string]int{"d00": 1, "d01": 1} {
		if tr, re := supervision(t, store, dev); tr != want || re != 0 {
			t.Errorf("%s: %d troubles, %d restores; want %d and 0", dev, tr, re, want)
		}
	}
}

// cutProxy forwards TCP to target until cut: then it closes its
// connections and refuses new ones until healed.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cutOff bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cutOff {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); _, _ = io.Copy(up, c); up.Close() }()
		go func() { defer p.wg.Done(); _, _ = io.Copy(c, up); c.Close() }()
	}
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutOff = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *cutProxy) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutOff = false
}

// The live stream of a node whose Redis goes away for a while resumes
// where it stopped: every event stored meanwhile (by other nodes) comes
// once, in log order.
func TestClusterLiveEventsAcrossRedisBlip(t *testing.T) {
	rig := newClusterRig(t, 1, slowModel)
	u, err := url.Parse(rig.redis)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deaf := "tcp://" + ln.Addr().String()
	ln.Close()
	s, err := redisstore.Open(t.Context(), redisstore.Config{URL: u.String(), KeyPrefix: rig.prefix, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg := rig.cfg
	cfg.MQTT.URL = deaf
	in, err := alarms.NewIntake(cfg, s, hardware.Decoders(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.SetCluster(alarms.ClusterOptions{Node: "blip"}); err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := in.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	live := in.Subscribe(t.Context())
	other := rig.store()
	add := func(from, to int) {
		for n := from; n < to; n++ {
			e := &alarms.Event{ID: fmt.Sprintf("e%02d", n), Device: "d00", Class: alarms.ClassAlarm, ReceivedAt: time.Now()}
			if _, err := other.AppendEvent(t.Context(), e, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []string
	read := func(n int) {
		t.Helper()
		for len(got) < n {
			select {
			case e := <-live:
				got = append(got, e.ID)
			case <-time.After(20 * time.Second):
				t.Fatalf("live events: %v, want %d", got, n)
			}
		}
	}
	add(0, 10)
	read(10)
	proxy.cut()
	add(10, 20)
	time.Sleep(1500 * time.Millisecond) // reads fail meanwhile
	proxy.heal()
	read(20)
	select {
	case e := <-live:
		t.Fatalf("an extra live event %s after %v", e.ID, got)
	case <-time.After(300 * time.Millisecond):
	}
	for i, id := range got {
		if id != fmt.Sprintf("e%02d", i) {
			t.Fatalf("live events out of order or doubled: %v", got)
		}
	}
}
