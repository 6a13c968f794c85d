package viewer

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// patrolClient is an officer's browser: a cookie jar and the CSRF token
// that the login gave.
type patrolClient struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func newPatrolClient(t *testing.T, base string) *patrolClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DisableKeepAlives: true} // nothing left for goleak
	t.Cleanup(tr.CloseIdleConnections)
	return &patrolClient{t: t, base: base, c: &http.Client{Jar: jar, Transport: tr, Timeout: testTimeout}}
}

// do sends a request under /patrol/api/; body (if not nil) goes as JSON
// with the CSRF token when withCSRF.
func (p *patrolClient) do(method, path string, body any, withCSRF bool) (int, string, http.Header) {
	p.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			p.t.Fatal(err)
		}
		r = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, p.base+"/patrol/api/"+path, r)
	if err != nil {
		p.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if withCSRF {
		req.Header.Set(csrfHeader, p.csrf)
	}
	resp, err := p.c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// login logs in and keeps the CSRF token; it returns the status and body.
func (p *patrolClient) login(user, pass string) (int, string) {
	p.t.Helper()
	code, body, _ := p.do("POST", "login", loginBody{Username: user, Password: pass}, false)
	if code == 200 {
		var me patrolMeJSON
		if err := json.Unmarshal([]byte(body), &me); err != nil || me.CSRF == "" {
			p.t.Fatalf("login answer %s: %v", body, err)
		}
		p.csrf = me.CSRF
	}
	return code, body
}

// mustDo is do that fails unless the status is code, and decodes the body
// into v when not nil.
func (p *patrolClient) mustDo(method, path string, body any, code int, v any) {
	p.t.Helper()
	got, b, _ := p.do(method, path, body, true)
	if got != code {
		p.t.Fatalf("%s %s: %d %s, want %d", method, path, got, b, code)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(b), v); err != nil {
			p.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// plainUnits checks u1/pw-u1 and u2/pw-u2.
func plainUnits() func(string, string, string) (string, error) {
	return func(user, pass, _ string) (string, error) {
		if (user == "u1" || user == "u2") && pass == "pw-"+user {
			return user, nil
		}
		return "", alarms.ErrBadCredentials
	}
}

// unitViews answers Unit for u1 and u2, both available at the given spot.
func unitViews(lat, lon float64) func(context.Context, string) (alarms.UnitView, error) {
	return func(_ context.Context, id string) (alarms.UnitView, error) {
		if id != "u1" && id != "u2" {
			return alarms.UnitView{}, fmt.Errorf("unit %q: %w", id, alarms.ErrUnknownUnit)
		}
		return alarms.UnitView{ID: id, Name: "Car " + id, Status: alarms.UnitAvailable, Lat: lat, Lon: lon,
			Reported: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}, nil
	}
}

// The session cookie is HttpOnly, SameSite=Strict and scoped to /patrol/;
// wrong credentials are 401; logout ends the session.
func TestPatrolLoginSession(t *testing.T) {
	srv := startIncidentServer(t, &fakeIncidents{unit: unitViews(30, 120)}, func(d *Deps) { d.CheckUnit = plainUnits() })
	p := newPatrolClient(t, baseURL(srv))
	if code, body, _ := p.do("GET", "me", nil, false); code != 401 || !strings.Contains(body, "not logged in") {
		t.Fatalf("me before login: %d %s", code, body)
	}
	for _, tt := range []struct{ user, pass string }{{"u1", "wrong"}, {"nobody", "pw-u1"}, {"u1", "pw-u2"}} {
		if code, body := p.login(tt.user, tt.pass); code != 401 || !strings.Contains(body, "wrong user name or password") {
			t.Errorf("login %s/%s: %d %s", tt.user, tt.pass, code, body)
		}
	}
	if code, body, _ := p.do("POST", "login", map[string]string{"username": "u1"}, false); code != 400 {
		t.Errorf("login without password: %d %s", code, body)
	}

	code, body, h := p.do("POST", "login", loginBody{Username: "u1", Password: "pw-u1"}, false)
	if code != 200 {
		t.Fatalf("login: %d %s", code, body)
	}
	cookie := h.Get("Set-Cookie")
	for _, want := range []string{patrolCookie + "=", "Path=/patrol/", "HttpOnly", "SameSite=Strict", "Max-Age="} {
		if !strings.Contains(cookie, want) {
			t.Errorf("cookie %q lacks %q", cookie, want)
		}
	}
	var me patrolMeJSON
	if err := json.Unmarshal([]byte(body), &me); err != nil || me.Unit.ID != "u1" || me.CSRF == "" {
		t.Fatalf("login answer %s", body)
	}
	p.csrf = me.CSRF
	var again patrolMeJSON
	p.mustDo("GET", "me", nil, 200, &again)
	if again != me {
		t.Errorf("me %+v, want %+v", again, me)
	}
	p.mustDo("POST", "logout", map[string]string{}, 204, nil)
	if code, _, _ := p.do("GET", "me", nil, false); code != 401 {
		t.Errorf("me after logout: %d", code)
	}
	// Without CheckUnit, login is not possible.
	srv2 := startIncidentServer(t, &fakeIncidents{unit: unitViews(30, 120)}, nil)
	if code, body := newPatrolClient(t, baseURL(srv2)).login("u1", "pw-u1"); code != 503 {
		t.Errorf("login without CheckUnit: %d %s", code, body)
	}
}

// Login attempts are limited per user name (5 at once) and per address
// (20 at once), with 429, Retry-After and a clear message; a correct
// password does not get around it.
func TestPatrolLoginRateLimit(t *testing.T) {
	// A check without bcrypt, and buckets that do not refill while the
	// test runs, however slow the machine.
	check := func(user, pass, _ string) (string, error) {
		if user == "u2" && pass == "pw-u2" {
			return user, nil
		}
		return "", alarms.ErrBadCredentials
	}
	srv := startIncidentServer(t, &fakeIncidents{unit: unitViews(30, 120)}, func(d *Deps) { d.CheckUnit = check })
	srv.loginLimiter.mu.Lock()
	srv.loginLimiter.unitRule.Every, srv.loginLimiter.addrRule.Every = time.Hour, time.Hour
	srv.loginLimiter.mu.Unlock()
	p := newPatrolClient(t, baseURL(srv))
	for i := range 5 {
		if code, body := p.login("u1", fmt.Sprintf("guess-%d", i)); code != 401 {
			t.Fatalf("attempt %d: %d %s", i, code, body)
		}
	}
	code, body, h := p.do("POST", "login", loginBody{Username: "u1", Password: "pw-u1"}, false)
	if code != 429 || !strings.Contains(body, "too many login attempts for this user name: try again in") ||
		h.Get("Retry-After") == "" {
		t.Fatalf("6th attempt for u1: %d %s (Retry-After %q)", code, body, h.Get("Retry-After"))
	}
	// Another unit from the same address still may, until the address's
	// bucket is empty too.
	if code, body := p.login("u2", "pw-u2"); code != 200 {
		t.Fatalf("u2: %d %s", code, body)
	}
	for i := range 14 { // 5 + 1 + 14 = 20 attempts taken from this address
		if code, body := p.login(fmt.Sprintf("x%d", i), "nope"); code != 401 {
			t.Fatalf("attempt x%d: %d %s", i, code, body)
		}
	}
	if code, body := p.login("u2", "pw-u2"); code != 429 || !strings.Contains(body, "for this address") {
		t.Fatalf("21st attempt from the address: %d %s", code, body)
	}
}

// The limiter's buckets refill with time.
func TestLoginLimiterRefills(t *testing.T) {
	l := newLoginLimiter()
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	for i := range 5 {
		if by, _ := l.allow("u1", "a", now); by != limitedNone {
			t.Fatalf("attempt %d refused by %s", i, by)
		}
	}
	by, wait := l.allow("u1", "a", now)
	if by != limitedUnit || wait != time.Minute {
		t.Fatalf("6th: %q, wait %v", by, wait)
	}
	if by, _ := l.allow("u1", "a", now.Add(59*time.Second)); by != limitedUnit {
		t.Fatalf("after 59 s: %q", by)
	}
	if by, _ := l.allow("u1", "a", now.Add(61*time.Second)); by != limitedNone {
		t.Fatalf("after 61 s: %q", by)
	}
}

// A POST without the session's CSRF token (or with a wrong one, or from
// another origin) is refused with 403 and changes nothing.
func TestPatrolCSRF(t *testing.T) {
	var mu sync.Mutex
	var replies, positions int
	f := &fakeIncidents{
		unit: unitViews(30, 120),
		reply: func(context.Context, string, string, alarms.ReplyAction, alarms.Disposition, string) (alarms.Incident, error) {
			mu.Lock()
			defer mu.Unlock()
			replies++
			return alarms.Incident{ID: "i1", State: alarms.StateDispatched}, nil
		},
		position: func(context.Context, string, float64, float64, alarms.UnitStatus) error {
			mu.Lock()
			defer mu.Unlock()
			positions++
			return nil
		},
	}
	srv := startIncidentServer(t, f, func(d *Deps) { d.CheckUnit = plainUnits() })
	p := newPatrolClient(t, baseURL(srv))
	if code, body := p.login("u1", "pw-u1"); code != 200 {
		t.Fatal(code, body)
	}
	reply := replyBody{Incident: "i1", Action: alarms.ReplyAccept}
	pos := map[string]any{"lat": 30.1, "lon": 120.1, "status": "available"}
	for _, path := range []string{"reply", "position", "logout"} {
		body := any(reply)
		if path == "position" {
			body = pos
		}
		if code, b, _ := p.do("POST", path, body, false); code != 403 || !strings.Contains(b, "CSRF token") {
			t.Errorf("%s without token: %d %s", path, code, b)
		}
		good := p.csrf
		p.csrf = "wrong" + good
		if code, b, _ := p.do("POST", path, body, true); code != 403 {
			t.Errorf("%s with a wrong token: %d %s", path, code, b)
		}
		p.csrf = good
	}
	// The right token from another origin.
	req, _ := http.NewRequest("POST", baseURL(srv)+"/patrol/api/reply", strings.NewReader(`{"incident":"i1","action":"accept"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(csrfHeader, p.csrf)
	req.Header.Set("Origin", "http://evil.example")
	resp, err := p.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("from another origin: %d", resp.StatusCode)
	}
	mu.Lock()
	if replies != 0 || positions != 0 {
		t.Errorf("refused requests reached the engine: %d replies, %d positions", replies, positions)
	}
	mu.Unlock()
	// With the token, from this origin, it works.
	p.mustDo("POST", "reply", reply, 200, nil)
	p.mustDo("POST", "position", pos, 200, nil)
	mu.Lock()
	defer mu.Unlock()
	if replies != 1 || positions != 1 {
		t.Errorf("%d replies, %d positions, want 1 each", replies, positions)
	}
}

// The page's summary of the unit's offer: distance and direction from the
// unit, area names, deadline; replies go to the engine as the session's
// unit, and the engine's refusals map to 403, 404, 409 and 400.
func TestPatrolCurrentAndReplies(t *testing.T) {
	deadline := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	// The unit is 1 km south-west of the incident, roughly.
	inc := alarms.Incident{ID: "i1", State: alarms.StateOffered, Class: alarms.ClassPanic, Priority: 1, Area: "g1",
		Address: "3 Well Lane", Lat: 30.0, Lon: 120.0, Zones: []string{"2"}, Count: 3,
		Cameras: []alarms.IncidentCamera{{ID: "gate"}},
		Offer:   &alarms.Offer{Unit: "u1", Deadline: deadline}}
	type call struct {
		unit, incident string
		action         alarms.ReplyAction
		disp           alarms.Disposition
	}
	calls := make(chan call, 10)
	f := &fakeIncidents{
		unit: func(ctx context.Context, id string) (alarms.UnitView, error) {
			v, err := unitViews(30.0-0.00636, 120.0-0.00735)(ctx, id)
			if id == "u1" {
				v.Status, v.Incident = alarms.UnitOffered, "i1"
			}
			return v, err
		},
		incident: func(_ context.Context, id string) (alarms.Incident, error) {
			if id == "i1" {
				return inc, nil
			}
			return alarms.Incident{}, fmt.Errorf("incident %s: %w", id, alarms.ErrNotFound)
		},
		reply: func(_ context.Context, unit, id string, a alarms.ReplyAction, d alarms.Disposition, _ string) (alarms.Incident, error) {
			calls <- call{unit, id, a, d}
			switch {
			case id == "i2":
				return alarms.Incident{}, fmt.Errorf("incident i2: accept from %s: %w", unit, alarms.ErrNotAssigned)
			case id != "i1":
				return alarms.Incident{}, fmt.Errorf("incident %s: %w", id, alarms.ErrNotFound)
			case a == alarms.ReplyArrived:
				return alarms.Incident{}, &alarms.TransitionError{Incident: id, Action: "arrived", From: alarms.StateOffered, To: alarms.StateOnScene}
			}
			out := inc
			out.State, out.Offer, out.Unit = alarms.StateDispatched, nil, unit
			return out, nil
		},
	}
	srv := startIncidentServer(t, f, func(d *Deps) { d.CheckUnit = plainUnits() })
	p := newPatrolClient(t, baseURL(srv))
	if code, body := p.login("u1", "pw-u1"); code != 200 {
		t.Fatal(code, body)
	}
	var cur patrolCurrentJSON
	p.mustDo("GET", "current", nil, 200, &cur)
	got := cur.Incident
	if got == nil || got.ID != "i1" || !got.Offered || !got.Deadline.Equal(deadline) || got.Direction != "NE" ||
		got.DistanceM < 950 || got.DistanceM > 1050 || got.Address != "3 Well Lane" || cur.Now.IsZero() {
		t.Fatalf("current %+v", got)
	}
	if want := []string{"Grid 1", "Village 1", "Township 1", "County"}; strings.Join(got.AreaNames, "/") != strings.Join(want, "/") {
		t.Errorf("area names %v", got.AreaNames)
	}
	if len(got.Cameras) != 1 || got.Cameras[0] != "gate" || got.FromHome {
		t.Errorf("cameras %v, from home %v", got.Cameras, got.FromHome)
	}

	var after patrolIncidentJSON
	p.mustDo("POST", "reply", replyBody{Incident: "i1", Action: alarms.ReplyAccept}, 200, &after)
	if after.State != alarms.StateDispatched || after.Offered {
		t.Errorf("after accept %+v", after)
	}
	if c := <-calls; c != (call{"u1", "i1", alarms.ReplyAccept, ""}) {
		t.Errorf("engine got %+v", c)
	}
	for _, tt := range []struct {
		body   replyBody
		code   int
		inBody string
		asked  bool
	}{
		{replyBody{Incident: "i2", Action: alarms.ReplyAccept}, 403, "incident is not with this unit", true},
		{replyBody{Incident: "i9", Action: alarms.ReplyAccept}, 404, "not found", true},
		{replyBody{Incident: "i1", Action: alarms.ReplyArrived}, 409, "illegal transition from offered to on_scene", true},
		{replyBody{Incident: "i1", Action: "assign"}, 400, `action: \"assign\" is not one of accept`, false},
		{replyBody{Incident: "i1", Action: alarms.ReplyCleared}, 400, "disposition: ", false},
		{replyBody{Action: alarms.ReplyAccept}, 400, "incident: required", false},
	} {
		code, body, _ := p.do("POST", "reply", tt.body, true)
		if code != tt.code || !strings.Contains(body, tt.inBody) {
			t.Errorf("reply %+v: %d %s, want %d with %s", tt.body, code, body, tt.code, tt.inBody)
		}
		select {
		case c := <-calls:
			if !tt.asked || c.unit != "u1" {
				t.Errorf("reply %+v: engine got %+v", tt.body, c)
			}
		default:
			if tt.asked {
				t.Errorf("reply %+v: engine not asked", tt.body)
			}
		}
	}
}

// Position reports: with lat/lon, or without (the last known position is
// reported again, e.g. for a status change on a phone without
// geolocation); bad ones are 400.
func TestPatrolPosition(t *testing.T) {
	type report struct {
		unit     string
		lat, lon float64
		status   alarms.UnitStatus
	}
	reports := make(chan report, 10)
	f := &fakeIncidents{unit: unitViews(30.5, 120.5),
		position: func(_ context.Context, unit string, lat, lon float64, st alarms.UnitStatus) error {
			reports <- report{unit, lat, lon, st}
			if lat > 90 {
				return fmt.Errorf("unit %s: position out of range: %w", unit, alarms.ErrInvalidAction)
			}
			return nil
		}}
	srv := startIncidentServer(t, f, func(d *Deps) { d.CheckUnit = plainUnits() })
	p := newPatrolClient(t, baseURL(srv))
	if code, body := p.login("u2", "pw-u2"); code != 200 {
		t.Fatal(code, body)
	}
	p.mustDo("POST", "position", map[string]any{"lat": 30.1, "lon": 120.2, "status": "off_duty"}, 200, nil)
	if r := <-reports; r != (report{"u2", 30.1, 120.2, alarms.UnitOffDuty}) {
		t.Errorf("report %+v", r)
	}
	p.mustDo("POST", "position", map[string]any{"status": "available"}, 200, nil)
	if r := <-reports; r != (report{"u2", 30.5, 120.5, alarms.UnitAvailable}) {
		t.Errorf("report without a position %+v", r)
	}
	for _, body := range []map[string]any{{"lat": 30.1}, {"status": "busy"}, {"lat": 91.0, "lon": 0.0}} {
		if code, b, _ := p.do("POST", "position", body, true); code != 400 {
			t.Errorf("position %v: %d %s", body, code, b)
		}
	}
	if len(reports) != 1 { // only the out-of-range one reached the engine
		t.Errorf("%d reports reached the engine, want 1", len(reports))
	}
}

// The unit's stream carries its dispatch messages and only the changes
// that concern it.
func TestPatrolStream(t *testing.T) {
	dispatch := make(chan chan alarms.DispatchMessage, 1)
	changes := make(chan chan alarms.IncidentChange, 1)
	f := &fakeIncidents{unit: unitViews(30, 120),
		dispatch: func(_ context.Context, unit string) <-chan alarms.DispatchMessage {
			if unit != "u1" {
				t.Errorf("dispatch messages of %s", unit)
			}
			ch := make(chan alarms.DispatchMessage, 8)
			dispatch <- ch
			return ch
		},
		subscribe: func(context.Context) <-chan alarms.IncidentChange {
			ch := make(chan alarms.IncidentChange, 8)
			changes <- ch
			return ch
		}}
	srv := startIncidentServer(t, f, func(d *Deps) { d.CheckUnit = plainUnits() })
	p := newPatrolClient(t, baseURL(srv))
	if code, body := p.login("u1", "pw-u1"); code != 200 {
		t.Fatal(code, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", baseURL(srv)+"/patrol/api/stream", nil)
	resp, err := p.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	lines := make(chan string, 100)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "event: ") || strings.HasPrefix(l, "data: ") {
				lines <- l
			}
		}
	}()
	defer wg.Wait()
	defer cancel()
	msgs, ch := <-dispatch, <-changes
	msgs <- alarms.DispatchMessage{Type: "offer", Incident: "i1"}
	ch <- alarms.IncidentChange{Seq: 1, Incident: &alarms.Incident{ID: "i7", State: alarms.StateOffered, Offer: &alarms.Offer{Unit: "u2"}}}
	ch <- alarms.IncidentChange{Seq: 2, Units: []alarms.UnitView{{ID: "u2", Status: alarms.UnitBusy}}}
	ch <- alarms.IncidentChange{Seq: 3, Incident: &alarms.Incident{ID: "i1", State: alarms.StateDispatched, Unit: "u1"},
		Units: []alarms.UnitView{{ID: "u1", Status: alarms.UnitBusy}}}
	want := []string{
		"event: dispatch", `data: {"type":"offer","incident":"i1"`,
		"event: unit", `data: {"id":"u1"`,
		"event: incident", `data: {"id":"i1","state":"dispatched"}`,
	}
	for i, w := range want {
		select {
		case l := <-lines:
			if !strings.HasPrefix(l, w) {
				t.Fatalf("line %d: %q, want %q (nothing about u2 or i7)", i, l, w)
			}
		case <-time.After(testTimeout):
			t.Fatalf("no line %d", i)
		}
	}
}

// A login that the alarms' shared limit refuses unchecked answers 429 (and
// 503 when too many checks wait), not "wrong password": an officer with the
// right password must know to wait. The check gets the client's address.
func TestPatrolLoginSharedLimit(t *testing.T) {
	var remote string
	check := func(user, pass, addr string) (string, error) {
		remote = addr
		switch user {
		case "busy":
			return "", alarms.ErrLoginBusy
		case "u1":
			return "", alarms.ErrLoginThrottled
		}
		return "", alarms.ErrBadCredentials
	}
	srv := startIncidentServer(t, &fakeIncidents{unit: unitViews(30, 120)}, func(d *Deps) { d.CheckUnit = check })
	p := newPatrolClient(t, baseURL(srv))
	if code, body := p.login("u1", "pw-u1"); code != 429 || !strings.Contains(body, "too many wrong passwords") {
		t.Errorf("throttled: %d %s", code, body)
	}
	if host, _, err := net.SplitHostPort(remote); err != nil || host != "127.0.0.1" {
		t.Errorf("remote given to CheckUnit: %q", remote)
	}
	if code, body := p.login("busy", "x"); code != 503 {
		t.Errorf("busy: %d %s", code, body)
	}
	if code, body := p.login("u2", "x"); code != 401 {
		t.Errorf("wrong: %d %s", code, body)
	}
}
