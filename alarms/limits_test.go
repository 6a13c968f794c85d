package alarms_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/skywatch/skywatch/alarms"
)

// unackedIn counts the QoS 1 messages a paho client still waits a PUBACK
// for ("o." keys of its store).
func unackedIn(ps *paho.MemoryStore) int {
	n := 0
	for _, k := range ps.All() {
		if strings.HasPrefix(k, "o.") {
			n++
		}
	}
	return n
}

func deviceView(t *testing.T, in *alarms.Intake, id string) alarms.DeviceView {
	t.Helper()
	devs, err := in.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if d.ID == id {
			return d
		}
	}
	t.Fatalf("no device %s", id)
	return alarms.DeviceView{}
}

// While the store fails (for less than alarms.store_hold), a device's
// message is held without PUBACK and its connection kept: the outage is
// quiet on the network. Once the store is back, the message is stored
// once and acknowledged, and the hold is counted for the device.
func TestEmbeddedStoreOutageHeld(t *testing.T) {
	cfg := testConfig(t)
	store := newStore(t)
	in := startIntake(t, cfg, store)

	ps := paho.NewMemoryStore()
	var lost atomic.Int64
	c := connect(t, "tcp://"+in.BrokerAddr(), "d1", "pw-d1", func(o *paho.ClientOptions) {
		o.SetCleanSession(false).SetStore(ps).SetAutoReconnect(true).SetMaxReconnectInterval(200 * time.Millisecond).
			SetConnectionLostHandler(func(paho.Client, error) { lost.Add(1) })
	})
	store.fail.Store(true)
	c.Publish(devTopic(cfg, "d1", "event"), 1, false, `{"id":"held-1","class":"panic"}`)
	// Several retries of the store (at most 0.5 s apart) with the device
	// connected and unacknowledged.
	waitFor(t, "retries of the failing store", func() bool { return store.writes.Load() >= 8 })
	if n := unackedIn(ps); n != 1 {
		t.Fatalf("%d unacknowledged messages while the store fails, want 1", n)
	}
	if n := lost.Load(); n != 0 {
		t.Fatalf("device disconnected %d times during a short store outage, want 0", n)
	}
	if st := in.Status(); st.StoreOK {
		t.Errorf("status while failing: %+v", st)
	}

	store.fail.Store(false)
	waitFor(t, "the PUBACK once the store is back", func() bool { return unackedIn(ps) == 0 })
	if got := withID(events(t, store, "d1"), "held-1"); len(got) != 1 {
		t.Fatalf("%d events held-1 stored, want 1", len(got))
	}
	if n := lost.Load(); n != 0 {
		t.Fatalf("device disconnected %d times, want 0", n)
	}
	costs := deviceView(t, in, "d1").Costs
	if costs.StoreHeld != 1 || costs.StoreHeldSeconds <= 0 || costs.Disconnects != 0 {
		t.Errorf("costs %+v, want one message held and no disconnect", costs)
	}
}

// A device whose keep-alive runs out while the intake holds its message for
// a failing store closes its connection and the broker sends its last will:
// that is Skywatch's doing, and raises no "went offline" trouble. Past
// alarms.store_hold the intake disconnects a device itself, without PUBACK
// and without a will. Either way the event is stored once when it comes
// again.
func TestEmbeddedStoreHoldNoTrouble(t *testing.T) {
	for _, tc := range []struct {
		name string
		hold time.Duration
	}{
		{"device gives up", 0},
		{"intake gives up", 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Limits.StoreHold = tc.hold
			store := newStore(t)
			in := startIntake(t, cfg, store)
			stateTopic := devTopic(cfg, "d1", "state")

			// A watcher sees the will if the broker sends it.
			wills := make(chan struct{}, 1)
			w := connect(t, "tcp://"+in.BrokerAddr(), "d1", "pw-d1", nil)
			if tok := w.Subscribe(stateTopic, 1, func(_ paho.Client, m paho.Message) {
				if string(m.Payload()) == "offline" {
					select {
					case wills <- struct{}{}:
					default:
					}
				}
			}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatalf("subscribe: %v", tok.Error())
			}

			lost := make(chan struct{}, 1)
			c := connect(t, "tcp://"+in.BrokerAddr(), "d1", "pw-d1", func(o *paho.ClientOptions) {
				o.SetWill(stateTopic, "offline", 1, true).SetKeepAlive(time.Second).SetPingTimeout(time.Second).
					SetConnectionLostHandler(func(paho.Client, error) {
						select {
						case lost <- struct{}{}:
						default:
						}
					})
			})
			publish(t, c, stateTopic, "online")
			// Only this event fails, so that a trouble from a will would
			// be stored.
			failID := "held-1"
			store.failID.Store(&failID)
			c.Publish(devTopic(cfg, "d1", "event"), 1, false, `{"id":"held-1","class":"panic"}`)
			select {
			case <-lost:
			case <-time.After(20 * time.Second):
				t.Fatal("the device's connection did not end")
			}
			store.failID.Store(nil)
			if tc.hold == 0 {
				// The hold ends with the store's return; then the broker
				// finds the connection gone and sends the will.
				select {
				case <-wills:
				case <-time.After(20 * time.Second):
					t.Fatal("no will sent")
				}
			}
			// A trouble would be stored right after the will; give it a
			// generous second to show, were it raised.
			for range 50 {
				if tr, _ := supervision(t, store, "d1"); tr != 0 {
					t.Fatalf("%d supervision troubles for a device that Skywatch held or disconnected, want 0", tr)
				}
				time.Sleep(20 * time.Millisecond)
			}
			c2 := connect(t, "tcp://"+in.BrokerAddr(), "d1", "pw-d1", nil)
			publish(t, c2, devTopic(cfg, "d1", "event"), `{"id":"held-1","class":"panic"}`)
			if got := withID(events(t, store, "d1"), "held-1"); len(got) != 1 {
				t.Fatalf("%d events held-1 stored, want 1", len(got))
			}
			costs := deviceView(t, in, "d1").Costs
			if tc.hold > 0 && costs.Disconnects != 1 {
				t.Errorf("costs %+v, want one disconnect", costs)
			}
			if tc.hold == 0 && costs.Disconnects != 0 {
				t.Errorf("costs %+v, want no disconnect by the intake", costs)
			}
		})
	}
}

// A device flooding undecodable payloads, with valid alarms among them, is
// slowed to its rate (held, unacknowledged, not dropped): every valid alarm
// is stored, its rejected list keeps only the newest messages, and what it
// cost is counted for the device. Another device is not slowed.
func TestEmbeddedGarbageFlood(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits = alarms.Limits{DeviceRate: 40, DeviceBurst: 5, RejectedPerDevice: 20, RejectedMax: 1000}
	store := newStore(t)
	in := startIntake(t, cfg, store)

	var lost atomic.Int64
	c := connect(t, "tcp://"+in.BrokerAddr(), "d1", "pw-d1", func(o *paho.ClientOptions) {
		o.SetConnectionLostHandler(func(paho.Client, error) { lost.Add(1) })
	})
	garbage := strings.Repeat("\xff garbage ", 800) // 8 KB that does not decode
	const n, every = 120, 10
	var toks []paho.Token
	for i := range n {
		payload := garbage
		if i%every == 0 {
			payload = fmt.Sprintf(`{"id":"valid-%d","class":"alarm"}`, i)
		}
		toks = append(toks, c.Publish(devTopic(cfg, "d1", "event"), 1, false, payload))
	}
	// The other device, published while d1 floods, is acknowledged.
	c2 := connect(t, "tcp://"+in.BrokerAddr(), "d2", "pw-d2", nil)
	publish(t, c2, devTopic(cfg, "d2", "event"), `{"id":"other","class":"panic"}`)
	for i, tok := range toks {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("flood message %d: no PUBACK (%v)", i, tok.Error())
		}
	}
	if lost.Load() != 0 {
		t.Fatalf("flooding device disconnected %d times, want 0 (held, not dropped)", lost.Load())
	}
	for i := 0; i < n; i += every {
		if got := withID(events(t, store, "d1"), fmt.Sprintf("valid-%d", i)); len(got) != 1 {
			t.Fatalf("valid-%d: %d stored, want 1", i, len(got))
		}
	}
	rs, err := store.Rejected(context.Background(), alarms.RejectedQuery{Device: "d1", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	garbageN := n - n/every
	if len(rs) != 20 {
		t.Fatalf("%d rejected kept for the flooding device, want 20", len(rs))
	}
	v := deviceView(t, in, "d1")
	if v.Costs.Throttled == 0 || v.Costs.ThrottledSeconds <= 0 {
		t.Errorf("costs %+v: no message held for the rate", v.Costs)
	}
	if v.Costs.RejectedDropped != int64(garbageN-20) {
		t.Errorf("costs %+v: want %d rejected dropped", v.Costs, garbageN-20)
	}
	if v2 := deviceView(t, in, "d2"); v2.Costs.Throttled != 0 {
		t.Errorf("the other device was throttled: %+v", v2.Costs)
	}
}

// durableStore tells a durability, as the Redis store does.
type durableStore struct {
	*failStore
	d alarms.StoreDurability
}

func (s durableStore) Durability() alarms.StoreDurability { return s.d }

// What the store says it can lose is in the intake's status.
func TestStatusStoreDurability(t *testing.T) {
	cfg := testConfig(t)
	want := alarms.StoreDurability{Summary: "appendonly yes, appendfsync everysec", Warning: "can lose about the last 2 s"}
	in := startIntake(t, cfg, durableStore{newStore(t), want})
	st := in.Status()
	if st.StoreDurability != want.Summary || st.StoreWarning != want.Warning {
		t.Fatalf("status %+v, want durability %+v", st, want)
	}
}
