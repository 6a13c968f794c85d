package alarms_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/boltstore"
	"github.com/skywatch/skywatch/alarms/redisstore"
	"github.com/skywatch/skywatch/hardware"

	"github.com/skywatch/skywatch/internal/testredis"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// errInjected imitates a store that lost its backend.
var errInjected = errors.New("redis: connection refused (injected)")

// failStore wraps a real store and fails its writes while fail is set.
type failStore struct {
	alarms.Store
	fail   atomic.Bool
	writes atomic.Int64 // failed writes
	// loseReply makes the next AppendEvent store the event and then fail,
	// as Redis does when its reply is lost.
	loseReply atomic.Bool
	// failID, when set, makes AppendEvent fail for events of that id only.
	failID atomic.Pointer[string]
	// plans script the next calls of AppendEvent ("lose": store, then
	// fail; "fail": fail without storing; "": pass) and of PutDevice
	// ("fail" or "").
	planMu     sync.Mutex
	appendPlan []string
	putPlan    []string
}

// next pops the next step of a plan.
func (s *failStore) next(plan *[]string) string {
	s.planMu.Lock()
	defer s.planMu.Unlock()
	if len(*plan) == 0 {
		return ""
	}
	step := (*plan)[0]
	*plan = (*plan)[1:]
	return step
}

func (s *failStore) failing() error {
	if s.fail.Load() {
		s.writes.Add(1)
		return errInjected
	}
	return nil
}

func (s *failStore) AppendEvent(ctx context.Context, e *alarms.Event, w time.Duration) (bool, error) {
	if err := s.failing(); err != nil {
		return false, err
	}
	if id := s.failID.Load(); id != nil && *id == e.ID {
		s.writes.Add(1)
		return false, errInjected
	}
	step := s.next(&s.appendPlan)
	if step == "fail" {
		return false, errInjected
	}
	stored, err := s.Store.AppendEvent(ctx, e, w)
	if err == nil && (s.loseReply.CompareAndSwap(true, false) || step == "lose") {
		return false, errInjected
	}
	return stored, err
}

func (s *failStore) AddRejected(ctx context.Context, r *alarms.Rejected, lim alarms.RejectedLimits) (int, error) {
	if err := s.failing(); err != nil {
		return 0, err
	}
	return s.Store.AddRejected(ctx, r, lim)
}

func (s *failStore) PutDevice(ctx context.Context, d alarms.DeviceState) error {
	if err := s.failing(); err != nil {
		return err
	}
	if s.next(&s.putPlan) == "fail" {
		return errInjected
	}
	return s.Store.PutDevice(ctx, d)
}

func (s *failStore) Ping(ctx context.Context) error {
	if s.fail.Load() {
		return errInjected
	}
	return s.Store.Ping(ctx)
}

// openBolt opens a bolt store at path, closed at the end of the test.
func openBolt(t *testing.T, path string) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newStore returns a fresh real store wrapped for failure injection: a
// bolt file, or Redis (under a key prefix of its own, deleted afterwards)
// when SKYWATCH_TEST_REDIS is set.
func newStore(t *testing.T) *failStore {
	t.Helper()
	url := os.Getenv("SKYWATCH_TEST_REDIS")
	if url == "" {
		return &failStore{Store: openBolt(t, filepath.Join(t.TempDir(), "alarms.db"))}
	}
	prefix := testredis.Prefix(t, url, "skywatch-test:")
	s, err := redisstore.Open(t.Context(), redisstore.Config{URL: url, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &failStore{Store: s}
}

func uniq(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// testConfig is an embedded-broker config on a random port and topic
// prefix with devices d1, d2 (plain passwords "pw-<id>") and d3 (a bcrypt
// hash of "pw-d3").
func testConfig(t *testing.T) alarms.Config {
	return alarms.Config{
		MQTT: alarms.MQTTConfig{Address: "127.0.0.1:0", TopicPrefix: uniq("t")},
		Devices: []alarms.DeviceConfig{
			{ID: "d1", Area: "village-1", Password: "pw-d1"},
			{ID: "d2", Area: "village-2", Password: "pw-d2"},
			{ID: "d3", Area: "village-3", PasswordHash: hashD3},
		},
		Units: []alarms.UnitConfig{{ID: "u1", Password: "pw-u1"}},
	}
}

// hashD3 is bcrypt("pw-d3") at cost 4, to keep tests fast.
const hashD3 = "$2a$04$wEbTbV98VV6bhvu4XFftje9P6jEE1jU55qK0limOD7.GXvWeawZ4."

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startIntake builds and starts an intake, closed at the end of the test.
func startIntake(t *testing.T, cfg alarms.Config, store alarms.Store) *alarms.Intake {
	t.Helper()
	in, err := alarms.NewIntake(cfg, store, hardware.Decoders(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close() })
	if err := in.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return in
}

// connect connects a paho client as user to the broker at url.
func connect(t *testing.T, url, user, pass string, mod func(*paho.ClientOptions)) paho.Client {
	t.Helper()
	// At the embedded broker a client's id is its user's (they are the
	// same in the tests), or "{id}:..." for a session that ends with the
	// connection.
	id := uniq(user + ":")
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).
		SetUsername(user).SetPassword(pass).SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second)
	if mod != nil {
		mod(o)
	}
	if !o.CleanSession && o.ClientID == id {
		o.SetClientID(user)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(15 * time.Second) {
		t.Fatalf("connect %s: timeout", user)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("connect %s: %v", user, err)
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

// publish publishes with QoS 1 and waits for the PUBACK.
func publish(t *testing.T, c paho.Client, topic, payload string) {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(15 * time.Second) {
		t.Fatalf("publish %s: no PUBACK", topic)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

// waitFor polls cond until it holds, failing after a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// events lists a device's stored events, newest first.
func events(t *testing.T, s alarms.Store, device string) []alarms.Event {
	t.Helper()
	page, err := s.Events(context.Background(), alarms.EventQuery{Device: device, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return page.Events
}

// withID returns the events with the given id.
func withID(evs []alarms.Event, id string) []alarms.Event {
	var out []alarms.Event
	for _, e := range evs {
		if e.ID == id {
			out = append(out, e)
		}
	}
	return out
}

// supervision returns a device's supervision events by qualifier.
func supervision(t *testing.T, s alarms.Store, device string) (troubles, restores int) {
	t.Helper()
	for _, e := range events(t, s, device) {
		if e.Class != alarms.ClassSupervision {
			continue
		}
		if e.Qualifier == alarms.QualifierNew {
			troubles++
		} else {
			restores++
		}
	}
	return troubles, restores
}

func devTopic(cfg alarms.Config, dev, kind string) string {
	return fmt.Sprintf("%s/dev/%s/%s", cfg.MQTT.TopicPrefix, dev, kind)
}
