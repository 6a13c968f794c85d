package viewer

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/skywatch/skywatch/accounts"
)

// bearerToken returns the token of an "Authorization: Bearer" header
// (RFC 6750; the scheme's case does not matter). Other schemes are not a
// token: such a request is judged by its cookie, as before.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// tokenReadable lists the API a token may read (GET and HEAD only): the
// cameras, recordings and clips, events, devices, incidents, units and
// areas, the alarm status, the event stream and who it is. Never the
// admin pages or the audit log, whatever the token's role: a stolen
// token must not show who watched what.
var tokenReadable = []string{
	"/api/cameras", "/api/events", "/api/devices", "/api/rejected", "/api/alarms/status", "/api/stream",
	"/api/incidents", "/api/units", "/api/areas", "/api/me",
}

// tokenMay says whether a token may make the request: WHEP (an offer, the
// state or the end of its session; OPTIONS never reaches the guard) and
// reads of the API in tokenReadable.
func tokenMay(r *http.Request) bool {
	path := r.URL.Path
	if strings.HasPrefix(path, "/whep/") {
		return r.Method == http.MethodPost || r.Method == http.MethodGet || r.Method == http.MethodDelete ||
			r.Method == http.MethodPatch
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, p := range tokenReadable {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// refusedChange is the answer to a token's request for a change: a change
// needs a person.
const refusedChange = "an API token may only watch video (WHEP) and read the API: this request needs a person logged in to the console"

// guardBearer admits a request that carries an API token. Bearer wins over
// a cookie: a request with both is judged by its token alone, with no CSRF
// check (a page of another site cannot set the header). A wrong, unknown,
// expired or revoked token is answered 401 with WWW-Authenticate, counted
// against the address in the login limiter and audited within the budget
// of requests without a session; past the limiter's bound the answer is
// 429 with Retry-After. A valid token is never refused by the limiter: it
// cannot be guessed, and a decoder whose neighbour behind the same address
// kept a revoked token must go on playing.
func (s *Server) guardBearer(w http.ResponseWriter, r *http.Request, next http.Handler, tok string) {
	now := time.Now()
	addr := clientAddr(r)
	var g grant
	state := tokenUnknown
	if accounts.LooksLikeToken(tok) {
		g, state = s.tokens.lookup(accounts.TokenSum(tok), now)
	}
	if state != tokenValid {
		s.refuseToken(w, r, addr, g, state, now)
		return
	}
	t := g.Token
	p := &principal{
		User: accounts.User{Username: tokenUserPrefix + t.Name, Name: t.Name, Role: t.Role, Area: t.Area},
		Key:  tokenKeyOf(t.Name), Addr: addr, Token: t.Name, Cameras: g.Cameras,
	}
	r = r.WithContext(withPrincipal(r.Context(), p))
	if !tokenMay(r) {
		s.metrics.tokenRequests.WithLabelValues("refused_change").Inc()
		s.deny(w, r, "token:"+t.Name, refusedChange)
		return
	}
	s.metrics.tokenRequests.WithLabelValues("ok").Inc()
	if !strings.HasPrefix(r.URL.Path, "/whep/") {
		// WHEP is audited session by session (watch_start, watch).
		s.audit(p, accounts.AuditTokenUsed, "", "ok", r.Method+" "+clipID(r.URL.Path))
	}
	next.ServeHTTP(w, r)
}

// refuseToken answers a request whose token is not accepted.
func (s *Server) refuseToken(w http.ResponseWriter, r *http.Request, addr string, g grant, state tokenState, now time.Time) {
	detail, user := "unknown or revoked token", ""
	if state == tokenExpired {
		detail, user = "expired token", tokenUserPrefix+g.Token.Name
	}
	route := r.Method + " " + clipID(r.URL.Path)
	if by, retry := s.limits.allow(bearerAccount, addr, now); by != limitedNone {
		secs := retrySeconds(retry)
		s.metrics.tokenRequests.WithLabelValues("throttled").Inc()
		s.auditUnauth(accounts.AuditRecord{User: user, Addr: addr, Action: accounts.AuditTokenRefused, Outcome: "denied",
			Detail: route + ": " + detail + "; too many wrong tokens from this " + string(by)})
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="too many wrong tokens"`)
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many wrong tokens from this %s: try again in %d s", by, secs))
		return
	}
	result := "invalid"
	if state == tokenExpired {
		result = "expired"
	}
	s.metrics.tokenRequests.WithLabelValues(result).Inc()
	s.auditUnauth(accounts.AuditRecord{User: user, Addr: addr, Action: accounts.AuditTokenRefused, Outcome: "denied",
		Detail: route + ": " + detail})
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	writeError(w, http.StatusUnauthorized, "invalid token: unknown, revoked or expired")
}

// tokenAuditAdmit says whether a token's audit record of action may be
// written now, at most one per action and http.token_audit_interval, and
// how many were held back since the last; watching video is written
// session by session, as a user's is.
func (s *Server) tokenAuditAdmit(p *principal, action string, now time.Time) (write bool, held int) {
	if action == accounts.AuditWatchStart || action == accounts.AuditWatch {
		return true, 0
	}
	return s.tokens.admitAudit(p.Token, action, now, s.cfg.TokenAuditInterval)
}

// persistTokenUses writes the console tokens' use to the token store, so
// that the admin's list shows it after a restart and on every node. The
// sweep calls it: a request never waits for the store.
func (s *Server) persistTokenUses() {
	for _, u := range s.tokens.takePending() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.deps.TokenStore.TouchToken(ctx, u.name, u.lastUsed, u.uses)
		cancel()
		if err != nil {
			s.logger.Warn("token use not stored", "token", u.name, "err", err)
		}
	}
}

// loadStoredTokens takes the console's tokens from the token store at
// start.
func (s *Server) loadStoredTokens() {
	if s.deps.TokenStore == nil || s.deps.Accounts == nil {
		return
	}
	s.syncTokens(true)
}

// syncTokens reads the console's tokens from the store: tokens made on
// another node start working here, and tokens revoked there end here with
// what they had open.
func (s *Server) syncTokens(start bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stored, err := s.deps.TokenStore.Tokens(ctx)
	if err != nil {
		s.logger.Warn("read the console's API tokens", "err", err)
		return
	}
	gone, skipped := s.tokens.syncStored(stored)
	for _, name := range skipped {
		if start {
			s.logger.Warn("stored API token not used: its name is configured, or too many tokens (http.max_tokens)", "token", name)
		}
	}
	for _, t := range gone {
		s.tokenEnded(t, accounts.AuditTokenRevoked, nil, "revoked on another node")
	}
}

// sweepTokens ends what expired tokens had open and, with a shared store,
// catches up with tokens made and revoked on other nodes.
func (s *Server) sweepTokens(now time.Time) {
	if s.deps.Accounts == nil {
		return
	}
	for _, t := range s.tokens.newlyExpired(now) {
		s.tokenEnded(t, accounts.AuditTokenExpired, nil, "expired at "+t.Expires.UTC().Format(time.RFC3339))
	}
	if s.deps.TokenStore != nil {
		s.persistTokenUses()
		s.syncTokens(false)
	}
}

// tokenEnded stops the event streams and the video sessions of a token
// that no longer works, and records why: by is the admin who revoked it,
// nil for its expiry or another node.
func (s *Server) tokenEnded(t accounts.Token, action string, by *principal, detail string) int {
	key := tokenKeyOf(t.Name)
	s.streams.end(key)
	n := s.videoSessionsByLogin()[key]
	s.stopSessionsOf(key)
	if n > 0 {
		detail += fmt.Sprintf("; %d video sessions ended", n)
	}
	rec := accounts.AuditRecord{Action: action, Target: "token:" + t.Name, Outcome: "ok", Detail: detail}
	if by != nil {
		rec.User, rec.Role, rec.Addr = by.User.Username, string(by.User.Role), by.Addr
	}
	s.auditRecord(rec)
	return n
}
