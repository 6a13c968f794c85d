package viewer

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skywatch/skywatch/alarms"
)

// fakeIncidents is an IncidentSource and PatrolSource whose behaviour the
// test sets; a nil function answers empty (or not found).
type fakeIncidents struct {
	tree      *alarms.AreaTree
	act       func(ctx context.Context, id string, a alarms.Action) (alarms.Incident, error)
	incidents func(ctx context.Context, q alarms.IncidentQuery) (alarms.IncidentPage, error)
	incident  func(ctx context.Context, id string) (alarms.Incident, error)
	units     func(ctx context.Context) ([]alarms.UnitView, error)
	unit      func(ctx context.Context, id string) (alarms.UnitView, error)
	subscribe func(ctx context.Context) <-chan alarms.IncidentChange
	reply     func(ctx context.Context, unit, id string, a alarms.ReplyAction, d alarms.Disposition, note string) (alarms.Incident, error)
	position  func(ctx context.Context, unit string, lat, lon float64, st alarms.UnitStatus) error
	dispatch  func(ctx context.Context, unit string) <-chan alarms.DispatchMessage
}

var (
	_ IncidentSource = (*fakeIncidents)(nil)
	_ PatrolSource   = (*fakeIncidents)(nil)
)

func (f *fakeIncidents) Act(ctx context.Context, id string, a alarms.Action) (alarms.Incident, error) {
	if f.act == nil {
		return alarms.Incident{}, fmt.Errorf("incident %s: %w", id, alarms.ErrNotFound)
	}
	return f.act(ctx, id, a)
}

func (f *fakeIncidents) Incidents(ctx context.Context, q alarms.IncidentQuery) (alarms.IncidentPage, error) {
	if f.incidents == nil {
		return alarms.IncidentPage{}, nil
	}
	return f.incidents(ctx, q)
}

func (f *fakeIncidents) Incident(ctx context.Context, id string) (alarms.Incident, error) {
	if f.incident == nil {
		return alarms.Incident{}, fmt.Errorf("incident %s: %w", id, alarms.ErrNotFound)
	}
	return f.incident(ctx, id)
}

func (f *fakeIncidents) Units(ctx context.Context) ([]alarms.UnitView, error) {
	if f.units == nil {
		return nil, nil
	}
	return f.units(ctx)
}

func (f *fakeIncidents) Unit(ctx context.Context, id string) (alarms.UnitView, error) {
	if f.unit != nil {
		return f.unit(ctx, id)
	}
	if f.units != nil {
		// One of the list, as the engine's Unit is.
		list, err := f.units(ctx)
		if err != nil {
			return alarms.UnitView{}, err
		}
		for _, u := range list {
			if u.ID == id {
				return u, nil
			}
		}
	}
	return alarms.UnitView{}, fmt.Errorf("unit %q: %w", id, alarms.ErrUnknownUnit)
}

// SubscribeIncidents defaults to a channel that closes when ctx ends, as
// the engine's does.
func (f *fakeIncidents) SubscribeIncidents(ctx context.Context) <-chan alarms.IncidentChange {
	if f.subscribe != nil {
		return f.subscribe(ctx)
	}
	ch := make(chan alarms.IncidentChange)
	context.AfterFunc(ctx, func() { close(ch) })
	return ch
}

func (f *fakeIncidents) Areas() *alarms.AreaTree { return f.tree }

func (f *fakeIncidents) UnitReply(ctx context.Context, unit, id string, a alarms.ReplyAction, d alarms.Disposition, note string) (alarms.Incident, error) {
	if f.reply == nil {
		return alarms.Incident{}, fmt.Errorf("incident %s: %w", id, alarms.ErrNotFound)
	}
	return f.reply(ctx, unit, id, a, d, note)
}

func (f *fakeIncidents) UnitPosition(ctx context.Context, unit string, lat, lon float64, st alarms.UnitStatus) error {
	if f.position == nil {
		return nil
	}
	return f.position(ctx, unit, lat, lon, st)
}

func (f *fakeIncidents) DispatchMessages(ctx context.Context, unit string) <-chan alarms.DispatchMessage {
	if f.dispatch != nil {
		return f.dispatch(ctx, unit)
	}
	ch := make(chan alarms.DispatchMessage)
	context.AfterFunc(ctx, func() { close(ch) })
	return ch
}

// testTree is county c > township t1 > villages v1, v2 > grid g1 under v1.
func testTree(t *testing.T) *alarms.AreaTree {
	t.Helper()
	tree, err := alarms.NewAreaTree([]alarms.AreaConfig{
		{ID: "c", Name: "County", Kind: alarms.AreaCounty},
		{ID: "t1", Name: "Township 1", Parent: "c", Kind: alarms.AreaTownship},
		{ID: "v1", Name: "Village 1", Parent: "t1", Kind: alarms.AreaVillage},
		{ID: "v2", Name: "Village 2", Parent: "t1", Kind: alarms.AreaVillage},
		{ID: "g1", Name: "Grid 1", Parent: "v1", Kind: alarms.AreaGrid},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// startIncidentServer starts a server with a fake alarm source, the
// cameras of testStates, and inc as incident and patrol source; mod
// changes the deps before New.
func startIncidentServer(t *testing.T, inc *fakeIncidents, mod func(*Deps)) *Server {
	t.Helper()
	if inc.tree == nil {
		inc.tree = testTree(t)
	}
	deps := Deps{Cameras: &fakeSource{states: testStates}, Registry: prometheus.NewRegistry(),
		Alarms: &fakeAlarms{}, Incidents: inc, Patrol: inc}
	if mod != nil {
		mod(&deps)
	}
	s, err := New(loopbackConfig(), deps, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}
