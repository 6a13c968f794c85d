package viewer

import (
	"context"

	"github.com/skywatch/skywatch/alarms"
)

// IncidentSource is what the operators' incident API and the event stream
// need from the incident engine (alarms.Engine).
//
// Act and Incident fail with an error matching alarms.ErrNotFound for an
// unknown incident; Act with *alarms.TransitionError for an illegal
// transition, alarms.ErrUnknownUnit, alarms.ErrUnitUnavailable or
// alarms.ErrInvalidAction for a request the engine refuses. Unit fails with
// alarms.ErrUnknownUnit. SubscribeIncidents' channel is closed when ctx
// ends or the engine closes; a slow subscriber misses changes
// (IncidentChange.Seq then jumps).
type IncidentSource interface {
	Act(ctx context.Context, incidentID string, a alarms.Action) (alarms.Incident, error)
	Incidents(ctx context.Context, q alarms.IncidentQuery) (alarms.IncidentPage, error)
	Incident(ctx context.Context, id string) (alarms.Incident, error)
	Units(ctx context.Context) ([]alarms.UnitView, error)
	Unit(ctx context.Context, id string) (alarms.UnitView, error)
	SubscribeIncidents(ctx context.Context) <-chan alarms.IncidentChange
	Areas() *alarms.AreaTree
}

// PatrolSource is what the patrol page needs from the incident engine on
// behalf of one logged-in unit: its state, its incident, its answers and
// position reports, what it is sent, and the changes that concern it.
//
// UnitReply fails with alarms.ErrNotAssigned when the incident is neither
// offered nor committed to the unit: that is the server-side check that a
// unit acts only on its own incidents. DispatchMessages' channel is closed
// when ctx ends or the engine closes; a slow reader misses messages.
type PatrolSource interface {
	Unit(ctx context.Context, id string) (alarms.UnitView, error)
	Incident(ctx context.Context, id string) (alarms.Incident, error)
	UnitReply(ctx context.Context, unitID, incidentID string, action alarms.ReplyAction, d alarms.Disposition, note string) (alarms.Incident, error)
	UnitPosition(ctx context.Context, unitID string, lat, lon float64, status alarms.UnitStatus) error
	DispatchMessages(ctx context.Context, unitID string) <-chan alarms.DispatchMessage
	SubscribeIncidents(ctx context.Context) <-chan alarms.IncidentChange
	Areas() *alarms.AreaTree
}

var (
	_ IncidentSource = (*alarms.Engine)(nil)
	_ PatrolSource   = (*alarms.Engine)(nil)
)
