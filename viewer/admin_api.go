package viewer

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/skywatch/skywatch/accounts"
)

// adminRoutes registers what admins do to other users' logins: list the
// live sessions and end all of a user's, list and lift login lockouts.
func (s *Server) adminRoutes(mux *http.ServeMux) {
	accts := s.deps.Accounts != nil
	mux.HandleFunc("GET /api/admin/sessions", needDep(accts, "operator accounts", s.handleAdminSessions))
	mux.HandleFunc("POST /api/admin/users/{user}/end-sessions", needDep(accts, "operator accounts", s.handleEndSessions))
	mux.HandleFunc("GET /api/admin/lockouts", needDep(accts, "operator accounts", s.handleLockouts))
	mux.HandleFunc("POST /api/admin/unlock", needDep(accts, "operator accounts", s.handleUnlock))
}

// mayManage lets admins through and refuses (403, audited) anyone else.
func (s *Server) mayManage(w http.ResponseWriter, r *http.Request) bool {
	if !principalOf(r.Context()).User.Role.CanManageSessions() {
		s.deny(w, r, "accounts", "only an admin may manage other users' logins")
		return false
	}
	return true
}

// adminSessionJSON is a live login session as an admin sees it: never its
// key or token.
type adminSessionJSON struct {
	User          string        `json:"user"`
	Role          accounts.Role `json:"role"`
	Addr          string        `json:"addr"`
	Created       time.Time     `json:"created"`
	LastSeen      time.Time     `json:"last_seen"`
	VideoSessions int           `json:"video_sessions"`
}

func (s *Server) handleAdminSessions(w http.ResponseWriter, r *http.Request) {
	if !s.mayManage(w, r) {
		return
	}
	live := s.opSessions.list(time.Now())
	if s.deps.Shared != nil {
		live = s.clusterSessions(r.Context(), live)
	}
	videos := s.videoSessionsByLogin()
	out := make([]adminSessionJSON, 0, len(live))
	for _, se := range live {
		out = append(out, adminSessionJSON{User: se.User.Username, Role: se.User.Role, Addr: se.Addr,
			Created: se.Created.UTC(), LastSeen: se.LastSeen.UTC(), VideoSessions: videos[se.Key]})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

// clusterSessions are the live sessions of every node, from the shared
// store, with this node's fresher copies; when the store fails, local.
func (s *Server) clusterSessions(ctx context.Context, local []opSession) []opSession {
	ctx, cancel := context.WithTimeout(ctx, sharedTimeout)
	defer cancel()
	stored, err := s.deps.Records.Sessions(ctx)
	if err != nil {
		s.sharedFailed("sessions", err)
		return local
	}
	mine := make(map[string]opSession, len(local))
	for _, se := range local {
		mine[se.Key] = se
	}
	now := time.Now()
	out := make([]opSession, 0, len(stored))
	for _, rec := range stored {
		if se, ok := mine[rec.Key]; ok {
			out = append(out, se)
			continue
		}
		u, ok := s.deps.Accounts.User(rec.Username)
		if !ok {
			continue
		}
		se := &opSession{Key: rec.Key, User: u, Addr: rec.Addr, Created: rec.Created, LastSeen: rec.LastSeen,
			Idle: s.opSessions.idleOf(u)}
		if !s.opSessions.expired(se, now) {
			out = append(out, *se)
		}
	}
	slices.SortFunc(out, func(a, b opSession) int { return a.Created.Compare(b.Created) })
	return out
}

// handleEndSessions ends every session of a user: the live ones here with
// their video and event streams, and any the session store still holds
// (so that a restart does not bring them back).
func (s *Server) handleEndSessions(w http.ResponseWriter, r *http.Request) {
	if !s.mayManage(w, r) {
		return
	}
	p := principalOf(r.Context())
	name := r.PathValue("user")
	u, ok := s.deps.Accounts.User(name)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no user %q", cut(name, maxLoginName)))
		return
	}
	ended := s.opSessions.removeUser(u.Username)
	for _, se := range ended {
		s.sessionEnded(se, accounts.AuditSessionRevoked)
	}
	n := len(ended) + s.forgetStoredSessionsOf(u.Username)
	s.audit(p, accounts.AuditSessionsEnded, "user:"+u.Username, "ok", fmt.Sprintf("%d sessions", n))
	writeJSON(w, http.StatusOK, map[string]int{"ended": n})
}

// forgetStoredSessionsOf removes the sessions of username that the store
// still holds and returns how many there were.
func (s *Server) forgetStoredSessionsOf(username string) int {
	if s.deps.Records == nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stored, err := s.deps.Records.Sessions(ctx)
	if err != nil {
		s.logger.Warn("end sessions: read the session store", "user", username, "err", err)
		return 0
	}
	n := 0
	for _, rec := range stored {
		if !strings.EqualFold(rec.Username, username) {
			continue
		}
		if err := s.deps.Records.DeleteSession(ctx, rec.Key); err != nil {
			s.logger.Warn("end sessions: forget session", "user", username, "err", err)
			continue
		}
		n++
	}
	return n
}

// videoSessionsByLogin counts the open video sessions of each login
// session key.
func (s *Server) videoSessionsByLogin() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, se := range s.sessions {
		out[se.owner.Key]++
	}
	return out
}

// cut shortens text that came from a client before it is echoed.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

func (s *Server) handleLockouts(w http.ResponseWriter, r *http.Request) {
	if !s.mayManage(w, r) {
		return
	}
	list := s.limits.lockouts(time.Now())
	if list == nil {
		list = []lockout{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"lockouts": list})
}

// unlockBody names what to unlock: a user, an address, or both (the user
// from that address).
type unlockBody struct {
	User string `json:"user"`
	Addr string `json:"addr"`
}

// maxUnlockBody bounds POST /api/admin/unlock.
const maxUnlockBody = 1 << 10

// handleUnlock lifts login lockouts, audited: of a user from an address,
// of a user from everywhere, or of an address for every user.
func (s *Server) handleUnlock(w http.ResponseWriter, r *http.Request) {
	if !s.mayManage(w, r) {
		return
	}
	var b unlockBody
	if code, err := decodeJSONBody(w, r, maxUnlockBody, false, &b); err != nil {
		writeError(w, code, err.Error())
		return
	}
	if b.User == "" && b.Addr == "" {
		writeError(w, http.StatusBadRequest, "user or addr: give one or both")
		return
	}
	if len(b.User) > maxLoginName || len(b.Addr) > maxLoginName {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("user and addr: at most %d characters", maxLoginName))
		return
	}
	n := s.limits.unlock(strings.ToLower(b.User), b.Addr)
	target, detail := "", fmt.Sprintf("%d limits lifted", n)
	if b.User != "" {
		target = "user:" + b.User
	}
	if b.Addr != "" {
		detail = "address " + b.Addr + ": " + detail
	}
	s.audit(principalOf(r.Context()), accounts.AuditLoginUnlocked, target, "ok", detail)
	writeJSON(w, http.StatusOK, map[string]int{"lifted": n})
}
