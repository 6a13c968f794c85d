package viewer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// liveFeed is a fakeAlarms Subscribe that hands each subscription's channel
// to the test.
func liveFeed(subs chan chan alarms.Event) func(context.Context) <-chan alarms.Event {
	return func(ctx context.Context) <-chan alarms.Event {
		ch := make(chan alarms.Event, 16)
		subs <- ch
		return ch
	}
}

func testEvent(id string, received time.Time, offset string) alarms.Event {
	return alarms.Event{ID: id, Class: alarms.ClassAlarm, Qualifier: alarms.QualifierNew, Device: "d1",
		ReceivedAt: received, Offset: offset}
}

// eventOf decodes an "alarm" event of the stream and checks its id.
func eventOf(t *testing.T, ev sseEvent) alarms.Event {
	t.Helper()
	var e alarms.Event
	if ev.name != "alarm" {
		t.Fatalf("stream sent %q (%s), want an alarm", ev.name, ev.data)
	}
	if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d-%s", e.ReceivedAt.UnixNano(), e.Offset); ev.id != want {
		t.Errorf("event %s has id %q, want %q", e.ID, ev.id, want)
	}
	return e
}

// Live events are sent in order with their ids, idle streams get
// comments, and the stream ends when the intake closes the subscription.
func TestStreamLive(t *testing.T) {
	subs := make(chan chan alarms.Event, 1)
	srv := startAlarmServer(t, &fakeAlarms{subscribe: liveFeed(subs)},
		func(s *Server) { s.streamHeartbeat = 20 * time.Millisecond })
	c := openStream(t, baseURL(srv), "")
	live := <-subs
	if ev := c.nextAny(t); ev.name != "comment" || ev.data != "connected" {
		t.Fatalf("first %+v, want the connected comment", ev)
	}
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 123456789, time.UTC)
	for i := range 3 {
		live <- testEvent(fmt.Sprintf("e%d", i), t0.Add(time.Duration(i)*time.Second), fmt.Sprintf("%016x", i+1))
	}
	for i := range 3 {
		if e := eventOf(t, c.next(t)); e.ID != fmt.Sprintf("e%d", i) {
			t.Errorf("event %d is %s", i, e.ID)
		}
	}
	for {
		if ev := c.nextAny(t); ev.name == "comment" && ev.data == "keep-alive" {
			break
		}
	}
	close(live)
	if left := c.ended(t); len(left) != 0 {
		t.Errorf("events after the subscription closed: %+v", left)
	}
}

// storedEvents answers Events from evs (oldest first) as a store would:
// Since filters, newest first, Limit and Next.
func storedEvents(evs []alarms.Event) func(context.Context, alarms.EventQuery) (alarms.EventPage, error) {
	return func(_ context.Context, q alarms.EventQuery) (alarms.EventPage, error) {
		var page alarms.EventPage
		for _, e := range slices.Backward(evs) {
			if e.ReceivedAt.Before(q.Since) {
				continue
			}
			if len(page.Events) == q.Limit {
				page.Next = "more"
				break
			}
			page.Events = append(page.Events, e)
		}
		return page, nil
	}
}

// A client resuming with Last-Event-ID gets what it missed, oldest first,
// then live events, each once.
func TestStreamReplay(t *testing.T) {
	t1 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Second)
	stored := []alarms.Event{
		testEvent("e1", t1, "1"),
		testEvent("e2", t2, "2"), // e2 and e3 came in one message
		testEvent("e3", t2, "3"),
		testEvent("e4", t2.Add(time.Second), "4"),
	}
	subs := make(chan chan alarms.Event, 1)
	srv := startAlarmServer(t, &fakeAlarms{events: storedEvents(stored), subscribe: liveFeed(subs)}, nil)

	ids := func(c *sseClient, n int) []string {
		var out []string
		for range n {
			out = append(out, eventOf(t, c.next(t)).ID)
		}
		return out
	}
	tests := []struct {
		lastID string
		want   []string
	}{
		{streamID(stored[1]), []string{"e3", "e4"}}, // e3: same time, stored after
		{streamID(stored[2]), []string{"e4"}},       // e2: same time, stored before
		{streamID(stored[3]), nil},
		{streamID(stored[0]), []string{"e2", "e3", "e4"}},
	}
	for _, tt := range tests {
		c := openStream(t, baseURL(srv), tt.lastID)
		live := <-subs
		// e4 is stored (replayed, or the client has it) and also still in
		// the live queue: it is not sent twice.
		live <- stored[3]
		live <- testEvent("e5", t2.Add(2*time.Second), "5")
		got := ids(c, len(tt.want)+1)
		if want := append(slices.Clone(tt.want), "e5"); !slices.Equal(got, want) {
			t.Errorf("resuming after %s: got %v, want %v", tt.lastID, got, want)
		}
		c.close()
	}
}

// When the replay cannot be complete, a gap event says so first.
func TestStreamReplayGap(t *testing.T) {
	t1 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	var stored []alarms.Event
	for i := range streamReplayMax + 5 {
		stored = append(stored, testEvent(fmt.Sprintf("e%d", i), t1.Add(time.Duration(i)*time.Millisecond), fmt.Sprint(i)))
	}
	var failing atomic.Bool
	f := &fakeAlarms{events: func(ctx context.Context, q alarms.EventQuery) (alarms.EventPage, error) {
		if failing.Load() {
			return alarms.EventPage{}, errors.New("redis: connection refused")
		}
		return storedEvents(stored)(ctx, q)
	}}
	srv := startAlarmServer(t, f, nil)

	gapReason := func(c *sseClient) string {
		t.Helper()
		ev := c.next(t)
		var body struct{ Reason string }
		if ev.name != "gap" || json.Unmarshal([]byte(ev.data), &body) != nil {
			t.Fatalf("got %+v, want a gap event", ev)
		}
		return body.Reason
	}

	// More were missed than are replayed: the gap, then the latest, oldest
	// first.
	c := openStream(t, baseURL(srv), streamID(stored[0]))
	if r := gapReason(c); !strings.Contains(r, "more than 1000 events were missed") {
		t.Errorf("gap reason %q", r)
	}
	for i := 5; i < len(stored); i++ {
		if e := eventOf(t, c.next(t)); e.ID != stored[i].ID {
			t.Fatalf("replayed %s, want %s", e.ID, stored[i].ID)
		}
	}
	c.close()

	c = openStream(t, baseURL(srv), "yesterday")
	if r := gapReason(c); !strings.Contains(r, "malformed Last-Event-ID") {
		t.Errorf("gap reason %q", r)
	}
	c.close()

	failing.Store(true)
	c = openStream(t, baseURL(srv), streamID(stored[3]))
	if r := gapReason(c); !strings.Contains(r, "replay failed: redis: connection refused") {
		t.Errorf("gap reason %q", r)
	}
	c.close()
}

// A client that does not keep up with the live events (its subscription
// is full, so the intake drops events for it) is disconnected, so that it
// resumes from the store instead of missing events silently.
func TestStreamSlowClientDisconnected(t *testing.T) {
	f := &fakeAlarms{subscribe: func(context.Context) <-chan alarms.Event {
		ch := make(chan alarms.Event, 4)
		for i := range cap(ch) {
			ch <- testEvent(fmt.Sprint(i), time.Now(), fmt.Sprint(i))
		}
		return ch
	}}
	srv := startAlarmServer(t, f, nil)
	c := openStream(t, baseURL(srv), "")
	c.ended(t)
}

// Closing the server ends open streams instead of waiting for them.
func TestStreamEndsOnServerClose(t *testing.T) {
	srv := startAlarmServer(t, &fakeAlarms{}, func(s *Server) { s.streamHeartbeat = time.Hour })
	streams := []*sseClient{openStream(t, baseURL(srv), ""), openStream(t, baseURL(srv), "")}
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	for _, c := range streams {
		c.ended(t)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Close hangs on open streams")
	}
}

// A stream outlives the server's WriteTimeout (and ReadTimeout), which
// would otherwise end it: here they are shortened on a server of the test's
// own.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	s, err := New(loopbackConfig(), Deps{Cameras: &fakeSource{}, Alarms: &fakeAlarms{}}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s.streamHeartbeat = 20 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s.handler, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = hs.Serve(ln)
	}()
	defer func() {
		_ = hs.Shutdown(context.Background()) // after the client closed, so the stream ended
		<-served
	}()

	c := openStream(t, "http://"+ln.Addr().String(), "")
	for start := time.Now(); time.Since(start) < 5*hs.WriteTimeout; {
		c.nextAny(t) // fails if the stream ends
	}
	c.close()
}
