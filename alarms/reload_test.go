package alarms_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/skywatch/skywatch/alarms"
)

// watched is a device's connection with what happened to it: how many
// times it connected and whether it was lost.
type watched struct {
	c        paho.Client
	connects atomic.Int32
	lost     chan error
}

// connectWatched connects user without reconnecting, counting its
// connections and noting its loss.
func connectWatched(t *testing.T, url, user, pass string) *watched {
	t.Helper()
	w := &watched{lost: make(chan error, 1)}
	w.c = connect(t, url, user, pass, func(o *paho.ClientOptions) {
		o.SetOnConnectHandler(func(paho.Client) { w.connects.Add(1) })
		o.SetConnectionLostHandler(func(_ paho.Client, err error) { w.lost <- err })
	})
	return w
}

// waitLost waits until the connection is lost.
func (w *watched) waitLost(t *testing.T, who string) {
	t.Helper()
	select {
	case <-w.lost:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: still connected", who)
	}
}

// untouched checks that the connection is the one made at first: never
// lost, connected once, still open.
func (w *watched) untouched(t *testing.T, who string) {
	t.Helper()
	select {
	case err := <-w.lost:
		t.Fatalf("%s: connection lost: %v", who, err)
	default:
	}
	if n := w.connects.Load(); n != 1 || !w.c.IsConnectionOpen() {
		t.Fatalf("%s: %d connections, open %v; want the first one, open", who, n, w.c.IsConnectionOpen())
	}
}

func bcryptHash(t *testing.T, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// A reload changes d1's password and d3's hash, not d2's: d1 and d3 are
// disconnected at once and their old passwords no longer work (d3's not
// even from the verified-credential cache, where it was after its first
// login); the new ones do. d2 keeps its very connection and its events
// are still stored through it. Unit u1, not connected, changes its
// password too: it is revoked (for the patrol page), the patrol page login
// takes only the new one.
func TestReloadCredentialsDisconnectOnlyChanged(t *testing.T) {
	cfg := testConfig(t)
	cfg.MQTT.Auth.CacheFile = t.TempDir() + "/auth-cache"
	store := newStore(t)
	in := startIntake(t, cfg, store)
	url := "tcp://" + in.BrokerAddr()
	a := connectWatched(t, url, "d1", "pw-d1")
	b := connectWatched(t, url, "d2", "pw-d2")
	c := connectWatched(t, url, "d3", "pw-d3")
	publish(t, b.c, devTopic(cfg, "d2", "event"), `{"id":"before","class":"alarm"}`)

	next := cfg
	next.Devices = slices.Clone(cfg.Devices)
	next.Devices[0].Password = "pw-d1-new"
	next.Devices[2].PasswordHash = bcryptHash(t, "pw-d3-new")
	next.Units = slices.Clone(cfg.Units)
	next.Units[0].Password = "pw-u1-new"
	start := time.Now()
	ch, err := in.Apply(next)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Apply with 2 of 3 devices' credentials changed took %v", took)
	if !slices.Equal(ch.Changed, []string{"d1", "d3"}) || !slices.Equal(ch.Disconnected, []string{"d1", "d3"}) ||
		!slices.Equal(ch.UnitsChanged, []string{"u1"}) || !slices.Equal(ch.UnitsRevoked, []string{"u1"}) ||
		len(ch.Added)+len(ch.Removed)+len(ch.UnitsAdded)+len(ch.UnitsRemoved) != 0 {
		t.Fatalf("changes %+v, want d1 and d3 changed and disconnected, u1 changed and revoked", ch)
	}
	if _, err := in.CheckUnit("u1", "pw-u1", "127.0.0.1:1"); !errors.Is(err, alarms.ErrBadCredentials) {
		t.Errorf("u1's old password on the patrol page: %v, want ErrBadCredentials", err)
	}
	if id, err := in.CheckUnit("u1", "pw-u1-new", "127.0.0.1:1"); err != nil || id != "u1" {
		t.Errorf("u1's new password on the patrol page: %q, %v", id, err)
	}
	a.waitLost(t, "d1")
	c.waitLost(t, "d3")

	// d2: the same connection, still delivering.
	publish(t, b.c, devTopic(cfg, "d2", "event"), `{"id":"after","class":"alarm"}`)
	if got := events(t, store, "d2"); len(withID(got, "before")) != 1 || len(withID(got, "after")) != 1 {
		t.Fatalf("d2's events %+v, want before and after", got)
	}
	b.untouched(t, "d2")

	for _, old := range []struct{ user, pass string }{{"d1", "pw-d1"}, {"d3", "pw-d3"}} {
		if tryConnect(t, url, "127.0.0.1", old.user, old.pass) {
			t.Errorf("%s: the old password was accepted after the reload", old.user)
		}
	}
	d1 := connect(t, url, "d1", "pw-d1-new", nil)
	publish(t, d1, devTopic(cfg, "d1", "event"), `{"id":"new-pw","class":"alarm"}`)
	if len(withID(events(t, store, "d1"), "new-pw")) != 1 {
		t.Fatal("d1's event with its new password not stored")
	}
	if !tryConnect(t, url, "127.0.0.1", "d3", "pw-d3-new") {
		t.Fatal("d3 refused with its new password")
	}
	b.untouched(t, "d2")

	// Applying the same config again changes nothing and disconnects no
	// one.
	ch, err = in.Apply(next)
	if err != nil || !ch.Empty() || len(ch.Disconnected) != 0 {
		t.Fatalf("second Apply: %+v, %v", ch, err)
	}
	b.untouched(t, "d2")
}

// A reload adds d4, removes d2, and moves d1 to another area and model: d4
// connects and its events are stored; d2 is disconnected, refused, no
// longer listed or supervised; d1 keeps its connection and state, and its
// next event takes its new area and decoder. An invalid config changes
// nothing.
func TestReloadDevicesAddedRemovedChanged(t *testing.T) {
	cfg := testConfig(t)
	cfg.Models = []alarms.ModelConfig{{Name: "slow", Decoder: alarms.DecoderSkywatch, Heartbeat: time.Hour}}
	store := newStore(t)
	in := startIntake(t, cfg, store)
	url := "tcp://" + in.BrokerAddr()
	d1 := connectWatched(t, url, "d1", "pw-d1")
	d2 := connectWatched(t, url, "d2", "pw-d2")
	publish(t, d1.c, devTopic(cfg, "d1", "hb"), ``)
	before, err := in.Device(t.Context(), "d1")
	if err != nil || before.State.LastSeen.IsZero() {
		t.Fatalf("d1 before: %+v, %v", before, err)
	}

	bad := cfg
	bad.Devices = append(slices.Clone(cfg.Devices), alarms.DeviceConfig{ID: "d1", Password: "x"})
	if _, err := in.Apply(bad); err == nil {
		t.Fatal("a config with a duplicate device was applied")
	}
	d1.untouched(t, "d1")

	next := cfg
	next.Devices = []alarms.DeviceConfig{
		{ID: "d1", Area: "village-9", Model: "slow", Password: "pw-d1"},
		cfg.Devices[2],
		{ID: "d4", Area: "village-4", Password: "pw-d4"},
	}
	ch, err := in.Apply(next)
	if err != nil {
		t.Fatal(err)
	}
	want := alarms.DeviceChanges{Added: []string{"d4"}, Changed: []string{"d1"}, Removed: []string{"d2"},
		Disconnected: []string{"d2"}, UnitsAdded: nil}
	if fmt.Sprint(ch) != fmt.Sprint(want) {
		t.Fatalf("changes %+v, want %+v", ch, want)
	}
	d2.waitLost(t, "d2")
	if tryConnect(t, url, "127.0.0.1", "d2", "pw-d2") {
		t.Error("removed d2 could connect")
	}

	d4 := connect(t, url, "d4", "pw-d4", nil)
	publish(t, d4, devTopic(cfg, "d4", "event"), `{"id":"n1","class":"panic"}`)
	if got := withID(events(t, store, "d4"), "n1"); len(got) != 1 || got[0].Area != "village-4" {
		t.Fatalf("d4's event: %+v", got)
	}
	publish(t, d1.c, devTopic(cfg, "d1", "event"), `{"id":"moved","class":"alarm"}`)
	if got := withID(events(t, store, "d1"), "moved"); len(got) != 1 || got[0].Area != "village-9" {
		t.Fatalf("d1's event after the reload: %+v, want area village-9", got)
	}
	d1.untouched(t, "d1")
	after, err := in.Device(t.Context(), "d1")
	if err != nil || after.Model != "slow" || after.State.LastSeen.Before(before.State.LastSeen) {
		t.Fatalf("d1 after: %+v, %v (before: %+v)", after, err, before.State)
	}

	list, err := in.Devices(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range list {
		ids = append(ids, d.ID)
	}
	if !slices.Equal(ids, []string{"d1", "d3", "d4"}) || in.Status().Devices != 3 {
		t.Fatalf("devices %v (status %d), want d1 d3 d4", ids, in.Status().Devices)
	}
	if _, err := in.Device(t.Context(), "d2"); !errors.Is(err, alarms.ErrNotFound) {
		t.Fatalf("removed d2: %v, want ErrNotFound", err)
	}
}

// A device publishing as fast as it can while a reload removes it: every
// event it got a PUBACK for is either stored (before the reload) or kept
// as rejected (after): none is acknowledged and dropped.
func TestReloadRemovedDeviceNothingDropped(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits.DeviceRate = 10000
	cfg.Limits.DeviceBurst = 10000
	store := newStore(t)
	in := startIntake(t, cfg, store)
	url := "tcp://" + in.BrokerAddr()
	d2 := connectWatched(t, url, "d2", "pw-d2")

	var (
		mu    sync.Mutex
		acked []string
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			id := fmt.Sprintf("f%d", i)
			tok := d2.c.Publish(devTopic(cfg, "d2", "event"), 1, false, `{"id":"`+id+`","class":"alarm"}`)
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil || !d2.c.IsConnectionOpen() {
				return
			}
			mu.Lock()
			acked = append(acked, id)
			mu.Unlock()
		}
	}()
	waitFor(t, "a few events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 20
	})
	next := cfg
	next.Devices = []alarms.DeviceConfig{cfg.Devices[0], cfg.Devices[2]}
	if _, err := in.Apply(next); err != nil {
		t.Fatal(err)
	}
	d2.waitLost(t, "d2")
	<-done

	stored := map[string]bool{}
	for _, e := range events(t, store, "d2") {
		stored[e.ID] = true
	}
	rej, err := in.Rejected(t.Context(), alarms.RejectedQuery{Device: "d2", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	rejected := 0
	for _, r := range rej {
		if r.Reason != "unknown device" {
			t.Errorf("rejected %s: reason %q", r.Payload, r.Reason)
		}
		rejected++
	}
	mu.Lock()
	defer mu.Unlock()
	missing := 0
	for _, id := range acked {
		if !stored[id] {
			missing++
		}
	}
	t.Logf("%d events acknowledged: %d stored, %d kept as rejected (sent as the reload ran)", len(acked), len(acked)-missing, rejected)
	if missing > rejected {
		t.Fatalf("%d acknowledged events neither stored nor rejected", missing-rejected)
	}
}

// Through an external broker Skywatch authenticates no device: a removed
// device's events still arrive and are kept as rejected (unknown device);
// an added device's are stored.
func TestReloadExternalRemovedDeviceRejected(t *testing.T) {
	cfg := externalConfig(t)
	store := newStore(t)
	in := startIntake(t, cfg, store)
	waitConnected(t, in)
	next := cfg
	next.Devices = []alarms.DeviceConfig{cfg.Devices[0], {ID: "d4", Password: "pw-d4"}}
	ch, err := in.Apply(next)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ch.Added, []string{"d4"}) || !slices.Equal(ch.Removed, []string{"d2", "d3"}) || len(ch.Disconnected) != 0 {
		t.Fatalf("changes %+v", ch)
	}
	dev := connect(t, cfg.MQTT.URL, "", "", nil)
	publish(t, dev, devTopic(cfg, "d2", "event"), `{"id":"stray","class":"alarm"}`)
	publish(t, dev, devTopic(cfg, "d4", "event"), `{"id":"new","class":"alarm"}`)
	waitFor(t, "d4's event", func() bool { return len(withID(events(t, store, "d4"), "new")) == 1 })
	waitFor(t, "d2's event kept as rejected", func() bool {
		rej, err := in.Rejected(t.Context(), alarms.RejectedQuery{Device: "d2"})
		return err == nil && len(rej) == 1 && rej[0].Reason == "unknown device"
	})
	if len(events(t, store, "d2")) != 0 {
		t.Fatal("removed d2's event was stored")
	}
}

// A reload that shortens a model's supervision window takes effect
// without a restart (the supervisor's scan period follows it, from its
// next scan): d1, silent, gets its trouble. d2, on a short window from the
// start and removed by the same reload, is no longer supervised.
func TestReloadSupervisionWindow(t *testing.T) {
	cfg := testConfig(t)
	fast := alarms.ModelConfig{Name: "fast", Decoder: alarms.DecoderSkywatch,
		Heartbeat: 100 * time.Millisecond, Supervision: 600 * time.Millisecond}
	cfg.Models = []alarms.ModelConfig{{Name: "m", Decoder: alarms.DecoderSkywatch, Heartbeat: time.Hour}, fast}
	for i := range cfg.Devices {
		cfg.Devices[i].Model = "m"
	}
	cfg.Devices[1].Model = "fast"
	store := newStore(t)
	in := startIntake(t, cfg, store)
	c := connect(t, "tcp://"+in.BrokerAddr(), "d1", "pw-d1", nil)
	publish(t, c, devTopic(cfg, "d1", "hb"), "")

	next := cfg
	next.Models = []alarms.ModelConfig{{Name: "m", Decoder: alarms.DecoderSkywatch,
		Heartbeat: 100 * time.Millisecond, Supervision: 600 * time.Millisecond}, fast}
	next.Devices = []alarms.DeviceConfig{cfg.Devices[0], cfg.Devices[2]}
	applied := time.Now()
	ch, err := in.Apply(next)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ch.Changed, []string{"d1", "d3"}) || !slices.Equal(ch.Removed, []string{"d2"}) || len(ch.Disconnected) != 0 {
		t.Fatalf("changes %+v: want d1 and d3 changed (their model), d2 removed, nobody disconnected", ch)
	}
	waitFor(t, "d1's supervision trouble", func() bool {
		tr, _ := supervision(t, store, "d1")
		return tr == 1
	})
	t.Logf("d1's trouble came %v after the reload (window 600 ms from its last heartbeat)", time.Since(applied).Round(time.Millisecond))
	waitFor(t, "d3's supervision trouble", func() bool {
		tr, _ := supervision(t, store, "d3")
		return tr == 1
	})
	time.Sleep(1500 * time.Millisecond) // past two of d2's windows
	if tr, _ := supervision(t, store, "d2"); tr != 0 {
		t.Fatalf("removed d2: %d supervision troubles, want none", tr)
	}
}

// A county-sized reload: 10,000 devices (tokens), 200 of them connected; a
// reload changes the tokens of 10 connected and 10 unconnected devices,
// removes 10 connected and 90 unconnected ones and adds 100. Exactly the
// 20 connected devices whose credentials changed or went away are
// disconnected; the other 180 keep their connections. The time Apply took
// is logged.
func TestReloadFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("connects 200 clients")
	}
	const devices, connected = 10000, 200
	cfg := testConfig(t)
	cfg.Devices = nil
	tokens := map[string]string{}
	token := func(id string) string {
		tok := uniq(id + "-")
		tokens[id] = tok
		sum := sha256.Sum256([]byte(tok))
		return hex.EncodeToString(sum[:])
	}
	for i := range devices {
		id := fmt.Sprintf("h%05d", i)
		cfg.Devices = append(cfg.Devices, alarms.DeviceConfig{ID: id, TokenSHA256: token(id)})
	}
	in := startIntake(t, cfg, newStore(t))
	url := "tcp://" + in.BrokerAddr()
	clients := make([]*watched, connected)
	for i := range connected {
		id := fmt.Sprintf("h%05d", i)
		clients[i] = connectWatched(t, url, id, tokens[id])
	}

	next := cfg
	next.Devices = nil
	var wantGone []string
	for i, d := range cfg.Devices {
		switch {
		case i < 10 || (i >= connected && i < connected+10): // new token
			d.TokenSHA256 = token(d.ID)
			if i < 10 {
				wantGone = append(wantGone, d.ID)
			}
		case i >= 10 && i < 20: // removed, connected
			wantGone = append(wantGone, d.ID)
			continue
		case i >= devices-90: // removed
			continue
		}
		next.Devices = append(next.Devices, d)
	}
	for i := range 100 {
		id := fmt.Sprintf("n%05d", i)
		next.Devices = append(next.Devices, alarms.DeviceConfig{ID: id, TokenSHA256: token(id)})
	}
	start := time.Now()
	ch, err := in.Apply(next)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Apply of %d devices (%d connected): %d added, %d changed, %d removed, %d disconnected in %v",
		devices, connected, len(ch.Added), len(ch.Changed), len(ch.Removed), len(ch.Disconnected), took)
	if len(ch.Added) != 100 || len(ch.Changed) != 20 || len(ch.Removed) != 100 || !slices.Equal(ch.Disconnected, wantGone) {
		t.Fatalf("changes: %d added, %d changed, %d removed, disconnected %v (want %v)",
			len(ch.Added), len(ch.Changed), len(ch.Removed), ch.Disconnected, wantGone)
	}
	for i := range 20 {
		clients[i].waitLost(t, fmt.Sprintf("h%05d", i))
	}
	for i := 20; i < connected; i++ {
		clients[i].untouched(t, fmt.Sprintf("h%05d", i))
	}
	publish(t, clients[connected-1].c, devTopic(cfg, fmt.Sprintf("h%05d", connected-1), "event"), `{"id":"x","class":"alarm"}`)
}
