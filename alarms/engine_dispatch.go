package alarms

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// candidate is a unit that could take an offer.
type candidate struct {
	u *unitLive
	d float64 // metres from the incident
}

// candidates returns the free units for inc, best first, and the level of
// the tree they were found at: the units of the incident's area (and
// below) first; when none is free, those of its parent, and so on to the
// root. Units in exclude, and units offered earlier in t, are skipped.
//
// Within a level, units are ranked by straight-line distance, except that
// units of a kind the routing prefers for the incident's class come first
// when they are at most PreferMarginM farther than the nearest candidate
// (in the order of preference, then by distance).
func (s *engineState) candidates(ctx context.Context, t *txn, inc *Incident, exclude []string) (string, []candidate, error) {
	near, err := s.e.store.NearestUnits(ctx, inc.Lat, inc.Lon, 0, 0)
	if err != nil {
		return "", nil, fmt.Errorf("nearest units: %w", err)
	}
	levels := s.e.conf().tree.Path(inc.Area)
	if len(levels) == 0 {
		levels = []string{""} // no tree, or an area outside it: every unit
	}
	for _, level := range levels {
		var list []candidate
		for _, nd := range near {
			u := s.units[nd.ID]
			if u == nil || t.reserved[u.cfg.ID] || slices.Contains(exclude, u.cfg.ID) ||
				s.status(u, t.now) != UnitAvailable {
				continue
			}
			if level != "" && !s.e.conf().tree.Contains(level, u.cfg.Area) {
				continue
			}
			list = append(list, candidate{u: u, d: nd.DistanceM})
		}
		if len(list) > 0 {
			return level, s.rank(list, inc.Class), nil
		}
	}
	return "", nil, nil
}

// rank orders candidates (given nearest first) by the routing's kind
// preferences for class within the margin, then by distance.
func (s *engineState) rank(list []candidate, class Class) []candidate {
	prefs := s.e.conf().routing.Prefer[class]
	if len(prefs) == 0 {
		return list
	}
	limit := list[0].d + s.e.conf().routing.PreferMarginM
	rankOf := func(c candidate) int {
		if c.d > limit {
			return len(prefs)
		}
		if i := slices.Index(prefs, c.u.cfg.Kind); i >= 0 {
			return i
		}
		return len(prefs)
	}
	slices.SortStableFunc(list, func(a, b candidate) int { return rankOf(a) - rankOf(b) })
	return list
}

// waitState is where an incident waits for a unit.
func waitState(inc *Incident) IncidentState {
	if inc.Acknowledged {
		return StateAcknowledged
	}
	return StateNew
}

// offerNext offers inc to its best candidate that has not declined it
// yet. With newRound, when every free unit has declined already, they are
// tried again. When no unit is free up to the root, inc waits (state new
// or acknowledged), escalated; it is tried again when a unit becomes
// available. It reports whether inc changed.
func (s *engineState) offerNext(ctx context.Context, t *txn, inc *Incident, actor string, newRound bool) (bool, error) {
	level, list, err := s.candidates(ctx, t, inc, inc.Tried)
	if err != nil {
		return false, err
	}
	if len(list) == 0 && newRound && len(inc.Tried) > 0 {
		if level, list, err = s.candidates(ctx, t, inc, nil); err != nil {
			return false, err
		}
		if len(list) > 0 {
			t.note(inc, "new_round", actor, "every free unit had declined: asking them again", "")
			inc.Tried = nil
		}
	}
	if len(list) == 0 {
		changed := false
		if inc.State == StateOffered {
			if err := t.transition(inc, waitState(inc), "no_unit", ActorSystem, "no free unit up to the root", ""); err != nil {
				return false, err
			}
			changed = true
		}
		if !inc.Escalated {
			t.escalate(inc, "no free unit")
			changed = true
		}
		if n := len(inc.Timeline); n == 0 || inc.Timeline[n-1].Action != "no_unit" {
			t.note(inc, "no_unit", ActorSystem, "no free unit up to the root; waiting for one", "")
			changed = true
		}
		return changed, nil
	}
	c := list[0]
	reason := fmt.Sprintf("nearest free unit of %s, %.0f m", level, c.d)
	if level == "" {
		reason = fmt.Sprintf("nearest free unit, %.0f m", c.d)
	}
	if level != "" && level != inc.Area {
		reason += " (none free in " + inc.Area + ")"
	}
	return true, s.offerTo(t, inc, c, level, "offer", actor, reason)
}

// offerTo offers inc to one unit.
func (s *engineState) offerTo(t *txn, inc *Incident, c candidate, level, action, actor, reason string) error {
	if inc.Offer != nil && inc.Offer.Unit != c.u.cfg.ID {
		t.send(inc.Offer.Unit, t.message("withdrawn", inc, nil, "offered to another unit"))
	}
	if err := t.transition(inc, StateOffered, action, actor, reason, c.u.cfg.ID); err != nil {
		return err
	}
	inc.Offer = &Offer{Unit: c.u.cfg.ID, Sent: t.now, Deadline: t.now.Add(s.e.conf().routing.OfferTimeout),
		DistanceM: c.d, Area: level}
	t.reserved[c.u.cfg.ID] = true
	t.send(c.u.cfg.ID, t.message("offer", inc, c.u, reason))
	return nil
}

// applyEvent opens, joins or annotates incidents for one stored event.
func (s *engineState) applyEvent(ctx context.Context, t *txn, ev *Event) error {
	r := &s.e.conf().routing
	if r.ReplayMaxAge > 0 && t.now.Sub(ev.ReceivedAt) > r.ReplayMaxAge {
		return nil
	}
	switch {
	case slices.Contains(r.Respond, ev.Class):
		if err := s.applyTo(ctx, t, ev, KindResponse, ev.Class); err != nil {
			return err
		}
	case slices.Contains(r.Maintenance, ev.Class):
		if err := s.applyTo(ctx, t, ev, KindMaintenance, ev.Class); err != nil {
			return err
		}
	default:
		// arm, disarm, test: worth a line on an open incident's timeline.
		if inc := t.openFor(ev.Device, KindResponse); inc != nil && len(inc.Timeline) < maxTimeline {
			t.note(inc, "event", ActorSystem, describe(ev), "")
			inc.Timeline[len(inc.Timeline)-1].Event = ev.Key()
		}
	}
	if ev.BatteryLow && ev.Qualifier == QualifierNew && !slices.Contains(r.Maintenance, ev.Class) {
		return s.applyTo(ctx, t, ev, KindMaintenance, ClassTrouble)
	}
	return nil
}

// describe is a line about an event for a timeline.
func describe(ev *Event) string {
	var b strings.Builder
	b.WriteString(string(ev.Class))
	if ev.Qualifier == QualifierRestore {
		b.WriteString(" restore")
	}
	if ev.Zone != "" {
		b.WriteString(" zone " + ev.Zone)
	}
	if ev.Code != "" {
		b.WriteString(" code " + ev.Code)
	}
	if ev.Text != "" {
		b.WriteString(": " + ev.Text)
	}
	if ev.BatteryLow {
		b.WriteString(" (battery low)")
	}
	return b.String()
}

// applyTo applies an event to the device's incident of a kind.
func (s *engineState) applyTo(ctx context.Context, t *txn, ev *Event, kind IncidentKind, class Class) error {
	inc := t.openFor(ev.Device, kind)
	if ev.Qualifier == QualifierRestore {
		// A restore never closes an incident; it is recorded.
		if inc != nil {
			inc.Restores++
			if len(inc.Timeline) < maxTimeline {
				t.note(inc, "restore", ActorSystem, describe(ev), "")
				inc.Timeline[len(inc.Timeline)-1].Event = ev.Key()
			}
		}
		return nil
	}
	if inc != nil {
		s.join(t, inc, ev, class)
		return nil
	}
	return s.openIncident(ctx, t, ev, kind, class)
}

// join adds an event to an open incident.
func (s *engineState) join(t *txn, inc *Incident, ev *Event, class Class) {
	inc.Count++
	if ev.ReceivedAt.After(inc.Last) {
		inc.Last = ev.ReceivedAt
	}
	var news []string
	if ev.Zone != "" && !slices.Contains(inc.Zones, ev.Zone) {
		inc.Zones = append(inc.Zones, ev.Zone)
		news = append(news, "zone "+ev.Zone+" fired")
	}
	if !slices.Contains(inc.Classes, class) {
		inc.Classes = append(inc.Classes, class)
		news = append(news, string(class)+" joined")
		if p := s.e.conf().routing.priority(class); p < inc.Priority {
			inc.Priority = p
		}
	}
	if len(news) == 0 || len(inc.Timeline) >= maxTimeline {
		w := t.work[inc.ID]
		w.extra = append(w.extra, TimelineEntry{At: t.now, Action: "joined", Actor: ActorSystem, Reason: describe(ev), Event: ev.Key()})
		return
	}
	reason := strings.Join(news, ", ")
	t.note(inc, "joined", ActorSystem, reason, "")
	inc.Timeline[len(inc.Timeline)-1].Event = ev.Key()
	t.tellUnits("update", inc, reason)
}

// incidentID derives an incident's ID from the event that opened it, so
// that applying the event again cannot open a second incident.
func incidentID(ev *Event, kind IncidentKind) string {
	id := contentID([]byte(ev.Key()+"\x00"+string(kind)), 0)
	return "inc-" + ev.ReceivedAt.UTC().Format("20060102") + "-" + id[2:18]
}

// openIncident opens an incident for ev, unless it exists already (an
// event applied again after the cursor was lost).
func (s *engineState) openIncident(ctx context.Context, t *txn, ev *Event, kind IncidentKind, class Class) error {
	id := incidentID(ev, kind)
	if _, err := s.e.store.Incident(ctx, id); err == nil {
		return nil
	} else if !isNotFound(err) {
		return err
	}
	inc := &Incident{ID: id, Kind: kind, State: StateNew, Priority: s.e.conf().routing.priority(class),
		Class: class, Classes: []Class{class}, Device: ev.Device, Area: ev.Area, Count: 1,
		First: ev.ReceivedAt, Last: ev.ReceivedAt, Created: ev.ReceivedAt}
	if d := s.e.in.live().devices[ev.Device]; d != nil {
		c := &d.spec().cfg
		inc.DeviceName, inc.Address, inc.Lat, inc.Lon = c.Name, c.Address, c.Lat, c.Lon
		if inc.Area == "" {
			inc.Area = c.Area
		}
		inc.Cameras = s.cameras(*c)
	}
	if inc.Area == "" {
		inc.Area, _ = s.e.conf().tree.Locate(inc.Lat, inc.Lon)
	}
	if ev.Zone != "" {
		inc.Zones = []string{ev.Zone}
	}
	reason := describe(ev) + " from " + ev.Device
	if kind == KindMaintenance {
		reason = "maintenance: " + reason
	}
	inc.Timeline = []TimelineEntry{{At: t.now, Action: "opened", To: StateNew, Actor: ActorSystem, Reason: reason, Event: ev.Key()}}
	t.add(inc)
	return nil
}

// cameras links cameras to a device's incidents: its configured cameras,
// then the nearest within the radius, at most MaxCameras of those.
func (s *engineState) cameras(d DeviceConfig) []IncidentCamera {
	r := &s.e.conf().routing
	var out []IncidentCamera
	for _, id := range d.Cameras {
		c := IncidentCamera{ID: id, Linked: true}
		for _, site := range s.e.conf().cameras {
			if site.ID == id {
				c.DistanceM = Distance(d.Lat, d.Lon, site.Lat, site.Lon)
			}
		}
		out = append(out, c)
	}
	var near []IncidentCamera
	for _, site := range s.e.conf().cameras {
		if slices.Contains(d.Cameras, site.ID) {
			continue
		}
		if dist := Distance(d.Lat, d.Lon, site.Lat, site.Lon); dist <= r.CameraRadiusM {
			near = append(near, IncidentCamera{ID: site.ID, DistanceM: dist})
		}
	}
	slices.SortStableFunc(near, func(a, b IncidentCamera) int {
		switch {
		case a.DistanceM < b.DistanceM:
			return -1
		case a.DistanceM > b.DistanceM:
			return 1
		}
		return 0
	})
	if len(near) > r.MaxCameras {
		near = near[:r.MaxCameras]
	}
	return append(out, near...)
}

// movedFar reports whether a committed unit has left the place where it
// accepted.
func (u *unitLive) movedFar() bool {
	return Distance(u.fromLat, u.fromLon, u.st.Lat, u.st.Lon) > enRouteDistance
}
