package viewer

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// The patrol page's session cookie and CSRF header.
const (
	patrolCookie     = "skywatch_patrol"
	csrfHeader       = "X-CSRF-Token"
	maxPatrolBody    = 8 << 10
	maxCredentialLen = 200
)

// patrolReplies are the answers a unit may give from the page.
func patrolReplies() []alarms.ReplyAction {
	return []alarms.ReplyAction{alarms.ReplyAccept, alarms.ReplyDecline, alarms.ReplyEnRoute,
		alarms.ReplyArrived, alarms.ReplyCleared, alarms.ReplyFalseAlarm}
}

// patrolRoutes registers the patrol page and its API. The page is always
// served; its API answers 503 without a patrol source.
func (s *Server) patrolRoutes(mux *http.ServeMux) {
	mux.Handle("GET /patrol/", patrolPageHandler())
	needPatrol := func(h http.HandlerFunc) http.HandlerFunc {
		return needDep(s.deps.Patrol != nil, "patrol dispatch", h)
	}
	mux.HandleFunc("POST /patrol/api/login", needPatrol(s.handlePatrolLogin))
	mux.HandleFunc("POST /patrol/api/logout", needPatrol(s.patrolAuth(s.handlePatrolLogout)))
	mux.HandleFunc("GET /patrol/api/me", needPatrol(s.patrolAuth(s.handlePatrolMe)))
	mux.HandleFunc("GET /patrol/api/current", needPatrol(s.patrolAuth(s.handlePatrolCurrent)))
	mux.HandleFunc("POST /patrol/api/reply", needPatrol(s.patrolAuth(s.handlePatrolReply)))
	mux.HandleFunc("POST /patrol/api/position", needPatrol(s.patrolAuth(s.handlePatrolPosition)))
	mux.HandleFunc("GET /patrol/api/stream", needPatrol(s.patrolAuth(s.handlePatrolStream)))
}

// patrolHandler serves a logged-in unit; token is its session's.
type patrolHandler func(w http.ResponseWriter, r *http.Request, token string, sess patrolSession)

// patrolAuth lets only a logged-in unit through. A request that changes
// something must also carry the session's CSRF token in X-CSRF-Token, and
// come from this server's own origin when the browser says where it comes
// from; the cookie is SameSite=Strict besides.
func (s *Server) patrolAuth(h patrolHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := ""
		if c, err := r.Cookie(patrolCookie); err == nil {
			token = c.Value
		}
		sess, ok := s.patrols.get(token, time.Now())
		if !ok {
			writeError(w, http.StatusUnauthorized, "not logged in")
			return
		}
		if refused := changeRefused(r, sess.CSRF); refused != "" {
			writeError(w, http.StatusForbidden, refused)
			return
		}
		h(w, r, token, sess)
	}
}

// changeRefused says why a request that may change something is refused,
// or "" when it is not: a GET or HEAD never changes anything; any other
// method must come from this server's own origin (when the browser says)
// and carry the session's CSRF token in X-CSRF-Token.
func changeRefused(r *http.Request, csrf string) string {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return ""
	}
	if !sameOrigin(r) {
		return "request from another origin"
	}
	got := r.Header.Get(csrfHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(csrf)) != 1 {
		return "missing or wrong CSRF token (" + csrfHeader + ")"
	}
	return ""
}

// sameOrigin reports whether the request's Origin header, when it has one,
// names the host the request was sent to.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true // not a browser, or a same-origin GET-like request
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// clientAddr is the request's remote IP, the key of the per-address login
// limit. Behind a reverse proxy every officer shares the proxy's address.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// loginBody is the body of POST /patrol/api/login and /api/login.
type loginBody struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// readLogin reads a login's body, refusing (and answering) a malformed
// one or one from another origin.
func readLogin(w http.ResponseWriter, r *http.Request) (loginBody, bool) {
	var b loginBody
	if code, err := decodeJSONBody(w, r, maxPatrolBody, false, &b); err != nil {
		writeError(w, code, err.Error())
		return b, false
	}
	if b.Username == "" || b.Password == "" || len(b.Username) > maxCredentialLen || len(b.Password) > maxCredentialLen {
		writeError(w, http.StatusBadRequest, "username and password: required")
		return b, false
	}
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "request from another origin")
		return b, false
	}
	return b, true
}

// patrolMeJSON is the logged-in unit and the token its page must send in
// X-CSRF-Token.
type patrolMeJSON struct {
	Unit alarms.UnitView `json:"unit"`
	CSRF string          `json:"csrf"`
}

// handlePatrolLogin checks a unit's credentials, rate-limited per user
// name and per address, and starts a session: an HttpOnly, SameSite=Strict
// cookie holding a random token.
func (s *Server) handlePatrolLogin(w http.ResponseWriter, r *http.Request) {
	if s.deps.CheckUnit == nil {
		writeError(w, http.StatusServiceUnavailable, "patrol login not configured")
		return
	}
	b, ok := readLogin(w, r)
	if !ok {
		return
	}
	if by, retry := s.unitLimits.allow(b.Username, clientAddr(r), time.Now()); by != limitedNone {
		secs := int(math.Ceil(retry.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, http.StatusTooManyRequests,
			fmt.Sprintf("too many login attempts for this %s: try again in %d s", by, secs))
		return
	}
	unitID, err := s.deps.CheckUnit(b.Username, b.Password, r.RemoteAddr)
	if err != nil {
		s.logger.Info("patrol login refused", "user", b.Username, "remote", clientAddr(r), "error", err)
		switch {
		case errors.Is(err, alarms.ErrLoginThrottled):
			// The unit's MQTT logins and this page share the limit.
			writeError(w, http.StatusTooManyRequests, "too many wrong passwords for this unit or from this address: try again later")
		case errors.Is(err, alarms.ErrLoginBusy):
			writeError(w, http.StatusServiceUnavailable, "too many logins at once: try again")
		default:
			writeError(w, http.StatusUnauthorized, "wrong user name or password")
		}
		return
	}
	view, err := s.deps.Patrol.Unit(r.Context(), unitID)
	if err != nil {
		s.patrolError(w, r, err)
		return
	}
	if old, err := r.Cookie(patrolCookie); err == nil {
		s.patrols.remove(old.Value)
	}
	token, sess := s.patrols.create(unitID, time.Now())
	http.SetCookie(w, &http.Cookie{
		Name: patrolCookie, Value: token, Path: "/patrol/",
		MaxAge:   int(time.Until(sess.Expires).Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r),
	})
	s.logger.Info("patrol login", "unit", unitID, "remote", clientAddr(r))
	writeJSON(w, http.StatusOK, patrolMeJSON{Unit: view, CSRF: sess.CSRF})
}

// handlePatrolLogout ends the session.
func (s *Server) handlePatrolLogout(w http.ResponseWriter, r *http.Request, token string, _ patrolSession) {
	s.patrols.remove(token)
	http.SetCookie(w, &http.Cookie{Name: patrolCookie, Path: "/patrol/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r)})
	w.WriteHeader(http.StatusNoContent)
}

// handlePatrolMe shows the logged-in unit and its CSRF token (the page
// cannot read the HttpOnly cookie, so it asks after a reload).
func (s *Server) handlePatrolMe(w http.ResponseWriter, r *http.Request, _ string, sess patrolSession) {
	view, err := s.deps.Patrol.Unit(r.Context(), sess.Unit)
	if err != nil {
		s.patrolError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, patrolMeJSON{Unit: view, CSRF: sess.CSRF})
}

// patrolIncidentJSON is the map-free summary of an incident that the
// officer's page shows: where (address, area names, distance and compass
// direction from the unit's last position), what (class, zones, count),
// and, for an offer, the deadline.
type patrolIncidentJSON struct {
	ID         string               `json:"id"`
	State      alarms.IncidentState `json:"state"`
	Class      alarms.Class         `json:"class"`
	Priority   int                  `json:"priority"`
	DeviceName string               `json:"device_name,omitempty"`
	Address    string               `json:"address,omitempty"`
	Area       string               `json:"area,omitempty"`
	// AreaNames are the names of the area and its ancestors, nearest first.
	AreaNames []string  `json:"area_names,omitempty"`
	Lat       float64   `json:"lat"`
	Lon       float64   `json:"lon"`
	Zones     []string  `json:"zones,omitempty"`
	Count     int       `json:"count"`
	First     time.Time `json:"first"`
	Last      time.Time `json:"last"`
	// Offered is true while an offer waits for this unit's answer, until
	// Deadline.
	Offered  bool      `json:"offered"`
	Deadline time.Time `json:"deadline,omitzero"`
	// DistanceM, BearingDeg and Direction (N, NE, ...) are from the unit's
	// last reported position, or from its home when FromHome.
	DistanceM   float64            `json:"distance_m"`
	BearingDeg  float64            `json:"bearing_deg"`
	Direction   string             `json:"direction"`
	FromHome    bool               `json:"from_home,omitempty"`
	Cameras     []string           `json:"cameras,omitempty"`
	Disposition alarms.Disposition `json:"disposition,omitempty"`
	Note        string             `json:"note,omitempty"`
}

// patrolCurrentJSON is the unit and the incident it is offered or on (nil
// when none). Now is the server's clock, so that the page counts the
// deadline down without trusting the phone's clock.
type patrolCurrentJSON struct {
	Unit     alarms.UnitView     `json:"unit"`
	Incident *patrolIncidentJSON `json:"incident"`
	Now      time.Time           `json:"now"`
}

// compass names a bearing with one of eight points.
func compass(deg float64) string {
	points := [...]string{"N", "NE", "E", "SE", "S", "SW", "W", "NW"}
	return points[int(math.Mod(deg+22.5, 360)/45)%8]
}

func (s *Server) patrolSummary(inc alarms.Incident, u alarms.UnitView) *patrolIncidentJSON {
	j := &patrolIncidentJSON{
		ID: inc.ID, State: inc.State, Class: inc.Class, Priority: inc.Priority,
		DeviceName: inc.DeviceName, Address: inc.Address, Area: inc.Area, Lat: inc.Lat, Lon: inc.Lon,
		Zones: inc.Zones, Count: inc.Count, First: inc.First, Last: inc.Last,
		FromHome: u.Reported.IsZero(), Disposition: inc.Disposition, Note: inc.Note,
	}
	tree := s.deps.Patrol.Areas()
	for _, id := range tree.Path(inc.Area) {
		a, _ := tree.Area(id)
		j.AreaNames = append(j.AreaNames, a.Name)
	}
	if inc.Offer != nil && inc.Offer.Unit == u.ID {
		j.Offered, j.Deadline = true, inc.Offer.Deadline
	}
	j.DistanceM = math.Round(alarms.Distance(u.Lat, u.Lon, inc.Lat, inc.Lon))
	j.BearingDeg = math.Round(alarms.Bearing(u.Lat, u.Lon, inc.Lat, inc.Lon))
	j.Direction = compass(j.BearingDeg)
	for _, c := range inc.Cameras {
		j.Cameras = append(j.Cameras, c.ID)
	}
	return j
}

// handlePatrolCurrent shows the unit and the incident it is offered or
// committed to: only its own.
func (s *Server) handlePatrolCurrent(w http.ResponseWriter, r *http.Request, _ string, sess patrolSession) {
	view, err := s.deps.Patrol.Unit(r.Context(), sess.Unit)
	if err != nil {
		s.patrolError(w, r, err)
		return
	}
	out := patrolCurrentJSON{Unit: view, Now: time.Now().UTC()}
	if view.Incident != "" {
		inc, err := s.deps.Patrol.Incident(r.Context(), view.Incident)
		if err != nil {
			s.patrolError(w, r, err)
			return
		}
		out.Incident = s.patrolSummary(inc, view)
	}
	writeJSON(w, http.StatusOK, out)
}

// replyBody is the body of POST /patrol/api/reply.
type replyBody struct {
	Incident    string             `json:"incident"`
	Action      alarms.ReplyAction `json:"action"`
	Disposition alarms.Disposition `json:"disposition"`
	Note        string             `json:"note"`
}

// handlePatrolReply passes the unit's answer to the engine, which refuses
// (403) an incident that is neither offered nor committed to this unit.
func (s *Server) handlePatrolReply(w http.ResponseWriter, r *http.Request, _ string, sess patrolSession) {
	var b replyBody
	if code, err := decodeJSONBody(w, r, maxPatrolBody, false, &b); err != nil {
		writeError(w, code, err.Error())
		return
	}
	switch {
	case b.Incident == "":
		writeError(w, http.StatusBadRequest, "incident: required")
		return
	case !slices.Contains(patrolReplies(), b.Action):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("action: %q is not one of %s", b.Action, joinNames(patrolReplies())))
		return
	case b.Action == alarms.ReplyCleared && !b.Disposition.Valid():
		writeError(w, http.StatusBadRequest, fmt.Sprintf("disposition: %q is not one of %s", b.Disposition, joinNames(dispositions())))
		return
	case len(b.Note) > maxNoteLen:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("note: longer than %d bytes", maxNoteLen))
		return
	}
	inc, err := s.deps.Patrol.UnitReply(r.Context(), sess.Unit, b.Incident, b.Action, b.Disposition, b.Note)
	if err != nil {
		s.patrolError(w, r, err)
		return
	}
	view, err := s.deps.Patrol.Unit(r.Context(), sess.Unit)
	if err != nil {
		s.patrolError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.patrolSummary(inc, view))
}

// positionBody is the body of POST /patrol/api/position. Lat and Lon may
// be left out (a phone without geolocation, a status change only): the
// unit's last known position is reported again.
type positionBody struct {
	Lat    *float64          `json:"lat"`
	Lon    *float64          `json:"lon"`
	Status alarms.UnitStatus `json:"status"`
}

// handlePatrolPosition records a position report and status from the page
// and answers with the unit's state after it.
func (s *Server) handlePatrolPosition(w http.ResponseWriter, r *http.Request, _ string, sess patrolSession) {
	var b positionBody
	if code, err := decodeJSONBody(w, r, maxPatrolBody, false, &b); err != nil {
		writeError(w, code, err.Error())
		return
	}
	if b.Status != "" && b.Status != alarms.UnitAvailable && b.Status != alarms.UnitOffDuty {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("status: %q is not available or off_duty", b.Status))
		return
	}
	if (b.Lat == nil) != (b.Lon == nil) {
		writeError(w, http.StatusBadRequest, "lat, lon: give both or neither")
		return
	}
	if b.Lat == nil {
		view, err := s.deps.Patrol.Unit(r.Context(), sess.Unit)
		if err != nil {
			s.patrolError(w, r, err)
			return
		}
		b.Lat, b.Lon = &view.Lat, &view.Lon
	}
	if err := s.deps.Patrol.UnitPosition(r.Context(), sess.Unit, *b.Lat, *b.Lon, b.Status); err != nil {
		s.patrolError(w, r, err)
		return
	}
	view, err := s.deps.Patrol.Unit(r.Context(), sess.Unit)
	if err != nil {
		s.patrolError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, view)
}

// patrolError answers an engine error as the incident API does; a unit
// that is no longer configured is logged out.
func (s *Server) patrolError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, alarms.ErrUnknownUnit) {
		writeError(w, http.StatusUnauthorized, "this unit is no longer configured")
		return
	}
	s.incidentError(w, r, err)
}

// handlePatrolStream sends the unit, as Server-Sent Events, what it is
// sent on its dispatch topic and the changes that concern it:
//
//	event: dispatch   data: the alarms.DispatchMessage (offer, update, withdrawn, cancelled, resolved)
//	event: unit       data: the unit's alarms.UnitView when its status changed
//	event: incident   data: {"id", "state"} when its incident changed
//	event: logout     the session ended; the stream ends
//
// The page reloads /patrol/api/current on each. A client too slow to keep
// up is disconnected; it reconnects and reloads.
func (s *Server) handlePatrolStream(w http.ResponseWriter, r *http.Request, token string, sess patrolSession) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	msgs := s.deps.Patrol.DispatchMessages(ctx, sess.Unit)
	changes := s.deps.Patrol.SubscribeIncidents(ctx)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w)}
	if err := sw.comment("connected"); err != nil {
		return
	}
	heartbeat := time.NewTicker(s.streamHeartbeat)
	defer heartbeat.Stop()
	for {
		if full(msgs) || full(changes) {
			return
		}
		var err error
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			err = sw.event("dispatch", "", m)
		case c, ok := <-changes:
			if !ok {
				return
			}
			err = sendUnitChange(sw, c, sess.Unit)
		case <-heartbeat.C:
			if _, ok := s.patrols.get(token, time.Now()); !ok {
				_ = sw.event("logout", "", map[string]string{"reason": "session ended"})
				return
			}
			err = sw.comment("keep-alive")
		}
		if err != nil {
			return
		}
	}
}

// sendUnitChange sends what of an incident change concerns unit: its own
// status, and its own incident's state. Nothing about other units or
// incidents reaches the page.
func sendUnitChange(sw *sseWriter, c alarms.IncidentChange, unit string) error {
	for _, u := range c.Units {
		if u.ID == unit {
			if err := sw.event("unit", "", u); err != nil {
				return err
			}
		}
	}
	inc := c.Incident
	if inc != nil && (inc.Unit == unit || inc.Offer != nil && inc.Offer.Unit == unit) {
		return sw.event("incident", "", map[string]string{"id": inc.ID, "state": string(inc.State)})
	}
	return nil
}
