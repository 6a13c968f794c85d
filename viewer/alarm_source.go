package viewer

import (
	"context"

	"github.com/skywatch/skywatch/alarms"
)

// AlarmSource is what viewer needs from the alarm intake (alarms.Intake):
// stored events, rejected messages, devices with their state, live events
// and the intake's health.
//
// Device fails with an error matching alarms.ErrNotFound for an unknown
// device. Subscribe's channel is closed when ctx ends or the intake closes;
// a subscriber that does not keep up misses events (the intake counts
// them).
type AlarmSource interface {
	Events(ctx context.Context, q alarms.EventQuery) (alarms.EventPage, error)
	Rejected(ctx context.Context, q alarms.RejectedQuery) ([]alarms.Rejected, error)
	Devices(ctx context.Context) ([]alarms.DeviceView, error)
	Device(ctx context.Context, id string) (alarms.DeviceView, error)
	Subscribe(ctx context.Context) <-chan alarms.Event
	Status() alarms.IntakeStatus
}

var _ AlarmSource = (*alarms.Intake)(nil)
