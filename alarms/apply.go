package alarms

import (
	"errors"
)

// DeviceChanges is what Intake.Apply changed: device and unit IDs, each
// list sorted. Changed devices are those whose configuration differs in
// any field (credentials, model, area, place, cameras...); Disconnected
// lists the devices and units whose connection to the embedded broker was
// closed because their credentials changed or they were removed.
type DeviceChanges struct {
	Added        []string `json:"added,omitempty"`
	Changed      []string `json:"changed,omitempty"`
	Removed      []string `json:"removed,omitempty"`
	Disconnected []string `json:"disconnected,omitempty"`
	UnitsAdded   []string `json:"units_added,omitempty"`
	UnitsChanged []string `json:"units_changed,omitempty"`
	UnitsRemoved []string `json:"units_removed,omitempty"`
}

// Apply takes a new configuration's devices, models and units while the
// intake runs. Work in progress.
func (in *Intake) Apply(cfg Config) (DeviceChanges, error) {
	return DeviceChanges{}, errors.New("alarms: intake: apply: not implemented yet")
}

// Apply takes a new configuration's areas, routing, units and camera
// sites while the engine runs. Work in progress.
func (e *Engine) Apply(cfg Config, sites []CameraSite) error {
	return errors.New("alarms: engine: apply: not implemented yet")
}
