package alarms

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// EngineOptions are the engine's inputs beside the intake and the store.
type EngineOptions struct {
	// Cameras are the camera sites to link to incidents by distance.
	Cameras []CameraSite
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Poll is how often the engine reads the event log without being woken
	// (a safety net: the intake wakes it on every stored event). It
	// defaults to 1 s.
	Poll time.Duration
}

// Engine turns stored events into incidents and dispatches them to patrol
// units. One goroutine owns its state (open incidents, units, offer
// deadlines); the methods ask it through a channel. See the summary at the
// top of incident.go.
type Engine struct {
	in    *Intake
	store IncidentStore
	opts  EngineOptions
	tree  *AreaTree
}

// NewEngine builds the engine of an intake that has not started yet (the
// intake then hands it the units' MQTT messages and wakes it on every
// stored event). store is usually the intake's store. It starts nothing.
func NewEngine(in *Intake, store IncidentStore, opts EngineOptions) (*Engine, error) {
	return nil, errors.New("alarms: engine: not implemented yet")
}

// Start loads the open incidents and the units, re-arms offer deadlines
// (one already passed fires at once), catches up with the event log, and
// starts the engine's goroutine. Start the intake first: offers are
// published through its broker. ctx bounds the start only.
func (e *Engine) Start(ctx context.Context) error { return ErrEngineClosed }

// Close stops the engine and waits for its goroutine; subscriptions are
// closed. It is idempotent. Close the engine before the intake.
func (e *Engine) Close() error { return nil }

// Areas returns the jurisdiction tree.
func (e *Engine) Areas() *AreaTree { return e.tree }

// Act applies an operator's action and returns the incident after it.
func (e *Engine) Act(ctx context.Context, incidentID string, a Action) (Incident, error) {
	return Incident{}, ErrEngineClosed
}

// UnitReply applies a unit's answer about an incident and returns the
// incident after it.
func (e *Engine) UnitReply(ctx context.Context, unitID, incidentID string, action ReplyAction, disposition Disposition, note string) (Incident, error) {
	return Incident{}, ErrEngineClosed
}

// UnitPosition records a unit's position report. status is
// UnitAvailable, UnitOffDuty, or "" (keep the last said).
func (e *Engine) UnitPosition(ctx context.Context, unitID string, lat, lon float64, status UnitStatus) error {
	return ErrEngineClosed
}

// Incidents lists incidents (from the store) matching q.
func (e *Engine) Incidents(ctx context.Context, q IncidentQuery) (IncidentPage, error) {
	return IncidentPage{}, ErrEngineClosed
}

// Incident returns one incident with its timeline, or ErrNotFound.
func (e *Engine) Incident(ctx context.Context, id string) (Incident, error) {
	return Incident{}, ErrEngineClosed
}

// Units lists the configured units with their live state, in config
// order.
func (e *Engine) Units(ctx context.Context) ([]UnitView, error) { return nil, ErrEngineClosed }

// Unit returns one unit, or ErrUnknownUnit.
func (e *Engine) Unit(ctx context.Context, id string) (UnitView, error) {
	return UnitView{}, ErrEngineClosed
}

// SubscribeIncidents returns a channel of changes as they are saved, in
// order, until ctx ends or the engine closes (then it is closed). A
// subscriber that does not keep up misses changes: IncidentChange.Seq then
// jumps, and it should reload what it shows.
func (e *Engine) SubscribeIncidents(ctx context.Context) <-chan IncidentChange {
	ch := make(chan IncidentChange)
	close(ch)
	return ch
}

// DispatchMessages returns a channel of the messages sent to one unit (as
// on its MQTT dispatch topic), for the patrol page, until ctx ends or the
// engine closes. A slow reader misses messages.
func (e *Engine) DispatchMessages(ctx context.Context, unitID string) <-chan DispatchMessage {
	ch := make(chan DispatchMessage)
	close(ch)
	return ch
}
