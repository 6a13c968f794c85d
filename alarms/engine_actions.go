package alarms

import (
	"context"
	"errors"
	"fmt"
	"time"
)

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// act applies an operator's action (on the engine's goroutine).
func (s *engineState) act(ctx context.Context, id string, a Action) (Incident, error) {
	if a.Actor == "" {
		return Incident{}, fmt.Errorf("incident %s: %s: no actor: %w", id, a.Kind, ErrInvalidAction)
	}
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	t := s.begin()
	inc, err := t.editID(sctx, id)
	if err != nil {
		return Incident{}, err
	}
	var result error // returned after a successful commit
	action := string(a.Kind)
	switch a.Kind {
	case ActAcknowledge:
		switch {
		case inc.State == StateNew:
			if err := t.transition(inc, StateAcknowledged, action, a.Actor, a.Reason, ""); err != nil {
				return Incident{}, err
			}
		case inc.State.Open() && !inc.Acknowledged:
			t.note(inc, action, a.Actor, a.Reason, "")
		default:
			return Incident{}, &TransitionError{Incident: id, Action: action, From: inc.State, To: StateAcknowledged}
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
			return Incident{}, &TransitionError{Incident: id, Action: action, From: inc.State, To: StateOffered}
		}
		if _, err := s.offerNext(sctx, t, inc, a.Actor, true); err != nil {
			return Incident{}, err
		}
		if inc.Offer == nil {
			result = fmt.Errorf("incident %s: %s: no free unit up to the root: %w", id, action, ErrUnitUnavailable)
		}

	case ActAssign:
		u := s.units[a.Unit]
		if u == nil {
			return Incident{}, fmt.Errorf("incident %s: assign %q: %w", id, a.Unit, ErrUnknownUnit)
		}
		if inc.State != StateNew && inc.State != StateAcknowledged && inc.State != StateOffered {
			return Incident{}, &TransitionError{Incident: id, Action: action, From: inc.State, To: StateOffered}
		}
		if inc.Offer != nil && inc.Offer.Unit == a.Unit {
			break // offered to it already
		}
		if st := s.status(u, t.now); st != UnitAvailable {
			return Incident{}, fmt.Errorf("incident %s: assign %s: unit is %s: %w", id, a.Unit, st, ErrUnitUnavailable)
		}
		d := Distance(u.st.Lat, u.st.Lon, inc.Lat, inc.Lon)
		reason := a.Reason
		if reason == "" {
			reason = fmt.Sprintf("assigned by %s, %.0f m", a.Actor, d)
		}
		if err := s.offerTo(t, inc, candidate{u: u, d: d}, u.cfg.Area, action, a.Actor, reason); err != nil {
			return Incident{}, err
		}

	case ActCancel:
		if err := t.transition(inc, StateCancelled, action, a.Actor, a.Reason, ""); err != nil {
			return Incident{}, err
		}
		t.tellUnits("cancelled", inc, a.Reason)
		inc.Offer = nil

	case ActResolve:
		if !a.Disposition.Valid() {
			return Incident{}, fmt.Errorf("incident %s: resolve: disposition %q: %w", id, a.Disposition, ErrInvalidAction)
		}
		if err := t.transition(inc, StateResolved, action, a.Actor, joinReason(string(a.Disposition), a.Reason), ""); err != nil {
			return Incident{}, err
		}
		inc.Disposition, inc.Note = a.Disposition, a.Note
		t.tellUnits("resolved", inc, "resolved by an operator: "+string(a.Disposition))
		inc.Offer = nil

	case ActClose:
		if err := t.transition(inc, StateClosed, action, a.Actor, a.Reason, ""); err != nil {
			return Incident{}, err
		}

	default:
		return Incident{}, fmt.Errorf("incident %s: action %q: %w", id, a.Kind, ErrInvalidAction)
	}
	if err := t.commit(sctx, ""); err != nil {
		s.afterFailure(sctx, err)
		return Incident{}, fmt.Errorf("incident %s: %s: %w", id, action, err)
	}
	return *inc.clone(), result
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
func (s *engineState) reply(ctx context.Context, unitID, id string, action ReplyAction, disp Disposition, note string) (Incident, error) {
	u := s.units[unitID]
	if u == nil {
		return Incident{}, fmt.Errorf("unit %q: %w", unitID, ErrUnknownUnit)
	}
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	t := s.begin()
	inc, err := t.editID(sctx, id)
	if err != nil {
		return Incident{}, err
	}
	name := string(action)
	offered := inc.Offer != nil && inc.Offer.Unit == unitID
	committed := inc.Unit == unitID && busyState(inc.State)
	notYours := fmt.Errorf("incident %s: %s from %s: %w", id, name, unitID, ErrNotAssigned)
	switch action {
	case ReplyAccept:
		if inc.Unit == unitID && (busyState(inc.State) || inc.State == StateResolved) {
			return *inc.clone(), nil // a repeated accept
		}
		if !offered {
			return Incident{}, notYours
		}
		if err := t.transition(inc, StateDispatched, name, unitID, note, unitID); err != nil {
			return Incident{}, err
		}
		inc.Unit, inc.Offer = unitID, nil

	case ReplyDecline:
		if !offered {
			return Incident{}, notYours
		}
		t.note(inc, name, unitID, note, unitID)
		inc.Tried = appendNew(inc.Tried, unitID)
		inc.Offer = nil
		t.escalate(inc, "declined by "+unitID)
		if _, err := s.offerNext(sctx, t, inc, ActorSystem, false); err != nil {
			return Incident{}, err
		}

	case ReplyEnRoute, ReplyArrived:
		to := StateEnRoute
		if action == ReplyArrived {
			to = StateOnScene
		}
		if inc.Unit == unitID && inc.State == to {
			return *inc.clone(), nil // repeated
		}
		if !committed {
			return Incident{}, notYours
		}
		if err := t.transition(inc, to, name, unitID, note, unitID); err != nil {
			return Incident{}, err
		}

	case ReplyCleared, ReplyFalseAlarm:
		if disp == "" && action == ReplyFalseAlarm {
			disp = DispUnfounded
		}
		if !disp.Valid() {
			return Incident{}, fmt.Errorf("incident %s: %s: disposition %q: %w", id, name, disp, ErrInvalidAction)
		}
		if inc.Unit == unitID && inc.State == StateResolved {
			return *inc.clone(), nil // repeated
		}
		if !committed {
			return Incident{}, notYours
		}
		if err := t.transition(inc, StateResolved, name, unitID, joinReason(string(disp), note), unitID); err != nil {
			return Incident{}, err
		}
		inc.Disposition, inc.Note = disp, note

	default:
		return Incident{}, fmt.Errorf("incident %s: reply %q: %w", id, action, ErrInvalidAction)
	}
	if action == ReplyAccept {
		u.fromLat, u.fromLon = u.st.Lat, u.st.Lon
	}
	if err := t.commit(sctx, ""); err != nil {
		s.afterFailure(sctx, err)
		return Incident{}, fmt.Errorf("incident %s: %s: %w", id, name, err)
	}
	return *inc.clone(), nil
}

// position takes a unit's saved report (on the engine's goroutine).
func (s *engineState) position(ctx context.Context, unitID string, next UnitState) {
	u := s.units[unitID]
	now := time.Now()
	before := s.status(u, now)
	u.st, u.reported = next, true
	after := s.status(u, now)
	if after == UnitAvailable && before != UnitAvailable {
		s.freed = true
	}
	if inc := s.open[u.busy]; inc != nil && inc.State == StateDispatched && u.movedFar() {
		sctx, cancel := storeCtx(ctx)
		defer cancel()
		t := s.begin()
		w := t.edit(inc)
		if err := t.transition(w, StateEnRoute, string(ReplyEnRoute), unitID, "moving (position report)", unitID); err == nil {
			if err := t.commit(sctx, ""); err != nil {
				s.afterFailure(sctx, err)
				s.e.logger.Warn("alarms: incident engine: en route", "incident", inc.ID, "err", err)
			}
		}
	}
	if before != after {
		s.e.changes.publish("", IncidentChange{Seq: s.nextSeq(), Units: []UnitView{s.view(u, now)}})
	}
}
