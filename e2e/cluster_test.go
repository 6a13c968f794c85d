package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skywatch/skywatch/hardware"
)

// The three-node proof: SIGKILL the engine's node, then a node that pulls
// cameras, under a flood of 300 events/s, with patrol units answering
// offers. Bounds are failure limits (the failover and a margin for a
// loaded two-core machine), not speed requirements.
const (
	clusterNodes        = 3
	clusterFailover     = 3 * time.Second
	clusterMargin       = 15 * time.Second // on top of the failover, for a busy machine
	clusterOfferTimeout = 4 * time.Second
	clusterDevices      = 100
	clusterRate         = 300 // events per second from all devices
	clusterFlood        = 36 * time.Second
	clusterUnits        = 24
	clusterCameraCount  = 6
	clusterFirstKill    = 8 * time.Second  // into the flood
	clusterSecondKill   = 10 * time.Second // after the first
	clusterStoreWait    = 45 * time.Second // for every acknowledged event to be stored
)

// TestClusterFailover runs three Skywatch nodes on one Redis and one
// Mosquitto, floods them with alarm events and patrol unit traffic, kills
// the engine's node and then a camera owner with SIGKILL, and checks that
// nothing was lost or doubled, that every offer went out once and every
// timeout fired, that the killed node's camera plays again through a
// surviving node, that the operator's session stays valid everywhere, and
// that the killed nodes rejoin.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the cluster test (three Skywatch processes, Mosquitto and Redis, a 36-s flood)")
	}
	bin := buildSkywatch(t)
	broker := startMosquittoWith(t, mosquittoOptions{persistence: true, noDelay: true})
	rs := startRedis(t)
	const prefix = "skywatch:"
	camIDs := make([]string, clusterCameraCount)
	for i := range camIDs {
		camIDs[i] = fmt.Sprintf("cam-%d", i+1)
	}
	cam, cameras := startClusterCamera(t, camIDs)
	devices := deviceIDs(clusterDevices)
	units := hardware.SimUnits(clusterUnits, "unit-", []string{clusterArea}, 7)
	setup := clusterSetup{
		broker: broker, redisURL: rs.url(), prefix: prefix, clientID: "skywatch-e2e-" + randomHex(),
		failover: clusterFailover, offerTimeout: clusterOfferTimeout, operatorHash: e2eOperatorHash(t),
		devices: devices, units: units, cameras: cameras,
	}
	c := newTestCluster(t, bin, setup, clusterNodes)
	start := time.Now()
	c.start()
	t.Logf("%d nodes ready in %v", clusterNodes, time.Since(start).Round(time.Millisecond))
	bound := clusterFailover + clusterMargin

	engine, took, err := c.waitEngine(start, failAfter)
	if err != nil {
		t.Fatal(err)
	}
	holders, _, err := c.waitCameras(cam, start, failAfter)
	if err != nil {
		t.Fatalf("cameras after the start: %v", err)
	}
	t.Logf("engine on node %s after %v; cameras: %v", engine, took.Round(time.Millisecond), holders)

	// The operator logs in on a; the session is good on b and c, and plays
	// a camera through a node that does not pull it (proxied to its owner).
	op, err := login(t.Context(), c.node("a"))
	if err != nil {
		t.Fatal(err)
	}
	op.validOn(t, "after login", c.nodes...)
	if cam, via := cameraNotOn(holders, c.nodes); cam != "" {
		took, err := playOn(t, via, cam, op, time.Now(), failAfter)
		if err != nil {
			t.Errorf("before any kill: %v", err)
		} else {
			t.Logf("camera %s (pulled by %s) played through node %s in %v", cam, holders[cam], via.id, took.Round(time.Millisecond))
		}
	}

	// Units accept (or decline, or ignore) offers and count every offer.
	offers := newOfferLog()
	stopUnits := runUnits(t, broker, units, offers)
	defer stopUnits()

	// The flood: 100 devices at 3 events/s each, QoS 1, each waiting for
	// its PUBACK from Mosquitto (which never dies).
	perDevice := int(clusterRate * clusterFlood.Seconds() / clusterDevices)
	floodStart := time.Now()
	f := startFlood(t, &flood{broker: broker, devices: devices, perDevice: perDevice,
		interval: time.Second * clusterDevices / clusterRate})

	// 1. SIGKILL the engine's node.
	time.Sleep(time.Until(floodStart.Add(clusterFirstKill)))
	first, _, err := c.engineHolder(t.Context())
	if err != nil || first == "" {
		t.Fatalf("no engine holder before the first kill: %q %v", first, err)
	}
	before, _ := c.cameraHolders(t.Context())
	c.node(first).sw.kill()
	killed1 := time.Now()
	t.Logf("kill 1 at %s: SIGKILL node %s (engine; cameras %v) with %d events acknowledged",
		killed1.Format(time.StampMilli), first, camerasOf(before, first), f.total())
	next, took, err := c.waitEngine(killed1, bound, first)
	if err != nil {
		t.Errorf("kill 1: %v", err)
	} else {
		t.Logf("kill 1: engine on node %s %v after the kill", next, took.Round(time.Millisecond))
	}
	if _, took, err := c.waitCameras(cam, killed1, bound); err != nil {
		t.Errorf("kill 1: cameras: %v", err)
	} else {
		t.Logf("kill 1: every camera pulled once again %v after the kill", took.Round(time.Millisecond))
	}

	// 2. SIGKILL a node that pulls cameras: not the engine's, when the
	// other survivor pulls any.
	time.Sleep(time.Until(killed1.Add(clusterSecondKill)))
	holders, _ = c.cameraHolders(t.Context())
	engine, _, _ = c.engineHolder(t.Context())
	second := ""
	for _, n := range c.running() {
		if len(camerasOf(holders, n.id)) > 0 && (second == "" || n.id != engine) {
			second = n.id
		}
	}
	if second == "" {
		t.Fatalf("kill 2: no running node holds a camera lease: %v", holders)
	}
	victimCams := camerasOf(holders, second)
	c.node(second).sw.kill()
	killed2 := time.Now()
	t.Logf("kill 2 at %s: SIGKILL node %s (cameras %v; engine on %s) with %d events acknowledged",
		killed2.Format(time.StampMilli), second, victimCams, engine, f.total())
	survivors := c.running()
	if len(survivors) != 1 {
		t.Fatalf("kill 2: %d nodes running, want 1", len(survivors))
	}
	last := survivors[0]
	if took, err := playOn(t, last, victimCams[0], op, killed2, bound); err != nil {
		t.Errorf("kill 2: %v", err)
	} else {
		t.Logf("kill 2: camera %s of node %s played through node %s %v after the kill", victimCams[0], second, last.id, took.Round(time.Millisecond))
	}
	if engine == second {
		if next, took, err := c.waitEngine(killed2, bound, second); err != nil {
			t.Errorf("kill 2: %v", err)
		} else {
			t.Logf("kill 2: engine on node %s %v after the kill", next, took.Round(time.Millisecond))
		}
	}
	if _, took, err := c.waitCameras(cam, killed2, bound); err != nil {
		t.Errorf("kill 2: cameras: %v", err)
	} else {
		t.Logf("kill 2: every camera pulled once again %v after the kill", took.Round(time.Millisecond))
	}
	op.validOn(t, "after the kills", last)

	// Every event Mosquitto acknowledged is stored exactly once, by the
	// surviving node alone (the dead nodes' sessions adopted).
	st := redisStore(rs.url(), prefix)
	if f.wait(t, nolossTimeout) {
		t.Logf("flood: %d events acknowledged in %v (%.0f/s)", f.want(), time.Since(floodStart).Round(time.Millisecond),
			float64(f.want())/time.Since(floodStart).Seconds())
	}
	floodEnd := time.Now()
	storedBefore := waitAllStored(t, st, f.want(), clusterStoreWait)
	if storedBefore {
		t.Logf("every acknowledged event stored %v after the flood's end (%s), with nodes %s and %s down",
			time.Since(floodEnd).Round(time.Millisecond), floodEnd.Format(time.StampMilli), first, second)
	} else {
		t.Errorf("not every acknowledged event was stored within %v of the flood's end with nodes %s and %s down", clusterStoreWait, first, second)
	}

	logAdoptions(t, c)

	// The offers: read the incidents, then give offers in flight a moment
	// to arrive.
	beforeRead := offers.snapshot()
	readAt := time.Now()
	incs, err := readIncidents(t.Context(), rs.url(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	res, problems := checkOffers(incs, readAt, beforeRead, offers.snapshot(), clusterOfferTimeout, bound)
	for _, p := range problems {
		t.Error(p)
	}
	raw, distinct, other, bad := offers.counts()
	t.Logf("offers: %d incidents, %d offer steps, %d timeouts (the latest %v after its deadline), %d declines; "+
		"units received %d offers (%d distinct ids, %d receptions repeated), %d other messages, %d undecodable; %d incidents with full timelines not checked",
		res.incidents, res.steps, res.timeouts, res.maxLate.Round(time.Millisecond), res.declines,
		raw, distinct, res.rawRepeats, other, bad, res.truncated)
	if len(res.lateOnes) > 0 {
		t.Logf("%d offers timed out more than a second after their deadline: %s", len(res.lateOnes), strings.Join(res.lateOnes, "; "))
	}
	if len(res.repeated) > 0 {
		t.Logf("offers received more than once (the same id; a unit drops them): %s", firstFew(res.repeated))
	}
	if res.steps == 0 || res.timeouts == 0 {
		t.Errorf("the test exercised %d offers and %d timeouts: it needs both", res.steps, res.timeouts)
	}

	// Both killed nodes come back and rejoin.
	restart := time.Now()
	for _, id := range []string{first, second} {
		c.node(id).sw.launch()
	}
	for _, id := range []string{first, second} {
		c.node(id).sw.waitServing()
		c.node(id).sw.waitReady()
	}
	t.Logf("nodes %s and %s ready again %v after their start", first, second, time.Since(restart).Round(time.Millisecond))
	op.validOn(t, "after the restarts", c.nodes...)
	c.waitRejoined(op, restart, bound)
	if !storedBefore {
		waitAllStored(t, st, f.want(), clusterStoreWait)
	}
	readStored(t, st).check(t, devices, perDevice)
	logStoredPerNode(t, c)
}

// logAdoptions logs, from every node's current run, when it saw the live
// set change and how it adopted a dead node's broker session.
func logAdoptions(t *testing.T, c *testCluster) {
	t.Helper()
	for _, n := range c.nodes {
		for line := range strings.Lines(n.sw.p.out.String()) {
			if strings.Contains(line, "live nodes changed") || strings.Contains(line, "adopt") {
				t.Logf("node %s: %s", n.id, strings.TrimSpace(line))
			}
		}
	}
}

// cameraNotOn returns a camera and a node that does not pull it.
func cameraNotOn(holders map[string]string, nodes []*clusterNode) (string, *clusterNode) {
	for cam, h := range holders {
		for _, n := range nodes {
			if n.id != h {
				return cam, n
			}
		}
	}
	return "", nil
}

// runUnits runs the simulated patrol units until the returned function is
// called: they answer most offers quickly (accepting or declining), leave
// a third unanswered so that offers time out, and clear their incidents
// after a moment on scene.
func runUnits(t *testing.T, broker string, units []hardware.SimUnit, offers *offerLog) func() {
	for i := range units {
		units[i].Username, units[i].Password = "", "" // Mosquitto lets anyone in here
	}
	sim := hardware.NewUnitSim(hardware.UnitSimConfig{
		Broker: broker, Prefix: floodTopicPrefix, Units: units, Seed: 7,
		PositionEvery: 2 * time.Second,
		AcceptRatio:   0.6, DeclineRatio: 0.1, IgnoreRatio: 0.3,
		AcceptDelay: hardware.DurationRange{Min: 200 * time.Millisecond, Max: time.Second},
		TravelSpeed: 2000,
		OnSceneTime: hardware.DurationRange{Min: time.Second, Max: 3 * time.Second},
		OnDispatch:  offers.record,
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := sim.Run(ctx); err != nil {
			t.Errorf("unit sim: %v", err)
		}
	})
	waitFor(t, "every unit connected", func() bool { return sim.Stats().Connected == len(units) })
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			st := sim.Stats()
			t.Logf("units: %d offers (distinct as a unit sees them), %d accepted, %d declined, %d ignored, %d withdrawn, %d cleared, %d refused, %d errors",
				st.Offers, st.Accepted, st.Declined, st.Ignored, st.Withdrawn, st.Cleared, st.Refused, st.Errors)
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitAllStored waits until every flood event is in the store (doubles
// counted; the final check finds them), for at most limit.
func waitAllStored(t *testing.T, st testStore, want int64, limit time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got := readStored(t, st).count()
		if got >= want {
			return true
		}
		if time.Now().After(deadline) {
			t.Logf("%d of %d events stored after %v", got, want, limit)
			return false
		}
		time.Sleep(time.Second)
	}
}

// waitRejoined waits until GET /api/cluster on every node lists every
// node alive.
func (c *testCluster) waitRejoined(op operatorSession, since time.Time, limit time.Duration) {
	t := c.t
	t.Helper()
	want := make([]string, 0, len(c.nodes))
	for _, n := range c.nodes {
		want = append(want, n.id)
	}
	for _, n := range c.nodes {
		for {
			v, body, err := c.apiCluster(n, op)
			live := v.liveNodes()
			if err == nil && strings.Join(live, ",") == strings.Join(want, ",") {
				break
			}
			if time.Since(since) > limit {
				t.Errorf("GET /api/cluster on %s %v after the restarts: live %v, want %v (%v) %s",
					n.id, limit, live, want, err, tail(body, 2000))
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Logf("every node lists %v alive %v after the restarts", want, time.Since(since).Round(time.Millisecond))
}

// logStoredPerNode logs how many events each node's current run stored:
// the broker spreads the shared subscription over the nodes.
func logStoredPerNode(t *testing.T, c *testCluster) {
	var parts []string
	for _, n := range c.nodes {
		v, err := n.sw.metric(t.Context(), "skywatch_alarms_events_stored_total")
		if err != nil {
			parts = append(parts, fmt.Sprintf("%s: %v", n.id, err))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %.0f", n.id, v))
	}
	t.Logf("events stored by each node's current run: %s", strings.Join(parts, ", "))
}
