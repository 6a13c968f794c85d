package alarms_test

import (
	"context"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// gateStore holds every AppendEvent until open is closed, as a store that
// has fallen behind does.
type gateStore struct {
	alarms.Store
	entered chan struct{}
	open    chan struct{}
}

func (s *gateStore) AppendEvent(ctx context.Context, e *alarms.Event, w time.Duration) (bool, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	select {
	case <-s.open:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return s.Store.AppendEvent(ctx, e, w)
}

// TestIntakePendingShowsLag: while the store holds an event, the intake's
// pending count is 1 and the oldest pending message's age grows; once it is
// stored, both are 0.
func TestIntakePendingShowsLag(t *testing.T) {
	cfg := testConfig(t)
	store := &gateStore{Store: newStore(t), entered: make(chan struct{}, 1), open: make(chan struct{})}
	in := startIntake(t, cfg, store)
	if m := metricValues(t, in); m["skywatch_alarms_intake_pending"] != 0 || m["skywatch_alarms_intake_oldest_pending_seconds"] != 0 {
		t.Fatalf("idle intake: pending %v, oldest %v s", m["skywatch_alarms_intake_pending"], m["skywatch_alarms_intake_oldest_pending_seconds"])
	}
	c := connect(t, "tcp://"+in.BrokerAddr(), "d1", "pw-d1", nil)
	tok := c.Publish(devTopic(cfg, "d1", "event"), 1, false, `{"id":"lag-1","class":"alarm"}`)
	select {
	case <-store.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the event never reached the store")
	}
	first := metricValues(t, in)
	var later map[string]float64
	waitFor(t, "the oldest pending message to age", func() bool {
		later = metricValues(t, in)
		return later["skywatch_alarms_intake_oldest_pending_seconds"] > first["skywatch_alarms_intake_oldest_pending_seconds"]
	})
	if first["skywatch_alarms_intake_pending"] != 1 || later["skywatch_alarms_intake_pending"] != 1 {
		t.Fatalf("pending while the store holds one event: %v then %v, want 1", first["skywatch_alarms_intake_pending"], later["skywatch_alarms_intake_pending"])
	}
	t.Logf("oldest pending: %.4f s, then %.4f s", first["skywatch_alarms_intake_oldest_pending_seconds"], later["skywatch_alarms_intake_oldest_pending_seconds"])

	close(store.open)
	if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("no PUBACK after the store went on: %v", tok.Error())
	}
	if m := metricValues(t, in); m["skywatch_alarms_intake_pending"] != 0 || m["skywatch_alarms_intake_oldest_pending_seconds"] != 0 {
		t.Fatalf("after the event was stored: pending %v, oldest %v s", m["skywatch_alarms_intake_pending"], m["skywatch_alarms_intake_oldest_pending_seconds"])
	}
}
