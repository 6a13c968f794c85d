package alarms_test

import (
	"strings"
	"testing"
	"time"

	"github.com/skywatch/skywatch/internal/testproxy"
)

// After the external broker was away for a while, the intake's session is
// back soon after the broker: its reconnection backoff is capped at about a
// second (it grew to 30 s before), because a broker that lost its state
// drops what devices publish until the intake subscribes again.
func TestExternalReconnectFast(t *testing.T) {
	cfg := externalConfig(t)
	target := strings.TrimPrefix(cfg.MQTT.URL, "tcp://")
	p := testproxy.Start(t, "127.0.0.1:0", target, nil)
	addr := p.Addr()
	cfg.MQTT.URL = "tcp://" + addr
	store := newStore(t)
	in := startIntake(t, cfg, store)
	waitConnected(t, in)

	p.Stop()
	waitFor(t, "the intake to see the broker gone", func() bool { return !in.Status().Connected })
	// Long enough for a doubling backoff from 1 s to wait 8 s next.
	time.Sleep(8 * time.Second)
	testproxy.Start(t, addr, target, nil)
	back := time.Now()
	waitConnected(t, in)
	took := time.Since(back)
	t.Logf("reconnected %v after the broker came back", took.Round(time.Millisecond))
	// About 1.5 s at most; 4 s leaves room for a busy machine, and the
	// old backoff took 7 s here.
	if took > 4*time.Second {
		t.Fatalf("reconnected %v after the broker came back, want about a second", took)
	}
	dev := connect(t, cfg.MQTT.URL, "", "", nil)
	publish(t, dev, devTopic(cfg, "d1", "event"), `{"id":"after-reconnect","class":"panic"}`)
	waitFor(t, "an event stored through the new session", func() bool {
		return len(withID(events(t, store, "d1"), "after-reconnect")) == 1
	})
}
