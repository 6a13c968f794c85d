package alarms

import "time"

// UnitKind is what kind of patrol a unit is.
type UnitKind string

// Unit kinds.
const (
	UnitPatrolCar       UnitKind = "patrol_car"
	UnitFootPatrol      UnitKind = "foot_patrol"
	UnitVolunteerPatrol UnitKind = "volunteer_patrol"
	UnitGridManager     UnitKind = "grid_manager"
)

func (k UnitKind) valid() bool {
	switch k {
	case UnitPatrolCar, UnitFootPatrol, UnitVolunteerPatrol, UnitGridManager:
		return true
	}
	return false
}

// DefaultUnitSilence is how long a unit may go without a position report
// before it counts as unavailable.
const DefaultUnitSilence = 2 * time.Minute

// UnitStatus is a unit's availability for dispatch.
type UnitStatus string

// Unit statuses. A unit reports available or off_duty; the engine derives
// offered and busy from the incidents, and unavailable from silence.
const (
	UnitAvailable   UnitStatus = "available"
	UnitOffered     UnitStatus = "offered"     // an offer is waiting for its answer
	UnitBusy        UnitStatus = "busy"        // committed to an incident until it clears
	UnitOffDuty     UnitStatus = "off_duty"    // said so itself
	UnitUnavailable UnitStatus = "unavailable" // silent past its window, or never reported
)

// UnitState is what the store keeps of a unit: its last report. Offers and
// commitments are kept with the incidents, not here.
type UnitState struct {
	ID  string  `json:"id"`
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
	// Reported is when the last position report arrived (server time).
	Reported time.Time `json:"reported,omitzero"`
	// OffDuty is true when the unit's last report said off_duty.
	OffDuty bool `json:"off_duty,omitempty"`
}

// UnitDistance is a unit found by a nearest-unit search.
type UnitDistance struct {
	ID        string  `json:"id"`
	DistanceM float64 `json:"distance_m"`
}

// UnitView is a configured unit with its live state, for the API.
type UnitView struct {
	ID   string   `json:"id"`
	Name string   `json:"name"`
	Kind UnitKind `json:"kind"`
	Area string   `json:"area,omitempty"`
	// Lat and Lon are the last reported position, or the home position
	// before the first report.
	Lat      float64    `json:"lat"`
	Lon      float64    `json:"lon"`
	Reported time.Time  `json:"reported,omitzero"`
	Status   UnitStatus `json:"status"`
	// Incident is the incident the unit is offered or committed to.
	Incident string `json:"incident,omitempty"`
}
