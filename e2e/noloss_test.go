package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/boltstore"
	"github.com/skywatch/skywatch/alarms/redisstore"

	"github.com/skywatch/skywatch/internal/testredis"
)

// Size of the floods and bounds of the no-loss tests. The bounds are
// failure limits, not speed requirements.
const (
	nolossDevices   = 100
	nolossPerDevice = 100
	nolossKills     = 3                // SIGKILLs per test with kills
	nolossTimeout   = 3 * time.Minute  // for a flood to be acknowledged, or stored
	nolossStall     = 45 * time.Second // without progress, a wait gives up early
	redisOutage     = 10 * time.Second
	// maxOutageDisconnects bounds the connections one device of the
	// embedded broker loses during the outage (none expected).
	maxOutageDisconnects = 2
)

// TestAlarmsNoLoss runs Skywatch as a separate process, kills it with
// SIGKILL (or stops its Redis) in the middle of floods of QoS 1 alarm
// events, and checks that every event was stored exactly once.
func TestAlarmsNoLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the no-loss tests (Skywatch, Mosquitto and Redis processes, 10,000-event floods)")
	}
	bin := buildSkywatch(t)

	// Through Mosquitto: Skywatch acknowledges each message to the broker
	// only once stored, so the broker delivers again what a killed
	// Skywatch had not acknowledged.
	t.Run("ExternalBroker", func(t *testing.T) {
		t.Run("Redis", func(t *testing.T) { testExternalKills(t, bin, envRedisStore(t)) })
		t.Run("Bolt", func(t *testing.T) { testExternalKills(t, bin, boltStoreAt(t)) })
	})
	// Through the embedded broker: a device gets its PUBACK only once the
	// event is stored, and sends again what got none.
	t.Run("EmbeddedBroker", func(t *testing.T) { testEmbeddedKills(t, bin) })
	// Redis stopped for 10 s under a flood: Mosquitto keeps what Skywatch
	// does not acknowledge, and devices of the embedded broker send again
	// what got no PUBACK.
	t.Run("RedisOutage", func(t *testing.T) {
		t.Run("ExternalBroker", func(t *testing.T) { testRedisOutage(t, bin, true) })
		t.Run("EmbeddedBroker", func(t *testing.T) { testRedisOutage(t, bin, false) })
	})
}

func testExternalKills(t *testing.T, bin string, st testStore) {
	broker := startMosquitto(t)
	devices := deviceIDs(nolossDevices)
	sw := newSkywatchProc(t, bin, writeConfig(t, swConfig{broker: broker, store: st.yaml, devices: devices}))
	sw.start()
	sw.waitReady() // subscribed: from now on Mosquitto queues for the session
	f := startFlood(t, &flood{broker: broker, devices: devices, perDevice: nolossPerDevice})
	killDuringExternalFlood(t, sw, st, f)
	// Also after a wait that failed: the store tells what is missing.
	finish(t, sw, st, devices)
}

// killDuringExternalFlood kills Skywatch at random points of the flood
// and starts it again at once, then waits until every event is stored. It
// returns early when a wait failed.
func killDuringExternalFlood(t *testing.T, sw *skywatchProc, st testStore, f *flood) {
	start := time.Now()
	want := f.want()
	var before int64 // events stored by the runs before the current one
	prog := &progress{sw: sw}
	storedNow := func() int64 { return before + prog.stored(t) }
	for i, at := range killPoints(want) {
		if err := prog.waitFor(storedNow, at, nil); err != nil {
			t.Errorf("kill %d, at %d events stored: %v", i+1, at, err)
			return
		}
		sw.kill()
		before = readStored(t, st).count()
		t.Logf("kill %d: SIGKILL with %d of %d events stored, %d acknowledged by Mosquitto", i+1, before, want, f.total())
		sw.start()
	}
	if !f.wait(t, nolossTimeout) {
		return
	}
	if err := prog.waitFor(storedNow, want, allStored(t, st, want)); err != nil {
		// The count is a lower bound (an event stored by a run killed
		// before it counted it is a duplicate to the next): the store
		// decides.
		t.Logf("waiting for every event stored: %v; checking the store", err)
		return
	}
	t.Logf("every event stored after %v; the last run saw %.0f duplicates (redeliveries, expected)",
		time.Since(start).Round(time.Millisecond), prog.duplicates(t))
	if n := storedNow(); n != want {
		t.Logf("the runs counted %d events as stored, not %d: an event stored by a run killed before it counted it is a duplicate to the next", n, want)
	}
}

func testEmbeddedKills(t *testing.T, bin string) {
	st := boltStoreAt(t)
	devices := deviceIDs(nolossDevices)
	// A fixed port: the devices reconnect to the same address.
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	sw := newSkywatchProc(t, bin, writeConfig(t, swConfig{mqttAddress: addr, store: st.yaml, devices: devices}))
	sw.start()
	f := startFlood(t, &flood{broker: "tcp://" + addr, devices: devices, perDevice: nolossPerDevice, passwords: true})
	killDuringEmbeddedFlood(t, sw, st, f)
	finish(t, sw, st, devices)
}

// killDuringEmbeddedFlood kills Skywatch at random points of the flood,
// checks that every event acknowledged so far is stored, and starts it
// again at once; then it waits until every event is acknowledged. It
// returns early when a wait failed.
func killDuringEmbeddedFlood(t *testing.T, sw *skywatchProc, st testStore, f *flood) {
	start := time.Now()
	prog := &progress{sw: sw}
	for i, at := range killPoints(f.want()) {
		if err := prog.waitFor(f.total, at, nil); err != nil {
			t.Errorf("kill %d, at %d events acknowledged: %v", i+1, at, err)
			return
		}
		sw.kill()
		stored := readStored(t, st)
		// Read after the store: whatever a device holds a PUBACK for now
		// was acknowledged before the kill, so it must be stored.
		acked := f.snapshot()
		stored.checkAcked(t, f.devices, acked)
		t.Logf("kill %d: SIGKILL with %d events acknowledged and %d stored", i+1, sum(acked), stored.count())
		sw.start()
	}
	if !f.wait(t, nolossTimeout) {
		return
	}
	t.Logf("every event acknowledged after %v; %d sent again after a missing PUBACK; the last run saw %.0f duplicates",
		time.Since(start).Round(time.Millisecond), f.resends.Load(), prog.duplicates(t))
	if f.resends.Load() == 0 {
		t.Error("no device had to send an event again: the kills hit no publish in flight")
	}
}

func testRedisOutage(t *testing.T, bin string, external bool) {
	rs := startRedis(t)
	st := redisStore(rs.url(), "skywatch:")
	devices := deviceIDs(nolossDevices)
	c := swConfig{mqttAddress: "127.0.0.1:0", store: st.yaml, devices: devices}
	if external {
		c.broker = startMosquitto(t)
	}
	sw := newSkywatchProc(t, bin, writeConfig(t, c))
	sw.start()
	sw.waitReady()
	broker := c.broker
	if !external {
		broker = "tcp://" + sw.mqtt
	}
	// Paced, so that the flood goes on before, during and after the outage.
	f := startFlood(t, &flood{broker: broker, devices: devices, perDevice: nolossPerDevice,
		passwords: !external, interval: 150 * time.Millisecond})
	stopRedisDuringFlood(t, sw, rs, st, f, external)
	finish(t, sw, st, devices)
}

// stopRedisDuringFlood stops Redis for redisOutage once a fifth of the
// flood is stored, checks that Skywatch reports it, then waits until every
// event is stored. It returns early when a wait failed.
func stopRedisDuringFlood(t *testing.T, sw *skywatchProc, rs *redisServer, st testStore, f *flood, external bool) {
	start := time.Now()
	want := f.want()
	prog := &progress{sw: sw}
	storedNow := func() int64 { return prog.stored(t) }
	if err := prog.waitFor(storedNow, want/5, nil); err != nil {
		t.Errorf("waiting for a fifth of the flood stored: %v", err)
		return
	}

	rs.stop()
	down := time.Now()
	storedAtStop, ackedAtStop := prog.mustStored(t), f.total()
	t.Logf("redis stopped with %d of %d events stored, %d acknowledged", storedAtStop, want, ackedAtStop)
	waitStoreDown(t, sw)
	time.Sleep(time.Until(down.Add(redisOutage)))
	if got := prog.mustStored(t); got != storedAtStop {
		t.Errorf("%d events stored while Redis was down", got-storedAtStop)
	}
	acked := f.snapshot()
	lost := f.disconnects()
	t.Logf("redis down for %v, meanwhile %d more events acknowledged, %d sent again after a missing PUBACK, "+
		"%d device connections lost (at most %d for one device)",
		time.Since(down).Round(time.Millisecond), sum(acked)-ackedAtStop, f.resends.Load(), sum(lost), slices.Max(lost))
	switch {
	case external && sum(acked) == ackedAtStop:
		t.Error("the flood did not go on into Mosquitto while Redis was down")
	case !external && sum(acked) != ackedAtStop:
		t.Errorf("%d events acknowledged while Redis was down", sum(acked)-ackedAtStop)
	case !external && slices.Max(lost) > maxOutageDisconnects:
		// The intake holds a message without PUBACK while the store is
		// retried (alarms.store_hold): the outage is quiet on the network.
		t.Errorf("a device lost its connection %d times during the outage, want at most %d", slices.Max(lost), maxOutageDisconnects)
	}
	rs.start()
	back := time.Now()
	if err := prog.waitFor(storedNow, storedAtStop+1, nil); err != nil {
		t.Errorf("waiting for the first event stored after Redis came back: %v", err)
		return
	}
	t.Logf("storing resumed %v after Redis was started again", time.Since(back).Round(time.Millisecond))
	if !external {
		// Acknowledged before Redis came back, so stored before it went.
		readStored(t, st).checkAcked(t, f.devices, acked)
	}

	if !f.wait(t, nolossTimeout) {
		return
	}
	if err := prog.waitFor(storedNow, want, allStored(t, st, want)); err != nil {
		t.Logf("waiting for every event stored: %v; checking the store", err)
		return
	}
	t.Logf("every event stored after %v; the run counted %d stored and %.0f duplicates",
		time.Since(start).Round(time.Millisecond), storedNow(), prog.duplicates(t))
	// Each stored event is announced (and counted) once, also one whose
	// write's reply was lost as Redis stopped: the retry finds it and
	// takes it as the intake's own, not as a duplicate.
	if n := storedNow(); n != want {
		t.Errorf("the run counted %d events as stored, want %d: a stored event was taken for a duplicate and never announced", n, want)
	}
	sw.waitReady()
	if code, body, err := sw.get(t.Context(), "/api/alarms/status"); err == nil && code == http.StatusOK {
		t.Logf("intake status at the end: %s", strings.Join(strings.Fields(body), " "))
	}
}

// finish stops Skywatch and checks that the store holds every event
// exactly once.
func finish(t *testing.T, sw *skywatchProc, st testStore, devices []string) {
	t.Helper()
	if sw.p.exited() {
		t.Errorf("%s exited by itself: %v", sw.p.name, sw.p.err)
	} else {
		sw.stop()
	}
	readStored(t, st).check(t, devices, nolossPerDevice)
}

// waitStoreDown waits until Skywatch reports its store failing: in
// /api/alarms/status where the API is wired, else by /readyz and the
// store_ok metric.
func waitStoreDown(t *testing.T, sw *skywatchProc) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for {
		ctx := t.Context()
		code, body, err := sw.get(ctx, "/api/alarms/status")
		if err == nil && code == http.StatusOK {
			var st alarms.IntakeStatus
			if err := json.Unmarshal([]byte(body), &st); err != nil {
				t.Fatalf("/api/alarms/status: %v: %s", err, body)
			}
			if !st.StoreOK && st.StoreError != "" {
				t.Logf("/api/alarms/status during the outage: store_error %q", st.StoreError)
				return
			}
		} else {
			rcode, rbody, rerr := sw.get(ctx, "/readyz")
			ok, merr := sw.metric(ctx, "skywatch_alarms_store_ok")
			if rerr == nil && rcode == http.StatusServiceUnavailable && merr == nil && ok == 0 {
				t.Logf("during the outage: /readyz %d %q, skywatch_alarms_store_ok 0 (/api/alarms/status: %d)",
					rcode, strings.TrimSpace(rbody), code)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Skywatch does not report its store down within %v", failAfter)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// killPoints are the progress counts (of want) at which to kill Skywatch:
// one at a random point in each of nolossKills equal parts of the flood,
// away from its ends.
func killPoints(want int64) []int64 {
	var pts []int64
	part := float64(want) / nolossKills
	for i := range nolossKills {
		pts = append(pts, int64(part*(float64(i)+0.1+0.7*mrand.Float64())))
	}
	return pts
}

// progress watches Skywatch's metrics.
type progress struct {
	sw *skywatchProc
}

// stored is the number of events the current run stored (not duplicates);
// 0 while the metric cannot be read.
func (p *progress) stored(t *testing.T) int64 {
	v, err := p.sw.metric(t.Context(), "skywatch_alarms_events_stored_total")
	if err != nil {
		return 0
	}
	return int64(v)
}

// mustStored is stored, read without fail: a busy machine may time out a
// scrape now and then.
func (p *progress) mustStored(t *testing.T) int64 {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for {
		v, err := p.sw.metric(t.Context(), "skywatch_alarms_events_stored_total")
		if err == nil {
			return int64(v)
		}
		if time.Now().After(deadline) {
			t.Fatalf("reading the stored events count: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *progress) duplicates(t *testing.T) float64 {
	v, _ := p.sw.metric(t.Context(), "skywatch_alarms_events_duplicate_total")
	return v
}

// waitFor polls count until it reaches at, or until done (if not nil),
// asked at most once a second while count rests, says so. It gives up
// when that does not happen within nolossTimeout, or count stops moving
// for nolossStall, or Skywatch exits; the caller then checks the store,
// which says what is missing.
func (p *progress) waitFor(count func() int64, at int64, done func() bool) error {
	deadline := time.Now().Add(nolossTimeout)
	last, lastMove, lastAsked := int64(-1), time.Now(), time.Time{}
	for {
		n := count()
		if n >= at {
			return nil
		}
		now := time.Now()
		if n != last {
			last, lastMove = n, now
		}
		if done != nil && now.Sub(lastMove) > time.Second && now.Sub(lastAsked) > time.Second {
			if done() {
				return nil
			}
			lastAsked = time.Now()
		}
		if now.After(deadline) || now.Sub(lastMove) > nolossStall {
			return fmt.Errorf("stuck at %d of %d for %v", n, at, now.Sub(lastMove).Round(time.Second))
		}
		if p.sw.p.exited() {
			return fmt.Errorf("at %d of %d, %s exited: %v", n, at, p.sw.p.name, p.sw.p.err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testStore is the store Skywatch uses in a test, and how the test reads it.
type testStore struct {
	yaml string // the store: section of the config
	open func(ctx context.Context) (alarms.Store, error)
	// live is true for a store that can be read while Skywatch runs.
	live bool
}

// allStored asks a live store whether every flood event is in it, for a
// count of stored events that may stay short across kills: a run killed
// after storing an event and before counting it leaves the next run to
// find it as a duplicate. It returns nil for a store that is not live.
func allStored(t *testing.T, st testStore, want int64) func() bool {
	if !st.live {
		return nil
	}
	return func() bool { return readStored(t, st).count() >= want }
}

// boltStoreAt is an embedded store file in the test's directory. It can be
// read only while Skywatch is not running (the file is locked).
func boltStoreAt(t *testing.T) testStore {
	path := filepath.Join(t.TempDir(), "alarms.db")
	return testStore{
		yaml: fmt.Sprintf("store:\n  path: %q\n", path),
		open: func(context.Context) (alarms.Store, error) { return boltstore.Open(path) },
	}
}

// envRedisStore is the Redis of SKYWATCH_TEST_REDIS under a key prefix of
// the test's own, deleted at the end. Without it the test is skipped, and
// fails under CI.
func envRedisStore(t *testing.T) testStore {
	url := os.Getenv("SKYWATCH_TEST_REDIS")
	if url == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("SKYWATCH_TEST_REDIS is not set under CI")
		}
		t.Skip("SKYWATCH_TEST_REDIS is not set (e.g. redis://127.0.0.1:6379/0): skipping")
	}
	prefix := testredis.Prefix(t, url, "skywatch-e2e-")
	return redisStore(url, prefix)
}

func redisStore(url, prefix string) testStore {
	return testStore{
		yaml: fmt.Sprintf("store:\n  redis_url: %q\n  redis_key_prefix: %q\n", url, prefix),
		open: func(ctx context.Context) (alarms.Store, error) {
			return redisstore.Open(ctx, redisstore.Config{URL: url, KeyPrefix: prefix})
		},
		live: true,
	}
}

func randomHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// swConfig is what a no-loss test's Skywatch config says.
type swConfig struct {
	broker      string // external broker URL; empty for the embedded broker
	mqttAddress string // the embedded broker's address
	store       string // the store: section
	devices     []string
}

// writeConfig writes a Skywatch config file into the test's directory.
// Embedded-broker devices log in with their id and "pw-<id>".
func writeConfig(t *testing.T, c swConfig) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(`log:
  level: info
http:
  address: 127.0.0.1:0
webrtc:
  udp_address: 127.0.0.1:0
  tcp_address: "off"
mqtt:
  topic_prefix: ` + floodTopicPrefix + "\n")
	if c.broker != "" {
		fmt.Fprintf(&b, "  url: %s\n  client_id: skywatch-e2e-%s\n", c.broker, randomHex())
	} else {
		fmt.Fprintf(&b, "  address: %s\n", c.mqttAddress)
	}
	b.WriteString(c.store)
	fmt.Fprintf(&b, "users:\n  - username: %s\n    role: admin\n    password_hash: %q\n", e2eOperator, e2eOperatorHash(t))
	b.WriteString("devices:\n")
	for _, id := range c.devices {
		fmt.Fprintf(&b, "  - id: %s\n    area: e2e\n", id)
		if c.broker == "" {
			fmt.Fprintf(&b, "    password: pw-%s\n", id)
		}
	}
	path := filepath.Join(t.TempDir(), "skywatch.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The operator account of writeConfig.
const (
	e2eOperator         = "e2e-admin"
	e2eOperatorPassword = "e2e-operator-password"
)

func e2eOperatorHash(t *testing.T) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(e2eOperatorPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func deviceIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("dev-%03d", i)
	}
	return ids
}

func sum(xs []int64) int64 {
	var n int64
	for _, x := range xs {
		n += x
	}
	return n
}

// storedEvents counts the stored flood events by device and id; other
// events (a supervision trouble, say) are kept aside.
type storedEvents struct {
	byKey map[string]int // "device/n-k" -> times stored
	other []alarms.Event
}

// readStored reads every event from the store.
func readStored(t *testing.T, st testStore) storedEvents {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), failAfter)
	defer cancel()
	s, err := st.open(ctx)
	if err != nil {
		t.Fatalf("open the store: %v", err)
	}
	defer s.Close()
	out := storedEvents{byKey: map[string]int{}}
	q := alarms.EventQuery{Limit: 1000}
	for {
		page, err := s.Events(ctx, q)
		if err != nil {
			t.Fatalf("read the store: %v", err)
		}
		for _, e := range page.Events {
			if strings.HasPrefix(e.ID, "n-") && e.Class == alarms.ClassAlarm {
				out.byKey[e.Key()]++
			} else {
				out.other = append(out.other, e)
			}
		}
		if page.Next == "" {
			return out
		}
		q.Cursor = page.Next
	}
}

// count is the number of flood events stored, doubles included.
func (s storedEvents) count() int64 {
	var n int64
	for _, c := range s.byKey {
		n += int64(c)
	}
	return n
}

// checkAcked checks that every event acknowledged to a device is stored.
func (s storedEvents) checkAcked(t *testing.T, devices []string, acked []int64) {
	t.Helper()
	var missing []string
	for i, d := range devices {
		for k := range acked[i] {
			if key := fmt.Sprintf("%s/n-%d", d, k); s.byKey[key] == 0 {
				missing = append(missing, key)
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d acknowledged events are not stored: %s", len(missing), firstFew(missing))
	}
}

// check checks that every device's events n-0 ... n-(perDevice-1) are
// stored exactly once, and nothing else of the flood.
func (s storedEvents) check(t *testing.T, devices []string, perDevice int) {
	t.Helper()
	var missing, doubled []string
	want := map[string]bool{}
	for _, d := range devices {
		for k := range perDevice {
			key := fmt.Sprintf("%s/n-%d", d, k)
			want[key] = true
			switch n := s.byKey[key]; {
			case n == 0:
				missing = append(missing, key)
			case n > 1:
				doubled = append(doubled, fmt.Sprintf("%s (%d times)", key, n))
			}
		}
	}
	var unexpected []string
	for key := range s.byKey {
		if !want[key] {
			unexpected = append(unexpected, key)
		}
	}
	total := len(devices) * perDevice
	if len(missing) > 0 {
		t.Errorf("%d of %d events are missing: %s", len(missing), total, firstFew(missing))
	}
	if len(doubled) > 0 {
		t.Errorf("%d events are stored more than once: %s", len(doubled), firstFew(doubled))
	}
	if len(unexpected) > 0 {
		t.Errorf("%d events that no device sent: %s", len(unexpected), firstFew(unexpected))
	}
	if got := s.count(); got != int64(total) {
		t.Errorf("%d flood events stored, want %d", got, total)
	}
	if len(s.other) > 0 {
		t.Logf("%d other events stored (not checked), the first: %+v", len(s.other), s.other[0])
	}
}

func firstFew(xs []string) string {
	if len(xs) > 10 {
		return strings.Join(xs[:10], ", ") + ", ..."
	}
	return strings.Join(xs, ", ")
}
