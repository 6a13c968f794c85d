package viewer

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/internal/testredis"
)

// streamOf opens the event stream as o: a client with o's cookies and no
// overall timeout, which would cut the stream.
func streamOf(t *testing.T, o *operator) *sseClient {
	t.Helper()
	c := openStreamWith(t, &http.Client{Jar: o.c.Jar}, o.base, "")
	if ev := c.nextAny(t); ev.name != "comment" || ev.data != "connected" {
		t.Fatalf("first %+v, want the connected comment", ev)
	}
	return c
}

// A logout ends the session's open event streams at once; the heartbeat
// that used to notice is an hour away here, so only the logout can end
// them. Another operator's stream goes on.
func TestLogoutEndsEventStreams(t *testing.T) {
	s := startAuthServerOpts(t, authOpts{server: func(s *Server) { s.streamHeartbeat = time.Hour }})
	op := mustLogin(t, s.base, "op1")
	other := mustLogin(t, s.base, "sup")
	mine, theirs := streamOf(t, op), streamOf(t, other)
	if code, body := op.do(http.MethodPost, "/api/logout", "", true); code != http.StatusNoContent {
		t.Fatalf("logout: %d %s", code, body)
	}
	mine.ended(t)
	select {
	case ev, ok := <-theirs.events:
		t.Fatalf("another operator's stream changed: %+v %v", ev, ok)
	default:
	}
	// A stream opened with the old cookie is refused.
	if code, _ := op.do(http.MethodGet, "/api/stream", "", false); code != http.StatusUnauthorized {
		t.Errorf("stream after logout: %d", code)
	}
}

// An expired session's streams end when the sweep finds it.
func TestExpiryEndsEventStreams(t *testing.T) {
	s := startAuthServerOpts(t, authOpts{server: func(s *Server) { s.streamHeartbeat = time.Hour }})
	op := mustLogin(t, s.base, "op1")
	c := streamOf(t, op)
	s.opSessions.mu.Lock()
	for _, p := range s.opSessions.byKey {
		p.LastSeen = p.LastSeen.Add(-s.cfg.SessionIdle - time.Second)
	}
	s.opSessions.mu.Unlock()
	for _, sess := range s.opSessions.sweep(time.Now()) {
		s.sessionEnded(sess, "session_expired")
	}
	c.ended(t)
}

// testRedis is the Redis of the tests, as the stores' tests find it:
// $SKYWATCH_TEST_REDIS (a URL or host:port), by default 127.0.0.1:6379.
// When it does not answer, the test is skipped, or fails under CI=true.
func testRedis(t *testing.T) accounts.RedisConfig {
	t.Helper()
	u := os.Getenv("SKYWATCH_TEST_REDIS")
	if u == "" {
		u = "127.0.0.1:6379"
	}
	if !strings.Contains(u, "://") {
		u = "redis://" + u
	}
	cfg := accounts.RedisConfig{URL: u}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := accounts.OpenRedisStore(ctx, cfg)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Redis at %s (SKYWATCH_TEST_REDIS): %v", u, err)
		}
		t.Skipf("no Redis at %s (set SKYWATCH_TEST_REDIS): %v", u, err)
	}
	_ = st.Close()
	cfg.KeyPrefix = testredis.Prefix(t, u, "skywatch-test:")
	return cfg
}

// sessionStores gives, for each kind of store, a function that makes
// fresh storage and returns its opener: each call opens that storage
// again, as a restart does.
func sessionStores() map[string]func(t *testing.T) func() Records {
	return map[string]func(t *testing.T) func() Records{
		"file": func(t *testing.T) func() Records {
			dir := t.TempDir()
			return func() Records {
				st, err := accounts.OpenFileStore(dir)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = st.Close() })
				return st
			}
		},
		"redis": func(t *testing.T) func() Records {
			cfg := testRedis(t)
			return func() Records {
				st, err := accounts.OpenRedisStore(t.Context(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = st.Close() })
				return st
			}
		},
	}
}

// A restart whose config changed a user's password hash, role or area
// ends that user's stored sessions (audited); another user's session,
// unchanged, survives. With the file store and with Redis.
func TestRestartEndsSessionsOfChangedAccounts(t *testing.T) {
	for storeName, fresh := range sessionStores() {
		for change, mod := range map[string]func(u *accounts.UserConfig, t *testing.T){
			"hash": func(u *accounts.UserConfig, t *testing.T) {
				h, err := bcrypt.GenerateFromPassword([]byte("new password"), bcrypt.MinCost)
				if err != nil {
					t.Fatal(err)
				}
				u.PasswordHash = string(h)
			},
			"role": func(u *accounts.UserConfig, _ *testing.T) { u.Role = accounts.RoleViewer },
			"area": func(u *accounts.UserConfig, _ *testing.T) { u.Area = "v1" },
			"none": func(*accounts.UserConfig, *testing.T) {},
		} {
			t.Run(storeName+"/"+change, func(t *testing.T) {
				open := fresh(t)
				users := testUsers(t)
				s1 := startAuthServerOpts(t, authOpts{records: open(), users: users})
				op, sup := mustLogin(t, s1.base, "op1"), mustLogin(t, s1.base, "sup")
				if err := s1.Close(); err != nil {
					t.Fatal(err)
				}
				mod(&users[1], t) // op1
				records := open()
				s2 := startAuthServerOpts(t, authOpts{records: records, users: users})
				op.base, sup.base = s2.base, s2.base
				want := http.StatusUnauthorized
				if change == "none" {
					want = http.StatusOK
				}
				if code, body := op.do(http.MethodGet, "/api/me", "", false); code != want {
					t.Errorf("op1 after the restart: %d %s, want %d", code, body, want)
				}
				if code, body := sup.do(http.MethodGet, "/api/me", "", false); code != http.StatusOK {
					t.Errorf("sup, unchanged, after the restart: %d %s", code, body)
				}
				recs := auditActions(t, s2, accounts.AuditQuery{User: "op1", Action: accounts.AuditSessionRevoked})
				if (change == "none") != (len(recs) == 0) {
					t.Errorf("session_revoked records: %+v", recs)
				}
				stored, err := records.Sessions(t.Context())
				if err != nil || len(stored) != 1+btoi(change == "none") {
					t.Errorf("stored sessions: %+v %v", stored, err)
				}
			})
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// An admin ends all of a user's sessions: their requests, event streams
// and video end at once, the session store forgets them, and the action
// is audited. Nobody else may.
func TestAdminEndsUserSessions(t *testing.T) {
	s := startAuthServerOpts(t, authOpts{cameras: playingCameras(), server: func(s *Server) { s.streamHeartbeat = time.Hour }})
	a, b := mustLogin(t, s.base, "op1"), mustLogin(t, s.base, "op1")
	other := mustLogin(t, s.base, "sup")
	c, code, body := a.watch("yard")
	if code != http.StatusCreated {
		t.Fatalf("offer: %d %s", code, body)
	}
	receive(t, c, 1)
	stream := streamOf(t, b)

	if code, _ := other.do(http.MethodPost, "/api/admin/users/op1/end-sessions", "", true); code != http.StatusForbidden {
		t.Errorf("supervisor ends sessions: %d", code)
	}
	admin := mustLogin(t, s.base, "admin")
	code, body = admin.do(http.MethodGet, "/api/admin/sessions", "", false)
	if code != http.StatusOK || strings.Count(body, `"user": "op1"`) != 2 || !strings.Contains(body, `"video_sessions": 1`) {
		t.Fatalf("sessions: %d %s", code, body)
	}
	if code, _ := admin.do(http.MethodPost, "/api/admin/users/nobody/end-sessions", "", true); code != http.StatusNotFound {
		t.Errorf("unknown user: %d", code)
	}
	if code, body := admin.do(http.MethodPost, "/api/admin/users/OP1/end-sessions", "", true); code != http.StatusOK || !strings.Contains(body, `"ended": 2`) {
		t.Fatalf("end sessions: %d %s", code, body)
	}
	stream.ended(t)
	waitFor(t, "op1's video to end", func() bool { return videoOf(s.Server, "op1") == 0 })
	for _, o := range []*operator{a, b} {
		if code, _ := o.do(http.MethodGet, "/api/me", "", false); code != http.StatusUnauthorized {
			t.Errorf("an ended session: %d", code)
		}
	}
	if code, _ := other.do(http.MethodGet, "/api/me", "", false); code != http.StatusOK {
		t.Errorf("another user's session: %d", code)
	}
	stored, err := s.records.Sessions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stored {
		if st.Username == "op1" {
			t.Errorf("the store keeps an ended session: %+v", st)
		}
	}
	recs := auditActions(t, s, accounts.AuditQuery{Action: accounts.AuditSessionsEnded})
	if len(recs) != 1 || recs[0].User != "admin" || recs[0].Target != "user:op1" || recs[0].Detail != "2 sessions" {
		t.Errorf("sessions_ended records: %+v", recs)
	}
	if recs := auditActions(t, s, accounts.AuditQuery{User: "op1", Action: accounts.AuditSessionRevoked}); len(recs) != 2 {
		t.Errorf("session_revoked records: %+v", recs)
	}
}

// A live session whose user's fingerprint no longer matches the config
// (one restored by a node that ran another config, on a shared store) is
// ended at its next request, with its event streams.
func TestSessionOfChangedAccountEndsAtUse(t *testing.T) {
	s := startAuthServerOpts(t, authOpts{server: func(s *Server) { s.streamHeartbeat = time.Hour }})
	op := mustLogin(t, s.base, "op1")
	stream := streamOf(t, op)
	s.opSessions.mu.Lock()
	for _, p := range s.opSessions.byKey {
		p.User.Fingerprint = "of another config"
	}
	s.opSessions.mu.Unlock()
	if code, body := op.do(http.MethodGet, "/api/me", "", false); code != http.StatusUnauthorized {
		t.Fatalf("a session of a changed account: %d %s", code, body)
	}
	stream.ended(t)
	if recs := auditActions(t, s, accounts.AuditQuery{User: "op1", Action: accounts.AuditSessionRevoked}); len(recs) != 1 {
		t.Errorf("session_revoked records: %+v", recs)
	}
	if stored, err := s.records.Sessions(t.Context()); err != nil || len(stored) != 0 {
		t.Errorf("stored sessions: %+v %v", stored, err)
	}
}
