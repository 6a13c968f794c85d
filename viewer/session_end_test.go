package viewer

import (
	"net/http"
	"testing"
	"time"
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
