package alarms

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// txn gathers changes to incidents made on the engine's goroutine, saves
// them in one write, and only then makes them current and announces them.
// Until commit, the engine's state is untouched: a failed save changes
// nothing.
type txn struct {
	s        *engineState
	now      time.Time
	work     map[string]*work
	order    []string
	opened   []string          // incidents opened in this txn
	byDevice map[string]string // device NUL kind -> incident opened in this txn
	reserved map[string]bool   // units offered in this txn
	msgs     []unitMessage
}

// work is one incident being changed.
type work struct {
	inc  *Incident // the working copy
	prev *Incident // the saved version, nil for a new incident
	mark int       // len(prev.Timeline)
	// extra are changes announced but not kept in the timeline (an event
	// that joined without a new zone or class).
	extra []TimelineEntry
}

type unitMessage struct {
	unit string
	m    DispatchMessage
}

func (s *engineState) begin() *txn {
	return &txn{s: s, now: time.Now(), work: map[string]*work{}, byDevice: map[string]string{}, reserved: map[string]bool{}}
}

// edit returns the working copy of a saved incident, making it on first
// use.
func (t *txn) edit(saved *Incident) *Incident {
	if w := t.work[saved.ID]; w != nil {
		return w.inc
	}
	w := &work{inc: saved.clone(), prev: saved, mark: len(saved.Timeline)}
	t.work[saved.ID] = w
	t.order = append(t.order, saved.ID)
	return w.inc
}

// editID returns the working copy of an incident: open ones from memory,
// others from the store. The error wraps ErrNotFound for an unknown ID.
func (t *txn) editID(ctx context.Context, id string) (*Incident, error) {
	if w := t.work[id]; w != nil {
		return w.inc, nil
	}
	if inc := t.s.open[id]; inc != nil {
		return t.edit(inc), nil
	}
	inc, err := t.s.e.store.Incident(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("incident %s: %w", id, err)
	}
	return t.edit(&inc), nil
}

// add registers a new incident.
func (t *txn) add(inc *Incident) {
	t.work[inc.ID] = &work{inc: inc}
	t.order = append(t.order, inc.ID)
	t.opened = append(t.opened, inc.ID)
	t.byDevice[deviceKey(inc.Device, inc.Kind)] = inc.ID
}

// drop forgets the changes to an incident (it changed nothing).
func (t *txn) drop(id string) {
	delete(t.work, id)
	t.order = slices.DeleteFunc(t.order, func(x string) bool { return x == id })
}

// openFor returns the working copy of the device's open incident of a
// kind, or nil.
func (t *txn) openFor(device string, kind IncidentKind) *Incident {
	key := deviceKey(device, kind)
	if id := t.byDevice[key]; id != "" {
		return t.work[id].inc
	}
	if w := t.s.open[t.s.byDevice[key]]; w != nil {
		if cur := t.work[w.ID]; cur != nil {
			if cur.inc.State.Open() {
				return cur.inc
			}
			return nil
		}
		return t.edit(w)
	}
	return nil
}

// transition changes the state, or returns a *TransitionError.
func (t *txn) transition(inc *Incident, to IncidentState, action, actor, reason, unit string) error {
	if !CanTransition(inc.State, to) {
		return &TransitionError{Incident: inc.ID, Action: action, From: inc.State, To: to}
	}
	inc.Timeline = append(inc.Timeline, TimelineEntry{At: t.now, Action: action, From: inc.State, To: to,
		Actor: actor, Reason: reason, Unit: unit})
	inc.State = to
	return nil
}

// note adds a timeline entry that does not change the state.
func (t *txn) note(inc *Incident, action, actor, reason, unit string) {
	inc.Timeline = append(inc.Timeline, TimelineEntry{At: t.now, Action: action, Actor: actor, Reason: reason, Unit: unit})
}

// escalate flags the incident for the operators (once).
func (t *txn) escalate(inc *Incident, reason string) {
	if inc.Escalated {
		return
	}
	inc.Escalated = true
	inc.EscalatedAt = t.now
	t.note(inc, "escalated", ActorSystem, reason, "")
}

// send queues a message to a unit, sent after the commit.
func (t *txn) send(unit string, m DispatchMessage) {
	if unit != "" {
		t.msgs = append(t.msgs, unitMessage{unit: unit, m: m})
	}
}

// message describes inc for a unit; u (may be nil) gives the distance and
// direction.
func (t *txn) message(typ string, inc *Incident, u *unitLive, reason string) DispatchMessage {
	m := DispatchMessage{Type: typ, Incident: inc.ID, State: inc.State, Class: inc.Class, Priority: inc.Priority,
		Device: inc.Device, DeviceName: inc.DeviceName, Address: inc.Address, Area: inc.Area,
		Lat: inc.Lat, Lon: inc.Lon, Zones: slices.Clone(inc.Zones), Count: inc.Count, Reason: reason, Sent: t.now}
	for _, c := range inc.Cameras {
		m.Cameras = append(m.Cameras, c.ID)
	}
	if u != nil && u.reported {
		m.DistanceM = Distance(u.st.Lat, u.st.Lon, inc.Lat, inc.Lon)
		m.BearingDeg = Bearing(u.st.Lat, u.st.Lon, inc.Lat, inc.Lon)
	}
	if inc.Offer != nil && typ == "offer" {
		m.Deadline = inc.Offer.Deadline
	}
	return m
}

// tellUnits queues an update to the unit offered or committed to inc.
func (t *txn) tellUnits(typ string, inc *Incident, reason string) {
	if inc.Offer != nil {
		t.send(inc.Offer.Unit, t.message(typ, inc, t.s.units[inc.Offer.Unit], reason))
	}
	if inc.Unit != "" && (busyState(inc.State) || t.work[inc.ID] != nil && t.work[inc.ID].prev != nil && busyState(t.work[inc.ID].prev.State)) {
		t.send(inc.Unit, t.message(typ, inc, t.s.units[inc.Unit], reason))
	}
}

// commit saves every changed incident (with the cursor, if not empty),
// then installs and announces them and sends the units' messages. commands
// is the command stream's position to save with them (cluster mode).
func (t *txn) commit(ctx context.Context, cursor, commands string) error {
	s := t.s
	if s.fence != nil {
		return t.commitFenced(ctx, cursor, commands)
	}
	if len(t.order) == 0 {
		if cursor != "" && cursor != s.cursor {
			return s.e.store.SaveIncidents(ctx, nil, cursor)
		}
		return nil
	}
	incs := t.versions()
	t.messageIDs()
	if err := s.e.store.SaveIncidents(ctx, incs, cursor); err != nil {
		return err
	}
	for _, ch := range t.install() {
		ch.Seq = s.nextSeq()
		s.e.changes.publish("", ch)
	}
	for _, um := range t.msgs {
		s.e.sendUnit(um.unit, um.m)
	}
	return nil
}

// versions sets the new versions of the changed incidents and returns
// them.
func (t *txn) versions() []Incident {
	incs := make([]Incident, 0, len(t.order))
	for _, id := range t.order {
		w := t.work[id]
		w.inc.Version = 1
		if w.prev != nil {
			w.inc.Version = w.prev.Version + 1
		}
		w.inc.Updated = t.now
		incs = append(incs, *w.inc)
	}
	return incs
}

// install makes the changed incidents current and returns the changes to
// announce (without Seq), with the units whose status they altered.
func (t *txn) install() []IncidentChange {
	s := t.s
	var out []IncidentChange
	for _, id := range t.order {
		w := t.work[id]
		before := map[string]UnitStatus{}
		for _, u := range unitsOf(w.prev, w.inc) {
			if lu := s.units[u]; lu != nil {
				before[u] = s.status(lu, t.now)
			}
		}
		s.install(w.inc)
		var views []UnitView
		for u, was := range before {
			lu := s.units[u]
			if now := s.status(lu, t.now); now != was {
				views = append(views, s.view(lu, t.now))
				if now == UnitAvailable {
					s.freed = true
				}
			}
		}
		entries := append(slices.Clone(w.inc.Timeline[w.mark:]), w.extra...)
		for i, en := range entries {
			ch := IncidentChange{Incident: w.inc.clone(), Entry: en}
			if i == len(entries)-1 {
				ch.Units = views
			}
			out = append(out, ch)
		}
	}
	return out
}

// uninstall undoes install after a failed save, in reverse order.
func (t *txn) uninstall() {
	s := t.s
	for i := len(t.order) - 1; i >= 0; i-- {
		w := t.work[t.order[i]]
		s.unlink(w.inc)
		if w.prev != nil {
			s.install(w.prev)
			continue
		}
		delete(s.open, w.inc.ID)
		if key := deviceKey(w.inc.Device, w.inc.Kind); s.byDevice[key] == w.inc.ID {
			delete(s.byDevice, key)
		}
	}
}

func (s *engineState) nextSeq() uint64 {
	s.seq++
	return s.seq
}

// unitsOf lists the units referred to by either version of an incident.
func unitsOf(incs ...*Incident) []string {
	var out []string
	for _, inc := range incs {
		if inc == nil {
			continue
		}
		if inc.Offer != nil {
			out = appendNew(out, inc.Offer.Unit)
		}
		if inc.Unit != "" {
			out = appendNew(out, inc.Unit)
		}
	}
	return out
}

// clone deep-copies an incident.
func (inc *Incident) clone() *Incident {
	c := *inc
	c.Classes = slices.Clone(inc.Classes)
	c.Zones = slices.Clone(inc.Zones)
	c.Cameras = slices.Clone(inc.Cameras)
	c.Tried = slices.Clone(inc.Tried)
	c.Timeline = slices.Clone(inc.Timeline)
	if inc.Offer != nil {
		o := *inc.Offer
		c.Offer = &o
	}
	return &c
}

// sendUnit publishes a message on the unit's dispatch topic (QoS 1) and to
// the patrol page's subscribers (through the feed in cluster mode). A
// failure is logged: the offer's deadline moves the incident on anyway.
func (e *Engine) sendUnit(unit string, m DispatchMessage) {
	if e.cl != nil {
		items, err := feedItems(nil, []unitMessage{{unit: unit, m: m}})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			err = e.cl.PublishFeed(ctx, items)
			cancel()
		}
		if err != nil {
			e.logger.Warn("alarms: incident engine: feed", "err", err)
		}
	} else {
		e.toUnits.publish(unit, m)
	}
	data, err := json.Marshal(&m)
	if err != nil {
		return
	}
	if err := e.in.publish(e.in.topics.unitDispatch(unit), data); err != nil {
		e.logger.Warn("alarms: dispatch message not sent", "unit", unit, "type", m.Type, "incident", m.Incident, "err", err)
	}
}

// savepoint is what t was before a request of a group, to undo it.
type savepoint struct {
	incs     map[string]Incident // deep copies of the working copies
	extras   map[string][]TimelineEntry
	order    []string
	opened   []string
	byDevice map[string]string
	reserved map[string]bool
	msgs     int
}

func (t *txn) save() savepoint {
	sp := savepoint{incs: map[string]Incident{}, extras: map[string][]TimelineEntry{},
		order: slices.Clone(t.order), opened: slices.Clone(t.opened),
		byDevice: maps.Clone(t.byDevice), reserved: maps.Clone(t.reserved), msgs: len(t.msgs)}
	for id, w := range t.work {
		sp.incs[id] = *w.inc.clone()
		sp.extras[id] = slices.Clone(w.extra)
	}
	return sp
}

// restore puts t back as it was at sp. Working copies keep their
// identity (a request of the group may hold one).
func (t *txn) restore(sp savepoint) {
	for id, w := range t.work {
		saved, ok := sp.incs[id]
		if !ok {
			delete(t.work, id)
			continue
		}
		*w.inc = saved
		w.extra = sp.extras[id]
	}
	t.order, t.opened = sp.order, sp.opened
	t.byDevice, t.reserved = sp.byDevice, sp.reserved
	t.msgs = t.msgs[:sp.msgs]
}
