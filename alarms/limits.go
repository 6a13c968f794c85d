package alarms

import (
	"fmt"
	"time"
)

// Defaults of Limits.
const (
	// DefaultStoreHold lets a store outage of half a minute pass without
	// one device being disconnected.
	DefaultStoreHold = 30 * time.Second
	// DefaultDeviceRate and DefaultDeviceBurst let a panel report a burst
	// of a hundred zones at once, and then twenty messages a second, while
	// a device flooding at wire speed is slowed a thousandfold.
	DefaultDeviceRate  = 20
	DefaultDeviceBurst = 100
	// DefaultRejectedPerDevice and DefaultRejectedMax bound the rejected
	// list to about 40 MB (MaxRejectedPayload each).
	DefaultRejectedPerDevice = 100
	DefaultRejectedMax       = 10000
)

// Limits bounds what one device can cost the intake. Zero values take the
// defaults. They are keys of the config file's alarms section.
type Limits struct {
	// StoreHold is how long the embedded broker holds a device's message
	// unacknowledged, with its connection open, while the store fails and
	// is retried; past it the device is disconnected (without PUBACK: it
	// sends the message again when it reconnects). It defaults to 30 s.
	StoreHold time.Duration `yaml:"store_hold"`
	// DeviceRate is how many messages a second a device may publish to
	// the embedded broker on average, and DeviceBurst how many at once.
	// Over its rate a device's next message is held, unacknowledged, until
	// its turn, which slows that device's connection only. They default to
	// 20 and 100.
	DeviceRate  float64 `yaml:"device_rate"`
	DeviceBurst int     `yaml:"device_burst"`
	// RejectedPerDevice and RejectedMax bound the rejected messages kept
	// for one device and for all; the oldest are dropped and counted. They
	// default to 100 and 10,000.
	RejectedPerDevice int `yaml:"rejected_per_device"`
	RejectedMax       int `yaml:"rejected_max"`
}

func (l *Limits) setDefaults() {
	if l.StoreHold == 0 {
		l.StoreHold = DefaultStoreHold
	}
	if l.DeviceRate == 0 {
		l.DeviceRate = DefaultDeviceRate
	}
	if l.DeviceBurst == 0 {
		l.DeviceBurst = DefaultDeviceBurst
	}
	if l.RejectedPerDevice == 0 {
		l.RejectedPerDevice = DefaultRejectedPerDevice
	}
	if l.RejectedMax == 0 {
		l.RejectedMax = DefaultRejectedMax
	}
}

func (l *Limits) validate() []error {
	var errs []error
	add := func(key, msg string) { errs = append(errs, fmt.Errorf("alarms.%s: %s", key, msg)) }
	if l.StoreHold < 0 {
		add("store_hold", "must not be negative")
	}
	if l.DeviceRate < 0 {
		add("device_rate", "must not be negative")
	}
	if l.DeviceBurst < 0 {
		add("device_burst", "must not be negative")
	}
	if l.RejectedPerDevice < 0 {
		add("rejected_per_device", "must not be negative")
	}
	if l.RejectedMax < 0 {
		add("rejected_max", "must not be negative")
	}
	return errs
}

// rejectedLimits is what the store is given.
func (l *Limits) rejectedLimits() RejectedLimits {
	return RejectedLimits{PerDevice: l.RejectedPerDevice, Total: l.RejectedMax}
}
