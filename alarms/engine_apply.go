package alarms

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// applyWait bounds how long Engine.Apply waits for the engine's goroutine
// to take the new units.
const applyWait = 30 * time.Second

// engineConf is the configuration the engine works with, never modified
// once built: Apply builds the next one and swaps it whole.
type engineConf struct {
	routing RoutingConfig
	units   []UnitConfig
	tree    *AreaTree
	cameras []CameraSite
	// reports is the last saved report of each configured unit, by ID;
	// a unit that stays keeps its *unitReport across Apply.
	reports map[string]*unitReport
}

// conf returns the engine's current configuration.
func (e *Engine) conf() *engineConf { return e.cf.Load() }

// newEngineConf builds the engine's configuration from cfg (with
// defaults, validated) and sites, keeping the unit reports of prev (when
// not nil).
func newEngineConf(cfg *Config, sites []CameraSite, prev *engineConf) (*engineConf, error) {
	tree, err := NewAreaTree(cfg.Areas)
	if err != nil {
		return nil, err
	}
	c := &engineConf{routing: cfg.Routing, units: slices.Clone(cfg.Units), tree: tree,
		cameras: slices.Clone(sites), reports: make(map[string]*unitReport, len(cfg.Units))}
	for _, u := range cfg.Units {
		var r *unitReport
		if prev != nil {
			r = prev.reports[u.ID]
		}
		if r == nil {
			r = &unitReport{last: UnitState{ID: u.ID, Lat: u.Lat, Lon: u.Lon}}
		}
		c.reports[u.ID] = r
	}
	return c, nil
}

// Apply makes cfg's areas, routing and units, and sites, the engine's while
// it runs; the incidents in flight keep their state, timers and offers.
// cfg is checked as NewIntake checks it (only its areas, routing and units
// are taken; its mqtt section, dedup_window and limits are ignored); when
// it is invalid nothing changes. Call Intake.Apply with the same cfg, for
// the units' credentials and the devices.
//
//   - A unit that stays keeps its position, status, offer and incident; its
//     new area, kind and silence count from now.
//   - A removed unit holding an offer: the offer moves on to the next
//     candidate as on a timeout (the incident is escalated, with a
//     "unit_removed" entry in its timeline). A removed unit committed to an
//     incident (dispatched, en route, on scene): the incident keeps its
//     state and its unit, and its timeline tells the operator, who assigns
//     another unit or resolves it. Replies and positions from a removed unit
//     are refused as from an unknown unit.
//   - An added unit is a candidate once it reports its position (its saved
//     report counts, if it was configured before).
//   - Open incidents keep their area even when it was removed; routing of
//     new incidents, and candidates for offers from now on, use the new
//     tree (an incident whose area is gone may be offered to any unit). A
//     removed device's open incidents stay until resolved.
//   - A new offer timeout applies to offers made from now on.
//   - Camera sites apply to incidents opened from now on.
//
// In cluster mode every node keeps the configuration (followers check
// position reports against its units); the running term, on the leader,
// takes the changes as above, and a term started after Apply starts with
// them.
func (e *Engine) Apply(cfg Config, sites []CameraSite) error {
	cfg.Models = slices.Clone(cfg.Models)
	cfg.Devices = slices.Clone(cfg.Devices)
	cfg.Units = slices.Clone(cfg.Units)
	cfg.Areas = slices.Clone(cfg.Areas)
	cfg.MQTT, cfg.DedupWindow, cfg.Limits = e.in.cfg.MQTT, e.in.cfg.DedupWindow, e.in.cfg.Limits
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	next, err := newEngineConf(&cfg, sites, e.conf())
	if err != nil {
		return err
	}

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrEngineClosed
	}
	e.cf.Store(next)
	started, single, termDone := e.started, e.cl == nil, e.termDone
	if !started && single {
		// Start loads the saved units and incidents into this state.
		e.st = newEngineState(e)
	}
	e.mu.Unlock()
	switch {
	case single && !started:
		return nil
	case !single && termDone == nil:
		// No term runs here, or its state is not built yet: it will be
		// built from next.
		return nil
	}

	ctx, cancel := context.WithTimeout(context.Background(), applyWait)
	defer cancel()
	r := request{fn: func(ctx context.Context, t *txn) bool { return t.s.reconcile(ctx, t) }, done: make(chan error, 1)}
	var end <-chan struct{} = e.done
	if !single {
		end = termDone
	}
	select {
	case e.reqs <- r:
	case <-end:
		return nil // the engine closed, or the term ended: the next starts from next
	case <-ctx.Done():
		// The engine's goroutine is busy for long (a store outage): it
		// takes the new units with the next Apply, or at its next term.
		return fmt.Errorf("alarms: engine: apply: the incident engine did not take the new units within %s; routing and areas are in effect", applyWait)
	}
	if err := <-r.done; err != nil {
		// The units are in place; what failed is saving the notes on the
		// incidents of removed units (an offer then moves on at its
		// deadline).
		return fmt.Errorf("alarms: engine: apply: save incidents of removed units: %w", err)
	}
	return nil
}

// reconcile makes the units those of the configuration (on the engine's
// goroutine): a unit that stays takes its new settings and keeps its state,
// an added one takes its saved report, a removed one's offer moves on and
// its committed incident is noted. It is idempotent, and reports whether
// it changed an incident.
func (s *engineState) reconcile(ctx context.Context, t *txn) bool {
	c := s.e.conf()
	units := make(map[string]*unitLive, len(c.units))
	order := make([]*unitLive, 0, len(c.units))
	var added []*unitLive
	for _, uc := range c.units {
		u := s.units[uc.ID]
		if u == nil {
			u = &unitLive{cfg: uc, st: UnitState{ID: uc.ID, Lat: uc.Lat, Lon: uc.Lon}}
			added = append(added, u)
		} else {
			if !u.reported {
				u.st.Lat, u.st.Lon = uc.Lat, uc.Lon // its home, shown until it reports
			}
			u.cfg = uc
		}
		units[uc.ID] = u
		order = append(order, u)
	}
	var gone []*unitLive
	for _, u := range s.unitOrder {
		if units[u.cfg.ID] == nil {
			gone = append(gone, u)
		}
	}
	s.units, s.unitOrder = units, order
	s.freed = true // an added unit, or a changed area, may free an incident waiting

	if len(added) > 0 {
		saved, err := s.e.store.Units(ctx)
		if err != nil {
			s.e.logger.Warn("alarms: incident engine: apply: cannot read the saved reports of added units; they count from their next report", "err", err)
		}
		byID := map[string]UnitState{}
		for _, us := range saved {
			byID[us.ID] = us
		}
		for _, u := range added {
			r := c.reports[u.cfg.ID]
			r.mu.Lock()
			st := r.last
			if us, ok := byID[u.cfg.ID]; ok && us.Reported.After(st.Reported) {
				st = us
				r.last = us
			}
			r.mu.Unlock()
			if !st.Reported.IsZero() {
				u.st, u.reported = st, true
			}
		}
	}

	changed := false
	for _, u := range gone {
		id := u.cfg.ID
		if saved := s.open[u.offer]; saved != nil && saved.Offer != nil && saved.Offer.Unit == id {
			inc := t.edit(saved)
			t.note(inc, "unit_removed", ActorSystem, "unit "+id+" was removed from the configuration: its offer moves on", id)
			t.send(id, t.message("withdrawn", inc, nil, "the unit was removed from the configuration"))
			inc.Tried = appendNew(inc.Tried, id)
			inc.Offer = nil
			t.escalate(inc, "offer to "+id+" ended: unit removed")
			if _, err := s.offerNext(ctx, t, inc, ActorSystem, false); err != nil {
				// The incidents stay as they were (the units are in
				// place): the offer moves on at its deadline.
				s.e.logger.Warn("alarms: incident engine: apply: cannot move an offer of a removed unit on; it moves at its deadline", "incident", inc.ID, "err", err)
				return false
			}
			changed = true
		}
		if saved := s.open[u.busy]; saved != nil && saved.Unit == id && busyState(saved.State) {
			inc := t.edit(saved)
			t.note(inc, "unit_removed", ActorSystem, "unit "+id+" was removed from the configuration while committed to this incident: assign another unit or resolve it", id)
			t.escalate(inc, "committed unit "+id+" removed")
			changed = true
		}
	}
	return changed
}
