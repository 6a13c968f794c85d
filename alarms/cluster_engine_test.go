package alarms_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/redisstore"
	"github.com/skywatch/skywatch/hardware"

	"github.com/skywatch/skywatch/internal/testredis"
)

// clusterSetup is the shared part of a cluster test: a Redis key prefix,
// the engine's fence key, and a config (external broker) for the nodes.
type clusterSetup struct {
	t      *testing.T
	url    string // Redis
	prefix string
	fence  string // the fence key
	cfg    alarms.Config
	rdb    *redis.Client
}

func newClusterSetup(t *testing.T, offerTimeout time.Duration) *clusterSetup {
	t.Helper()
	url := testredis.URL(t)
	mqttURL := externalURL(t)
	cfg := incidentConfig(t)
	cfg.MQTT = alarms.MQTTConfig{URL: mqttURL, TopicPrefix: uniq("t"), ClientID: uniq("intake-")}
	cfg.Routing.OfferTimeout = offerTimeout
	prefix := testredis.Prefix(t, url, "skywatch-test:")
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	return &clusterSetup{t: t, url: url, prefix: prefix, fence: prefix + "cluster:lease:engine", cfg: cfg, rdb: rdb}
}

// clusterNode is one Skywatch node: an intake (in the broker's shared
// subscription) and its engine in cluster mode on a store of its own (same
// Redis, same prefix).
type clusterNode struct {
	sys   *system
	store *redisstore.Store
}

func (c *clusterSetup) node(name string, forward time.Duration) *clusterNode {
	t := c.t
	t.Helper()
	store, err := redisstore.Open(t.Context(), redisstore.Config{URL: c.url, KeyPrefix: c.prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	cfg := c.cfg
	t.Cleanup(func() {
		cl := paho.NewClient(paho.NewClientOptions().AddBroker(cfg.MQTT.URL).SetClientID(cfg.MQTT.ClientID + "-" + name).SetCleanSession(true))
		if tok := cl.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			cl.Disconnect(0)
		}
	})
	in, err := alarms.NewIntake(cfg, store, hardware.Decoders(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.SetCluster(alarms.ClusterOptions{Node: name}); err != nil {
		t.Fatal(err)
	}
	eng, err := alarms.NewEngine(in, store, alarms.EngineOptions{Cameras: testCameras(), Cluster: store,
		ForwardTimeout: forward})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close() })
	t.Cleanup(func() { _ = eng.Close() })
	if err := in.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, in)
	return &clusterNode{sys: &system{cfg: cfg, in: in, eng: eng}, store: store}
}

// term is a running Lead.
type term struct {
	cancel context.CancelFunc
	done   chan error
}

// lead sets the fence to value (as the cluster's lease would) and runs a
// term of n under it.
func (c *clusterSetup) lead(n *clusterNode, value string) *term {
	c.t.Helper()
	if err := c.rdb.Set(c.t.Context(), c.fence, value, 0).Err(); err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(c.t.Context())
	tm := &term{cancel: cancel, done: make(chan error, 1)}
	go func() { tm.done <- n.sys.eng.Lead(ctx, alarms.Fence{Key: c.fence, Value: value}) }()
	c.t.Cleanup(func() { cancel(); <-tm.done })
	return tm
}

// end cancels the term and waits for it.
func (tm *term) end(t *testing.T) {
	t.Helper()
	tm.cancel()
	select {
	case err := <-tm.done:
		if err != nil {
			t.Fatalf("term: %v", err)
		}
		tm.done <- nil // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("the term did not end")
	}
}

// position reports a unit's position through an engine, metres north of p1.
func position(t *testing.T, eng *alarms.Engine, unit string, m float64, st alarms.UnitStatus) {
	t.Helper()
	if err := eng.UnitPosition(t.Context(), unit, metresNorth(devLat, m), devLon, st); err != nil {
		t.Fatalf("position of %s: %v", unit, err)
	}
}

// panicP1 publishes an event of p1 (both intakes store it, once).
func panicP1(t *testing.T, n *clusterNode, id string) {
	t.Helper()
	dev := connect(t, n.sys.cfg.MQTT.URL, "", "", nil)
	publish(t, dev, devTopic(n.sys.cfg, "p1", "event"), `{"id":"`+id+`","class":"panic"}`)
}

// Two nodes share a store: only the one leading dispatches; the follower's
// Act, Unit and UnitPosition go to the leader, its errors keep their kind,
// and its subscribers see the leader's changes.
func TestClusterEngineFollowerForwards(t *testing.T) {
	c := newClusterSetup(t, time.Minute)
	a, b := c.node("a", 0), c.node("b", 0)
	changes := b.sys.eng.SubscribeIncidents(t.Context())
	patrol := b.sys.eng.DispatchMessages(t.Context(), "u1")
	u1 := connectUnit(t, a.sys, "u1")
	c.lead(a, "a/1")

	position(t, b.sys.eng, "u1", 200, alarms.UnitAvailable)
	waitUnit(t, b.sys.eng, "u1", alarms.UnitAvailable)

	panicP1(t, b, "c1")
	offer := u1.expect("offer", "")
	if offer.ID != offer.Incident+":v1:u1" {
		t.Errorf("offer id %q, want %s:v1:u1", offer.ID, offer.Incident)
	}
	u1.quiet(time.Second) // one offer, from the leader only

	inc, err := b.sys.eng.Act(t.Context(), offer.Incident, alarms.Action{Kind: alarms.ActAcknowledge, Actor: "bob"})
	if err != nil || !inc.Acknowledged || inc.State != alarms.StateOffered || inc.Version != 2 {
		t.Fatalf("act on the follower: %+v, %v", inc, err)
	}
	// Errors keep their kind across nodes.
	if _, err := b.sys.eng.Act(t.Context(), "inc-nope", alarms.Action{Kind: alarms.ActAcknowledge, Actor: "bob"}); !errors.Is(err, alarms.ErrNotFound) {
		t.Errorf("unknown incident: %v, want ErrNotFound", err)
	}
	_, err = b.sys.eng.Act(t.Context(), offer.Incident, alarms.Action{Kind: alarms.ActClose, Actor: "bob"})
	var te *alarms.TransitionError
	if !errors.As(err, &te) || te.From != alarms.StateOffered {
		t.Errorf("close while offered: %v, want a TransitionError from offered", err)
	}
	if _, err := b.sys.eng.Unit(t.Context(), "nobody"); !errors.Is(err, alarms.ErrUnknownUnit) {
		t.Errorf("unknown unit: %v", err)
	}
	if _, err := b.sys.eng.UnitReply(t.Context(), "u2", offer.Incident, alarms.ReplyAccept, "", ""); !errors.Is(err, alarms.ErrNotAssigned) {
		t.Errorf("reply of another unit: %v, want ErrNotAssigned", err)
	}
	inc, err = b.sys.eng.UnitReply(t.Context(), "u1", offer.Incident, alarms.ReplyAccept, "", "")
	if err != nil || inc.State != alarms.StateDispatched {
		t.Fatalf("accept on the follower: %+v, %v", inc, err)
	}
	// Over MQTT, whichever node the broker gives the reply and the
	// position to.
	u1.reply(offer.Incident, alarms.ReplyArrived, "")
	waitIncident(t, b.sys.eng, "on scene", func(inc alarms.Incident) bool { return inc.State == alarms.StateOnScene })
	u2 := connectUnit(t, a.sys, "u2")
	u2.report(400, alarms.UnitOffDuty)
	waitUnit(t, b.sys.eng, "u2", alarms.UnitOffDuty)

	// The follower's subscribers saw every change of the leader, in order.
	var got []string
	var last uint64
	deadline := time.After(20 * time.Second)
	for !slices.Contains(got, "arrived") {
		select {
		case ch := <-changes:
			if ch.Seq != last+1 {
				t.Fatalf("seq %d after %d", ch.Seq, last)
			}
			last = ch.Seq
			if ch.Incident != nil {
				got = append(got, ch.Entry.Action)
			}
		case <-deadline:
			t.Fatalf("follower's changes: %v", got)
		}
	}
	if want := []string{"opened", "offer", "acknowledge", "accept", "arrived"}; !slices.Equal(got, want) {
		t.Errorf("follower's changes %v, want %v", got, want)
	}
	select {
	case m := <-patrol:
		if m.Type != "offer" || m.ID != offer.ID {
			t.Errorf("patrol feed: %+v", m)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the follower's patrol feed got no offer")
	}
}

// Without a leader, a request fails with ErrNoLeader, and is not applied
// by a later leader.
func TestClusterEngineNoLeader(t *testing.T) {
	c := newClusterSetup(t, time.Minute)
	a := c.node("a", time.Second)
	_, err := a.sys.eng.Units(t.Context())
	if !errors.Is(err, alarms.ErrNoLeader) {
		t.Fatalf("units without a leader: %v, want ErrNoLeader", err)
	}
	c.lead(a, "a/1")
	if _, err := a.sys.eng.Units(t.Context()); err != nil {
		t.Fatalf("units with a leader: %v", err)
	}
}

// Takeover mid-offer: A's term ends with an offer out; B leads. The offer
// is not sent again, its timeout fires on B, and the next unit gets the
// next offer.
func TestClusterEngineTakeoverMidOffer(t *testing.T) {
	c := newClusterSetup(t, 3*time.Second)
	a, b := c.node("a", 0), c.node("b", 0)
	u1, u2 := connectUnit(t, a.sys, "u1"), connectUnit(t, a.sys, "u2")
	ta := c.lead(a, "a/1")
	position(t, a.sys.eng, "u1", 200, alarms.UnitAvailable)
	position(t, a.sys.eng, "u2", 400, alarms.UnitAvailable)
	waitUnit(t, b.sys.eng, "u2", alarms.UnitAvailable)

	panicP1(t, a, "c1")
	offer := u1.expect("offer", "")
	ta.end(t)
	c.lead(b, "b/2")

	withdrawn := u1.expect("withdrawn", offer.Incident) // no second offer first
	next := u2.expect("offer", offer.Incident)
	if withdrawn.ID == offer.ID || next.ID == offer.ID {
		t.Errorf("ids: offer %s, withdrawn %s, next %s", offer.ID, withdrawn.ID, next.ID)
	}
	u1.quiet(500 * time.Millisecond)
	inc, err := b.sys.eng.Incident(t.Context(), offer.Incident)
	if err != nil {
		t.Fatal(err)
	}
	var offers int
	for _, e := range inc.Timeline {
		if e.Action == "offer" {
			offers++
		}
	}
	if offers != 2 || inc.Offer == nil || inc.Offer.Unit != "u2" || !slices.Contains(actions(inc), "timeout") {
		t.Errorf("timeline %v, offer %+v: want one offer each to u1 and u2 and a timeout", actions(inc), inc.Offer)
	}
}

// A message saved in the outbox by a term that died before publishing it
// is published by the next term, with the same id, once.
func TestClusterEngineOutboxReplay(t *testing.T) {
	c := newClusterSetup(t, time.Minute)
	a := c.node("a", 0)
	u1 := connectUnit(t, a.sys, "u1")
	if err := c.rdb.Set(t.Context(), c.fence, "dead/1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	msg := alarms.DispatchMessage{Type: "offer", ID: "inc-x:v1:u1", Incident: "inc-x", Sent: time.Now()}
	if _, err := a.store.SaveFenced(t.Context(), alarms.Fence{Key: c.fence, Value: "dead/1"},
		alarms.FencedSave{Outbox: []alarms.OutboxMessage{{Unit: "u1", Msg: msg}}}); err != nil {
		t.Fatal(err)
	}
	c.lead(a, "a/2")
	got := u1.expect("offer", "inc-x")
	if got.ID != msg.ID {
		t.Errorf("replayed id %q, want %q", got.ID, msg.ID)
	}
	waitFor(t, "an empty outbox", func() bool {
		left, err := a.store.Outbox(t.Context())
		return err == nil && len(left) == 0
	})
	u1.quiet(500 * time.Millisecond)
}

// A term whose fence moved on cannot save: its write is refused, the term
// ends by itself, and no unit hears of the change.
func TestClusterEngineFencedOut(t *testing.T) {
	c := newClusterSetup(t, time.Minute)
	a := c.node("a", 0)
	u1 := connectUnit(t, a.sys, "u1")
	ta := c.lead(a, "a/1")
	position(t, a.sys.eng, "u1", 200, alarms.UnitAvailable)
	waitUnit(t, a.sys.eng, "u1", alarms.UnitAvailable)

	// The lease moves on without A noticing (a pause, a partition).
	if err := c.rdb.Set(t.Context(), c.fence, "b/2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	panicP1(t, a, "c1")
	select {
	case err := <-ta.done:
		if err != nil {
			t.Fatal(err)
		}
		ta.done <- nil
	case <-time.After(20 * time.Second):
		t.Fatal("the fenced-out term did not end")
	}
	u1.quiet(500 * time.Millisecond)
	page, err := a.store.Incidents(t.Context(), alarms.IncidentQuery{})
	if err != nil || len(page.Incidents) != 0 {
		t.Fatalf("incidents saved by a fenced-out term: %+v, %v", page.Incidents, err)
	}
	f := alarms.Fence{Key: c.fence, Value: "a/1"}
	if _, err := a.store.SaveFenced(t.Context(), f, alarms.FencedSave{Cursor: "1-1"}); !errors.Is(err, alarms.ErrFenced) {
		t.Errorf("fenced save: %v, want ErrFenced", err)
	}
	if err := a.store.PutUnitFenced(t.Context(), f, alarms.UnitState{ID: "u1"}); !errors.Is(err, alarms.ErrFenced) {
		t.Errorf("fenced put unit: %v, want ErrFenced", err)
	}
}

// Figures for docs (run with SKYWATCH_FIGURES=1 -v): the round trip of a
// request from a follower through the command stream, and of an
// operator's action (a fenced write, the answer, and the change on the
// follower's feed).
func TestClusterEngineForwardFigures(t *testing.T) {
	if os.Getenv("SKYWATCH_FIGURES") == "" {
		t.Skip("set SKYWATCH_FIGURES=1 to measure")
	}
	c := newClusterSetup(t, time.Minute)
	a, b := c.node("a", 0), c.node("b", 0)
	c.lead(a, "a/1")
	position(t, b.sys.eng, "u1", 200, alarms.UnitAvailable)
	waitUnit(t, b.sys.eng, "u1", alarms.UnitAvailable)
	measure := func(what string, n int, fn func()) {
		d := make([]time.Duration, n)
		for i := range d {
			start := time.Now()
			fn()
			d[i] = time.Since(start)
		}
		slices.Sort(d)
		t.Logf("%s: n=%d median %v p99 %v max %v", what, n, d[n/2], d[n*99/100], d[n-1])
	}
	measure("Unit() from the follower", 500, func() {
		if _, err := b.sys.eng.Unit(t.Context(), "u1"); err != nil {
			t.Fatal(err)
		}
	})
	measure("Unit() on the leader's node", 500, func() {
		if _, err := a.sys.eng.Unit(t.Context(), "u1"); err != nil {
			t.Fatal(err)
		}
	})
	start := time.Now()
	const positions = 2000
	for i := range positions {
		position(t, b.sys.eng, "u2", 400+float64(i)/10, alarms.UnitAvailable) // the last at 599.9 m
	}
	sent := time.Since(start)
	waitFor(t, "the last position", func() bool {
		v, err := b.sys.eng.Unit(t.Context(), "u2")
		return err == nil && v.Lat > metresNorth(devLat, 599.8)
	})
	t.Logf("%d positions from the follower: sent in %v, applied by the leader in %v (%.0f/s)", positions, sent,
		time.Since(start), positions/time.Since(start).Seconds())
	changes := b.sys.eng.SubscribeIncidents(t.Context())
	panicP1(t, a, "f1")
	var id string
	for id == "" {
		ch := <-changes
		if ch.Incident != nil {
			id = ch.Incident.ID
		}
	}
	measure("Act(note) from the follower, until its change is on the follower's feed", 300, func() {
		if _, err := b.sys.eng.Note(t.Context(), id, "test", "x"); err != nil {
			t.Fatal(err)
		}
		for ch := range changes {
			if ch.Entry.Action == "test" {
				break
			}
		}
	})
}

// An offer that its term saved but could not publish (the node lost its
// broker) waits in the outbox; the next term publishes it, once, with its
// id, and the offer's deadline still holds.
func TestClusterEngineOutboxAfterBrokerLoss(t *testing.T) {
	c := newClusterSetup(t, time.Minute)
	a, b := c.node("a", 0), c.node("b", 0)
	u1 := connectUnit(t, b.sys, "u1")
	ta := c.lead(a, "a/1")
	position(t, b.sys.eng, "u1", 200, alarms.UnitAvailable)
	waitUnit(t, b.sys.eng, "u1", alarms.UnitAvailable)

	_ = a.sys.in.Close() // A's engine runs on without a broker
	// Stored as an intake would (the broker may park a message for A's
	// session, which adoption handles elsewhere).
	ev := &alarms.Event{ID: "c1", Class: alarms.ClassPanic, Qualifier: alarms.QualifierNew, Device: "p1", Area: "g1",
		ReceivedAt: time.Now(), Source: "test"}
	if _, err := b.store.AppendEvent(t.Context(), ev, time.Minute); err != nil {
		t.Fatal(err)
	}
	inc := waitIncident(t, b.sys.eng, "the offer saved", func(inc alarms.Incident) bool { return inc.Offer != nil })
	u1.quiet(500 * time.Millisecond)
	left, err := b.store.Outbox(t.Context())
	if err != nil || len(left) != 1 || left[0].Msg.Type != "offer" {
		t.Fatalf("outbox %+v, %v: want the offer", left, err)
	}

	ta.end(t)
	c.lead(b, "b/2")
	got := u1.expect("offer", inc.ID)
	if got.ID != inc.ID+":v1:u1" || !got.Deadline.Equal(inc.Offer.Deadline) {
		t.Errorf("offer %s with deadline %v, want %s:v1:u1 by %v", got.ID, got.Deadline, inc.ID, inc.Offer.Deadline)
	}
	u1.quiet(500 * time.Millisecond)
	waitFor(t, "an empty outbox", func() bool {
		left, err := b.store.Outbox(t.Context())
		return err == nil && len(left) == 0
	})
}
