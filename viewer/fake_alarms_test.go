package viewer

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skywatch/skywatch/alarms"
)

// fakeAlarms is an AlarmSource whose behaviour the test sets; a nil
// function answers empty.
type fakeAlarms struct {
	events    func(ctx context.Context, q alarms.EventQuery) (alarms.EventPage, error)
	rejected  func(ctx context.Context, q alarms.RejectedQuery) ([]alarms.Rejected, error)
	devices   func(ctx context.Context) ([]alarms.DeviceView, error)
	device    func(ctx context.Context, id string) (alarms.DeviceView, error)
	subscribe func(ctx context.Context) <-chan alarms.Event
	status    func() alarms.IntakeStatus
}

var _ AlarmSource = (*fakeAlarms)(nil)

func (f *fakeAlarms) Events(ctx context.Context, q alarms.EventQuery) (alarms.EventPage, error) {
	if f.events == nil {
		return alarms.EventPage{}, nil
	}
	return f.events(ctx, q)
}

func (f *fakeAlarms) Rejected(ctx context.Context, q alarms.RejectedQuery) ([]alarms.Rejected, error) {
	if f.rejected == nil {
		return nil, nil
	}
	return f.rejected(ctx, q)
}

func (f *fakeAlarms) Devices(ctx context.Context) ([]alarms.DeviceView, error) {
	if f.devices == nil {
		return nil, nil
	}
	return f.devices(ctx)
}

func (f *fakeAlarms) Device(ctx context.Context, id string) (alarms.DeviceView, error) {
	if f.device == nil {
		return alarms.DeviceView{}, alarms.ErrNotFound
	}
	return f.device(ctx, id)
}

// Subscribe defaults to a channel that closes when ctx ends, as the
// intake's does.
func (f *fakeAlarms) Subscribe(ctx context.Context) <-chan alarms.Event {
	if f.subscribe != nil {
		return f.subscribe(ctx)
	}
	ch := make(chan alarms.Event)
	context.AfterFunc(ctx, func() { close(ch) })
	return ch
}

func (f *fakeAlarms) Status() alarms.IntakeStatus {
	if f.status == nil {
		return alarms.IntakeStatus{Broker: alarms.BrokerEmbedded, Connected: true, StoreOK: true}
	}
	return f.status()
}

// startAlarmServer starts a server with alarms (which may be nil); mod
// changes the server before Start.
func startAlarmServer(t *testing.T, a AlarmSource, mod func(*Server)) *Server {
	t.Helper()
	s, err := New(loopbackConfig(), Deps{Cameras: &fakeSource{}, Registry: prometheus.NewRegistry(), Alarms: a}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(s)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// sseEvent is one event of a stream, or a comment (name "comment").
type sseEvent struct {
	id, name, data string
}

// sseClient reads /api/stream in a goroutine of its own.
type sseClient struct {
	events chan sseEvent // closed when the stream ends
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// openStream opens the event stream of the server at base, resuming
// after lastID when set; it returns once the response headers came, so the
// subscription exists.
func openStream(t *testing.T, base, lastID string) *sseClient {
	t.Helper()
	return openStreamWith(t, http.DefaultClient, base, lastID)
}

// openStreamWith is openStream through client (an operator's, with its
// session cookie).
func openStreamWith(t *testing.T, client *http.Client, base, lastID string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		cancel()
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseClient{events: make(chan sseEvent, 4096), cancel: cancel}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(c.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					c.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ": "):
				ev = sseEvent{name: "comment", data: line[2:]}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.name = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	t.Cleanup(c.close)
	return c
}

func (c *sseClient) close() {
	c.cancel()
	c.wg.Wait()
}

// next returns the next event that is not a comment.
func (c *sseClient) next(t *testing.T) sseEvent {
	t.Helper()
	for {
		ev := c.nextAny(t)
		if ev.name != "comment" {
			return ev
		}
	}
}

// nextAny returns the next event or comment; it fails when the stream
// ends first.
func (c *sseClient) nextAny(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-time.After(testTimeout):
		t.Fatal("no event from the stream")
	}
	return sseEvent{}
}

// ended waits for the stream to end, returning the events that were left
// (comments excluded), or fails after testTimeout.
func (c *sseClient) ended(t *testing.T) []sseEvent {
	t.Helper()
	var left []sseEvent
	timeout := time.After(testTimeout)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				return left
			}
			if ev.name != "comment" {
				left = append(left, ev)
			}
		case <-timeout:
			t.Fatal("stream did not end")
		}
	}
}
