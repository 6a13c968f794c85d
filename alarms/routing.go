package alarms

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Defaults of RoutingConfig.
const (
	DefaultOfferTimeout = 60 * time.Second
	DefaultPreferMargin = 1000.0 // metres
	DefaultCameraRadius = 300.0  // metres
	DefaultMaxCameras   = 4
)

// RoutingConfig is the dispatch policy (config key "routing"). Zero values
// take the defaults.
type RoutingConfig struct {
	// OfferTimeout is how long a unit has to accept an offer before the
	// next candidate gets it. It defaults to 60 s.
	OfferTimeout time.Duration `yaml:"offer_timeout"`
	// Respond lists the classes whose new events open an incident that
	// needs a response. It defaults to alarm, panic, fire, tamper.
	Respond []Class `yaml:"respond"`
	// Maintenance lists the classes whose new events open a maintenance
	// ticket (not dispatched automatically). It defaults to trouble and
	// supervision. An event with battery_low also opens one.
	Maintenance []Class `yaml:"maintenance"`
	// Priority by class, 1 the most urgent. Unlisted classes take the
	// defaults: panic and fire 1, alarm 2, tamper 3, anything else 4.
	Priority map[Class]int `yaml:"priority"`
	// Prefer lists, by class, the unit kinds to prefer, best first. Unlisted
	// classes take the defaults: patrol_car for alarm, panic, fire and
	// tamper; grid_manager for trouble and supervision.
	Prefer map[Class][]UnitKind `yaml:"prefer"`
	// PreferMarginM is how much farther (metres) than the nearest candidate
	// a unit of a preferred kind may be and still come first. It defaults
	// to 1000 m: a patrol car 1.5 km away is sent before a foot patrol
	// 800 m away, but not before one 200 m away.
	PreferMarginM float64 `yaml:"prefer_margin_m"`
	// CameraRadiusM bounds the cameras linked to an incident by distance.
	// It defaults to 300 m.
	CameraRadiusM float64 `yaml:"camera_radius_m"`
	// MaxCameras bounds the cameras linked by distance (configured links
	// come on top). It defaults to 4.
	MaxCameras int `yaml:"max_cameras"`
	// ReplayMaxAge: events older than this, met in the event log on the
	// first start of the engine or after a long outage, are recorded but
	// open no incident. It defaults to 24 hours.
	ReplayMaxAge time.Duration `yaml:"replay_max_age"`
}

// defaultPriority is the priority of a class the config does not list.
func defaultPriority() map[Class]int {
	return map[Class]int{ClassPanic: 1, ClassFire: 1, ClassAlarm: 2, ClassTamper: 3}
}

func (r *RoutingConfig) setDefaults() {
	if r.OfferTimeout == 0 {
		r.OfferTimeout = DefaultOfferTimeout
	}
	if r.Respond == nil {
		r.Respond = []Class{ClassAlarm, ClassPanic, ClassFire, ClassTamper}
	}
	if r.Maintenance == nil {
		r.Maintenance = []Class{ClassTrouble, ClassSupervision}
	}
	prio := map[Class]int{}
	for c, p := range defaultPriority() {
		prio[c] = p
	}
	for c, p := range r.Priority {
		prio[c] = p
	}
	r.Priority = prio
	prefer := map[Class][]UnitKind{
		ClassAlarm: {UnitPatrolCar}, ClassPanic: {UnitPatrolCar}, ClassFire: {UnitPatrolCar},
		ClassTamper: {UnitPatrolCar}, ClassTrouble: {UnitGridManager}, ClassSupervision: {UnitGridManager},
	}
	for c, k := range r.Prefer {
		prefer[c] = k
	}
	r.Prefer = prefer
	if r.PreferMarginM == 0 {
		r.PreferMarginM = DefaultPreferMargin
	}
	if r.CameraRadiusM == 0 {
		r.CameraRadiusM = DefaultCameraRadius
	}
	if r.MaxCameras == 0 {
		r.MaxCameras = DefaultMaxCameras
	}
	if r.ReplayMaxAge == 0 {
		r.ReplayMaxAge = 24 * time.Hour
	}
}

func (r *RoutingConfig) validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("routing.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if r.OfferTimeout < 0 {
		add("offer_timeout", "must not be negative")
	}
	for i, c := range r.Respond {
		if !c.Valid() {
			add(fmt.Sprintf("respond[%d]", i), "unknown class %q", c)
		}
		if slices.Contains(r.Maintenance, c) {
			add(fmt.Sprintf("respond[%d]", i), "class %q is also in routing.maintenance", c)
		}
	}
	for i, c := range r.Maintenance {
		if !c.Valid() {
			add(fmt.Sprintf("maintenance[%d]", i), "unknown class %q", c)
		}
	}
	for c, p := range r.Priority {
		if !c.Valid() {
			add("priority", "unknown class %q", c)
		}
		if p < 1 || p > 9 {
			add("priority."+string(c), "must be between 1 and 9")
		}
	}
	for c, kinds := range r.Prefer {
		if !c.Valid() {
			add("prefer", "unknown class %q", c)
		}
		for i, k := range kinds {
			if !k.valid() {
				add(fmt.Sprintf("prefer.%s[%d]", c, i), "unknown unit kind %q", k)
			}
		}
	}
	if r.PreferMarginM < 0 {
		add("prefer_margin_m", "must not be negative")
	}
	if r.CameraRadiusM < 0 {
		add("camera_radius_m", "must not be negative")
	}
	if r.MaxCameras < 0 {
		add("max_cameras", "must not be negative")
	}
	if r.ReplayMaxAge < 0 {
		add("replay_max_age", "must not be negative")
	}
	return errors.Join(errs...)
}

// priority returns the priority of a class (1 the most urgent).
func (r *RoutingConfig) priority(c Class) int {
	if p, ok := r.Priority[c]; ok {
		return p
	}
	return 4
}
