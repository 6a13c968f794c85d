package viewer

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skywatch/skywatch/accounts"
)

// reloadUsers are testUsers as a reload changes them: op1's role changed,
// view1 removed, sup renamed (same hash, role and area), the others as
// they were.
func reloadUsers(users []accounts.UserConfig) []accounts.UserConfig {
	var out []accounts.UserConfig
	for _, u := range users {
		switch u.Username {
		case "op1":
			u.Role = accounts.RoleSupervisor
		case "view1":
			continue
		case "sup":
			u.Name = "County supervisor"
		}
		out = append(out, u)
	}
	return out
}

func mustDirectory(t *testing.T, users []accounts.UserConfig) *accounts.Directory {
	t.Helper()
	d, err := accounts.NewDirectory(users)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// testPlaces are startAuthServerOpts's camera places.
var testPlaces = []CameraPlace{{ID: "yard", Area: "v1"}, {ID: "gate", Area: "t2"}}

// A reload that changes users ends the sessions (login, event streams,
// video, stored copies) of those whose role changed or who were removed,
// and only theirs: a user whose name alone changed keeps the session and
// sees the new name at once.
func TestApplyEndsSessionsOfChangedUsersOnly(t *testing.T) {
	users := testUsers(t)
	s := startAuthServerOpts(t, authOpts{users: users, cameras: playingCameras(), server: func(s *Server) { s.streamHeartbeat = time.Hour }})
	op1, view1 := mustLogin(t, s.base, "op1"), mustLogin(t, s.base, "view1")
	sup, night := mustLogin(t, s.base, "sup"), mustLogin(t, s.base, "night")
	op1Stream, supStream := streamOf(t, op1), streamOf(t, sup)
	for _, o := range []*operator{op1, sup} {
		c, code, body := o.watch("yard")
		if code != http.StatusCreated {
			t.Fatalf("offer: %d %s", code, body)
		}
		receive(t, c, 1)
	}

	res, err := s.Apply(Live{Accounts: mustDirectory(t, reloadUsers(users)), CameraPlaces: testPlaces})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Users, []string{"op1", "view1"}) || res.Sessions != 2 {
		t.Errorf("result %+v, want op1 and view1 logged out, 2 sessions", res)
	}
	op1Stream.ended(t)
	waitFor(t, "op1's video to end", func() bool { return videoOf(s.Server, "op1") == 0 })
	for _, o := range []*operator{op1, view1} {
		if code, body := o.do(http.MethodGet, "/api/me", "", false); code != http.StatusUnauthorized {
			t.Errorf("a changed user's session: %d %s", code, body)
		}
	}
	code, body := sup.do(http.MethodGet, "/api/me", "", false)
	if code != http.StatusOK || !strings.Contains(body, `"name": "County supervisor"`) {
		t.Errorf("sup after the reload: %d %s", code, body)
	}
	if code, _ := night.do(http.MethodGet, "/api/me", "", false); code != http.StatusOK {
		t.Errorf("an unchanged user's session: %d", code)
	}
	if n := videoOf(s.Server, "sup"); n != 1 {
		t.Errorf("sup's video sessions: %d, want 1", n)
	}
	select {
	case ev, ok := <-supStream.events:
		if !ok {
			t.Error("sup's event stream ended")
		}
		_ = ev
	default:
	}
	stored, err := s.records.Sessions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, st := range stored {
		kept = append(kept, st.Username)
	}
	slices.Sort(kept)
	if !slices.Equal(kept, []string{"night", "sup"}) {
		t.Errorf("stored sessions of %v, want night and sup", kept)
	}
	revoked := auditActions(t, s, accounts.AuditQuery{Action: accounts.AuditSessionRevoked})
	if len(revoked) != 2 {
		t.Errorf("session_revoked records: %+v", revoked)
	}
	// The new role is in force: op1 logs in again as a supervisor.
	o := newOperator(t, s.base)
	if code, body := o.login("op1", testPassword); code != http.StatusOK || !strings.Contains(body, `"role": "supervisor"`) {
		t.Errorf("op1 logs in again: %d %s", code, body)
	}
	if code, _ := newOperator(t, s.base).login("view1", testPassword); code != http.StatusUnauthorized {
		t.Errorf("a removed user logs in: %d", code)
	}
}

// Configured tokens removed or changed stop at once, with their video; an
// unchanged one goes on; a new one works.
func TestApplyReplacesConfiguredTokens(t *testing.T) {
	keep, keepTok := configToken("wall-keep", accounts.RoleViewer, "")
	gone, goneTok := configToken("wall-gone", accounts.RoleViewer, "")
	narrowed, narrowedTok := configToken("wall-narrowed", accounts.RoleViewer, "")
	users := testUsers(t)
	s := startAuthServerOpts(t, authOpts{users: users, cameras: playingCameras(), tokens: []accounts.Token{keep, gone, narrowed}})
	b := func(tok string) *bearer { return &bearer{t: t, base: s.base, token: tok} }
	for _, tok := range []string{keepTok, goneTok, narrowedTok} {
		c, code, body := b(tok).watch("yard")
		if code != http.StatusCreated {
			t.Fatalf("offer: %d %s", code, body)
		}
		receive(t, c, 1)
	}
	added, addedTok := configToken("wall-new", accounts.RoleViewer, "t2")
	narrowed2 := narrowed
	narrowed2.Area = "t2"
	res, err := s.Apply(Live{Accounts: mustDirectory(t, users), CameraPlaces: testPlaces,
		Tokens: []accounts.Token{keep, narrowed2, added}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Tokens, []string{"wall-gone", "wall-narrowed"}) || res.VideoSessions != 2 {
		t.Errorf("result %+v, want wall-gone and wall-narrowed ended with 2 video sessions", res)
	}
	waitFor(t, "the ended tokens' video to end", func() bool {
		return videoOf(s.Server, "token:wall-gone")+videoOf(s.Server, "token:wall-narrowed") == 0
	})
	if n := videoOf(s.Server, "token:wall-keep"); n != 1 {
		t.Errorf("the kept token's video sessions: %d", n)
	}
	if code, _, _ := b(goneTok).do(http.MethodGet, "/api/cameras", ""); code != http.StatusUnauthorized {
		t.Errorf("a removed token: %d", code)
	}
	for tok, want := range map[string]string{keepTok: "yard", narrowedTok: "gate", addedTok: "gate"} {
		code, body, _ := b(tok).do(http.MethodGet, "/api/cameras", "")
		if code != http.StatusOK || !strings.Contains(body, `"id": "`+want+`"`) {
			t.Errorf("token's cameras: %d %s, want %s", code, body, want)
		}
	}
	if code, body, _ := b(narrowedTok).do(http.MethodGet, "/api/cameras", ""); strings.Contains(body, `"yard"`) {
		t.Errorf("a narrowed token still sees yard: %d %s", code, body)
	}
	if recs := auditActions(t, s, accounts.AuditQuery{Action: accounts.AuditTokenRevoked}); len(recs) != 2 {
		t.Errorf("token_revoked records: %+v", recs)
	}
}

// Camera places and the map's tile server change at once: the scope
// checks and the camera list follow the new area, a video session whose
// camera left its viewer's area ends, and the page's CSP and /api/me
// name the new tile server.
func TestApplyCameraPlacesAndMap(t *testing.T) {
	users := testUsers(t)
	s := startAuthServerOpts(t, authOpts{users: users, cameras: playingCameras()})
	op := mustLogin(t, s.base, "op1") // area t1
	c, code, body := op.watch("yard")
	if code != http.StatusCreated {
		t.Fatalf("offer: %d %s", code, body)
	}
	receive(t, c, 1)
	if code, _ := op.do(http.MethodGet, "/api/cameras/gate", "", false); code != http.StatusForbidden {
		t.Fatalf("gate before: %d", code)
	}
	res, err := s.Apply(Live{Accounts: mustDirectory(t, users), MapTileURL: "https://tiles.county.example/{z}/{x}/{y}.png",
		CameraPlaces: []CameraPlace{{ID: "yard", Area: "t2"}, {ID: "gate", Area: "v1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.VideoSessions != 1 || res.Sessions != 0 {
		t.Errorf("result %+v, want one video session ended and no login", res)
	}
	waitFor(t, "the video of a camera moved out of scope to end", func() bool { return videoOf(s.Server, "op1") == 0 })
	if code, _ := op.do(http.MethodGet, "/api/cameras/gate", "", false); code != http.StatusOK {
		t.Errorf("gate after it moved into op1's area: %d", code)
	}
	code, body = op.do(http.MethodGet, "/api/cameras", "", false)
	if code != http.StatusOK || strings.Contains(body, `"yard"`) || !strings.Contains(body, `"area": "v1"`) {
		t.Errorf("cameras after the reload: %d %s", code, body)
	}
	if code, body := op.do(http.MethodGet, "/api/me", "", false); code != http.StatusOK ||
		!strings.Contains(body, "tiles.county.example") {
		t.Errorf("me: %d %s", code, body)
	}
	resp, err := http.Get(s.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data: https://tiles.county.example;") {
		t.Errorf("CSP: %s", csp)
	}
}

// A reload ends the patrol page's sessions of units it changed, made
// before it, and no others.
func TestPatrolRevocations(t *testing.T) {
	now := time.Now()
	p := newPatrolRevocations(patrolSessionTTL)
	before := patrolSession{Unit: "u1", Expires: now.Add(patrolSessionTTL - time.Minute)}
	other := patrolSession{Unit: "u2", Expires: before.Expires}
	p.revoke([]string{"u1"}, now)
	after := patrolSession{Unit: "u1", Expires: now.Add(patrolSessionTTL + time.Second)}
	if !p.ended(before) || p.ended(other) || p.ended(after) {
		t.Errorf("ended: before %v, other unit %v, made after %v; want true, false, false",
			p.ended(before), p.ended(other), p.ended(after))
	}
	// Revocations older than any session are forgotten.
	p.revoke(nil, now.Add(patrolSessionTTL+time.Minute))
	if len(p.at) != 0 {
		t.Errorf("revocations kept: %v", p.at)
	}
}

// fakeReloader answers with the next result and counts its calls.
type fakeReloader struct {
	mu    sync.Mutex
	next  ReloadResult
	calls int
}

func (f *fakeReloader) Reload(context.Context) ReloadResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.next
}

// POST /api/admin/reload: admins only (others 403, audited), with the
// CSRF token; 200, 422 or 500 by the result, each audited with it.
func TestReloadEndpoint(t *testing.T) {
	f := &fakeReloader{}
	s := startAuthServerOpts(t, authOpts{reloader: f})
	sup, admin := mustLogin(t, s.base, "sup"), mustLogin(t, s.base, "admin")
	if code, _ := sup.do(http.MethodPost, "/api/admin/reload", "", true); code != http.StatusForbidden {
		t.Errorf("supervisor: %d", code)
	}
	if code, _ := admin.do(http.MethodPost, "/api/admin/reload", "", false); code != http.StatusForbidden {
		t.Errorf("without the CSRF token: %d", code)
	}
	if f.calls != 0 {
		t.Fatalf("refused requests reloaded %d times", f.calls)
	}
	for _, tc := range []struct {
		res  ReloadResult
		code int
	}{
		{ReloadResult{Result: ReloadApplied, Applied: true, Changes: map[string]any{"cameras": map[string]any{"added": []string{"d"}}},
			NeedsRestart: []string{"http.address"}, Summary: "cameras +1"}, http.StatusOK},
		{ReloadResult{Result: ReloadInvalid, Errors: []string{"cameras[2].url: scheme must be rtsp or rtsps"},
			Summary: "not valid"}, http.StatusUnprocessableEntity},
		{ReloadResult{Result: ReloadFailed, Errors: []string{"alarm devices: boom"}}, http.StatusInternalServerError},
	} {
		f.mu.Lock()
		f.next = tc.res
		f.mu.Unlock()
		code, body := admin.do(http.MethodPost, "/api/admin/reload", "", true)
		var got ReloadResult
		if err := json.Unmarshal([]byte(body), &got); err != nil || code != tc.code || got.Result != tc.res.Result ||
			!slices.Equal(got.Errors, append([]string{}, tc.res.Errors...)) || got.NeedsRestart == nil {
			t.Errorf("%s: %d %s, want %d", tc.res.Result, code, body, tc.code)
		}
	}
	recs := auditActions(t, s, accounts.AuditQuery{Action: accounts.AuditConfigReload})
	var outcomes []string
	for _, r := range recs {
		if r.User != "admin" {
			t.Errorf("reload record of %q", r.User)
		}
		outcomes = append(outcomes, r.Outcome)
	}
	slices.Sort(outcomes)
	if !slices.Equal(outcomes, []string{ReloadApplied, ReloadFailed, ReloadInvalid}) {
		t.Errorf("config_reload records: %+v", recs)
	}
	for _, r := range recs {
		if r.Outcome == ReloadApplied && r.Detail != "cameras +1; needs restart: http.address" {
			t.Errorf("applied record's detail: %q", r.Detail)
		}
		if r.Outcome == ReloadInvalid && !strings.Contains(r.Detail, "cameras[2].url: scheme must be rtsp or rtsps") {
			t.Errorf("invalid record's detail: %q", r.Detail)
		}
	}
	if recs := auditActions(t, s, accounts.AuditQuery{User: "sup", Action: accounts.AuditDenied}); len(recs) != 1 ||
		!strings.Contains(recs[0].Detail, "/api/admin/reload") {
		t.Errorf("the supervisor's refusal: %+v", recs)
	}

	// Without a config file (the demo) the route answers 503.
	demo := startAuthServer(t, nil)
	if code, body := mustLogin(t, demo.base, "admin").do(http.MethodPost, "/api/admin/reload", "", true); code != http.StatusServiceUnavailable {
		t.Errorf("without a reloader: %d %s", code, body)
	}
}

// The console's reload button and its answers have their strings in
// Chinese and in English.
func TestPageReloadStrings(t *testing.T) {
	have := pageStrings(t)
	for _, key := range []string{"reload.button", "reload.confirm", "reload.applied", "reload.invalid", "reload.failed",
		"reload.restart", "reload.node", "reload.noFile"} {
		for _, lang := range []string{"zh-CN", "en"} {
			if !have[lang][key] {
				t.Errorf("the page has no %s string %q", lang, key)
			}
		}
	}
}

// In a cluster each node reloads its own file; the node that reloads
// first ends the changed users' sessions in the shared store, so that the
// other nodes end them too at their next request, before their own
// reload, and an unchanged user's session goes on everywhere.
func TestApplyEndsChangedUsersOnEveryNode(t *testing.T) {
	cfg := testRedis(t)
	users := testUsers(t)
	var nodes []*authServer
	for range 2 {
		st, err := accounts.OpenRedisStore(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		nodes = append(nodes, startAuthServerOpts(t, authOpts{records: st, shared: st, users: users}))
	}
	a, b := nodes[0], nodes[1]
	op, sup := mustLogin(t, a.base, "op1"), mustLogin(t, a.base, "sup")
	res, err := b.Apply(Live{Accounts: mustDirectory(t, reloadUsers(users)), CameraPlaces: testPlaces})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Users, []string{"op1"}) || res.Sessions != 1 {
		t.Errorf("node B's result %+v, want op1's one stored session ended", res)
	}
	if code, body := op.do(http.MethodGet, "/api/me", "", false); code != http.StatusUnauthorized {
		t.Errorf("op1 on node A, which has not reloaded: %d %s", code, body)
	}
	for _, n := range nodes {
		if code, body := on(sup, n).do(http.MethodGet, "/api/me", "", false); code != http.StatusOK {
			t.Errorf("sup on %s: %d %s", n.base, code, body)
		}
	}
}
