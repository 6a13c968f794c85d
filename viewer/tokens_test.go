package viewer

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/skywatch/skywatch/accounts"
)

// bearer is a program with an API token and nothing else: no cookie, no
// CSRF token.
type bearer struct {
	t     *testing.T
	base  string
	token string
}

// do sends a request with the token; body "" sends none.
func (b *bearer) do(method, path, body string) (int, string, http.Header) {
	b.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.base+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Close = true
	if b.token != "" {
		req.Header.Set("Authorization", "Bearer "+b.token)
	}
	switch {
	case strings.HasPrefix(path, "/whep/") && method == http.MethodPost:
		req.Header.Set("Content-Type", "application/sdp")
	case body != "":
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: testTimeout}).Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), resp.Header
}

// watch plays camera with a real pion viewer that has only the token.
func (b *bearer) watch(camera string) (*whepClient, int, string) {
	b.t.Helper()
	c, offer := newWHEPClient(b.t)
	code, body, h := b.do(http.MethodPost, "/whep/"+camera, offer)
	if code == http.StatusCreated {
		c.location = h.Get("Location")
		if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
			b.t.Fatal(err)
		}
	}
	return c, code, body
}

// bearerTransport adds a token to every request (for the event stream).
type bearerTransport struct{ token string }

func (bt bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+bt.token)
	return http.DefaultTransport.RoundTrip(r)
}

// configToken makes a configured token and returns it with the token.
func configToken(name string, role accounts.Role, area string, cameras ...string) (accounts.Token, string) {
	tok, sum := accounts.NewToken()
	return accounts.Token{Name: name, Role: role, Area: area, Cameras: cameras, SHA256: sum, Configured: true}, tok
}

// Every route class with a token: WHEP and reads work within the token's
// area and cameras, every change is 403 whatever the role, the admin pages
// and the audit log are refused, and Bearer wins over a cookie.
func TestTokenRouteClasses(t *testing.T) {
	wall, wallTok := configToken("wall-1", accounts.RoleViewer, "t1")
	nvr, nvrTok := configToken("nvr", accounts.RoleAdmin, "")
	gateOnly, gateTok := configToken("gate-only", accounts.RoleOperator, "", "gate")
	s := startAuthServerOpts(t, authOpts{cameras: playingCameras(), tokens: []accounts.Token{wall, nvr, gateOnly}})
	w := &bearer{t: t, base: s.base, token: wallTok}
	admin := &bearer{t: t, base: s.base, token: nvrTok}
	gate := &bearer{t: t, base: s.base, token: gateTok}

	// Reads, within the area.
	code, body, _ := w.do(http.MethodGet, "/api/cameras", "")
	if code != http.StatusOK || !strings.Contains(body, `"yard"`) || strings.Contains(body, `"gate"`) {
		t.Fatalf("cameras of a t1 token: %d %s", code, body)
	}
	for _, path := range []string{"/api/cameras/yard", "/api/incidents", "/api/incidents/in1", "/api/events", "/api/devices", "/api/units", "/api/areas", "/api/me"} {
		if code, body, _ := w.do(http.MethodGet, path, ""); code != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
	if code, body, _ := admin.do(http.MethodGet, "/api/me", ""); !strings.Contains(body, `"username": "token:nvr"`) || !strings.Contains(body, `"csrf": ""`) ||
		!strings.Contains(body, `"audit": false`) || !strings.Contains(body, `"act": false`) {
		t.Errorf("me: %d %s", code, body)
	}
	for _, path := range []string{"/api/cameras/gate", "/api/incidents/in2"} {
		if code, body, _ := w.do(http.MethodGet, path, ""); code != http.StatusForbidden {
			t.Errorf("GET %s outside the area: %d %s", path, code, body)
		}
	}
	// A camera list narrows the area.
	code, body, _ = gate.do(http.MethodGet, "/api/cameras", "")
	if code != http.StatusOK || strings.Contains(body, `"yard"`) || !strings.Contains(body, `"gate"`) {
		t.Errorf("cameras of a gate-only token: %d %s", code, body)
	}
	if code, body, _ := gate.do(http.MethodGet, "/api/incidents/in1", ""); code != http.StatusOK || strings.Contains(body, `"id": "yard"`) ||
		!strings.Contains(body, `"actions": []`) {
		t.Errorf("incident of a gate-only token shows another camera: %d %s", code, body)
	}
	if _, code, body := gate.watch("yard"); code != http.StatusForbidden {
		t.Errorf("gate-only token plays yard: %d %s", code, body)
	}

	// WHEP: an offer without cookie or CSRF, and its DELETE.
	c, code, body := w.watch("yard")
	if code != http.StatusCreated {
		t.Fatalf("token offer: %d %s", code, body)
	}
	receive(t, c, 1)
	if _, code, body := w.watch("gate"); code != http.StatusForbidden {
		t.Errorf("offer outside the area: %d %s", code, body)
	}
	if code, body, _ := admin.do(http.MethodDelete, c.location, ""); code != http.StatusNotFound {
		t.Errorf("another token deleted the session: %d %s", code, body)
	}
	if code, body, _ := w.do(http.MethodDelete, c.location, ""); code != http.StatusOK {
		t.Errorf("delete own session: %d %s", code, body)
	}

	// Changes: 403 whatever the role, with the reason.
	for _, rq := range []struct{ method, path, body string }{
		{http.MethodPost, "/api/incidents/in1/acknowledge", `{}`},
		{http.MethodPut, "/api/me/prefs", `{"a":1}`},
		{http.MethodPost, "/api/logout", ""},
		{http.MethodPost, "/api/admin/tokens", `{"name":"x","role":"viewer"}`},
		{http.MethodDelete, "/api/admin/tokens/wall-1", ""},
		{http.MethodPost, "/api/admin/unlock", `{"user":"x"}`},
	} {
		code, body, _ := admin.do(rq.method, rq.path, rq.body)
		if code != http.StatusForbidden || !strings.Contains(body, "needs a person") {
			t.Errorf("%s %s with an admin token: %d %s", rq.method, rq.path, code, body)
		}
	}
	// Reads that show people's doings: refused to tokens, even an admin's.
	for _, path := range []string{"/api/audit", "/api/audit.csv", "/api/admin/sessions", "/api/admin/lockouts", "/api/admin/tokens",
		"/debug/pprof/heap"} {
		if code, body, _ := admin.do(http.MethodGet, path, ""); code != http.StatusForbidden {
			t.Errorf("GET %s with an admin token: %d %s", path, code, body)
		}
	}

	// Bearer wins: an admin's cookie does not help a wrong token, and a
	// right token needs no CSRF even beside a cookie.
	op := mustLogin(t, s.base, "admin")
	req, _ := http.NewRequest(http.MethodGet, s.base+"/api/cameras", nil)
	req.Header.Set("Authorization", "Bearer swt_wrong")
	resp, err := op.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("cookie and wrong token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// Without any credentials a WHEP player is told to bring a token.
	anon := &bearer{t: t, base: s.base}
	if code, _, h := anon.do(http.MethodPost, "/whep/yard", "v=0"); code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("offer without credentials: %d %q", code, h.Get("WWW-Authenticate"))
	}

	// The video session is audited with the token as the actor.
	recs := auditActions(t, s, accounts.AuditQuery{User: "token:wall-1", Action: accounts.AuditWatchStart})
	if len(recs) != 1 || recs[0].Target != "camera:yard" || recs[0].Role != "viewer" {
		t.Errorf("watch_start records: %+v", recs)
	}
}

// A wrong token is 401 with WWW-Authenticate; past http.login_failures
// from one address it is 429 with Retry-After, and the audit log gets a
// bounded number of records. A valid token still works from there.
func TestTokenWrongIsThrottled(t *testing.T) {
	wall, wallTok := configToken("wall-1", accounts.RoleViewer, "t1")
	s := startAuthServerOpts(t, authOpts{tokens: []accounts.Token{wall}, config: func(c *Config) {
		c.LoginFailures, c.AuditUnauthPerAddr = 3, 2
	}})
	_, other := accounts.NewToken()
	codes := []int{}
	for i := range 8 {
		tok := other[:i] // not even a token's shape, then the same
		if i%2 == 0 {
			tok, _ = accounts.NewToken()
		}
		b := &bearer{t: t, base: s.base, token: tok}
		code, body, h := b.do(http.MethodGet, "/api/cameras", "")
		codes = append(codes, code)
		if !strings.Contains(h.Get("WWW-Authenticate"), `Bearer error="invalid_token"`) {
			t.Errorf("attempt %d: WWW-Authenticate %q", i, h.Get("WWW-Authenticate"))
		}
		if code == http.StatusTooManyRequests && h.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After: %s", body)
		}
	}
	want := []int{401, 401, 401, 429, 429, 429, 429, 429}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("codes %v, want %v", codes, want)
		}
	}
	w := &bearer{t: t, base: s.base, token: wallTok}
	if code, body, _ := w.do(http.MethodGet, "/api/cameras", ""); code != http.StatusOK {
		t.Errorf("a valid token from the locked address: %d %s", code, body)
	}
	recs := auditActions(t, s, accounts.AuditQuery{Action: accounts.AuditTokenRefused})
	if len(recs) != 2 {
		t.Errorf("%d token_refused records, want 2 (the address's budget)", len(recs))
	}
	if _, body, _ := (&bearer{t: t, base: s.base}).do(http.MethodGet, "/metrics", ""); !strings.Contains(body, `skywatch_viewer_token_requests_total{result="throttled"} 5`) {
		t.Errorf("throttled token requests not counted 5 in /metrics")
	}
	// The lockout is listed for the admin under the tokens' account.
	op := mustLogin(t, s.base, "admin")
	if code, body := op.do(http.MethodGet, "/api/admin/lockouts", "", false); code != 200 || !strings.Contains(body, bearerAccount) {
		t.Errorf("lockouts: %d %s", code, body)
	}
}

// A token polling the API writes one token_used record per interval, with
// the count of the others; each video session is still written.
func TestTokenAuditOnUseIsBounded(t *testing.T) {
	wall, wallTok := configToken("wall-1", accounts.RoleViewer, "t1")
	s := startAuthServerOpts(t, authOpts{tokens: []accounts.Token{wall}})
	w := &bearer{t: t, base: s.base, token: wallTok}
	for range 30 {
		if code, body, _ := w.do(http.MethodGet, "/api/cameras", ""); code != http.StatusOK {
			t.Fatalf("%d %s", code, body)
		}
		w.do(http.MethodGet, "/api/cameras/gate", "") // denied, outside the area
	}
	if n := len(auditActions(t, s, accounts.AuditQuery{User: "token:wall-1", Action: accounts.AuditTokenUsed})); n != 1 {
		t.Errorf("%d token_used records for 30 reads, want 1", n)
	}
	if n := len(auditActions(t, s, accounts.AuditQuery{User: "token:wall-1", Action: "denied"})); n != 1 {
		t.Errorf("%d denied records for 30 refusals, want 1", n)
	}
	// The next interval's record counts what was held back.
	s.tokens.mu.Lock()
	for _, h := range s.tokens.byName["wall-1"].audits {
		h.last = h.last.Add(-2 * s.cfg.TokenAuditInterval)
	}
	s.tokens.mu.Unlock()
	w.do(http.MethodGet, "/api/cameras", "")
	recs := auditActions(t, s, accounts.AuditQuery{User: "token:wall-1", Action: accounts.AuditTokenUsed})
	if len(recs) != 2 || !strings.Contains(recs[0].Detail, "59 more") {
		t.Errorf("records after the interval: %+v", recs)
	}
	if v := s.tokens.list(); len(v) != 1 || v[0].Uses != 61 || v[0].LastUsed.IsZero() {
		t.Errorf("uses: %+v", v)
	}
}

// An admin makes a token in the console; it is shown once, plays video
// with no cookie, and revoking it refuses its next request and ends its
// open video session and event stream at once. It survives a restart of
// the server on the same store.
func TestTokenConsoleCreateRevoke(t *testing.T) {
	fs, err := accounts.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fs.Close() })
	s := startAuthServerOpts(t, authOpts{cameras: playingCameras(), records: fs,
		server: func(s *Server) { s.streamHeartbeat = time.Hour }})
	op := mustLogin(t, s.base, "admin")
	code, body := op.do(http.MethodPost, "/api/admin/tokens",
		`{"name":"Wall-2","role":"viewer","area":"t1","cameras":["yard"],"description":"hall 2"}`, true)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	var made createdTokenJSON
	if err := json.Unmarshal([]byte(body), &made); err != nil || !accounts.LooksLikeToken(made.Token) || made.WHEPPath != "/whep/{camera}" {
		t.Fatalf("created: %v %s", err, body)
	}
	// Listed without the token or its hash.
	code, body = op.do(http.MethodGet, "/api/admin/tokens", "", false)
	if code != 200 || !strings.Contains(body, `"name": "Wall-2"`) || strings.Contains(body, made.Token) ||
		strings.Contains(body, accounts.TokenSum(made.Token)) || !strings.Contains(body, `"source": "console"`) {
		t.Fatalf("list: %d %s", code, body)
	}
	if code, body := op.do(http.MethodPost, "/api/admin/tokens", `{"name":"wall-2","role":"viewer"}`, true); code != http.StatusConflict {
		t.Errorf("same name again: %d %s", code, body)
	}
	if recs := auditActions(t, s, accounts.AuditQuery{Action: accounts.AuditTokenCreated}); len(recs) != 1 || recs[0].User != "admin" ||
		recs[0].Target != "token:Wall-2" || strings.Contains(recs[0].Detail, made.Token) {
		t.Errorf("created records: %+v", recs)
	}

	// A restart keeps it.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = startAuthServerOpts(t, authOpts{cameras: playingCameras(), records: fs,
		server: func(s *Server) { s.streamHeartbeat = time.Hour }})
	op = mustLogin(t, s.base, "admin")
	w := &bearer{t: t, base: s.base, token: made.Token}
	c, code, body := w.watch("yard")
	if code != http.StatusCreated {
		t.Fatalf("offer after a restart: %d %s", code, body)
	}
	receive(t, c, 1)
	stream := openStreamWith(t, &http.Client{Transport: bearerTransport{made.Token}}, s.base, "")
	if ev := stream.nextAny(t); ev.name != "comment" || ev.data != "connected" {
		t.Fatalf("stream: first %+v", ev)
	}

	code, body = op.do(http.MethodDelete, "/api/admin/tokens/wall-2", "", true)
	if code != http.StatusOK || !strings.Contains(body, `"video_sessions": 1`) {
		t.Fatalf("revoke: %d %s", code, body)
	}
	waitFor(t, "the token's video session to end", func() bool { return videoOf(s.Server, "token:Wall-2") == 0 })
	waitFor(t, "the viewer to see the end", func() bool {
		st := c.pc.ConnectionState()
		return st == webrtc.PeerConnectionStateClosed || st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateDisconnected
	})
	stream.ended(t)
	if code, _, _ := w.do(http.MethodGet, "/api/cameras", ""); code != http.StatusUnauthorized {
		t.Errorf("a revoked token: %d", code)
	}
	if recs := auditActions(t, s, accounts.AuditQuery{Action: accounts.AuditTokenRevoked}); len(recs) != 1 || recs[0].User != "admin" ||
		!strings.Contains(recs[0].Detail, "1 video sessions ended") {
		t.Errorf("revoked records: %+v", recs)
	}
	if left, _ := fs.Tokens(t.Context()); len(left) != 0 {
		t.Errorf("the store still has %+v", left)
	}
}

// An admin cannot give a token more than they have, nor past the limits;
// a configured token is listed read-only.
func TestTokenCreateBounds(t *testing.T) {
	users := testUsers(t)
	users = append(users, accounts.UserConfig{Username: "tadmin", Role: accounts.RoleAdmin, Area: "t1", PasswordHash: users[0].PasswordHash})
	cfgTok, _ := configToken("from-file", accounts.RoleViewer, "t1")
	s := startAuthServerOpts(t, authOpts{users: users, tokens: []accounts.Token{cfgTok}, config: func(c *Config) { c.MaxTokens = 3 }})
	ta := mustLogin(t, s.base, "tadmin")
	op := mustLogin(t, s.base, "op1")
	for _, tc := range []struct {
		who  *operator
		body string
		code int
		in   string
	}{
		{op, `{"name":"a","role":"viewer","area":"t1"}`, 403, "only an admin"},
		{ta, `{"name":"a","role":"viewer"}`, 403, "cannot see more than you"},
		{ta, `{"name":"a","role":"viewer","area":"t2"}`, 403, "cannot see more than you"},
		{ta, `{"name":"a","role":"viewer","area":"t1","cameras":["gate"]}`, 400, "outside the token's area"},
		{ta, `{"name":"a","role":"viewer","area":"t1","cameras":["moon"]}`, 400, "unknown camera"},
		{ta, `{"name":"a","role":"viewer","area":"t9"}`, 400, "unknown area"},
		{ta, `{"name":"a b","role":"viewer","area":"t1"}`, 400, "name:"},
		{ta, `{"name":"a","role":"root","area":"t1"}`, 400, "role:"},
		{ta, `{"name":"a","role":"viewer","area":"t1","expires":"2001-01-01T00:00:00Z"}`, 400, "expires: must be in the future"},
		{ta, `{"name":"from-FILE","role":"viewer","area":"t1"}`, 409, "exists"},
		{ta, `{"name":"a","role":"viewer","area":"v1","cameras":["yard"]}`, 201, ""},
		{ta, `{"name":"b","role":"admin","area":"t1"}`, 201, ""},
		{ta, `{"name":"c","role":"viewer","area":"t1"}`, 409, "http.max_tokens"},
	} {
		code, body := tc.who.do(http.MethodPost, "/api/admin/tokens", tc.body, true)
		if code != tc.code || !strings.Contains(body, tc.in) {
			t.Errorf("%s: %d %s, want %d with %q", tc.body, code, body, tc.code, tc.in)
		}
	}
	if code, body := ta.do(http.MethodDelete, "/api/admin/tokens/from-file", "", true); code != http.StatusConflict || !strings.Contains(body, "config file") {
		t.Errorf("revoke a configured token: %d %s", code, body)
	}
	code, body := ta.do(http.MethodGet, "/api/admin/tokens", "", false)
	if code != 200 || !strings.Contains(body, `"source": "config"`) {
		t.Errorf("list: %d %s", code, body)
	}
}

// An expired token is refused, and the sweep ends what a token had open
// when it expires.
func TestTokenExpiry(t *testing.T) {
	old, oldTok := configToken("old", accounts.RoleViewer, "t1")
	old.Expires = time.Now().Add(-time.Minute)
	soon, soonTok := configToken("soon", accounts.RoleViewer, "t1")
	soon.Expires = time.Now().Add(time.Hour)
	s := startAuthServerOpts(t, authOpts{cameras: playingCameras(), tokens: []accounts.Token{old, soon}})
	if code, _, h := (&bearer{t: t, base: s.base, token: oldTok}).do(http.MethodGet, "/api/cameras", ""); code != http.StatusUnauthorized ||
		!strings.Contains(h.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("expired token: %d", code)
	}
	if recs := auditActions(t, s, accounts.AuditQuery{Action: accounts.AuditTokenRefused}); len(recs) != 1 || recs[0].User != "token:old" {
		t.Errorf("refused records: %+v", recs)
	}
	c, code, body := (&bearer{t: t, base: s.base, token: soonTok}).watch("yard")
	if code != http.StatusCreated {
		t.Fatalf("offer: %d %s", code, body)
	}
	receive(t, c, 1)
	s.sweepTokens(time.Now().Add(2 * time.Hour))
	waitFor(t, "the expired token's session to end", func() bool { return videoOf(s.Server, "token:soon") == 0 })
	if recs := auditActions(t, s, accounts.AuditQuery{Action: accounts.AuditTokenExpired}); len(recs) != 2 {
		t.Errorf("expired records: %+v", recs)
	}
}

// tokenMay lets a token through to WHEP and the readable API only, and
// bearerToken takes the scheme in any case and nothing but Bearer.
func TestTokenMayAndBearerHeader(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/whep/gate", true},
		{"DELETE", "/whep/gate/abc", true},
		{"GET", "/whep/gate/abc", true},
		{"PATCH", "/whep/gate/abc", true},
		{"GET", "/api/cameras", true},
		{"GET", "/api/cameras/gate/video.mp4", true},
		{"HEAD", "/api/cameras/gate/video.mp4", true},
		{"GET", "/api/incidents/in1/clips/c1", true},
		{"GET", "/api/stream", true},
		{"GET", "/api/me", true},
		{"PUT", "/api/me/prefs", false},
		{"GET", "/api/audit", false},
		{"GET", "/api/audit.csv", false},
		{"GET", "/api/admin/tokens", false},
		{"GET", "/api/camerasx", false},
		{"POST", "/api/incidents/in1/acknowledge", false},
		{"POST", "/api/logout", false},
		{"DELETE", "/api/admin/tokens/x", false},
	} {
		r, _ := http.NewRequest(tc.method, "http://x"+tc.path, nil)
		if got := tokenMay(r); got != tc.want {
			t.Errorf("%s %s: tokenMay = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
	for _, tc := range []struct {
		header, token string
		ok            bool
	}{
		{"Bearer swt_abc", "swt_abc", true},
		{"bearer  swt_abc ", "swt_abc", true},
		{"Basic YTpi", "", false},
		{"Bearer", "", false},
		{"", "", false},
	} {
		r, _ := http.NewRequest("GET", "http://x/api/cameras", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		if tok, ok := bearerToken(r); tok != tc.token || ok != tc.ok {
			t.Errorf("%q: %q %v, want %q %v", tc.header, tok, ok, tc.token, tc.ok)
		}
	}
}

// Two nodes sharing a token store: a token made on one works on the other
// after its sweep, and a revocation on one refuses it on the other and
// ends its event stream there.
func TestTokenSharedStoreAcrossNodes(t *testing.T) {
	fs, err := accounts.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fs.Close() })
	a := startAuthServerOpts(t, authOpts{records: fs})
	b := startAuthServerOpts(t, authOpts{records: fs, server: func(s *Server) { s.streamHeartbeat = time.Hour }})
	op := mustLogin(t, a.base, "admin")
	code, body := op.do(http.MethodPost, "/api/admin/tokens", `{"name":"wall-3","role":"viewer","area":"t1"}`, true)
	if code != http.StatusCreated {
		t.Fatalf("create on a: %d %s", code, body)
	}
	var made createdTokenJSON
	if err := json.Unmarshal([]byte(body), &made); err != nil {
		t.Fatal(err)
	}
	onB := &bearer{t: t, base: b.base, token: made.Token}
	if code, _, _ := onB.do(http.MethodGet, "/api/cameras", ""); code != http.StatusUnauthorized {
		t.Errorf("b before its sweep: %d", code)
	}
	b.sweepTokens(time.Now())
	if code, body, _ := onB.do(http.MethodGet, "/api/cameras", ""); code != http.StatusOK {
		t.Fatalf("b after its sweep: %d %s", code, body)
	}
	stream := openStreamWith(t, &http.Client{Transport: bearerTransport{made.Token}}, b.base, "")
	if ev := stream.nextAny(t); ev.name != "comment" {
		t.Fatalf("stream: first %+v", ev)
	}
	// B's uses reach the store at its sweep, and A's list at A's.
	b.sweepTokens(time.Now())
	a.sweepTokens(time.Now())
	if v := a.tokens.list(); len(v) != 1 || v[0].Uses != 2 || v[0].LastUsed.IsZero() {
		t.Errorf("a's view of the token's use on b: %+v", v)
	}
	if stored, _ := fs.Tokens(t.Context()); len(stored) != 1 || stored[0].Uses != 2 {
		t.Errorf("stored: %+v", stored)
	}
	if code, body := op.do(http.MethodDelete, "/api/admin/tokens/wall-3", "", true); code != http.StatusOK {
		t.Fatalf("revoke on a: %d %s", code, body)
	}
	b.sweepTokens(time.Now())
	stream.ended(t)
	if code, _, _ := onB.do(http.MethodGet, "/api/cameras", ""); code != http.StatusUnauthorized {
		t.Errorf("b after the revocation: %d", code)
	}
	if recs := auditActions(t, b, accounts.AuditQuery{Action: accounts.AuditTokenRevoked}); len(recs) != 2 {
		t.Errorf("revoked records (a's by the admin, b's from the store): %+v", recs)
	}
}

// BenchmarkTokenLookup is what a request with a token costs to
// authenticate: the shape check, one SHA-256 and the locked lookup among
// http.max_tokens tokens.
func BenchmarkTokenLookup(b *testing.B) {
	a := newAPITokens(DefaultMaxTokens)
	var tok string
	for i := range DefaultMaxTokens {
		t, sum := accounts.NewToken()
		if err := a.add(accounts.Token{Name: "t" + strconv.Itoa(i), Role: accounts.RoleViewer, SHA256: sum}); err != nil {
			b.Fatal(err)
		}
		tok = t
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if !accounts.LooksLikeToken(tok) {
			b.Fatal("shape")
		}
		if _, st := a.lookup(accounts.TokenSum(tok), now); st != tokenValid {
			b.Fatal("not found")
		}
	}
}
