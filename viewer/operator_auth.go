package viewer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/skywatch/skywatch/accounts"
)

// The console's session cookie.
const sessionCookie = "skywatch_session"

// maxLoginName bounds the user name of a console login: configured
// names have at most 64 characters, so a longer one is refused before it
// costs a hash check or a limiter entry.
const maxLoginName = 64

// nameTooLong counts, in the audit's summaries, the logins refused for a
// user name longer than maxLoginName.
const nameTooLong = "name_too_long"

// maxPrefsBody bounds PUT /api/me/prefs.
const maxPrefsBody = 16 << 10

// Accounts checks operators' logins (accounts.Directory).
type Accounts interface {
	// Authenticate fails with accounts.ErrBadCredentials for an unknown
	// user or a wrong password.
	Authenticate(username, password string) (accounts.User, error)
	// User is a configured user, for sessions restored after a restart
	// (a user removed from the config loses them).
	User(username string) (accounts.User, bool)
}

// Records keeps the audit log, the operators' preferences and their
// sessions across restarts (accounts.FileStore, accounts.RedisStore).
type Records interface {
	AppendAudit(ctx context.Context, r accounts.AuditRecord) error
	QueryAudit(ctx context.Context, q accounts.AuditQuery) (accounts.AuditPage, error)
	Prefs(ctx context.Context, username string) (json.RawMessage, error)
	SetPrefs(ctx context.Context, username string, prefs json.RawMessage) error
	SaveSession(ctx context.Context, s accounts.Session) error
	DeleteSession(ctx context.Context, key string) error
	Sessions(ctx context.Context) ([]accounts.Session, error)
}

// guard lets a request to the API or to WHEP through only with a live
// operator session, and a change (any method but GET, HEAD and OPTIONS)
// only with the session's CSRF token from this server's own origin; or
// with an API token (Authorization: Bearer, see guardBearer), for WHEP
// and reads only. It puts the principal in the request's context. Without
// operator accounts everyone is an anonymous admin.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		guarded := (strings.HasPrefix(path, "/api/") && path != "/api/login") || strings.HasPrefix(path, "/whep/") ||
			strings.HasPrefix(path, "/debug/")
		if !guarded || r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		if s.deps.Accounts == nil {
			p := &principal{User: accounts.User{Username: "anonymous", Role: accounts.RoleAdmin}, Addr: clientAddr(r)}
			next.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p)))
			return
		}
		if tok, ok := bearerToken(r); ok {
			s.guardBearer(w, r, next, tok)
			return
		}
		token := ""
		if c, err := r.Cookie(sessionCookie); err == nil {
			token = c.Value
		}
		if s.deps.Shared != nil && token != "" {
			s.syncSession(token, time.Now())
		}
		sess, ok, expired, stale := s.opSessions.touch(token, time.Now())
		if expired {
			s.sessionEnded(sess, "session_expired")
		}
		if !ok {
			// Programs learn that a token is what they need.
			w.Header().Set("WWW-Authenticate", `Bearer realm="skywatch"`)
			writeError(w, http.StatusUnauthorized, "not logged in")
			return
		}
		if !s.accountUnchanged(sess) {
			writeError(w, http.StatusUnauthorized, "not logged in")
			return
		}
		if stale {
			s.saveSession(sess)
		}
		csrf := csrfOf(token)
		p := &principal{User: sess.User, Key: sess.Key, CSRF: csrf, Addr: clientAddr(r)}
		if refused := changeRefused(r, csrf); refused != "" {
			s.audit(p, "csrf_refused", "", "denied", r.Method+" "+path+": "+refused)
			writeError(w, http.StatusForbidden, refused)
			return
		}
		next.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p)))
	})
}

// deny answers 403 for something outside the principal's scope or role,
// and records the attempt.
func (s *Server) deny(w http.ResponseWriter, r *http.Request, target, msg string) {
	p := principalOf(r.Context())
	// The path is the client's: as long as a request line allows.
	route := r.Method + " " + clipID(r.URL.Path)
	if p.Token == "" {
		// A token's refusals are logged with its audit records, which
		// are bounded: a polling wall must not flood the log either.
		s.logger.Warn("request denied", "user", p.User.Username, "target", target, "route", route, "reason", msg)
	}
	s.audit(p, "denied", target, "denied", route+": "+msg)
	writeError(w, http.StatusForbidden, msg)
}

// audit records what p did. A record that cannot be stored is logged as
// an error; the request goes on (refusing service because the audit disk
// is full would stop the command centre).
//
// An API token's records other than its video sessions are written at
// most once per action and http.token_audit_interval, with the count of
// those held back.
func (s *Server) audit(p *principal, action, target, outcome, detail string) {
	if p.Token != "" {
		write, held := s.tokenAuditAdmit(p, action, time.Now())
		if !write {
			return
		}
		if held > 0 {
			detail += fmt.Sprintf(" (and %d more since the last record)", held)
		}
	}
	s.auditRecord(accounts.AuditRecord{User: p.User.Username, Role: string(p.User.Role), Addr: p.Addr,
		Action: action, Target: target, Outcome: outcome, Detail: detail})
}

// auditUnauth records what a request without a session did, within the
// audit budget: past it the record is only counted, and the count is
// written as a summary when the budget's window closes.
func (s *Server) auditUnauth(rec accounts.AuditRecord) {
	write, summaries := s.auditBudget.admit(rec, time.Now())
	s.writeSummaries(summaries)
	if write {
		s.auditRecord(rec)
		return
	}
	s.metrics.auditSummarised.WithLabelValues(rec.Action).Inc()
}

// writeSummaries writes the audit budget's summaries.
func (s *Server) writeSummaries(summaries []accounts.AuditRecord) {
	for _, rec := range summaries {
		s.auditRecord(rec)
	}
}

func (s *Server) auditRecord(rec accounts.AuditRecord) {
	if rec.Time.IsZero() {
		rec.Time = time.Now().UTC()
	}
	s.logger.Info("audit", "user", rec.User, "action", rec.Action, "target", rec.Target, "outcome", rec.Outcome, "detail", rec.Detail)
	if s.deps.Records == nil {
		return
	}
	// Not the request's context: a record must be kept even when the
	// client has gone.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.deps.Records.AppendAudit(ctx, rec); err != nil {
		s.metrics.auditErrors.Inc()
		s.logger.Error("audit record not stored", "action", rec.Action, "user", rec.User, "err", err)
	}
}

// sessionEnded records the end of a login session and stops what it
// opened: its event streams and its video sessions.
func (s *Server) sessionEnded(sess opSession, action string) {
	s.streams.end(sess.Key)
	s.auditRecord(accounts.AuditRecord{User: sess.User.Username, Role: string(sess.User.Role), Addr: sess.Addr,
		Action: action, Outcome: "ok", Start: sess.Created.UTC(), End: time.Now().UTC()})
	s.forgetSessions([]opSession{sess})
	s.stopSessionsOf(sess.Key)
}

// accountUnchanged says whether sess's user is still configured with the
// password, role and area the session started with; when not, it ends
// the session. The config may differ from the one a stored session was
// restored under when several nodes share the session store.
func (s *Server) accountUnchanged(sess opSession) bool {
	u, ok := s.deps.Accounts.User(sess.User.Username)
	if ok && u.Fingerprint == sess.User.Fingerprint {
		return true
	}
	if ended, ok := s.opSessions.remove(sess.Key); ok {
		s.sessionEnded(ended, accounts.AuditSessionRevoked)
	}
	return false
}

// saveSession copies a session to the session store, so that a restart
// keeps it. A failure costs the operator a login after a restart only.
func (s *Server) saveSession(sess opSession) {
	if s.deps.Records == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.deps.Records.SaveSession(ctx, sess.record()); err != nil {
		s.logger.Warn("save session", "user", sess.User.Username, "err", err)
	}
}

// forgetSessions removes ended sessions from the session store.
func (s *Server) forgetSessions(ended []opSession) {
	if s.deps.Records == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, sess := range ended {
		if err := s.deps.Records.DeleteSession(ctx, sess.Key); err != nil {
			s.logger.Warn("forget session", "user", sess.User.Username, "err", err)
		}
	}
}

// restoreSessions takes back the sessions stored before a restart, for
// users still configured; ended ones are removed from the store.
func (s *Server) restoreSessions() {
	if s.deps.Records == nil || s.deps.Accounts == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stored, err := s.deps.Records.Sessions(ctx)
	if err != nil {
		s.logger.Warn("restore sessions: operators must log in again", "err", err)
		return
	}
	now, kept := time.Now(), 0
	for _, rec := range stored {
		u, ok := s.deps.Accounts.User(rec.Username)
		if ok && s.opSessions.restore(rec, u, now) {
			s.limits.know(strings.ToLower(u.Username), rec.Addr)
			kept++
			continue
		}
		if ok && rec.Fingerprint != u.Fingerprint {
			s.auditRecord(accounts.AuditRecord{User: u.Username, Role: string(u.Role), Addr: rec.Addr,
				Action: accounts.AuditSessionRevoked, Outcome: "ok", Start: rec.Created.UTC(), End: now.UTC(),
				Detail: "the account's password, role or area changed"})
		}
		if err := s.deps.Records.DeleteSession(ctx, rec.Key); err != nil {
			s.logger.Warn("forget session", "user", rec.Username, "err", err)
		}
	}
	if len(stored) > 0 {
		s.logger.Info("operator sessions restored", "sessions", kept, "ended", len(stored)-kept)
	}
}

// meJSON is the logged-in operator as the console needs it.
type meJSON struct {
	Username    string          `json:"username"`
	Name        string          `json:"name"`
	Role        accounts.Role   `json:"role"`
	Area        string          `json:"area"`
	AreaPath    []string        `json:"area_path"`
	CSRF        string          `json:"csrf"`
	Language    string          `json:"language"`
	TimeZone    string          `json:"time_zone"`
	Permissions permissionsJSON `json:"permissions"`
	Prefs       json.RawMessage `json:"prefs"`
	Map         mapJSON         `json:"map"`
	IdleTimeout int             `json:"idle_timeout_s"`
}

type permissionsJSON struct {
	Act   bool `json:"act"`
	Close bool `json:"close"`
	Audit bool `json:"audit"`
}

type mapJSON struct {
	TileURL string `json:"tile_url"`
}

// defaultLanguage is the console's language when neither the user's
// preferences nor the config choose one.
const defaultLanguage = "zh-CN"

func (s *Server) me(ctx context.Context, p *principal) meJSON {
	u := p.User
	j := meJSON{Username: u.Username, Name: u.Name, Role: u.Role, Area: u.Area, CSRF: p.CSRF,
		Language: u.Language, TimeZone: u.TimeZone, Prefs: json.RawMessage("{}"),
		Permissions: permissionsJSON{Act: u.Role.CanAct(), Close: u.Role.CanClose(), Audit: u.Role.CanAudit()},
		Map:         mapJSON{TileURL: *s.mapTile.Load()}, IdleTimeout: int(s.opSessions.idleOf(u).Seconds()),
		AreaPath: []string{}}
	if j.Name == "" {
		j.Name = u.Username
	}
	if p.Token != "" {
		// A token acts on nothing and reads no audit log, whatever its role.
		j.Permissions = permissionsJSON{}
	}
	if s.deps.Incidents != nil && u.Area != "" {
		if path := s.deps.Incidents.Areas().Path(u.Area); path != nil {
			j.AreaPath = path
		}
	}
	if s.deps.Records != nil {
		prefs, err := s.deps.Records.Prefs(ctx, u.Username)
		if err != nil {
			s.logger.Warn("read preferences", "user", u.Username, "err", err)
		} else if len(prefs) > 0 {
			j.Prefs = prefs
			var chosen struct {
				Language string `json:"language"`
			}
			if json.Unmarshal(prefs, &chosen) == nil && (chosen.Language == "zh-CN" || chosen.Language == "en") {
				j.Language = chosen.Language
			}
		}
	}
	if j.Language == "" {
		j.Language = defaultLanguage
	}
	return j
}

// handleLogin checks an operator's credentials, rate-limited per account
// and per address, and starts a session: an HttpOnly, SameSite=Strict
// cookie (Secure under TLS) holding a random token.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if s.deps.Accounts == nil {
		writeError(w, http.StatusServiceUnavailable, "operator accounts not configured")
		return
	}
	b, ok := readLogin(w, r)
	if !ok {
		return
	}
	addr := clientAddr(r)
	if len(b.Username) > maxLoginName {
		// Counted in the address's summary record, never written one by
		// one: the name says nothing but its length.
		s.metrics.loginsFailed.WithLabelValues("bad_name").Inc()
		s.metrics.auditSummarised.WithLabelValues(nameTooLong).Inc()
		s.writeSummaries(s.auditBudget.hold(addr, nameTooLong, time.Now()))
		writeError(w, http.StatusBadRequest, fmt.Sprintf("username: longer than %d characters", maxLoginName))
		return
	}
	key := strings.ToLower(b.Username)
	if by, retry := s.limits.allow(key, addr, time.Now()); by != limitedNone {
		secs := retrySeconds(retry)
		scope := map[limitedBy]string{limitedPair: "account", limitedAddr: "address", limitedWide: "account_new_addresses"}[by]
		s.metrics.loginsFailed.WithLabelValues("locked").Inc()
		s.auditUnauth(accounts.AuditRecord{User: b.Username, Addr: addr, Action: accounts.AuditLoginLocked,
			Outcome: "denied", Detail: "too many failed logins for this " + string(by)})
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeJSON(w, http.StatusTooManyRequests, lockedJSON{
			Error:      fmt.Sprintf("too many failed logins for this %s: try again in %d s", by, secs),
			RetryAfter: secs, Scope: scope,
		})
		return
	}
	u, err := s.deps.Accounts.Authenticate(b.Username, b.Password)
	if err != nil {
		if !errors.Is(err, accounts.ErrBadCredentials) {
			s.logger.Error("operator login", "user", b.Username, "err", err)
		}
		s.metrics.loginsFailed.WithLabelValues("wrong_password").Inc()
		s.auditUnauth(accounts.AuditRecord{User: b.Username, Addr: addr, Action: accounts.AuditLoginFailed,
			Outcome: "failed", Detail: "wrong user name or password"})
		writeError(w, http.StatusUnauthorized, "wrong user name or password")
		return
	}
	s.limits.succeeded(key, addr)
	if old, err := r.Cookie(sessionCookie); err == nil {
		if prev, ok := s.opSessions.remove(sessionKey(old.Value)); ok {
			s.forgetSessions([]opSession{prev})
		}
	}
	token, sess := s.opSessions.create(u, addr, time.Now())
	s.saveSession(sess)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r),
	})
	p := &principal{User: u, Key: sess.Key, CSRF: csrfOf(token), Addr: addr}
	s.audit(p, "login", "", "ok", "")
	writeJSON(w, http.StatusOK, s.me(r.Context(), p))
}

// lockedJSON is the answer to a login refused by the rate limit.
type lockedJSON struct {
	Error      string `json:"error"`
	RetryAfter int    `json:"retry_after_s"`
	// Scope is which limit refused it: "account" (this account from this
	// address), "address" (this address, any account) or
	// "account_new_addresses" (this account from addresses that have not
	// logged in to it).
	Scope string `json:"scope"`
}

// handleLogout ends the session and its video.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r.Context())
	if sess, ok := s.opSessions.remove(p.Key); ok {
		s.sessionEnded(sess, "logout")
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r)})
	w.WriteHeader(http.StatusNoContent)
}

// handleMe shows the logged-in operator, the CSRF token (the page cannot
// read the HttpOnly cookie) and the operator's saved preferences.
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.me(r.Context(), principalOf(r.Context())))
}

// handlePutPrefs keeps the page's preferences (layout, language, ...) for
// the operator: any JSON object of at most 16 KB.
func (s *Server) handlePutPrefs(w http.ResponseWriter, r *http.Request) {
	if s.deps.Records == nil {
		writeError(w, http.StatusServiceUnavailable, "preferences are not kept on this server")
		return
	}
	var obj map[string]json.RawMessage
	if code, err := decodeJSONBody(w, r, maxPrefsBody, false, &obj); err != nil {
		writeError(w, code, err.Error())
		return
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		writeError(w, http.StatusBadRequest, "preferences: "+err.Error())
		return
	}
	p := principalOf(r.Context())
	if err := s.deps.Records.SetPrefs(r.Context(), p.User.Username, raw); err != nil {
		s.logger.Warn("save preferences", "user", p.User.Username, "err", err)
		writeError(w, http.StatusServiceUnavailable, "preferences could not be saved")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
