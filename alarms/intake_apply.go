package alarms

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"time"
)

// Reloading the configuration while Skywatch runs (Intake.Apply,
// Engine.Apply). What changes in place: devices, models, units (with their
// credentials), areas, routing and camera sites. What does not: the mqtt
// section (listeners, limits, external broker, auth limits and cache),
// dedup_window and limits keep the values the intake started with; the
// caller reports them as needing a restart.

// DeviceChanges is what Intake.Apply changed: device and unit IDs, each
// list sorted. A device is changed when any of its settings or its model's
// differ; Disconnected lists the devices and units whose connection to the
// embedded broker was closed because their credentials changed or they
// were removed (always empty with an external broker).
type DeviceChanges struct {
	Added        []string `json:"added,omitempty"`
	Changed      []string `json:"changed,omitempty"`
	Removed      []string `json:"removed,omitempty"`
	Disconnected []string `json:"disconnected,omitempty"`
	UnitsAdded   []string `json:"units_added,omitempty"`
	UnitsChanged []string `json:"units_changed,omitempty"`
	UnitsRemoved []string `json:"units_removed,omitempty"`
	// UnitsRevoked lists the units whose credentials changed or that were
	// removed, connected or not: their patrol page sessions must end too.
	UnitsRevoked []string `json:"units_revoked,omitempty"`
}

// Empty reports whether nothing changed.
func (c DeviceChanges) Empty() bool {
	return len(c.Added)+len(c.Changed)+len(c.Removed)+len(c.UnitsAdded)+len(c.UnitsChanged)+len(c.UnitsRemoved) == 0
}

// roster is the intake's configured devices, never modified once built:
// Apply builds the next one and swaps it whole. A device that stays keeps
// its *device (its state, lock and counters) from one roster to the next.
type roster struct {
	devices map[string]*device
	order   []*device // config order
	tree    *AreaTree // for Events' area filter
	// tick is the supervisor's scan period (see Config.tick).
	tick time.Duration
	// models (by name) and units, to compare with on the next Apply.
	models map[string]ModelConfig
	units  []UnitConfig
}

// live returns the current roster.
func (in *Intake) live() *roster { return in.roster.Load() }

// newRoster builds the roster of cfg (with defaults, validated), taking
// the devices of prev (when not nil) that stay.
func newRoster(cfg *Config, decoders map[string]Decoder, prev *roster) (*roster, error) {
	tree, err := NewAreaTree(cfg.Areas)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, d := range cfg.Devices {
		used[d.Model] = true
	}
	r := &roster{devices: make(map[string]*device, len(cfg.Devices)), tree: tree, tick: cfg.tick,
		models: map[string]ModelConfig{}, units: slices.Clone(cfg.Units)}
	for i, md := range cfg.Models {
		if decoders[md.Decoder] == nil && used[md.Name] {
			return nil, fmt.Errorf("models[%d].decoder: no decoder %q was given", i, md.Decoder)
		}
		r.models[md.Name] = md
	}
	for _, dc := range cfg.Devices {
		var d *device
		if prev != nil {
			d = prev.devices[dc.ID]
		}
		if d == nil {
			d = newDevice(specOf(cfg, dc, decoders))
		}
		r.devices[dc.ID] = d
		r.order = append(r.order, d)
	}
	return r, nil
}

// specOf is the spec of a device of cfg (with defaults, validated).
func specOf(cfg *Config, dc DeviceConfig, decoders map[string]Decoder) *deviceSpec {
	md := cfg.model(dc.Model)
	return &deviceSpec{cfg: dc, window: md.Supervision, decoder: decoders[md.Decoder], source: md.Decoder}
}

// Apply makes cfg's devices, models, units and areas the intake's while it
// runs, and returns what changed. cfg is checked as NewIntake checks it;
// when it is invalid nothing changes. Only those sections are taken: the
// mqtt section, dedup_window and limits keep the values the intake started
// with, whatever cfg says (they need a restart; the caller names them).
//
//   - A device that stays keeps its state (last seen, supervision) and its
//     connection, unless its credentials changed. Its new model, decoder,
//     area or place apply from its next message; a new supervision window
//     counts from when it was last heard.
//   - A device or unit whose credentials (user name, password_hash,
//     token_sha256, password) changed, or that was removed, is
//     disconnected from the embedded broker at once: it must log in again
//     with its new credentials, and a removed one is refused. The verified-
//     credential cache forgets it (an old password could not match anyway:
//     the configured hash is part of each entry). A message such a client
//     sent as it was being disconnected is kept as rejected (unknown device
//     or unit), as is anything later published on a removed device's topics
//     through an external broker.
//   - A removed device is no longer supervised; a new one gets a full
//     supervision window from now.
//
// With an external broker, Skywatch does not authenticate devices: their
// credentials are the broker's, and the operator changes them there.
func (in *Intake) Apply(cfg Config) (DeviceChanges, error) {
	cfg.Models = slices.Clone(cfg.Models)
	cfg.Devices = slices.Clone(cfg.Devices)
	cfg.Units = slices.Clone(cfg.Units)
	cfg.Areas = slices.Clone(cfg.Areas)
	// Only the reloadable sections are taken: validate them against the
	// running mqtt settings (whether the broker is embedded decides
	// whether a device needs a password).
	cfg.MQTT, cfg.DedupWindow, cfg.Limits = in.cfg.MQTT, in.cfg.DedupWindow, in.cfg.Limits
	cfg.tick = 0
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return DeviceChanges{}, err
	}

	in.applyMu.Lock()
	defer in.applyMu.Unlock()
	prev := in.live()
	next, err := newRoster(&cfg, in.decoders, prev)
	if err != nil {
		return DeviceChanges{}, err
	}
	var ch DeviceChanges
	for _, dc := range cfg.Devices {
		old := prev.devices[dc.ID]
		if old == nil {
			ch.Added = append(ch.Added, dc.ID)
			continue
		}
		if !reflect.DeepEqual(old.spec().cfg, dc) || !reflect.DeepEqual(prev.models[dc.Model], next.models[dc.Model]) {
			ch.Changed = append(ch.Changed, dc.ID)
		}
	}
	for _, d := range prev.order {
		if next.devices[d.id] == nil {
			ch.Removed = append(ch.Removed, d.id)
		}
	}
	oldUnits := map[string]UnitConfig{}
	for _, u := range prev.units {
		oldUnits[u.ID] = u
	}
	newUnits := map[string]bool{}
	for _, u := range cfg.Units {
		newUnits[u.ID] = true
		old, ok := oldUnits[u.ID]
		switch {
		case !ok:
			ch.UnitsAdded = append(ch.UnitsAdded, u.ID)
		case !reflect.DeepEqual(old, u):
			ch.UnitsChanged = append(ch.UnitsChanged, u.ID)
		}
	}
	for _, u := range prev.units {
		if !newUnits[u.ID] {
			ch.UnitsRemoved = append(ch.UnitsRemoved, u.ID)
		}
	}

	// The order matters. New devices appear first (their messages are
	// then handled), the devices that stay take their new specs, then
	// the credentials change and the clients they no longer admit are
	// disconnected: a client that logged in with the old credentials
	// either is among the clients found, or checks them again as its
	// session is established (see hook.established).
	in.loadAdded(next, ch.Added)
	for _, dc := range cfg.Devices {
		if d := prev.devices[dc.ID]; d != nil {
			d.sp.Store(specOf(&cfg, dc, in.decoders))
		}
	}
	in.roster.Store(next)
	users := in.creds.replace(cfg.Devices, cfg.Units)
	if in.broker != nil && len(users) > 0 {
		ch.Disconnected = in.broker.disconnectUsers(users)
	}
	for _, idn := range users {
		if idn.kind == identityUnit && !slices.Contains(ch.UnitsRevoked, idn.id) {
			ch.UnitsRevoked = append(ch.UnitsRevoked, idn.id)
		}
	}
	for _, l := range [][]string{ch.Added, ch.Changed, ch.Removed, ch.Disconnected, ch.UnitsAdded, ch.UnitsChanged,
		ch.UnitsRemoved, ch.UnitsRevoked} {
		sort.Strings(l)
	}
	in.logger.Info("alarms: intake: configuration applied", "devices_added", len(ch.Added), "devices_changed", len(ch.Changed),
		"devices_removed", len(ch.Removed), "disconnected", len(ch.Disconnected), "units_added", len(ch.UnitsAdded),
		"units_changed", len(ch.UnitsChanged), "units_removed", len(ch.UnitsRemoved))
	return ch, nil
}

// loadAdded gives the devices added by Apply their saved state, if any (a
// device removed and added again), and a full supervision window from now
// (from the intake's start when it has not started yet).
func (in *Intake) loadAdded(r *roster, ids []string) {
	now := time.Now()
	in.mu.Lock()
	started := in.started
	in.mu.Unlock()
	for _, id := range ids {
		d := r.devices[id]
		d.extend(now)
		if !started {
			continue // Start loads every state
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		st, err := in.store.Device(ctx, id)
		cancel()
		switch {
		case err == nil:
			d.mu.Lock()
			d.commit(st)
			d.mu.Unlock()
		case !errors.Is(err, ErrNotFound):
			// It starts afresh; its next message saves its state.
			in.logger.Warn("alarms: intake: cannot read the saved state of an added device", "device", id, "err", err)
		}
	}
}
