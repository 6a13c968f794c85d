package alarms

import "context"

// IncidentStore is the storage the incident engine needs, beside Store.
// Both implementations (redisstore, boltstore) provide it and pass the
// conformance suite in storetest. Writes are durable when they return nil.
type IncidentStore interface {
	// EventsAfter returns up to limit stored events in log order (the
	// order AppendEvent stored them), after the event whose Offset is
	// after; "" starts at the beginning of the log. An event stored later
	// always comes after every event returned before: the engine's cursor
	// never skips one.
	EventsAfter(ctx context.Context, after string, limit int) ([]Event, error)

	// SaveIncidents writes incidents and, when cursor is not empty, the
	// engine's log cursor, all or nothing. Each incident's Version must be
	// the stored version plus one (1 for a new incident), otherwise nothing
	// is written and the error wraps ErrConflict.
	SaveIncidents(ctx context.Context, incidents []Incident, cursor string) error
	// IncidentCursor returns the saved log cursor, "" when none.
	IncidentCursor(ctx context.Context) (string, error)
	// Incident returns one incident, or an error wrapping ErrNotFound.
	Incident(ctx context.Context, id string) (Incident, error)
	// Incidents lists incidents newest (Created, then ID) first. Area is
	// ignored: the engine resolves it into Areas.
	Incidents(ctx context.Context, q IncidentQuery) (IncidentPage, error)
	// OpenIncidents returns every open incident (state not resolved,
	// closed or cancelled), oldest first.
	OpenIncidents(ctx context.Context) ([]Incident, error)
	// OpenIncident returns the device's open incident of a kind, or an
	// error wrapping ErrNotFound.
	OpenIncident(ctx context.Context, device string, kind IncidentKind) (Incident, error)

	// PutUnit saves a unit's last report (and its position for
	// NearestUnits).
	PutUnit(ctx context.Context, u UnitState) error
	// Units returns every saved unit, by ID.
	Units(ctx context.Context) ([]UnitState, error)
	// NearestUnits returns saved units within radiusM metres of the point
	// (0: any distance), nearest first, at most limit (0: all).
	NearestUnits(ctx context.Context, lat, lon, radiusM float64, limit int) ([]UnitDistance, error)
}
