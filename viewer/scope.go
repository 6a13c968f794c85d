package viewer

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/alarms"
)

// principal is who makes a request: a logged-in operator, a program with
// an API token (User is then the token's service account, named
// token:NAME), or, on a server without operator accounts (Deps.Accounts
// nil), an anonymous admin.
type principal struct {
	User accounts.User
	Key  string // the login session's key (tokenKeyOf for a token); "" without accounts
	CSRF string
	Addr string
	// Token is the API token's name, "" for a person.
	Token string
	// Cameras, when not nil, are the only cameras a token may see.
	Cameras map[string]bool
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p *principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// principalOf is the request's principal; guard sets it on every route
// that needs one, so a nil here is a routing bug and is refused by
// scope checks (no area, no role).
func principalOf(ctx context.Context) *principal {
	p, _ := ctx.Value(principalKey{}).(*principal)
	if p == nil {
		return &principal{User: accounts.User{Username: "unknown", Area: "\x00"}}
	}
	return p
}

// scope decides what a principal may see: its area and everything under
// it. Objects without an area are seen only from the top of the tree.
type scope struct {
	area string // "" = everything
	tree *alarms.AreaTree
}

func (s *Server) scopeOf(p *principal) scope {
	var tree *alarms.AreaTree
	if s.deps.Incidents != nil {
		tree = s.deps.Incidents.Areas()
	}
	return scope{area: p.User.Area, tree: tree}
}

// all says whether the scope is the whole county.
func (sc scope) all() bool {
	if sc.area == "" {
		return true
	}
	if sc.tree == nil {
		return false
	}
	a, ok := sc.tree.Area(sc.area)
	return ok && a.Parent == ""
}

// sees says whether an object of area is in scope.
func (sc scope) sees(area string) bool {
	if sc.all() {
		return true
	}
	if area == "" || sc.tree == nil {
		return false
	}
	return sc.tree.Contains(sc.area, area)
}

// seesUnit says whether a unit of area is shown: units of the scope, and
// units of the areas above it (a county brigade serves every township).
func (sc scope) seesUnit(area string) bool {
	if sc.sees(area) {
		return true
	}
	return area != "" && sc.tree != nil && sc.tree.Contains(area, sc.area)
}

// cameraVisible says whether p may see camera (known or not: an unknown
// camera out of scope is refused like a known one, so that IDs cannot be
// probed).
func (s *Server) cameraVisible(p *principal, camera string) bool {
	if p.Cameras != nil && !p.Cameras[camera] {
		return false
	}
	return s.scopeOf(p).sees(s.place(camera).Area)
}

// denyCamera refuses a camera outside p's scope.
func (s *Server) denyCamera(w http.ResponseWriter, r *http.Request, camera string) int {
	s.denyHidden(w, r, "camera", camera)
	return http.StatusForbidden
}

// denyHidden refuses an object of kind ("incident", "unit", "device",
// "area") that p may not see. An object that does not exist is refused
// the same way to a user whose scope is not the whole county, so that
// the answer (status and body) does not tell whether an ID exists
// outside their area.
func (s *Server) denyHidden(w http.ResponseWriter, r *http.Request, kind, id string) {
	id = clipID(id)
	s.deny(w, r, kind+":"+id, kind+" "+id+" is outside your area")
}

// maxShownID bounds an ID from a request as a refusal repeats it (in the
// answer, the log and the audit record): configured IDs are short, and a
// request line may be a megabyte long.
const maxShownID = 128

// clipID shortens an over-long ID to maxShownID bytes and a mark.
func clipID(id string) string {
	if len(id) <= maxShownID {
		return id
	}
	return strings.ToValidUTF8(id[:maxShownID], "") + "..."
}

// actionInScope checks, for a user whose scope is not the whole county,
// every object an incident action names: the incident, then the unit of
// an assign (or an offer to a chosen unit). It answers the refusal itself
// and returns false. A unit is in scope when the user sees it (units of
// their areas and of the areas above, such as a county brigade): what an
// operator may see on the map they may send. The unit is checked here,
// before the engine, so that the engine's view of a hidden unit (busy,
// off duty) never reaches the answer.
func (s *Server) actionInScope(w http.ResponseWriter, r *http.Request, p *principal, incident, unit string) bool {
	sc := s.scopeOf(p)
	if sc.all() {
		return true
	}
	inc, err := s.deps.Incidents.Incident(r.Context(), incident)
	switch {
	case errors.Is(err, alarms.ErrNotFound):
		s.denyHidden(w, r, "incident", incident)
		return false
	case err != nil:
		s.incidentError(w, r, err)
		return false
	case !sc.sees(inc.Area):
		s.denyHidden(w, r, "incident", incident)
		return false
	}
	if unit == "" {
		return true
	}
	u, err := s.deps.Incidents.Unit(r.Context(), unit)
	switch {
	case errors.Is(err, alarms.ErrUnknownUnit):
		s.denyHidden(w, r, "unit", unit)
		return false
	case err != nil:
		s.incidentError(w, r, err)
		return false
	case !sc.seesUnit(u.Area):
		s.denyHidden(w, r, "unit", unit)
		return false
	}
	return true
}
