package viewer

import (
	"context"
	"slices"
	"time"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/alarms"
)

// maxNearbyUnits bounds an incident's units_nearby.
const maxNearbyUnits = 10

// nearbyUnitJSON is a unit as the incident view lists it.
type nearbyUnitJSON struct {
	alarms.UnitView
	DistanceM float64 `json:"distance_m"`
}

// forUser fits an incident to who asks: the actions their role allows in
// its state (none to an API token), and only the cameras they may watch.
func (s *Server) forUser(p *principal, j incidentJSON) incidentJSON {
	j.Actions = []alarms.ActionKind{}
	for _, a := range j.Incident.AllowedActions() {
		// A token acts on nothing, whatever its role.
		if p.Token == "" && mayAct(p.User.Role, a) {
			j.Actions = append(j.Actions, a)
		}
	}
	cams := j.Cameras[:0:0]
	for _, c := range j.Cameras {
		if s.cameraVisible(p, c.ID) {
			cams = append(cams, c)
		}
	}
	j.Cameras = cams
	return j
}

// mayAct says whether role may take an incident action of this kind:
// operators and above act, only supervisors and admins close.
func mayAct(role accounts.Role, kind alarms.ActionKind) bool {
	if kind == alarms.ActClose {
		return role.CanClose()
	}
	return role.CanAct()
}

// unitsNearby lists the units p sees nearest to inc, nearest first.
func (s *Server) unitsNearby(ctx context.Context, p *principal, inc alarms.Incident) []nearbyUnitJSON {
	units, err := s.deps.Incidents.Units(ctx)
	if err != nil {
		s.logger.Warn("units for incident", "incident", inc.ID, "err", err)
		return []nearbyUnitJSON{}
	}
	sc := s.scopeOf(p)
	out := make([]nearbyUnitJSON, 0, len(units))
	for _, u := range units {
		if !sc.seesUnit(u.Area) {
			continue
		}
		d := -1.0 // unknown: no position on either side
		if (u.Lat != 0 || u.Lon != 0) && (inc.Lat != 0 || inc.Lon != 0) {
			d = roundTo(alarms.Distance(inc.Lat, inc.Lon, u.Lat, u.Lon), 0)
		}
		out = append(out, nearbyUnitJSON{UnitView: u, DistanceM: d})
	}
	slices.SortStableFunc(out, func(a, b nearbyUnitJSON) int {
		switch {
		case a.DistanceM < 0 && b.DistanceM >= 0:
			return 1
		case b.DistanceM < 0 && a.DistanceM >= 0:
			return -1
		case a.DistanceM < b.DistanceM:
			return -1
		case a.DistanceM > b.DistanceM:
			return 1
		}
		return 0
	})
	if len(out) > maxNearbyUnits {
		out = out[:maxNearbyUnits]
	}
	return out
}

// scopedEvents is Events limited to sc. Without an area or a device, a
// partial scope asks for its own area, which the intake widens to the
// areas under it; what comes back is checked against sc once more.
func (s *Server) scopedEvents(ctx context.Context, sc scope, q alarms.EventQuery) (alarms.EventPage, error) {
	if sc.all() {
		return s.deps.Alarms.Events(ctx, q)
	}
	if q.Area == "" && q.Device == "" {
		q.Area = sc.area
	}
	page, err := s.deps.Alarms.Events(ctx, q)
	if err != nil {
		return alarms.EventPage{}, err
	}
	kept := page.Events[:0]
	for _, e := range page.Events {
		if sc.sees(e.Area) {
			kept = append(kept, e)
		}
	}
	page.Events = kept
	return page, nil
}

// deviceAreas maps each configured device to its area.
func (s *Server) deviceAreas(ctx context.Context) (map[string]string, error) {
	list, err := s.deps.Alarms.Devices(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(list))
	for _, d := range list {
		m[d.ID] = d.Area
	}
	return m, nil
}

// sessionAlive says whether the login behind p is still live (always,
// without accounts): event streams end when it is not.
func (s *Server) sessionAlive(p *principal) bool {
	if p.Token != "" {
		return s.tokens.valid(p.Token, time.Now())
	}
	return s.deps.Accounts == nil || s.opSessions.alive(p.Key, time.Now())
}
