package alarms

import (
	"context"
	"errors"
	"fmt"
	"time"
)

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// act applies an operator's action (on the engine's goroutine).
//
// It returns the working copy of the incident (nil on an error that
// leaves nothing to show), whether t keeps its changes, and the error for
// the caller; ActOffer that finds no free unit keeps its changes (the
// escalation) and still returns an error.
func (s *engineState) act(ctx context.Context, t *txn, id string, a Action) (*Incident, bool, error) {
	if a.Actor == "" {
		return nil, false, fmt.Errorf("incident %s: %s: no actor: %w", id, a.Kind, ErrInvalidAction)
	}
	inc, err := t.editID(ctx, id)
	if err != nil {
		return nil, false, err
	}
	var result error // returned after a successful commit
	action := string(a.Kind)
	switch a.Kind {
	case ActAcknowledge:
		switch {
		case inc.State == StateNew:
			if err := t.transition(inc, StateAcknowledged, action, a.Actor, a.Reason, ""); err != nil {
				return nil, false, err
			}
		case inc.State.Open() && !inc.Acknowledged:
			t.note(inc, action, a.Actor, a.Reason, "")
		default:
			return nil, false, &TransitionError{Incident: id, Action: action, From: inc.State, To: StateAcknowledged}
		}
		inc.Acknowledged = true

	case ActOffer, ActReoffer:
		switch {
		case inc.State == StateOffered && a.Kind == ActReoffer:
			unit := inc.Offer.Unit
			t.note(inc, action, a.Actor, a.Reason, unit)
			t.send(unit, t.message("withdrawn", inc, nil, "withdrawn by an operator"))
			inc.Tried = appendNew(inc.Tried, unit)
			inc.Offer = nil
		case inc.State == StateNew || inc.State == StateAcknowledged:
			t.note(inc, action, a.Actor, a.Reason, "")
		default:
			return nil, false, &TransitionError{Incident: id, Action: action, From: inc.State, To: StateOffered}
		}
		if _, err := s.offerNext(ctx, t, inc, a.Actor, true); err != nil {
			return nil, false, err
		}
		if inc.Offer == nil {
			result = fmt.Errorf("incident %s: %s: no free unit up to the root: %w", id, action, ErrUnitUnavailable)
		}

	case ActAssign:
		u := s.units[a.Unit]
		if u == nil {
			return nil, false, fmt.Errorf("incident %s: assign %q: %w", id, a.Unit, ErrUnknownUnit)
		}
		if inc.State != StateNew && inc.State != StateAcknowledged && inc.State != StateOffered {
			return nil, false, &TransitionError{Incident: id, Action: action, From: inc.State, To: StateOffered}
		}
		if inc.Offer != nil && inc.Offer.Unit == a.Unit {
			return inc, false, nil // offered to it already
		}
		if st := s.status(u, t.now); st != UnitAvailable {
			return nil, false, fmt.Errorf("incident %s: assign %s: unit is %s: %w", id, a.Unit, st, ErrUnitUnavailable)
		}
		d := Distance(u.st.Lat, u.st.Lon, inc.Lat, inc.Lon)
		reason := a.Reason
		if reason == "" {
			reason = fmt.Sprintf("assigned by %s, %.0f m", a.Actor, d)
		}
		if err := s.offerTo(t, inc, candidate{u: u, d: d}, u.cfg.Area, action, a.Actor, reason); err != nil {
			return nil, false, err
		}

	case ActCancel:
		if err := t.transition(inc, StateCancelled, action, a.Actor, a.Reason, ""); err != nil {
			return nil, false, err
		}
		t.tellUnits("cancelled", inc, a.Reason)
		inc.Offer = nil

	case ActResolve:
		if !a.Disposition.Valid() {
			return nil, false, fmt.Errorf("incident %s: resolve: disposition %q: %w", id, a.Disposition, ErrInvalidAction)
		}
		if err := t.transition(inc, StateResolved, action, a.Actor, joinReason(string(a.Disposition), a.Reason), ""); err != nil {
			return nil, false, err
		}
		inc.Disposition, inc.Note = a.Disposition, a.Note
		t.tellUnits("resolved", inc, "resolved by an operator: "+string(a.Disposition))
		inc.Offer = nil

	case ActClose:
		if err := t.transition(inc, StateClosed, action, a.Actor, a.Reason, ""); err != nil {
			return nil, false, err
		}

	default:
		return nil, false, fmt.Errorf("incident %s: action %q: %w", id, a.Kind, ErrInvalidAction)
	}
	return inc, true, result
}

func joinReason(a, b string) string {
	if b == "" {
		return a
	}
	return a + ": " + b
}

// afterFailure reloads the open incidents after a conflict with another
// writer.
func (s *engineState) afterFailure(ctx context.Context, err error) {
	if errors.Is(err, ErrConflict) {
		if rerr := s.reload(ctx); rerr != nil {
			s.e.logger.Warn("alarms: incident engine: reload", "err", rerr)
		}
	}
}

// reply applies a unit's answer (on the engine's goroutine).
// Its results are as act's.
func (s *engineState) reply(ctx context.Context, t *txn, unitID, id string, action ReplyAction, disp Disposition, note string) (*Incident, bool, error) {
	u := s.units[unitID]
	if u == nil {
		return nil, false, fmt.Errorf("unit %q: %w", unitID, ErrUnknownUnit)
	}
	inc, err := t.editID(ctx, id)
	if err != nil {
		return nil, false, err
	}
	name := string(action)
	offered := inc.Offer != nil && inc.Offer.Unit == unitID
	committed := inc.Unit == unitID && busyState(inc.State)
	notYours := fmt.Errorf("incident %s: %s from %s: %w", id, name, unitID, ErrNotAssigned)
	switch action {
	case ReplyAccept:
		if inc.Unit == unitID && (busyState(inc.State) || inc.State == StateResolved) {
			return inc, false, nil // a repeated accept
		}
		if !offered {
			return nil, false, notYours
		}
		if err := t.transition(inc, StateDispatched, name, unitID, note, unitID); err != nil {
			return nil, false, err
		}
		inc.Unit, inc.Offer = unitID, nil

	case ReplyDecline:
		if !offered {
			return nil, false, notYours
		}
		t.note(inc, name, unitID, note, unitID)
		inc.Tried = appendNew(inc.Tried, unitID)
		inc.Offer = nil
		t.escalate(inc, "declined by "+unitID)
		if _, err := s.offerNext(ctx, t, inc, ActorSystem, false); err != nil {
			return nil, false, err
		}

	case ReplyEnRoute, ReplyArrived:
		to := StateEnRoute
		if action == ReplyArrived {
			to = StateOnScene
		}
		if inc.Unit == unitID && inc.State == to {
			return inc, false, nil // repeated
		}
		if !committed {
			return nil, false, notYours
		}
		if err := t.transition(inc, to, name, unitID, note, unitID); err != nil {
			return nil, false, err
		}

	case ReplyCleared, ReplyFalseAlarm:
		if disp == "" && action == ReplyFalseAlarm {
			disp = DispUnfounded
		}
		if !disp.Valid() {
			return nil, false, fmt.Errorf("incident %s: %s: disposition %q: %w", id, name, disp, ErrInvalidAction)
		}
		if inc.Unit == unitID && inc.State == StateResolved {
			return inc, false, nil // repeated
		}
		if !committed {
			return nil, false, notYours
		}
		if err := t.transition(inc, StateResolved, name, unitID, joinReason(string(disp), note), unitID); err != nil {
			return nil, false, err
		}
		inc.Disposition, inc.Note = disp, note

	default:
		return nil, false, fmt.Errorf("incident %s: reply %q: %w", id, action, ErrInvalidAction)
	}
	if action == ReplyAccept {
		u.fromLat, u.fromLon = u.st.Lat, u.st.Lon
	}
	return inc, true, nil
}

// position takes a unit's saved report (on the engine's goroutine); it
// reports whether it changed an incident in t (the unit is en route).
func (s *engineState) position(t *txn, unitID string, next UnitState) bool {
	u := s.units[unitID]
	if u == nil {
		return false // removed by a reload meanwhile
	}
	now := time.Now()
	before := s.status(u, now)
	u.st, u.reported = next, true
	after := s.status(u, now)
	if after == UnitAvailable && before != UnitAvailable {
		s.freed = true
	}
	if before != after {
		s.announce(IncidentChange{Units: []UnitView{s.view(u, now)}})
	}
	if inc := s.open[u.busy]; inc != nil && inc.State == StateDispatched && u.movedFar() {
		w := t.edit(inc)
		if w.State == StateDispatched {
			return t.transition(w, StateEnRoute, string(ReplyEnRoute), unitID, "moving (position report)", unitID) == nil
		}
	}
	return false
}
