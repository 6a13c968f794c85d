package viewer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/ingest"
)

// defaultActor names the operator in the timeline until operator accounts
// exist: the request body may name one.
const defaultActor = "operator"

// Bounds of an action's body.
const (
	maxActionBody = 64 << 10
	maxActorLen   = 100
	maxNoteLen    = 4000
)

// operatorActions are the actions of POST /api/incidents/{id}/{action}.
func operatorActions() []alarms.ActionKind {
	return []alarms.ActionKind{alarms.ActAcknowledge, alarms.ActOffer, alarms.ActAssign,
		alarms.ActReoffer, alarms.ActCancel, alarms.ActResolve, alarms.ActClose}
}

// incidentRoutes registers the incident API. Without an incident engine the
// routes still exist and answer 503.
func (s *Server) incidentRoutes(mux *http.ServeMux) {
	for pattern, h := range map[string]http.HandlerFunc{
		"GET /api/incidents":                s.handleIncidents,
		"GET /api/incidents/{id}":           s.handleIncident,
		"POST /api/incidents/{id}/{action}": s.handleIncidentAction,
		"GET /api/units":                    s.handleUnits,
		"GET /api/units/{id}":               s.handleUnit,
		"GET /api/areas":                    s.handleAreas,
	} {
		mux.HandleFunc(pattern, needDep(s.deps.Incidents != nil, "incident engine", h))
	}
}

// incidentCameraJSON is a camera linked to an incident with its live state
// from the camera source ("unknown" for a camera the source does not have).
type incidentCameraJSON struct {
	ID        string  `json:"id"`
	Name      string  `json:"name,omitempty"`
	Status    string  `json:"status"`
	Linked    bool    `json:"linked,omitempty"`
	DistanceM float64 `json:"distance_m"`
}

// incidentJSON is an incident as the API shows it: the engine's incident,
// its area's path up to the root, its cameras with their live state, and
// its timeline (left out of lists).
type incidentJSON struct {
	alarms.Incident
	AreaPath []string               `json:"area_path,omitempty"`
	Cameras  []incidentCameraJSON   `json:"cameras"`
	Timeline []alarms.TimelineEntry `json:"timeline,omitempty"`
	// Actions are the operator actions the incident's state and the
	// user's role allow now.
	Actions []alarms.ActionKind `json:"actions"`
	// UnitsNearby are the units in scope nearest the incident (detail
	// only).
	UnitsNearby []nearbyUnitJSON `json:"units_nearby,omitempty"`
	// Clips are the incident's evidence clips (detail only, with a
	// recorder).
	Clips []clipJSON `json:"clips,omitempty"`
}

// incidentsJSON is a page of incidents; Next is empty on the last page.
type incidentsJSON struct {
	Incidents []incidentJSON `json:"incidents"`
	Next      string         `json:"next"`
}

// incidentToJSON joins the cameras' live state into inc; timeline says
// whether to keep the timeline.
func (s *Server) incidentToJSON(inc alarms.Incident, timeline bool) incidentJSON {
	j := incidentJSON{Incident: inc, Cameras: make([]incidentCameraJSON, 0, len(inc.Cameras))}
	if timeline {
		j.Timeline = inc.Timeline
		if j.Timeline == nil {
			j.Timeline = []alarms.TimelineEntry{}
		}
	}
	if inc.Area != "" {
		j.AreaPath = s.deps.Incidents.Areas().Path(inc.Area)
	}
	for _, c := range inc.Cameras {
		cj := incidentCameraJSON{ID: c.ID, Linked: c.Linked, DistanceM: roundTo(c.DistanceM, 1), Status: "unknown"}
		if st, err := s.deps.Cameras.Camera(c.ID); err == nil {
			cj.Name, cj.Status = st.Name, string(st.Status)
		} else if !errors.Is(err, ingest.ErrUnknownCamera) {
			s.logger.Debug("incident camera state", "camera", c.ID, "err", redactURLs(err.Error()))
		}
		j.Cameras = append(j.Cameras, cj)
	}
	return j
}

// handleIncidents lists incidents, newest first, filtered and paged.
func (s *Server) handleIncidents(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r.Context())
	sc := s.scopeOf(p)
	if area := r.URL.Query().Get("area"); area != "" && !sc.sees(area) {
		// Before parsing: an unknown area is refused like a hidden one.
		s.denyHidden(w, r, "area", area)
		return
	}
	q, err := parseIncidentQuery(r.URL.Query(), s.deps.Incidents.Areas())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if q.Area == "" && !sc.all() {
		q.Area = sc.area
	}
	page, err := s.deps.Incidents.Incidents(r.Context(), q)
	if err != nil {
		if q.Cursor != "" && s.incidentCursorRefused(r.Context(), q) {
			writeError(w, http.StatusBadRequest, "cursor: malformed or unknown")
			return
		}
		s.incidentError(w, r, err)
		return
	}
	out := incidentsJSON{Incidents: make([]incidentJSON, 0, len(page.Incidents)), Next: page.Next}
	for _, inc := range page.Incidents {
		if sc.sees(inc.Area) {
			out.Incidents = append(out.Incidents, s.forUser(p, s.incidentToJSON(inc, false)))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// incidentCursorRefused tells whether a query failed because of its
// cursor, as cursorRefused does for events.
func (s *Server) incidentCursorRefused(ctx context.Context, q alarms.IncidentQuery) bool {
	q.Cursor, q.Limit = "", 1
	_, err := s.deps.Incidents.Incidents(ctx, q)
	return err == nil
}

func parseIncidentQuery(v url.Values, tree *alarms.AreaTree) (alarms.IncidentQuery, error) {
	q := alarms.IncidentQuery{Area: v.Get("area"), Cursor: v.Get("cursor")}
	if q.Area != "" && !tree.Has(q.Area) {
		return q, fmt.Errorf("area: unknown area %q", q.Area)
	}
	if list := v.Get("state"); list != "" {
		for name := range strings.SplitSeq(list, ",") {
			st := alarms.IncidentState(strings.TrimSpace(name))
			if !slices.Contains(alarms.IncidentStates(), st) {
				return q, fmt.Errorf("state: %q is not one of %s", st, joinNames(alarms.IncidentStates()))
			}
			q.States = append(q.States, st)
		}
	}
	if o := v.Get("open"); o != "" {
		open, err := strconv.ParseBool(o)
		if err != nil {
			return q, fmt.Errorf("open: %q is not true or false", o)
		}
		q.Open = open
	}
	if c := v.Get("class"); c != "" {
		q.Class = alarms.Class(c)
		if !q.Class.Valid() {
			return q, fmt.Errorf("class: %q is not one of %s", c, joinNames(alarms.Classes()))
		}
	}
	if k := v.Get("kind"); k != "" {
		q.Kind = alarms.IncidentKind(k)
		if q.Kind != alarms.KindResponse && q.Kind != alarms.KindMaintenance {
			return q, fmt.Errorf("kind: %q is not response or maintenance", k)
		}
	}
	var err error
	if q.Since, err = parseTime(v, "since"); err != nil {
		return q, err
	}
	if q.Until, err = parseTime(v, "until"); err != nil {
		return q, err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return q, errors.New("until: must be after since")
	}
	if q.Limit, err = parseLimit(v); err != nil {
		return q, err
	}
	return q, nil
}

func joinNames[T ~string](list []T) string {
	names := make([]string, 0, len(list))
	for _, n := range list {
		names = append(names, string(n))
	}
	return strings.Join(names, ", ")
}

// handleIncident shows one incident with its timeline and cameras.
func (s *Server) handleIncident(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r.Context())
	id := r.PathValue("id")
	sc := s.scopeOf(p)
	inc, err := s.deps.Incidents.Incident(r.Context(), id)
	switch {
	case errors.Is(err, alarms.ErrNotFound) && !sc.all():
		s.denyHidden(w, r, "incident", id)
		return
	case err != nil:
		s.incidentError(w, r, err)
		return
	case !sc.sees(inc.Area):
		s.denyHidden(w, r, "incident", id)
		return
	}
	j := s.forUser(p, s.incidentToJSON(inc, true))
	j.UnitsNearby = s.unitsNearby(r.Context(), p, inc)
	j.Clips = s.clipsOf(inc.ID)
	writeJSON(w, http.StatusOK, j)
}

// actionBody is the body of POST /api/incidents/{id}/{action}; every field
// is optional except unit for assign and disposition for resolve.
type actionBody struct {
	Actor       string             `json:"actor"`
	Reason      string             `json:"reason"`
	Unit        string             `json:"unit"`
	Disposition alarms.Disposition `json:"disposition"`
	Note        string             `json:"note"`
}

// actionRefusedJSON answers an action the engine applied only in part: an
// offer that found no free unit is noted in the timeline (and the incident
// escalated), yet nobody was offered it.
type actionRefusedJSON struct {
	Error    string       `json:"error"`
	Incident incidentJSON `json:"incident"`
}

// handleIncidentAction applies an operator's action. Until operator
// accounts exist, the actor is the body's "actor", or "operator".
func (s *Server) handleIncidentAction(w http.ResponseWriter, r *http.Request) {
	id, name := r.PathValue("id"), r.PathValue("action")
	kind := alarms.ActionKind(name)
	if !slices.Contains(operatorActions(), kind) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown action %q: one of %s", name, joinNames(operatorActions())))
		return
	}
	var b actionBody
	if code, err := decodeJSONBody(w, r, maxActionBody, true, &b); err != nil {
		writeError(w, code, err.Error())
		return
	}
	p := principalOf(r.Context())
	if !mayAct(p.User.Role, kind) {
		s.deny(w, r, "incident:"+id, fmt.Sprintf("your role (%s) may not %s incidents", p.User.Role, kind))
		return
	}
	b.Actor = strings.TrimSpace(b.Actor)
	if s.deps.Accounts != nil || b.Actor == "" {
		// With accounts the actor is who is logged in, whatever the body
		// says.
		b.Actor = p.User.Username
		if s.deps.Accounts == nil {
			b.Actor = defaultActor
		}
	}
	switch {
	case len(b.Actor) > maxActorLen:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("actor: longer than %d bytes", maxActorLen))
		return
	case len(b.Reason) > maxNoteLen || len(b.Note) > maxNoteLen:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reason, note: longer than %d bytes", maxNoteLen))
		return
	case kind == alarms.ActAssign && b.Unit == "":
		writeError(w, http.StatusBadRequest, "unit: required to assign")
		return
	case kind == alarms.ActResolve && !b.Disposition.Valid():
		writeError(w, http.StatusBadRequest, fmt.Sprintf("disposition: %q is not one of %s", b.Disposition, joinNames(dispositions())))
		return
	}
	if !s.actionInScope(w, r, p, id, b.Unit) {
		return
	}
	if kind == alarms.ActOffer && b.Unit != "" {
		// Offering to a chosen unit is what the engine calls assign.
		kind = alarms.ActAssign
	}
	a := alarms.Action{Kind: kind, Actor: b.Actor, Reason: b.Reason, Unit: b.Unit, Disposition: b.Disposition, Note: b.Note}
	inc, err := s.deps.Incidents.Act(r.Context(), id, a)
	detail := strings.TrimSpace(string(kind) + " " + b.Unit + " " + string(b.Disposition))
	switch {
	case err == nil:
		s.audit(p, "incident_action", "incident:"+id, "ok", detail)
		writeJSON(w, http.StatusOK, s.forUser(p, s.incidentToJSON(inc, true)))
	case inc.ID != "" && errors.Is(err, alarms.ErrUnitUnavailable):
		// Applied (noted, escalated) but nobody could be offered it.
		s.audit(p, "incident_action", "incident:"+id, "partial", detail+": "+err.Error())
		writeJSON(w, http.StatusConflict, actionRefusedJSON{Error: err.Error(), Incident: s.forUser(p, s.incidentToJSON(inc, true))})
	default:
		s.audit(p, "incident_action", "incident:"+id, "failed", detail+": "+err.Error())
		s.incidentError(w, r, err)
	}
}

// dispositions lists every disposition, for messages.
func dispositions() []alarms.Disposition {
	return []alarms.Disposition{alarms.DispGenuine, alarms.DispFalseEquipment, alarms.DispFalseUser,
		alarms.DispUnfounded, alarms.DispDuplicate}
}

// handleUnits lists the configured units with their live state.
func (s *Server) handleUnits(w http.ResponseWriter, r *http.Request) {
	list, err := s.deps.Incidents.Units(r.Context())
	if err != nil {
		s.incidentError(w, r, err)
		return
	}
	sc := s.scopeOf(principalOf(r.Context()))
	out := make([]alarms.UnitView, 0, len(list))
	for _, u := range list {
		if sc.seesUnit(u.Area) {
			out = append(out, u)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleUnit shows one unit; 404 when unknown (the URL names it) to a
// county-wide user, 403 like a hidden unit to anyone else.
func (s *Server) handleUnit(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	u, err := s.deps.Incidents.Unit(r.Context(), id)
	switch {
	case errors.Is(err, alarms.ErrUnknownUnit) && !s.scopeOf(principalOf(r.Context())).all():
		s.denyHidden(w, r, "unit", id)
	case errors.Is(err, alarms.ErrUnknownUnit):
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown unit %q", id))
	case err != nil:
		s.incidentError(w, r, err)
	case !s.scopeOf(principalOf(r.Context())).seesUnit(u.Area):
		s.denyHidden(w, r, "unit", id)
	default:
		writeJSON(w, http.StatusOK, u)
	}
}

// handleAreas lists the jurisdiction tree in config order: each area with
// its parent, children, depth and effective dispatch policy.
func (s *Server) handleAreas(w http.ResponseWriter, r *http.Request) {
	sc := s.scopeOf(principalOf(r.Context()))
	all := s.deps.Incidents.Areas().Areas()
	out := make([]alarms.Area, 0, len(all))
	for _, a := range all {
		// The scope's areas, and those above it for the path to the top.
		if sc.seesUnit(a.ID) {
			out = append(out, a)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// incidentError answers an error of the incident engine. The rule: 404
// when the URL names something unknown (an incident), 400 when the body
// does (an unknown unit to assign, a bad disposition), 409 when the
// request does not fit the incident's or the unit's state (an illegal
// transition, a busy unit, a concurrent change), 403 when a unit acts on
// an incident that is not its own, 503 when the engine or its store
// cannot answer (or, in cluster mode, no node leads the engine: failover).
func (s *Server) incidentError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	var te *alarms.TransitionError
	code := http.StatusServiceUnavailable
	switch {
	case errors.Is(err, alarms.ErrNotFound):
		msg := err.Error()
		if id := r.PathValue("id"); id != "" {
			msg = fmt.Sprintf("unknown incident %q", id)
		}
		writeError(w, http.StatusNotFound, msg)
		return
	case errors.As(err, &te), errors.Is(err, alarms.ErrUnitUnavailable), errors.Is(err, alarms.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, alarms.ErrUnknownUnit), errors.Is(err, alarms.ErrInvalidAction):
		code = http.StatusBadRequest
	case errors.Is(err, alarms.ErrNotAssigned):
		code = http.StatusForbidden
	case errors.Is(err, alarms.ErrEngineClosed):
	case errors.Is(err, alarms.ErrNoLeader):
		// Cluster mode, between two leaders of the incident engine.
		w.Header().Set("Retry-After", "5")
		writeError(w, code, "no node runs the incident engine right now (failover in progress); try again in a few seconds")
		return
	default:
		s.logger.Warn("incident api: failed", "path", r.URL.Path, "err", redactURLs(err.Error()))
	}
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	writeError(w, code, err.Error())
}
