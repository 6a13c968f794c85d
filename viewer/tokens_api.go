package viewer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/skywatch/skywatch/accounts"
)

// tokenRoutes registers the admin's API tokens: list, make, revoke.
func (s *Server) tokenRoutes(mux *http.ServeMux) {
	accts := s.deps.Accounts != nil
	mux.HandleFunc("GET /api/admin/tokens", needDep(accts, "operator accounts", s.handleTokens))
	mux.HandleFunc("POST /api/admin/tokens", needDep(accts, "operator accounts", s.handleCreateToken))
	mux.HandleFunc("DELETE /api/admin/tokens/{name}", needDep(accts, "operator accounts", s.handleRevokeToken))
}

// tokenJSON is an API token as the admin sees it: never the token nor its
// hash.
type tokenJSON struct {
	Name        string        `json:"name"`
	Role        accounts.Role `json:"role"`
	Area        string        `json:"area"`
	Cameras     []string      `json:"cameras"`
	Expires     *time.Time    `json:"expires,omitempty"`
	Expired     bool          `json:"expired"`
	Description string        `json:"description"`
	// Source is "config" (read-only here: the config file holds it) or
	// "console".
	Source        string     `json:"source"`
	Created       *time.Time `json:"created,omitempty"`
	CreatedBy     string     `json:"created_by,omitempty"`
	LastUsed      *time.Time `json:"last_used,omitempty"`
	Uses          uint64     `json:"uses"`
	VideoSessions int        `json:"video_sessions"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func toTokenJSON(v tokenView, now time.Time, videos int) tokenJSON {
	j := tokenJSON{Name: v.Name, Role: v.Role, Area: v.Area, Cameras: v.Cameras, Expires: timePtr(v.Expires),
		Expired: v.Expired(now), Description: v.Description, Source: "console", Created: timePtr(v.Created),
		CreatedBy: v.CreatedBy, LastUsed: timePtr(v.LastUsed), Uses: v.Uses, VideoSessions: videos}
	if v.Configured {
		j.Source = "config"
	}
	if j.Cameras == nil {
		j.Cameras = []string{}
	}
	return j
}

// handleTokens lists the tokens an admin may manage: those whose area is
// in the admin's scope.
func (s *Server) handleTokens(w http.ResponseWriter, r *http.Request) {
	if !s.mayManage(w, r) {
		return
	}
	sc := s.scopeOf(principalOf(r.Context()))
	now := time.Now()
	videos := s.videoSessionsByLogin()
	out := []tokenJSON{}
	for _, v := range s.tokens.list() {
		if s.grants(sc, v.Area) {
			out = append(out, toTokenJSON(v, now, videos[tokenKeyOf(v.Name)]))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out, "max": s.cfg.MaxTokens, "store": s.deps.TokenStore != nil})
}

// grants says whether an admin of scope sc may give (or take back) a
// token of area: the admin's scope must hold it, and only an admin of the
// whole county gives a token of every area.
func (s *Server) grants(sc scope, area string) bool {
	if area == "" {
		return sc.all()
	}
	return sc.sees(area)
}

// createTokenBody is POST /api/admin/tokens.
type createTokenBody struct {
	Name        string        `json:"name"`
	Role        accounts.Role `json:"role"`
	Area        string        `json:"area"`
	Cameras     []string      `json:"cameras"`
	Expires     *time.Time    `json:"expires"`
	Description string        `json:"description"`
}

// createdTokenJSON answers a token's creation: the token itself, shown
// this once.
type createdTokenJSON struct {
	tokenJSON
	Token string `json:"token"`
	// WHEPPath is the path a player posts its offer to, with the camera's
	// ID in place of {camera}.
	WHEPPath string `json:"whep_path"`
}

// maxTokenBody bounds POST /api/admin/tokens.
const maxTokenBody = 32 << 10

// handleCreateToken makes an API token, audited: at most the admin's own
// rights (role and area), of known cameras in its area. The token is in
// the answer only; the server keeps its SHA-256.
func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	if !s.mayManage(w, r) {
		return
	}
	if s.deps.TokenStore == nil {
		writeError(w, http.StatusServiceUnavailable, "tokens cannot be kept on this server: configure them in the file (tokens:)")
		return
	}
	var b createTokenBody
	if code, err := decodeJSONBody(w, r, maxTokenBody, false, &b); err != nil {
		writeError(w, code, err.Error())
		return
	}
	p := principalOf(r.Context())
	now := time.Now()
	token, sum := accounts.NewToken()
	t := accounts.Token{Name: b.Name, Role: b.Role, Area: b.Area, Cameras: b.Cameras, Description: b.Description,
		SHA256: sum, Created: now.UTC().Round(0), CreatedBy: p.User.Username}
	if b.Expires != nil {
		t.Expires = b.Expires.UTC().Round(0)
	}
	if msg := s.checkNewToken(p, t, now); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	if !s.grants(s.scopeOf(p), t.Area) {
		s.deny(w, r, "token:"+cut(t.Name, maxLoginName), "a token cannot see more than you: its area must be yours or under it")
		return
	}
	for _, c := range t.Cameras {
		if !s.cameraVisible(p, c) {
			s.denyHidden(w, r, "camera", c)
			return
		}
	}
	if _, taken := s.tokens.get(t.Name); taken {
		writeError(w, http.StatusConflict, fmt.Sprintf("a token named %q exists", t.Name))
		return
	}
	if s.tokens.count() >= s.cfg.MaxTokens {
		writeError(w, http.StatusConflict, fmt.Sprintf("there are %d tokens, the most allowed (http.max_tokens): revoke one first", s.cfg.MaxTokens))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.deps.TokenStore.SaveToken(ctx, t); err != nil {
		if errors.Is(err, accounts.ErrTokenExists) {
			writeError(w, http.StatusConflict, fmt.Sprintf("a token named %q exists", t.Name))
			return
		}
		s.logger.Error("save token", "token", t.Name, "err", err)
		writeError(w, http.StatusServiceUnavailable, "the token could not be stored")
		return
	}
	if err := s.tokens.add(t); err != nil {
		// Made at the same time by another admin; the store has ours.
		_, _ = s.deps.TokenStore.DeleteToken(ctx, t.Name)
		writeError(w, http.StatusConflict, fmt.Sprintf("token %q: %v", t.Name, err))
		return
	}
	s.audit(p, accounts.AuditTokenCreated, "token:"+t.Name, "ok", describeToken(t))
	j := toTokenJSON(tokenView{Token: t}, now, 0)
	writeJSON(w, http.StatusCreated, createdTokenJSON{tokenJSON: j, Token: token, WHEPPath: "/whep/{camera}"})
}

// checkNewToken returns why t cannot be made, or "".
func (s *Server) checkNewToken(p *principal, t accounts.Token, now time.Time) string {
	if err := accounts.CheckToken(t); err != nil {
		return err.Error()
	}
	if !p.User.Role.AtLeast(t.Role) {
		return fmt.Sprintf("role: %s is more than your own role", t.Role)
	}
	if t.Area != "" {
		if s.deps.Incidents == nil {
			return fmt.Sprintf("area: unknown area %q", cut(t.Area, maxShownID))
		}
		if _, ok := s.deps.Incidents.Areas().Area(t.Area); !ok {
			return fmt.Sprintf("area: unknown area %q", cut(t.Area, maxShownID))
		}
	}
	tokenScope := scope{area: t.Area}
	if s.deps.Incidents != nil {
		tokenScope.tree = s.deps.Incidents.Areas()
	}
	for i, c := range t.Cameras {
		pl, ok := (*s.places.Load())[c]
		if !ok {
			return fmt.Sprintf("cameras[%d]: unknown camera %q", i, cut(c, maxShownID))
		}
		if !tokenScope.sees(pl.Area) {
			return fmt.Sprintf("cameras[%d]: camera %q is outside the token's area", i, c)
		}
	}
	if !t.Expires.IsZero() && !t.Expires.After(now) {
		return "expires: must be in the future"
	}
	return ""
}

// handleRevokeToken revokes a console token at once: the next request
// with it is refused, and its video sessions and event streams end now.
// A configured token is revoked by removing it from the config file.
func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	if !s.mayManage(w, r) {
		return
	}
	p := principalOf(r.Context())
	name := r.PathValue("name")
	t, ok := s.tokens.get(name)
	if !ok || !s.grants(s.scopeOf(p), t.Area) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no token %q", cut(name, maxLoginName)))
		return
	}
	if t.Configured {
		writeError(w, http.StatusConflict, fmt.Sprintf("token %q is in the config file: remove it there and restart", t.Name))
		return
	}
	if s.deps.TokenStore != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := s.deps.TokenStore.DeleteToken(ctx, t.Name); err != nil {
			// Not revoked in the store: another node, or a restart,
			// would bring it back.
			s.logger.Error("revoke token", "token", t.Name, "err", err)
			writeError(w, http.StatusServiceUnavailable, "the token could not be revoked in the store: try again")
			return
		}
	}
	if _, ok := s.tokens.remove(t.Name); !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no token %q", cut(name, maxLoginName)))
		return
	}
	n := s.tokenEnded(t, accounts.AuditTokenRevoked, p, strings.TrimSpace(describeToken(t)))
	writeJSON(w, http.StatusOK, map[string]any{"revoked": t.Name, "video_sessions": n})
}
