package viewer

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/alarms"
)

const testPassword = "correct horse"

// authServer is a server with operator accounts (a real directory and a
// real file store) over the fake sources: cameras yard (area v1) and gate
// (area t2, another township), devices and incidents in both.
type authServer struct {
	*Server
	base    string
	records Records
}

func startAuthServer(t *testing.T, mod func(*Config)) *authServer {
	t.Helper()
	return startAuthServerOpts(t, authOpts{config: mod})
}

// authOpts vary startAuthServer's server.
type authOpts struct {
	config func(*Config)
	// server changes the server before it starts.
	server func(*Server)
	// records replaces the file store; users replaces the users.
	records Records
	users   []accounts.UserConfig
	// cameras replaces the camera source, which has no readers.
	cameras CameraSource
	// recordings is the recorder; nil: none.
	recordings Recordings
	// tokens are the configured API tokens; the file store keeps the
	// console's.
	tokens []accounts.Token
	// peers are the cluster's other nodes; nil: one node.
	peers Peers
	// shared makes the server a node of a cluster (with records the same
	// store); cluster shows the cluster.
	shared  SharedLogins
	cluster ClusterView
	// reloader answers POST /api/admin/reload; nil: none (503).
	reloader Reloader
}

func testUsers(t *testing.T) []accounts.UserConfig {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h := string(hash)
	return []accounts.UserConfig{
		{Username: "admin", Role: accounts.RoleAdmin, PasswordHash: h},
		{Username: "op1", Name: "Township 1 operator", Role: accounts.RoleOperator, Area: "t1", PasswordHash: h},
		{Username: "sup", Role: accounts.RoleSupervisor, Area: "c", PasswordHash: h},
		{Username: "view1", Role: accounts.RoleViewer, Area: "t1", PasswordHash: h},
		{Username: "night", Role: accounts.RoleOperator, Area: "c", PasswordHash: h, SessionIdle: 2 * time.Hour},
	}
}

func startAuthServerOpts(t *testing.T, opts authOpts) *authServer {
	t.Helper()
	users := opts.users
	if users == nil {
		users = testUsers(t)
	}
	dir, err := accounts.NewDirectory(users)
	if err != nil {
		t.Fatal(err)
	}
	records := opts.records
	if records == nil {
		fs, err := accounts.OpenFileStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = fs.Close() })
		records = fs
	}

	tree, err := alarms.NewAreaTree([]alarms.AreaConfig{
		{ID: "c", Name: "County", Kind: alarms.AreaCounty},
		{ID: "t1", Name: "Township 1", Parent: "c", Kind: alarms.AreaTownship},
		{ID: "v1", Name: "Village 1", Parent: "t1", Kind: alarms.AreaVillage},
		{ID: "t2", Name: "Township 2", Parent: "c", Kind: alarms.AreaTownship},
	})
	if err != nil {
		t.Fatal(err)
	}
	incs := map[string]alarms.Incident{
		"in1": {ID: "in1", State: alarms.StateNew, Area: "v1", Class: alarms.ClassPanic, Priority: 1,
			Cameras: []alarms.IncidentCamera{{ID: "yard"}, {ID: "gate"}}},
		"in2": {ID: "in2", State: alarms.StateNew, Area: "t2", Class: alarms.ClassAlarm, Priority: 2},
	}
	inc := &fakeIncidents{
		tree: tree,
		incident: func(_ context.Context, id string) (alarms.Incident, error) {
			if i, ok := incs[id]; ok {
				return i, nil
			}
			return alarms.Incident{}, alarms.ErrNotFound
		},
		incidents: func(_ context.Context, q alarms.IncidentQuery) (alarms.IncidentPage, error) {
			var out []alarms.Incident
			for _, id := range []string{"in1", "in2"} {
				if q.Area == "" || tree.Contains(q.Area, incs[id].Area) {
					out = append(out, incs[id])
				}
			}
			return alarms.IncidentPage{Incidents: out}, nil
		},
		act: func(_ context.Context, id string, a alarms.Action) (alarms.Incident, error) {
			i := incs[id]
			i.State = alarms.StateAcknowledged
			i.Timeline = []alarms.TimelineEntry{{Actor: a.Actor}}
			return i, nil
		},
		units: func(context.Context) ([]alarms.UnitView, error) {
			return []alarms.UnitView{{ID: "u1", Area: "v1"}, {ID: "u2", Area: "t2"}, {ID: "county", Area: "c"}}, nil
		},
	}
	cfg := loopbackConfig()
	if opts.config != nil {
		opts.config(&cfg)
	}
	devices := []alarms.DeviceView{{ID: "d1", Area: "v1"}, {ID: "d2", Area: "t2"}}
	var cameras CameraSource = &fakeSource{states: testStates}
	if opts.cameras != nil {
		cameras = opts.cameras
	}
	s, err := New(cfg, Deps{
		Cameras: cameras,
		Alarms: &fakeAlarms{
			devices: func(context.Context) ([]alarms.DeviceView, error) { return devices, nil },
			device: func(_ context.Context, id string) (alarms.DeviceView, error) {
				for _, d := range devices {
					if d.ID == id {
						return d, nil
					}
				}
				return alarms.DeviceView{}, alarms.ErrNotFound
			},
		},
		Incidents:    inc,
		Accounts:     dir,
		Records:      records,
		CameraPlaces: []CameraPlace{{ID: "yard", Area: "v1"}, {ID: "gate", Area: "t2"}},
		Recordings:   opts.recordings,
		Tokens:       opts.tokens,
		TokenStore:   tokenStoreOf(records),
		Peers:        opts.peers,
		Shared:       opts.shared,
		Cluster:      opts.cluster,
		Reloader:     opts.reloader,
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if opts.server != nil {
		opts.server(s)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &authServer{Server: s, base: "http://" + s.Addr().String(), records: records}
}

// tokenStoreOf is records as a token store, nil when it is none.
func tokenStoreOf(records Records) TokenStore {
	ts, _ := records.(TokenStore)
	return ts
}

// operator is a browser-like client: a cookie jar and the CSRF token.
type operator struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func newOperator(t *testing.T, base string) *operator {
	jar, _ := cookiejar.New(nil)
	return &operator{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// do sends a request; body "" sends none. It returns the status and body.
func (o *operator) do(method, path, body string, csrf bool) (int, string) {
	o.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, o.base+path, rd)
	if err != nil {
		o.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if strings.HasPrefix(path, "/whep/") && method == http.MethodPost {
		req.Header.Set("Content-Type", "application/sdp")
	}
	if csrf {
		req.Header.Set(csrfHeader, o.csrf)
	}
	resp, err := o.c.Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (o *operator) login(user, password string) (int, string) {
	o.t.Helper()
	code, body := o.do(http.MethodPost, "/api/login", `{"username":"`+user+`","password":"`+password+`"}`, false)
	if code == http.StatusOK {
		var me meJSON
		if err := json.Unmarshal([]byte(body), &me); err != nil {
			o.t.Fatal(err)
		}
		o.csrf = me.CSRF
	}
	return code, body
}

func mustLogin(t *testing.T, base, user string) *operator {
	t.Helper()
	o := newOperator(t, base)
	if code, body := o.login(user, testPassword); code != http.StatusOK {
		t.Fatalf("login %s: %d %s", user, code, body)
	}
	return o
}

func auditActions(t *testing.T, s *authServer, q accounts.AuditQuery) []accounts.AuditRecord {
	t.Helper()
	page, err := s.records.QueryAudit(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	return page.Records
}

func TestOperatorLoginSessionAndCookie(t *testing.T) {
	s := startAuthServer(t, nil)
	o := newOperator(t, s.base)
	if code, body := o.do(http.MethodGet, "/api/cameras", "", false); code != http.StatusUnauthorized {
		t.Fatalf("no session: %d %s", code, body)
	}
	if code, body := o.do(http.MethodPost, "/whep/yard", "v=0", false); code != http.StatusUnauthorized {
		t.Fatalf("WHEP without session: %d %s", code, body)
	}
	if code, body := o.login("op1", "wrong"); code != http.StatusUnauthorized || !strings.Contains(body, "wrong user name or password") {
		t.Fatalf("wrong password: %d %s", code, body)
	}

	// The cookie's attributes.
	req, _ := http.NewRequest(http.MethodPost, s.base+"/api/login", strings.NewReader(`{"username":"OP1","password":"`+testPassword+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sc := resp.Header.Get("Set-Cookie")
	for _, want := range []string{sessionCookie + "=", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %s", sc, want)
		}
	}

	o = mustLogin(t, s.base, "op1")
	code, body := o.do(http.MethodGet, "/api/me", "", false)
	var me meJSON
	if err := json.Unmarshal([]byte(body), &me); code != http.StatusOK || err != nil {
		t.Fatalf("me: %d %s", code, body)
	}
	if me.Username != "op1" || me.Area != "t1" || me.Role != accounts.RoleOperator || !me.Permissions.Act ||
		me.Permissions.Close || me.Permissions.Audit || me.Language != "zh-CN" || me.CSRF == "" {
		t.Errorf("me: %+v", me)
	}

	// Logout needs the CSRF token, then ends the session.
	if code, _ := o.do(http.MethodPost, "/api/logout", "", false); code != http.StatusForbidden {
		t.Errorf("logout without CSRF: %d", code)
	}
	if code, _ := o.do(http.MethodPost, "/api/logout", "", true); code != http.StatusNoContent {
		t.Errorf("logout: %d", code)
	}
	if code, _ := o.do(http.MethodGet, "/api/me", "", false); code != http.StatusUnauthorized {
		t.Errorf("after logout: %d", code)
	}
	recs := auditActions(t, s, accounts.AuditQuery{User: "op1"})
	var seen []string
	for _, r := range recs {
		seen = append(seen, r.Action)
	}
	for _, want := range []string{"login_failed", "login", "csrf_refused", "logout"} {
		if !strings.Contains(strings.Join(seen, " "), want) {
			t.Errorf("audit of op1 lacks %s: %v", want, seen)
		}
	}
}

func TestOperatorLockout(t *testing.T) {
	s := startAuthServer(t, nil)
	o := newOperator(t, s.base)
	for i := range 5 {
		if code, body := o.login("sup", "guess"); code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d %s", i+1, code, body)
		}
	}
	// Locked: even the right password is refused, with a clear message.
	code, body := o.login("sup", testPassword)
	var locked lockedJSON
	if err := json.Unmarshal([]byte(body), &locked); code != http.StatusTooManyRequests || err != nil ||
		!strings.Contains(locked.Error, "too many failed logins for this account") || locked.RetryAfter < 1 || locked.Scope != "account" {
		t.Fatalf("locked login: %d %s", code, body)
	}
	// Another account from the same address is not locked.
	if code, body := o.login("admin", testPassword); code != http.StatusOK {
		t.Fatalf("other account: %d %s", code, body)
	}
	recs := auditActions(t, s, accounts.AuditQuery{User: "sup", Action: "login_locked"})
	if len(recs) != 1 {
		t.Errorf("login_locked records: %+v", recs)
	}
}

func TestOperatorCSRF(t *testing.T) {
	s := startAuthServer(t, nil)
	o := mustLogin(t, s.base, "op1")
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/api/incidents/in1/acknowledge", "{}"},
		{http.MethodPut, "/api/me/prefs", `{"language":"en"}`},
		{http.MethodPost, "/whep/yard", "v=0"},
		{http.MethodDelete, "/whep/yard/x", ""},
	} {
		code, body := o.do(c.method, c.path, c.body, false)
		if code != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Errorf("%s %s without token: %d %s", c.method, c.path, code, body)
		}
	}
	// A wrong token is as bad as none.
	good := o.csrf
	o.csrf = "forged"
	if code, _ := o.do(http.MethodPost, "/api/incidents/in1/acknowledge", "{}", true); code != http.StatusForbidden {
		t.Errorf("forged token: %d", code)
	}
	o.csrf = good
	if code, body := o.do(http.MethodPost, "/api/incidents/in1/acknowledge", "{}", true); code != http.StatusOK {
		t.Errorf("with token: %d %s", code, body)
	}
}

func TestOperatorScope(t *testing.T) {
	s := startAuthServer(t, nil)
	o := mustLogin(t, s.base, "op1") // township t1

	code, body := o.do(http.MethodGet, "/api/cameras", "", false)
	if code != http.StatusOK || !strings.Contains(body, `"yard"`) || strings.Contains(body, `"gate"`) {
		t.Errorf("cameras: %d %s", code, body)
	}
	if strings.Contains(body, secret) {
		t.Errorf("a camera password reached the browser: %s", body)
	}
	if code, body = o.do(http.MethodGet, "/api/incidents", "", false); code != http.StatusOK ||
		!strings.Contains(body, `"in1"`) || strings.Contains(body, `"in2"`) {
		t.Errorf("incidents: %d %s", code, body)
	}
	// in1's camera gate is in t2: not offered to op1.
	if code, body = o.do(http.MethodGet, "/api/incidents/in1", "", false); code != http.StatusOK ||
		strings.Contains(body, `"gate"`) || !strings.Contains(body, `"acknowledge"`) || strings.Contains(body, `"close"`) {
		t.Errorf("incident in1: %d %s", code, body)
	}
	if code, body = o.do(http.MethodGet, "/api/units", "", false); code != http.StatusOK ||
		!strings.Contains(body, `"u1"`) || !strings.Contains(body, `"county"`) || strings.Contains(body, `"u2"`) {
		t.Errorf("units: %d %s", code, body)
	}
	if code, body = o.do(http.MethodGet, "/api/devices", "", false); code != http.StatusOK ||
		!strings.Contains(body, `"d1"`) || strings.Contains(body, `"d2"`) {
		t.Errorf("devices: %d %s", code, body)
	}

	denied := []struct{ method, path, body string }{
		{http.MethodGet, "/api/cameras/gate", ""},
		{http.MethodPost, "/whep/gate", "v=0"},
		{http.MethodGet, "/api/incidents/in2", ""},
		{http.MethodPost, "/api/incidents/in2/acknowledge", "{}"},
		{http.MethodGet, "/api/incidents?area=t2", ""},
		{http.MethodGet, "/api/devices/d2", ""},
		{http.MethodGet, "/api/events?device=d2", ""},
		{http.MethodGet, "/api/audit", ""},
	}
	for _, c := range denied {
		if code, body := o.do(c.method, c.path, c.body, true); code != http.StatusForbidden {
			t.Errorf("%s %s: %d %s, want 403", c.method, c.path, code, body)
		}
	}
	recs := auditActions(t, s, accounts.AuditQuery{User: "op1", Action: "denied", Limit: 100})
	if len(recs) != len(denied) {
		t.Errorf("%d denied records, want %d: %+v", len(recs), len(denied), recs)
	}
	targets := map[string]bool{}
	for _, r := range recs {
		targets[r.Target] = true
	}
	for _, want := range []string{"camera:gate", "incident:in2", "device:d2", "area:t2", "audit"} {
		if !targets[want] {
			t.Errorf("no denied record for %s: %v", want, targets)
		}
	}

	// The actor of an action is who is logged in, not what the body says.
	code, body = o.do(http.MethodPost, "/api/incidents/in1/acknowledge", `{"actor":"someone else"}`, true)
	if code != http.StatusOK || !strings.Contains(body, `"actor": "op1"`) {
		t.Errorf("acknowledge: %d %s", code, body)
	}
	if recs := auditActions(t, s, accounts.AuditQuery{User: "op1", Action: "incident_action"}); len(recs) != 1 || recs[0].Target != "incident:in1" {
		t.Errorf("incident_action records: %+v", recs)
	}
}

func TestOperatorRoles(t *testing.T) {
	s := startAuthServer(t, nil)
	v := mustLogin(t, s.base, "view1")
	if code, body := v.do(http.MethodPost, "/api/incidents/in1/acknowledge", "{}", true); code != http.StatusForbidden {
		t.Errorf("viewer acts: %d %s", code, body)
	}
	if code, body := v.do(http.MethodGet, "/api/incidents/in1", "", false); code != http.StatusOK || !strings.Contains(body, `"actions": []`) {
		t.Errorf("viewer sees actions: %d %s", code, body)
	}
	op := mustLogin(t, s.base, "op1")
	if code, body := op.do(http.MethodPost, "/api/incidents/in1/close", "{}", true); code != http.StatusForbidden {
		t.Errorf("operator closes: %d %s", code, body)
	}
	sup := mustLogin(t, s.base, "sup")
	if code, body := sup.do(http.MethodGet, "/api/audit", "", false); code != http.StatusForbidden {
		t.Errorf("supervisor reads audit: %d %s", code, body)
	}
	if code, body := sup.do(http.MethodGet, "/api/cameras", "", false); code != http.StatusOK || !strings.Contains(body, `"gate"`) {
		t.Errorf("county supervisor cameras: %d %s", code, body)
	}
}

func TestOperatorPrefsAndAuditExport(t *testing.T) {
	s := startAuthServer(t, nil)
	op := mustLogin(t, s.base, "op1")
	if code, body := op.do(http.MethodPut, "/api/me/prefs", `{"language":"en","wall":{"layout":9}}`, true); code != http.StatusNoContent {
		t.Fatalf("prefs: %d %s", code, body)
	}
	if code, body := op.do(http.MethodPut, "/api/me/prefs", `[1,2]`, true); code != http.StatusBadRequest {
		t.Errorf("prefs not an object: %d %s", code, body)
	}
	op2 := mustLogin(t, s.base, "op1")
	_, body := op2.do(http.MethodGet, "/api/me", "", false)
	var me meJSON
	_ = json.Unmarshal([]byte(body), &me)
	var prefs struct {
		Wall struct{ Layout int }
	}
	if err := json.Unmarshal(me.Prefs, &prefs); err != nil || me.Language != "en" || prefs.Wall.Layout != 9 {
		t.Errorf("me after prefs: %s", body)
	}
	op.do(http.MethodGet, "/api/cameras/gate", "", false) // denied, on record

	admin := mustLogin(t, s.base, "admin")
	code, body := admin.do(http.MethodGet, "/api/audit?user=op1&limit=2", "", false)
	var page auditJSON
	if err := json.Unmarshal([]byte(body), &page); code != http.StatusOK || err != nil || len(page.Records) != 2 || page.Next == "" {
		t.Fatalf("audit page: %d %s", code, body)
	}
	if page.Records[0].Action != "denied" {
		t.Errorf("newest first: %+v", page.Records[0])
	}
	code, body = admin.do(http.MethodGet, "/api/audit.csv?user=op1", "", false)
	if code != http.StatusOK {
		t.Fatalf("csv: %d %s", code, body)
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if rows[0][0] != "time" || len(rows) != 4 { // header, login, login, denied
		t.Errorf("csv rows: %q", rows)
	}
	if code, _ := admin.do(http.MethodGet, "/api/audit?from=yesterday", "", false); code != http.StatusBadRequest {
		t.Errorf("bad from: %d", code)
	}
}

func TestOperatorSessionIdleTimeout(t *testing.T) {
	s := startAuthServer(t, nil)
	op := mustLogin(t, s.base, "op1")
	// Age the session past its idle timeout, as the clock would.
	s.opSessions.mu.Lock()
	for _, p := range s.opSessions.byKey {
		p.LastSeen = p.LastSeen.Add(-s.cfg.SessionIdle - time.Second)
	}
	s.opSessions.mu.Unlock()
	if code, body := op.do(http.MethodGet, "/api/me", "", false); code != http.StatusUnauthorized {
		t.Fatalf("idle session: %d %s", code, body)
	}
	if recs := auditActions(t, s, accounts.AuditQuery{User: "op1", Action: "session_expired"}); len(recs) != 1 {
		t.Errorf("session_expired records: %+v", recs)
	}
}

func TestPageCSPAllowsOnlyTheTileServer(t *testing.T) {
	s := startAuthServer(t, func(c *Config) { c.MapTileURL = "https://tiles.county.internal:8443/{z}/{x}/{y}.png" })
	resp, err := http.Get(s.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "img-src 'self' data: https://tiles.county.internal:8443;") || !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP: %q", csp)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("page: %s, X-Frame-Options %q", resp.Status, resp.Header.Get("X-Frame-Options"))
	}
}

func TestOfferToAChosenUnitAssigns(t *testing.T) {
	s := startAuthServer(t, nil)
	var got alarms.Action
	s.deps.Incidents.(*fakeIncidents).act = func(_ context.Context, id string, a alarms.Action) (alarms.Incident, error) {
		got = a
		return alarms.Incident{ID: id, State: alarms.StateOffered}, nil
	}
	op := mustLogin(t, s.base, "op1")
	if code, body := op.do(http.MethodPost, "/api/incidents/in1/offer", `{"unit":"u1"}`, true); code != http.StatusOK {
		t.Fatalf("offer to u1: %d %s", code, body)
	}
	if got.Kind != alarms.ActAssign || got.Unit != "u1" || got.Actor != "op1" {
		t.Errorf("engine got %+v", got)
	}
}

func TestOperatorOwnIdleTimeout(t *testing.T) {
	s := startAuthServer(t, nil)
	night := mustLogin(t, s.base, "night")
	day := mustLogin(t, s.base, "op1")
	_, body := night.do(http.MethodGet, "/api/me", "", false)
	if !strings.Contains(body, `"idle_timeout_s": 7200`) {
		t.Errorf("night's me: %s", body)
	}
	// An hour without a request: past the server's 30 minutes, within
	// night's own two hours.
	s.opSessions.mu.Lock()
	for _, p := range s.opSessions.byKey {
		p.LastSeen = p.LastSeen.Add(-time.Hour)
	}
	s.opSessions.mu.Unlock()
	if code, body := night.do(http.MethodGet, "/api/me", "", false); code != http.StatusOK {
		t.Errorf("night after an hour: %d %s", code, body)
	}
	if code, _ := day.do(http.MethodGet, "/api/me", "", false); code != http.StatusUnauthorized {
		t.Errorf("op1 after an hour: %d", code)
	}
}

func TestOperatorSessionSurvivesRestart(t *testing.T) {
	s1 := startAuthServer(t, nil)
	op := mustLogin(t, s1.base, "op1")
	u, _ := url.Parse(s1.base)
	cookies := op.c.Jar.Cookies(u)
	if len(cookies) != 1 {
		t.Fatalf("cookies: %v", cookies)
	}
	gone := mustLogin(t, s1.base, "view1")
	if code, _ := gone.do(http.MethodPost, "/api/logout", "", true); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	// The next server, on the same records and users.
	deps := s1.deps
	deps.Registry = nil
	s2, err := New(loopbackConfig(), deps, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	base2 := "http://" + s2.Addr().String()
	send := func(method, path, csrf string) (int, string) {
		req, _ := http.NewRequest(method, base2+path, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		req.AddCookie(cookies[0])
		if csrf != "" {
			req.Header.Set(csrfHeader, csrf)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := send(http.MethodGet, "/api/me", "")
	var me meJSON
	if err := json.Unmarshal([]byte(body), &me); code != http.StatusOK || err != nil || me.Username != "op1" || me.CSRF != op.csrf {
		t.Fatalf("me after the restart: %d %s (csrf before %s)", code, body, op.csrf)
	}
	if code, body := send(http.MethodPost, "/api/incidents/in1/acknowledge", op.csrf); code != http.StatusOK {
		t.Errorf("acting after the restart: %d %s", code, body)
	}
	stored, err := s1.records.Sessions(t.Context())
	if err != nil || len(stored) != 1 || stored[0].Username != "op1" {
		t.Errorf("stored sessions: %+v %v (the logged-out one must be gone)", stored, err)
	}
	for _, st := range stored {
		if strings.Contains(st.Key, cookies[0].Value) {
			t.Error("the store holds the cookie's token")
		}
	}
}
