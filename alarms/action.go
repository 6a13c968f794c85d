package alarms

import (
	"errors"
	"time"
)

// Errors of the engine that callers branch on (besides ErrNotFound and
// *TransitionError).
var (
	// ErrUnknownUnit: no unit with that ID is configured.
	ErrUnknownUnit = errors.New("unknown unit")
	// ErrUnitUnavailable: the unit cannot take an offer now (busy,
	// offered, off duty, or silent past its window).
	ErrUnitUnavailable = errors.New("unit is not available")
	// ErrNotAssigned: a unit replied about an incident that is not offered
	// to it nor committed to it.
	ErrNotAssigned = errors.New("incident is not with this unit")
	// ErrInvalidAction: an unknown action, or a missing or unknown
	// disposition.
	ErrInvalidAction = errors.New("invalid action")
	// ErrEngineClosed: the engine is closed (or not started).
	ErrEngineClosed = errors.New("incident engine closed")
	// ErrConflict: the incident was changed by another writer since it was
	// read (IncidentStore.SaveIncidents).
	ErrConflict = errors.New("incident changed by another writer")
)

// ActionKind is an operator's action on an incident.
type ActionKind string

// Operator actions.
const (
	// ActAcknowledge: new -> acknowledged.
	ActAcknowledge ActionKind = "acknowledge"
	// ActOffer offers the incident to the best candidate (as automatic
	// dispatch would; used in areas whose policy is manual). When every
	// candidate already declined, it starts a new round with them.
	ActOffer ActionKind = "offer"
	// ActAssign offers the incident to Action.Unit, whatever the routing
	// (the unit still accepts: only it knows whether it can go).
	ActAssign ActionKind = "assign"
	// ActReoffer withdraws the current offer (the unit counts as tried) and
	// offers it to the next candidate.
	ActReoffer ActionKind = "reoffer"
	// ActCancel cancels an open incident (units are told and freed).
	ActCancel ActionKind = "cancel"
	// ActResolve resolves it with Action.Disposition and Action.Note.
	ActResolve ActionKind = "resolve"
	// ActClose closes a resolved incident.
	ActClose ActionKind = "close"
)

// Action is an operator's request.
type Action struct {
	Kind ActionKind `json:"kind"`
	// Actor is the operator's name (kept in the timeline).
	Actor  string `json:"actor"`
	Reason string `json:"reason,omitempty"`
	// Unit is the unit to assign (ActAssign).
	Unit string `json:"unit,omitempty"`
	// Disposition and Note are for ActResolve.
	Disposition Disposition `json:"disposition,omitempty"`
	Note        string      `json:"note,omitempty"`
}

// ReplyAction is a unit's answer about an incident.
type ReplyAction string

// Unit replies.
const (
	ReplyAccept  ReplyAction = "accept"  // offered -> dispatched; the unit is busy
	ReplyDecline ReplyAction = "decline" // the next candidate gets the offer
	ReplyEnRoute ReplyAction = "en_route"
	ReplyArrived ReplyAction = "arrived" // -> on_scene
	// ReplyCleared resolves with the disposition given (required).
	ReplyCleared ReplyAction = "cleared"
	// ReplyFalseAlarm resolves with the disposition given, or unfounded.
	ReplyFalseAlarm ReplyAction = "false_alarm"
)

// DispatchMessage is what the server sends a unit on
// {prefix}/unit/{id}/dispatch (JSON, QoS 1), and to the patrol page.
type DispatchMessage struct {
	// Type is "offer" (answer by Deadline), "update" (an incident the unit
	// is on changed: more zones, state), "withdrawn" (the offer went
	// elsewhere or timed out), "cancelled", "resolved", or "error" (a reply
	// that was refused, with Reason).
	Type string `json:"type"`
	// ID identifies the message: the incident, its version and the unit
	// ("inc-...:v3:u1", then ":2", ":3" for further messages of one
	// change to one unit). The same message sent again after a failover
	// keeps its ID: a unit drops a message whose ID it has seen. Empty on
	// "error" messages.
	ID         string        `json:"id,omitempty"`
	Incident   string        `json:"incident"`
	State      IncidentState `json:"state,omitempty"`
	Class      Class         `json:"class,omitempty"`
	Priority   int           `json:"priority,omitempty"`
	Device     string        `json:"device,omitempty"`
	DeviceName string        `json:"device_name,omitempty"`
	Address    string        `json:"address,omitempty"`
	Area       string        `json:"area,omitempty"`
	Lat        float64       `json:"lat,omitempty"`
	Lon        float64       `json:"lon,omitempty"`
	Zones      []string      `json:"zones,omitempty"`
	Count      int           `json:"count,omitempty"`
	Cameras    []string      `json:"cameras,omitempty"`
	// DistanceM and BearingDeg are from the unit's last position.
	DistanceM  float64   `json:"distance_m,omitempty"`
	BearingDeg float64   `json:"bearing_deg,omitempty"`
	Deadline   time.Time `json:"deadline,omitzero"`
	Reason     string    `json:"reason,omitempty"`
	Sent       time.Time `json:"sent"`
}

// AllowedActions lists the operator actions Act would accept on inc in its
// current state, in the order a console shows them. Act remains the
// judge: a unit's state (busy, off duty) can still refuse an offer.
func (inc *Incident) AllowedActions() []ActionKind {
	var out []ActionKind
	s := inc.State
	if s == StateNew || (s.Open() && !inc.Acknowledged) {
		out = append(out, ActAcknowledge)
	}
	if s == StateNew || s == StateAcknowledged {
		out = append(out, ActOffer)
	}
	if s == StateNew || s == StateAcknowledged || s == StateOffered {
		out = append(out, ActAssign)
	}
	if s == StateOffered {
		out = append(out, ActReoffer)
	}
	if CanTransition(s, StateResolved) {
		out = append(out, ActResolve)
	}
	if CanTransition(s, StateCancelled) {
		out = append(out, ActCancel)
	}
	if s == StateClosed || !CanTransition(s, StateClosed) {
		return out
	}
	return append(out, ActClose)
}
