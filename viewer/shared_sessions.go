package viewer

import (
	"context"
	"time"
)

// sharedSweep is how often a node of a cluster compares its sessions with
// the shared store (sessions ended on another node end here, with their
// event streams and video, within it) and looks for expired ones.
const sharedSweep = 5 * time.Second

// sharedFailed counts and logs a failed call to the shared store; the
// node then decides alone.
func (s *Server) sharedFailed(op string, err error) {
	s.metrics.sharedErrors.WithLabelValues(op).Inc()
	s.logger.Warn("shared store", "op", op, "err", err)
}

// syncSession makes this node's copy of the session whose cookie holds
// token agree with the shared store before the guard uses it: a session
// made on another node is taken in, one ended there (logout, an admin's
// end-sessions, expiry) is ended here, and a later use on another node
// counts against the idle timeout. When the store fails, this node's copy
// decides.
func (s *Server) syncSession(token string, now time.Time) {
	key := sessionKey(token)
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	rec, found, err := s.deps.Shared.Session(ctx, key)
	if err != nil {
		s.sharedFailed("session", err)
		return
	}
	if !found {
		if sess, ok := s.opSessions.remove(key); ok {
			s.endedElsewhere(sess)
		}
		return
	}
	if s.opSessions.seen(key, rec.LastSeen) {
		return
	}
	if u, ok := s.deps.Accounts.User(rec.Username); ok {
		// A session this node cannot take (expired, or its user changed
		// in this node's config) is answered 401 here; the node that
		// holds it, or the sweep of the store, ends it.
		s.opSessions.restore(rec, u, now)
	}
}

// endedElsewhere stops what a session ended on another node had open
// here. That node wrote the audit record and removed the stored session.
func (s *Server) endedElsewhere(sess opSession) {
	s.streams.end(sess.Key)
	s.stopSessionsOf(sess.Key)
}

// syncSessions compares this node's sessions with the shared store: one
// gone from the store was ended on another node; another node's later use
// of one counts here.
func (s *Server) syncSessions() {
	if s.deps.Shared == nil || s.deps.Records == nil {
		return
	}
	// A session made here while the store is read is not in the list.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	stored, err := s.deps.Records.Sessions(ctx)
	if err != nil {
		s.sharedFailed("sessions", err)
		return
	}
	last := make(map[string]time.Time, len(stored))
	for _, rec := range stored {
		last[rec.Key] = rec.LastSeen
	}
	for _, key := range s.opSessions.keysBefore(start) {
		seen, ok := last[key]
		if !ok {
			if sess, ok := s.opSessions.remove(key); ok {
				s.endedElsewhere(sess)
			}
			continue
		}
		s.opSessions.seen(key, seen)
	}
}
