package alarms

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// engineState is what the engine's goroutine owns.
type engineState struct {
	e         *Engine
	open      map[string]*Incident // open incidents by ID; never modified in place
	byDevice  map[string]string    // device NUL kind -> open incident ID
	units     map[string]*unitLive
	unitOrder []*unitLive
	cursor    string // the event log's offset applied last
	seq       uint64 // of IncidentChange

	// retry asks for another dispatch round after a store error; freed
	// says a unit may have become available.
	retry, freed bool
	// backoffUntil holds back the deadline timer after a failed save.
	backoffUntil time.Time
	// logCaught limits "cannot read the event log" logs to one per outage.
	logFailing bool

	// Cluster mode: the term's fence, which ends it (endTerm) once a write
	// is fenced out (fenced); the command stream's position applied last;
	// pub publishes the messages the term commits.
	fence    *Fence
	endTerm  context.CancelFunc
	fenced   atomic.Bool // set by the engine's goroutine or the command reader
	commands string
	pub      *outboxPublisher
}

// unitLive is a configured unit and what the engine knows of it.
type unitLive struct {
	cfg      UnitConfig
	st       UnitState
	reported bool   // st holds a report (else the home position)
	offer    string // incident offered to it
	busy     string // incident it is committed to
	// fromLat/fromLon: where it was when it accepted, to notice it moving.
	fromLat, fromLon float64
}

func newEngineState(e *Engine) *engineState {
	s := &engineState{e: e, open: map[string]*Incident{}, byDevice: map[string]string{}, units: map[string]*unitLive{}}
	for _, uc := range e.conf().units {
		u := &unitLive{cfg: uc, st: UnitState{ID: uc.ID, Lat: uc.Lat, Lon: uc.Lon}}
		s.units[uc.ID] = u
		s.unitOrder = append(s.unitOrder, u)
	}
	return s
}

func deviceKey(device string, kind IncidentKind) string { return device + "\x00" + string(kind) }

// busyState reports whether a unit committed to an incident in this state
// is busy with it.
func busyState(s IncidentState) bool {
	return s == StateDispatched || s == StateEnRoute || s == StateOnScene
}

// load reads the units, the open incidents and the cursor.
func (s *engineState) load(ctx context.Context) error {
	st := s.e.store
	units, err := st.Units(ctx)
	if err != nil {
		return fmt.Errorf("load units: %w", err)
	}
	for _, us := range units {
		if u := s.units[us.ID]; u != nil {
			u.st = us
			u.reported = !us.Reported.IsZero()
		}
	}
	return s.reload(ctx)
}

// reload (re)reads the open incidents and the cursor from the store.
func (s *engineState) reload(ctx context.Context) error {
	st := s.e.store
	incs, err := st.OpenIncidents(ctx)
	if err != nil {
		return fmt.Errorf("load open incidents: %w", err)
	}
	cursor, err := st.IncidentCursor(ctx)
	if err != nil {
		return fmt.Errorf("load cursor: %w", err)
	}
	s.open, s.byDevice = map[string]*Incident{}, map[string]string{}
	for _, u := range s.units {
		u.offer, u.busy = "", ""
	}
	for i := range incs {
		inc := &incs[i]
		s.install(inc)
		if u := s.units[inc.Unit]; u != nil && busyState(inc.State) {
			u.fromLat, u.fromLon = u.st.Lat, u.st.Lon
		}
	}
	s.cursor = cursor
	return nil
}

// install makes inc (just saved) the current version of its incident.
func (s *engineState) install(inc *Incident) {
	if old := s.open[inc.ID]; old != nil {
		s.unlink(old)
	}
	key := deviceKey(inc.Device, inc.Kind)
	if inc.State.Open() {
		s.open[inc.ID] = inc
		s.byDevice[key] = inc.ID
		if inc.Offer != nil {
			if u := s.units[inc.Offer.Unit]; u != nil {
				u.offer = inc.ID
			}
		}
		if u := s.units[inc.Unit]; u != nil && busyState(inc.State) {
			u.busy = inc.ID
		}
		return
	}
	delete(s.open, inc.ID)
	if s.byDevice[key] == inc.ID {
		delete(s.byDevice, key)
	}
}

func (s *engineState) unlink(inc *Incident) {
	if inc.Offer != nil {
		if u := s.units[inc.Offer.Unit]; u != nil && u.offer == inc.ID {
			u.offer = ""
		}
	}
	if u := s.units[inc.Unit]; u != nil && u.busy == inc.ID {
		u.busy = ""
	}
}

// status is a unit's status at now.
func (s *engineState) status(u *unitLive, now time.Time) UnitStatus {
	switch {
	case u.busy != "":
		return UnitBusy
	case u.offer != "":
		return UnitOffered
	case u.st.OffDuty:
		return UnitOffDuty
	case !u.reported || now.Sub(u.st.Reported) > u.cfg.Silence:
		return UnitUnavailable
	}
	return UnitAvailable
}

func (s *engineState) view(u *unitLive, now time.Time) UnitView {
	v := UnitView{ID: u.cfg.ID, Name: u.cfg.Name, Kind: u.cfg.Kind, Area: u.cfg.Area,
		Lat: u.st.Lat, Lon: u.st.Lon, Reported: u.st.Reported, Status: s.status(u, now)}
	switch {
	case u.busy != "":
		v.Incident = u.busy
	case u.offer != "":
		v.Incident = u.offer
	}
	return v
}

// offerDue says whether an offer's deadline has passed (or is now),
// outside a backoff after a failed save.
func (s *engineState) offerDue(now time.Time) bool {
	if s.backoffUntil.After(now) {
		return false
	}
	for _, inc := range s.open {
		if inc.Offer != nil && !inc.Offer.Deadline.After(now) {
			return true
		}
	}
	return false
}

// arm sets the deadline timer to the earliest offer deadline.
func (s *engineState) arm(t *time.Timer) {
	var next time.Time
	for _, inc := range s.open {
		if inc.Offer != nil && (next.IsZero() || inc.Offer.Deadline.Before(next)) {
			next = inc.Offer.Deadline
		}
	}
	if next.IsZero() {
		t.Stop()
		return
	}
	if s.backoffUntil.After(next) {
		next = s.backoffUntil
	}
	t.Reset(max(time.Until(next), 0))
}

// storeCtx bounds one round of store work.
func storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, storeTimeout)
}

// catchUp applies the events stored since the cursor, a batch per write.
func (s *engineState) catchUp(ctx context.Context) {
	for range 50 { // then let requests in; the next wake or poll goes on
		if ctx.Err() != nil {
			return
		}
		sctx, cancel := storeCtx(ctx)
		n, err := s.applyBatch(sctx)
		cancel()
		if err != nil {
			if !s.logFailing {
				s.e.logger.Warn("alarms: incident engine: cannot apply events; retrying", "err", err)
				s.logFailing = true
			}
			if errors.Is(err, ErrConflict) {
				if rerr := s.reload(sctx); rerr != nil {
					s.e.logger.Warn("alarms: incident engine: reload", "err", rerr)
				}
			}
			return
		}
		s.logFailing = false
		if n < eventBatch {
			return
		}
		// A long backlog does not hold back the offers' deadlines.
		if s.offerDue(time.Now()) {
			s.expireOffers(ctx)
		}
	}
}

// applyBatch applies one batch of events and dispatches the incidents it
// opened, saving all with the new cursor in one write.
func (s *engineState) applyBatch(ctx context.Context) (int, error) {
	evs, err := s.e.store.EventsAfter(ctx, s.cursor, eventBatch)
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	t := s.begin()
	for i := range evs {
		if err := s.applyEvent(ctx, t, &evs[i]); err != nil {
			return 0, err
		}
	}
	// Dispatch what opened, the most urgent first.
	slices.SortStableFunc(t.opened, func(a, b string) int {
		return t.work[a].inc.Priority - t.work[b].inc.Priority
	})
	for _, id := range t.opened {
		inc := t.work[id].inc
		if inc.Kind != KindResponse {
			continue
		}
		if s.e.conf().tree.Policy(inc.Area) == DispatchManual {
			t.note(inc, "awaiting_operator", ActorSystem, "the area's dispatch policy is manual", "")
			continue
		}
		if _, err := s.offerNext(ctx, t, inc, ActorSystem, false); err != nil {
			return 0, err
		}
	}
	last := evs[len(evs)-1].Offset
	if err := t.commit(ctx, last, ""); err != nil {
		return 0, err
	}
	s.cursor = last
	return len(evs), nil
}

// dispatchWaiting offers the incidents that wait for a free unit, the most
// urgent and then the oldest first.
func (s *engineState) dispatchWaiting(ctx context.Context) {
	s.freed, s.retry = false, false
	var waiting []*Incident
	for _, inc := range s.open {
		if inc.Kind == KindResponse && inc.Offer == nil && (inc.State == StateNew || inc.State == StateAcknowledged) &&
			s.e.conf().tree.Policy(inc.Area) == DispatchAuto {
			waiting = append(waiting, inc)
		}
	}
	if len(waiting) == 0 {
		return
	}
	now := time.Now()
	free := false
	for _, u := range s.unitOrder {
		if s.status(u, now) == UnitAvailable {
			free = true
			break
		}
	}
	slices.SortFunc(waiting, func(a, b *Incident) int {
		if a.Priority != b.Priority {
			return a.Priority - b.Priority
		}
		return a.Created.Compare(b.Created)
	})
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	t := s.begin()
	for _, w := range waiting {
		if !free && w.Escalated {
			continue // nothing to try, and its wait is already on record
		}
		inc := t.edit(w)
		changed, err := s.offerNext(sctx, t, inc, ActorSystem, false)
		if err != nil {
			s.retry = true
			return
		}
		if !changed {
			t.drop(inc.ID)
		}
	}
	if err := t.commit(sctx, "", ""); err != nil {
		s.e.logger.Warn("alarms: incident engine: dispatch", "err", err)
		s.retry = true
	}
}

// expireOffers handles the offers whose deadline passed: the unit counts as
// tried, the incident is escalated and offered to the next candidate.
func (s *engineState) expireOffers(ctx context.Context) {
	now := time.Now()
	var due []*Incident
	for _, inc := range s.open {
		if inc.Offer != nil && !inc.Offer.Deadline.After(now) {
			due = append(due, inc)
		}
	}
	if len(due) == 0 {
		return
	}
	slices.SortFunc(due, func(a, b *Incident) int { return a.Offer.Deadline.Compare(b.Offer.Deadline) })
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	t := s.begin()
	for _, d := range due {
		inc := t.edit(d)
		unit := inc.Offer.Unit
		t.note(inc, "timeout", ActorSystem, fmt.Sprintf("no answer from %s by %s", unit, inc.Offer.Deadline.Format(time.RFC3339)), unit)
		t.send(unit, t.message("withdrawn", inc, nil, "no answer by the deadline"))
		inc.Tried = appendNew(inc.Tried, unit)
		inc.Offer = nil
		t.escalate(inc, "offer to "+unit+" timed out")
		if _, err := s.offerNext(sctx, t, inc, ActorSystem, false); err != nil {
			s.backoffUntil = now.Add(time.Second)
			return
		}
	}
	if err := t.commit(sctx, "", ""); err != nil {
		s.e.logger.Warn("alarms: incident engine: expire offers", "err", err)
		s.backoffUntil = now.Add(time.Second)
		return
	}
	s.backoffUntil = time.Time{}
}

func appendNew(list []string, v string) []string {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}
