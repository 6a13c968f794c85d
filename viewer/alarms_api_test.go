package viewer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// Without an alarm source every alarm route answers 503 in JSON, and
// /readyz does not depend on alarms.
func TestAlarmRoutesWithoutIntake(t *testing.T) {
	srv := startAlarmServer(t, nil, nil)
	for _, path := range []string{"/api/events", "/api/devices", "/api/devices/d1", "/api/rejected", "/api/alarms/status", "/api/stream"} {
		resp, body := doRequest(t, "GET", baseURL(srv)+path, "", "")
		if resp.StatusCode != 503 || !strings.Contains(body, "alarm intake not configured") ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, body)
		}
	}
	if resp, body := doRequest(t, "GET", baseURL(srv)+"/readyz", "", ""); resp.StatusCode != 200 {
		t.Errorf("readyz without alarms: %d %s", resp.StatusCode, body)
	}
}

// Bad parameters are refused with 400 naming the parameter, before the
// store is asked.
func TestAlarmAPIBadParameters(t *testing.T) {
	var mu sync.Mutex
	asked := 0
	f := &fakeAlarms{
		events: func(context.Context, alarms.EventQuery) (alarms.EventPage, error) {
			mu.Lock()
			asked++
			mu.Unlock()
			return alarms.EventPage{}, nil
		},
		rejected: func(context.Context, alarms.RejectedQuery) ([]alarms.Rejected, error) {
			mu.Lock()
			asked++
			mu.Unlock()
			return nil, nil
		},
	}
	srv := startAlarmServer(t, f, nil)
	tests := []struct{ query, inBody string }{
		{"/api/events?class=burglary", `class: \"burglary\" is not one of alarm, panic, fire`},
		{"/api/events?since=yesterday", "since: "},
		{"/api/events?until=2026-05-01", "until: "},
		{"/api/events?since=2026-05-01T10:00:00Z&until=2026-05-01T09:00:00Z", "until: must be after since"},
		{"/api/events?since=2026-05-01T10:00:00Z&until=2026-05-01T10:00:00Z", "until: must be after since"},
		{"/api/events?limit=0", "limit: "},
		{"/api/events?limit=1001", "limit: "},
		{"/api/events?limit=ten", "limit: "},
		{"/api/rejected?limit=-1", "limit: "},
	}
	for _, tt := range tests {
		resp, body := doRequest(t, "GET", baseURL(srv)+tt.query, "", "")
		if resp.StatusCode != 400 || !strings.Contains(body, tt.inBody) {
			t.Errorf("GET %s: %d %s, want 400 with %q", tt.query, resp.StatusCode, body, tt.inBody)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if asked != 0 {
		t.Errorf("the store was asked %d times for bad requests", asked)
	}
}

// Parameters reach the store as an EventQuery, and the page comes back as
// {"events": [...], "next": ...}.
func TestAlarmAPIEventsQuery(t *testing.T) {
	queries := make(chan alarms.EventQuery, 10)
	rssi := -71
	ev := alarms.Event{ID: "e1", Class: alarms.ClassFire, Qualifier: alarms.QualifierNew, RSSI: &rssi,
		Device: "d1", Area: "v1", ReceivedAt: time.Date(2026, 5, 1, 9, 30, 0, 0, time.UTC), Offset: "0000000000000007"}
	f := &fakeAlarms{events: func(_ context.Context, q alarms.EventQuery) (alarms.EventPage, error) {
		queries <- q
		if q.Device == "none" {
			return alarms.EventPage{}, nil
		}
		return alarms.EventPage{Events: []alarms.Event{ev}, Next: "c2"}, nil
	}}
	srv := startAlarmServer(t, f, nil)

	resp, body := doRequest(t, "GET", baseURL(srv)+"/api/events?device=d1&area=v1&class=fire"+
		"&since=2026-05-01T08:00:00Z&until=2026-05-01T10:00:00.5%2B02:00&limit=5&cursor=c1", "", "")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	q := <-queries
	want := alarms.EventQuery{Device: "d1", Area: "v1", Class: alarms.ClassFire,
		Since: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC), Until: time.Date(2026, 5, 1, 8, 0, 0, 5e8, time.UTC),
		Limit: 5, Cursor: "c1"}
	if !q.Since.Equal(want.Since) || !q.Until.Equal(want.Until) {
		t.Errorf("times %v..%v, want %v..%v", q.Since, q.Until, want.Since, want.Until)
	}
	q.Since, q.Until, want.Since, want.Until = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(q, want) {
		t.Errorf("query %+v, want %+v", q, want)
	}
	var page struct {
		Events []alarms.Event `json:"events"`
		Next   *string        `json:"next"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].ID != "e1" || page.Events[0].Offset != ev.Offset ||
		*page.Events[0].RSSI != -71 || page.Next == nil || *page.Next != "c2" {
		t.Errorf("page %s", body)
	}

	// No parameters: no filters, the store's default limit; an empty page
	// is [] with an empty next.
	_, body = doRequest(t, "GET", baseURL(srv)+"/api/events?device=none", "", "")
	if q := <-queries; !reflect.DeepEqual(q, alarms.EventQuery{Device: "none"}) {
		t.Errorf("query %+v", q)
	}
	if !strings.Contains(body, `"events": []`) || !strings.Contains(body, `"next": ""`) {
		t.Errorf("empty page %s", body)
	}
}

// A cursor the store refuses is the client's fault (400); a store that
// fails is 503 with the reason, without credentials.
func TestAlarmAPIStoreErrors(t *testing.T) {
	var down bool
	var mu sync.Mutex
	isDown := func() bool { mu.Lock(); defer mu.Unlock(); return down }
	errDown := errors.New("dial redis://:" + secret + "@10.0.0.5:6379: connection refused")
	f := &fakeAlarms{
		events: func(_ context.Context, q alarms.EventQuery) (alarms.EventPage, error) {
			switch {
			case isDown():
				return alarms.EventPage{}, errDown
			case q.Cursor != "" && q.Cursor != "good":
				return alarms.EventPage{}, fmt.Errorf("store: malformed cursor %q", q.Cursor)
			}
			return alarms.EventPage{}, nil
		},
		rejected: func(_ context.Context, q alarms.RejectedQuery) ([]alarms.Rejected, error) {
			switch {
			case isDown():
				return nil, errDown
			case q.Before != "" && q.Before != "good":
				return nil, errors.New("store: malformed offset")
			}
			return nil, nil
		},
		devices: func(context.Context) ([]alarms.DeviceView, error) { return nil, errDown },
		device: func(_ context.Context, id string) (alarms.DeviceView, error) {
			if id == "d1" {
				return alarms.DeviceView{}, fmt.Errorf("device d1: last events: %w", errDown)
			}
			return alarms.DeviceView{}, fmt.Errorf("device %q: %w", id, alarms.ErrNotFound)
		},
	}
	srv := startAlarmServer(t, f, nil)
	check := func(path string, code int, inBody string) {
		t.Helper()
		resp, body := doRequest(t, "GET", baseURL(srv)+path, "", "")
		if resp.StatusCode != code || !strings.Contains(body, inBody) {
			t.Errorf("GET %s: %d %s, want %d with %q", path, resp.StatusCode, body, code, inBody)
		}
		if strings.Contains(body, secret) {
			t.Errorf("GET %s leaks a password: %s", path, body)
		}
		if code == 503 && resp.Header.Get("Retry-After") == "" {
			t.Errorf("GET %s: 503 without Retry-After", path)
		}
	}
	check("/api/events?cursor=good", 200, `"events"`)
	check("/api/events?cursor=bad", 400, "cursor: ")
	check("/api/rejected?before=good", 200, "[]")
	check("/api/rejected?before=bad", 400, "before: ")
	check("/api/devices/nope", 404, `unknown device \"nope\"`)
	check("/api/devices/d1", 503, "connection refused")
	check("/api/devices", 503, "connection refused")
	mu.Lock()
	down = true
	mu.Unlock()
	check("/api/events", 503, "events: dial redis://10.0.0.5:6379: connection refused")
	check("/api/events?cursor=bad", 503, "connection refused")
	check("/api/rejected?before=bad", 503, "connection refused")
}

func TestAlarmAPIDevices(t *testing.T) {
	rssi := -80
	hb := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	d1 := alarms.DeviceView{ID: "d1", Name: "Shop", Model: "skywatch", Area: "v1", Lat: 30.1, Lon: 120.2,
		State: alarms.DeviceState{ID: "d1", Online: true, LastHeartbeat: hb, BatteryLow: true, RSSI: &rssi}}
	f := &fakeAlarms{
		devices: func(context.Context) ([]alarms.DeviceView, error) {
			return []alarms.DeviceView{d1, {ID: "d2", Name: "d2", Model: "contactid"}}, nil
		},
		device: func(_ context.Context, id string) (alarms.DeviceView, error) {
			if id != "d1" {
				return alarms.DeviceView{}, alarms.ErrNotFound
			}
			d := d1
			d.LastEvents = []alarms.Event{{ID: "e9", Class: alarms.ClassPanic, Qualifier: alarms.QualifierNew, Device: "d1"}}
			return d, nil
		},
	}
	srv := startAlarmServer(t, f, nil)
	_, body := doRequest(t, "GET", baseURL(srv)+"/api/devices", "", "")
	var list []map[string]any
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 2 {
		t.Fatalf("devices %s: %v", body, err)
	}
	st, _ := list[0]["state"].(map[string]any)
	if list[0]["id"] != "d1" || list[0]["area"] != "v1" || list[0]["model"] != "skywatch" ||
		st["online"] != true || st["battery_low"] != true || st["rssi"] != -80.0 ||
		st["last_heartbeat"] != "2026-05-01T09:00:00Z" || st["supervision_lost"] != false {
		t.Errorf("device d1 %v", list[0])
	}
	resp, body := doRequest(t, "GET", baseURL(srv)+"/api/devices/d1", "", "")
	var one alarms.DeviceView
	if err := json.Unmarshal([]byte(body), &one); err != nil || resp.StatusCode != 200 {
		t.Fatalf("device %d %s: %v", resp.StatusCode, body, err)
	}
	if one.ID != "d1" || len(one.LastEvents) != 1 || one.LastEvents[0].ID != "e9" {
		t.Errorf("device %s", body)
	}
}

// A rejected payload is shown as text when it is UTF-8, else in base64.
func TestAlarmAPIRejected(t *testing.T) {
	garbage := []byte{0xff, 0xfe, 0x00, 'x'}
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	var got alarms.RejectedQuery
	f := &fakeAlarms{rejected: func(_ context.Context, q alarms.RejectedQuery) ([]alarms.Rejected, error) {
		got = q
		return []alarms.Rejected{
			{Device: "d1", Topic: "t/dev/d1/event", Payload: []byte(`{"class":"bogus"}`), Reason: "unknown class", ReceivedAt: at, Offset: "2"},
			{Device: "d1", Topic: "t/dev/d1/event", Payload: garbage, Truncated: true, Reason: "not json", ReceivedAt: at, Offset: "1"},
		}, nil
	}}
	srv := startAlarmServer(t, f, nil)
	_, body := doRequest(t, "GET", baseURL(srv)+"/api/rejected?device=d1&limit=2&before=3", "", "")
	if got != (alarms.RejectedQuery{Device: "d1", Limit: 2, Before: "3"}) {
		t.Errorf("query %+v", got)
	}
	var list []rejectedJSON
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 2 {
		t.Fatalf("rejected %s: %v", body, err)
	}
	if list[0].PayloadEncoding != "text" || list[0].Payload != `{"class":"bogus"}` || list[0].Offset != "2" {
		t.Errorf("text payload %+v", list[0])
	}
	raw, err := base64.StdEncoding.DecodeString(list[1].Payload)
	if list[1].PayloadEncoding != "base64" || err != nil || string(raw) != string(garbage) || !list[1].Truncated {
		t.Errorf("binary payload %+v", list[1])
	}
}

// /api/alarms/status shows the intake's health without credentials, and
// /readyz fails with the reason while the intake cannot take alarms.
func TestAlarmStatusAndReadiness(t *testing.T) {
	var mu sync.Mutex
	st := alarms.IntakeStatus{Broker: alarms.BrokerExternal, Address: "10.0.0.2:1883", Connected: true, StoreOK: true}
	f := &fakeAlarms{status: func() alarms.IntakeStatus { mu.Lock(); defer mu.Unlock(); return st }}
	set := func(change func(*alarms.IntakeStatus)) { mu.Lock(); change(&st); mu.Unlock() }
	srv := startAlarmServer(t, f, nil)
	check := func(path string, code int, inBody string) {
		t.Helper()
		resp, body := doRequest(t, "GET", baseURL(srv)+path, "", "")
		if resp.StatusCode != code || !strings.Contains(body, inBody) || strings.Contains(body, secret) {
			t.Errorf("GET %s: %d %q, want %d with %q and no password", path, resp.StatusCode, body, code, inBody)
		}
	}
	check("/readyz", 200, "ready")
	check("/api/alarms/status", 200, `"broker": "external"`)

	set(func(s *alarms.IntakeStatus) {
		s.StoreOK, s.StoreError = false, "redis: dial redis://u:"+secret+"@10.0.0.3:6379: connection refused"
		s.StoreSince = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	})
	check("/readyz", 503, "not ready: alarm store failing since 2026-05-01T09:00:00Z: redis: dial redis://10.0.0.3:6379: connection refused")
	check("/api/alarms/status", 200, `"store_ok": false`)
	check("/api/alarms/status", 200, `"store_error": "redis: dial redis://10.0.0.3:6379`)

	set(func(s *alarms.IntakeStatus) {
		s.StoreOK, s.StoreError = true, ""
		s.Connected, s.LastError = false, "network unreachable"
	})
	check("/readyz", 503, "not ready: alarm intake not connected to its external broker: network unreachable")
	check("/api/alarms/status", 200, `"last_error": "network unreachable"`)
}
