package alarms

// Incidents and dispatch: summary of the engine's API.
//
// An Engine turns stored alarm events into incidents, routes each to a
// patrol unit over MQTT and follows it to the end. Build it on an intake
// before the intake starts, start it after:
//
//	in, _ := alarms.NewIntake(cfg, store, decoders, logger)
//	eng, _ := alarms.NewEngine(in, store /* an IncidentStore */, alarms.EngineOptions{Cameras: sites, Logger: logger})
//	in.Start(ctx); eng.Start(ctx)
//	defer in.Close(); defer eng.Close() // the engine first
//
// Operators (the viewer calls these; actor is the operator's name):
//
//	eng.Act(ctx, incidentID, alarms.Action{Kind: alarms.ActAcknowledge|ActOffer|ActAssign|ActReoffer|ActCancel|ActResolve|ActClose,
//	        Actor: "alice", Reason: "...", Unit: "u1" /* assign */, Disposition: alarms.DispGenuine, Note: "..." /* resolve */}) (Incident, error)
//
// Units (MQTT {prefix}/unit/{id}/pos and /reply call these; so may the patrol page):
//
//	eng.UnitPosition(ctx, unitID, lat, lon, alarms.UnitAvailable|UnitOffDuty|"") error
//	eng.UnitReply(ctx, unitID, incidentID, alarms.ReplyAccept|ReplyDecline|ReplyEnRoute|ReplyArrived|ReplyCleared|ReplyFalseAlarm, disposition, note) (Incident, error)
//
// Reading (the viewer's API and SSE stream):
//
//	eng.Incidents(ctx, alarms.IncidentQuery{Area, States, Open, Class, Kind, Since, Until, Limit, Cursor}) (IncidentPage, error)
//	eng.Incident(ctx, id) (Incident, error)            // with its timeline
//	eng.Units(ctx) ([]UnitView, error); eng.Unit(ctx, id) (UnitView, error)
//	eng.Areas() *AreaTree                               // Contains, Path, Subtree, Locate
//	eng.SubscribeIncidents(ctx) <-chan IncidentChange  // every change, in order (Seq)
//	eng.DispatchMessages(ctx, unitID) <-chan DispatchMessage // what a unit is sent, for the patrol page
//
// Other parts of the server (cmd/skywatch passes the recorder's notices):
//
//	eng.Note(ctx, incidentID, "evidence", reason) (Incident, error)    // a system line on the timeline
//	eng.CameraTrouble(ctx, cameraID, reason) (Incident, error)         // a camera's maintenance ticket
//	eng.CameraRestored(ctx, cameraID, reason) (Incident, error)        // its fault is over (a restore)
//
// Errors callers branch on: ErrNotFound (unknown incident), ErrUnknownUnit,
// ErrUnitUnavailable (assign to a busy, offered, off-duty or silent unit),
// ErrNotAssigned (a reply from a unit the incident is not with),
// ErrInvalidAction (unknown action, bad disposition), *TransitionError
// (errors.As: From, To), ErrConflict (a concurrent writer), ErrEngineClosed.
//
// States: new > acknowledged > offered > dispatched > en_route > on_scene >
// resolved > closed, and cancelled. See allowed for the legal transitions.
// A unit's accept makes the incident dispatched (the unit is busy); a
// position report from it more than enRouteDistance from where it accepted,
// or an explicit en_route reply, makes it en_route; arrived makes it
// on_scene; cleared (with a disposition) makes it resolved; an operator
// closes it.
//
// Crash safety: the engine consumes the stored event log from a persisted
// cursor (IncidentStore.EventsAfter) instead of being called by the
// pipeline. A stored event is therefore never missed, whatever the moment
// of a crash, with no change to the intake's store-then-acknowledge path:
// the intake wakes the engine when it stores an event (and the engine
// polls as well). Each batch of events is applied in memory and saved with
// the new cursor in one atomic write (SaveIncidents), so an event is
// applied exactly once: a crash before the write replays the batch, a crash
// after it does not. Incident IDs derive from the opening event's key, so
// even a replay could not open a second incident for it. The alternative,
// calling the engine from the pipeline before the acknowledgement, would
// have needed a per-event "applied" record and would miss events stored by
// the supervisor whose device state was saved before the crash.

import (
	"fmt"
	"slices"
	"time"
)

// IncidentKind tells incidents that need a patrol from maintenance tickets.
type IncidentKind string

// Incident kinds.
const (
	KindResponse    IncidentKind = "response"
	KindMaintenance IncidentKind = "maintenance"
)

// IncidentState is where an incident is in its life.
type IncidentState string

// Incident states.
const (
	StateNew          IncidentState = "new"
	StateAcknowledged IncidentState = "acknowledged" // an operator has seen it
	StateOffered      IncidentState = "offered"      // an offer waits for a unit's answer
	StateDispatched   IncidentState = "dispatched"   // a unit accepted and is busy with it
	StateEnRoute      IncidentState = "en_route"     // the unit is moving there
	StateOnScene      IncidentState = "on_scene"     // the unit arrived
	StateResolved     IncidentState = "resolved"     // cleared, with a disposition
	StateClosed       IncidentState = "closed"       // an operator closed it
	StateCancelled    IncidentState = "cancelled"    // an operator cancelled it
)

// Open reports whether the incident is still being worked on: a device's
// further events join an open incident.
func (s IncidentState) Open() bool {
	return s != StateResolved && s != StateClosed && s != StateCancelled
}

// IncidentStates lists every state in order.
func IncidentStates() []IncidentState {
	return []IncidentState{StateNew, StateAcknowledged, StateOffered, StateDispatched, StateEnRoute,
		StateOnScene, StateResolved, StateClosed, StateCancelled}
}

// allowedFrom lists the legal transitions from a state. Offered goes back
// to new or acknowledged when a unit declines and no other is free.
func allowedFrom(from IncidentState) []IncidentState {
	switch from {
	case StateNew:
		return []IncidentState{StateAcknowledged, StateOffered, StateResolved, StateCancelled}
	case StateAcknowledged:
		return []IncidentState{StateOffered, StateResolved, StateCancelled}
	case StateOffered:
		return []IncidentState{StateOffered, StateNew, StateAcknowledged, StateDispatched, StateEnRoute, StateResolved, StateCancelled}
	case StateDispatched:
		return []IncidentState{StateEnRoute, StateOnScene, StateResolved, StateCancelled}
	case StateEnRoute:
		return []IncidentState{StateOnScene, StateResolved, StateCancelled}
	case StateOnScene:
		return []IncidentState{StateResolved, StateCancelled}
	case StateResolved:
		return []IncidentState{StateClosed}
	}
	return nil
}

// CanTransition reports whether from -> to is legal.
func CanTransition(from, to IncidentState) bool {
	return slices.Contains(allowedFrom(from), to)
}

// Disposition is how a resolved incident turned out.
type Disposition string

// Dispositions.
const (
	DispGenuine        Disposition = "genuine"
	DispFalseEquipment Disposition = "false_equipment"
	DispFalseUser      Disposition = "false_user"
	DispUnfounded      Disposition = "unfounded"
	DispDuplicate      Disposition = "duplicate"
)

// Valid reports whether d is a known disposition.
func (d Disposition) Valid() bool {
	switch d {
	case DispGenuine, DispFalseEquipment, DispFalseUser, DispUnfounded, DispDuplicate:
		return true
	}
	return false
}

// ActorSystem is the actor of the engine's own changes.
const ActorSystem = "system"

// Incident is an alarm being handled (or a maintenance ticket).
type Incident struct {
	ID       string        `json:"id"`
	Kind     IncidentKind  `json:"kind"`
	State    IncidentState `json:"state"`
	Priority int           `json:"priority"` // 1 the most urgent
	// Class is the class of the event that opened it; Classes every class
	// that joined, in order of arrival.
	Class   Class   `json:"class"`
	Classes []Class `json:"classes"`
	Device  string  `json:"device"`
	// DeviceName and Address describe the place for operators and units.
	DeviceName string  `json:"device_name,omitempty"`
	Address    string  `json:"address,omitempty"`
	Area       string  `json:"area,omitempty"`
	Lat        float64 `json:"lat"`
	Lon        float64 `json:"lon"`
	// Zones lists every zone that fired, in order of first firing.
	Zones []string `json:"zones,omitempty"`
	// Count is how many events joined (the opening one included); Restores
	// how many restores arrived while it was open.
	Count    int       `json:"count"`
	Restores int       `json:"restores,omitempty"`
	First    time.Time `json:"first"` // ReceivedAt of the first event
	Last     time.Time `json:"last"`  // ReceivedAt of the latest event
	// Cameras that can see the place: configured links first, then the
	// nearest within the routing radius.
	Cameras []IncidentCamera `json:"cameras,omitempty"`

	// Offer is the offer waiting for an answer (state offered).
	Offer *Offer `json:"offer,omitempty"`
	// Unit is the unit committed to the incident (dispatched and after).
	Unit string `json:"unit,omitempty"`
	// Tried lists the units offered this incident that declined or did not
	// answer; automatic dispatch does not offer it to them again.
	Tried []string `json:"tried,omitempty"`
	// Escalated is set when an offer was declined or timed out, or no unit
	// was free: operators must look at it.
	Escalated   bool      `json:"escalated,omitempty"`
	EscalatedAt time.Time `json:"escalated_at,omitzero"`
	// Acknowledged is set once an operator acknowledged it (it stays set
	// when the state moves on).
	Acknowledged bool `json:"acknowledged,omitempty"`

	Disposition Disposition `json:"disposition,omitempty"`
	Note        string      `json:"note,omitempty"`

	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// Version counts saves; the store refuses a save whose Version is not
	// the stored one plus 1 (ErrConflict).
	Version int64 `json:"version"`
	// Timeline lists every change, oldest first.
	Timeline []TimelineEntry `json:"timeline"`
}

// Offer is an offer of an incident to a unit.
type Offer struct {
	Unit      string    `json:"unit"`
	Sent      time.Time `json:"sent"`
	Deadline  time.Time `json:"deadline"`
	DistanceM float64   `json:"distance_m"`
	// Area is the level of the tree the unit was found at (the incident's
	// area, or an ancestor when that had no free unit).
	Area string `json:"area,omitempty"`
}

// TimelineEntry is one change of an incident: who, when, why.
type TimelineEntry struct {
	At time.Time `json:"at"`
	// Action is what happened: opened, joined, restore, acknowledge, offer,
	// assign, reoffer, accept, decline, timeout, escalated, en_route,
	// arrived, cleared, false_alarm, resolve, cancel, close, no_unit, event.
	Action string `json:"action"`
	// From and To are set when the state changed.
	From IncidentState `json:"from,omitempty"`
	To   IncidentState `json:"to,omitempty"`
	// Actor is an operator's name, a unit's ID, or "system".
	Actor  string `json:"actor"`
	Reason string `json:"reason,omitempty"`
	Unit   string `json:"unit,omitempty"`
	// Event is the key (device/id) of the event behind the entry.
	Event string `json:"event,omitempty"`
}

// TransitionError is returned for an illegal state change.
type TransitionError struct {
	Incident string
	Action   string
	From, To IncidentState
}

func (e *TransitionError) Error() string {
	if e.To == "" {
		return fmt.Sprintf("incident %s: %s is not possible in state %s", e.Incident, e.Action, e.From)
	}
	return fmt.Sprintf("incident %s: %s: illegal transition from %s to %s", e.Incident, e.Action, e.From, e.To)
}

// IncidentQuery filters and pages incidents, newest (by Created) first.
// Zero fields do not filter.
type IncidentQuery struct {
	// Area filters to an area and everything under it (the engine resolves
	// it into Areas).
	Area string
	// Areas, set by the engine for the store, matches any of these exact
	// areas.
	Areas  []string
	States []IncidentState
	// Open keeps only incidents not resolved, closed or cancelled.
	Open  bool
	Class Class
	Kind  IncidentKind
	// Since and Until bound Created: Since <= Created < Until.
	Since, Until time.Time
	// Limit is the page size; 0 means 100, the maximum is 1000.
	Limit int
	// Cursor continues a previous page (IncidentPage.Next).
	Cursor string
}

// IncidentPage is one page of incidents. Next is empty on the last page; a
// page may be shorter than Limit while Next is set.
type IncidentPage struct {
	Incidents []Incident `json:"incidents"`
	Next      string     `json:"next,omitempty"`
}

// IncidentChange is pushed to subscribers after every change has been
// saved, in order. Seq increases by one per change of this engine's life;
// a gap means the subscriber was too slow and missed changes (it should
// reload from Incidents).
type IncidentChange struct {
	Seq uint64 `json:"seq"`
	// Incident is the incident after the change, with its timeline; nil
	// for a change of a unit only.
	Incident *Incident `json:"incident,omitempty"`
	// Entry is the timeline entry that describes the change (zero for a
	// unit's change).
	Entry TimelineEntry `json:"entry,omitzero"`
	// Units lists the units whose status the change altered.
	Units []UnitView `json:"units,omitempty"`
}
