package hardware

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DeviceSimConfig configures a fleet of simulated alarm devices.
type DeviceSimConfig struct {
	// Broker is the MQTT broker's URL, tcp://host:port (mqtt:// is the
	// same). Required.
	Broker string
	// Prefix is the topic prefix; it defaults to "skywatch".
	Prefix string
	// Devices are the devices to simulate; see SimDevices for a fleet.
	Devices []SimDevice
	// Heartbeat is the interval between a device's heartbeats; it
	// defaults to 60 s. Each device starts at a random phase.
	Heartbeat time.Duration
	// AlarmEvery is the mean interval between one device's random alarms
	// (exponentially distributed); 0 sends none.
	AlarmEvery time.Duration
	// SilentAfter is how long a silent device heartbeats before it falls
	// silent; it defaults to 3 heartbeats.
	SilentAfter time.Duration
	// FlakyEvery is the mean interval between a flaky device's lost
	// connections; it defaults to 5 heartbeats.
	FlakyEvery time.Duration
	// ConnectRate paces the first connections, per second, so that a big
	// fleet does not hit the broker all at once; it defaults to 500.
	ConnectRate int
	// RunID makes Skywatch JSON event ids unique across runs of the
	// simulator ("ev-<device>-<run>-<n>"), so that a restarted simulator
	// does not repeat ids that the intake would drop as duplicates. It
	// defaults to the start time of Run in base 36.
	RunID string
	// Seed seeds the random choices; the same seed makes the same choices
	// (timing aside).
	Seed int64
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// Defaults of DeviceSimConfig.
const (
	defaultSimPrefix      = "skywatch"
	defaultSimHeartbeat   = 60 * time.Second
	defaultSimConnectRate = 500
)

// withDefaults returns the config with its defaults filled in.
func (cfg DeviceSimConfig) withDefaults() DeviceSimConfig {
	if cfg.Prefix == "" {
		cfg.Prefix = defaultSimPrefix
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = defaultSimHeartbeat
	}
	if cfg.SilentAfter == 0 {
		cfg.SilentAfter = 3 * cfg.Heartbeat
	}
	if cfg.FlakyEvery == 0 {
		cfg.FlakyEvery = 5 * cfg.Heartbeat
	}
	if cfg.ConnectRate == 0 {
		cfg.ConnectRate = defaultSimConnectRate
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return cfg
}

// Validate checks the config; messages name the key.
func (cfg DeviceSimConfig) Validate() error {
	if err := validateBroker(cfg.Broker); err != nil {
		return err
	}
	switch {
	case cfg.Heartbeat < 0:
		return errors.New("heartbeat: negative")
	case cfg.AlarmEvery < 0:
		return errors.New("alarm_every: negative")
	case cfg.SilentAfter < 0:
		return errors.New("silent_after: negative")
	case cfg.FlakyEvery < 0:
		return errors.New("flaky_every: negative")
	case cfg.ConnectRate < 0:
		return errors.New("connect_rate: negative")
	}
	seen := make(map[string]bool, len(cfg.Devices))
	for i, d := range cfg.Devices {
		if err := d.validate(i); err != nil {
			return err
		}
		if seen[d.ID] {
			return fmt.Errorf("devices[%d].id: %q is repeated", i, d.ID)
		}
		seen[d.ID] = true
	}
	return nil
}

// DeviceSimStats counts what a DeviceSim did since it was made.
type DeviceSimStats struct {
	Devices    int    // devices running
	Connected  int    // devices connected now
	Connects   uint64 // connections made, reconnections included
	Cuts       uint64 // connections cut on purpose (flaky devices)
	Heartbeats uint64 // heartbeats sent (QoS 0)
	Published  uint64 // events published (QoS 1), garbage included
	Garbage    uint64 // events that were malformed on purpose
	Acked      uint64 // events whose PUBACK arrived
	Errors     uint64 // failed connections and publishes (no PUBACK in time)
}

// ErrUnknownDevice is returned by PublishEvent for a device that is not
// running in the simulator.
var ErrUnknownDevice = errors.New("unknown device")

// DeviceSim runs simulated alarm devices against an MQTT broker, each with
// its own MQTT client, as the real ones would: client id = device ID, a
// persistent session (clean session off), a retained last will "offline"
// on {prefix}/dev/{id}/state and a retained "online" there on every
// connection, QoS 0 heartbeats on {prefix}/dev/{id}/hb and QoS 1 events on
// {prefix}/dev/{id}/event. Heartbeats are QoS 0 because a late heartbeat
// is worse than a lost one for supervision. Lost connections are retried
// by the MQTT client, which also sends unacknowledged events again.
type DeviceSim struct {
	cfg DeviceSimConfig
	log *slog.Logger

	mu      sync.Mutex
	running bool
	devices map[string]*simClient // while Run runs

	counts simCounts
}

// simCounts are the counters behind DeviceSimStats.
type simCounts struct {
	connected                                                   atomic.Int64
	connects, cuts, heartbeats, published, garbage, acked, errs atomic.Uint64
}

// NewDeviceSim makes a simulator; Run starts it.
func NewDeviceSim(cfg DeviceSimConfig) *DeviceSim {
	cfg = cfg.withDefaults()
	return &DeviceSim{cfg: cfg, log: cfg.Logger}
}

// Run connects the devices, paced by ConnectRate, and runs them until ctx
// ends; then every device publishes "offline", disconnects, and Run
// returns nil. It returns an error for a bad config or when it is
// already running.
func (s *DeviceSim) Run(ctx context.Context) error {
	if err := s.cfg.Validate(); err != nil {
		return fmt.Errorf("device sim: %w", err)
	}
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("device sim: already running")
	}
	s.running = true
	s.devices = make(map[string]*simClient, len(s.cfg.Devices))
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.devices = nil
		s.mu.Unlock()
	}()

	runID := s.cfg.RunID
	if runID == "" {
		runID = strconv.FormatInt(time.Now().UnixMilli(), 36)
	}
	s.log.Info("device sim starting", "devices", len(s.cfg.Devices), "run", runID)

	// Every device is registered before any connects, so that
	// PublishEvent knows it (and waits for its connection) at once.
	clients := make([]*simClient, len(s.cfg.Devices))
	s.mu.Lock()
	for i, d := range s.cfg.Devices {
		clients[i] = newSimClient(s, d, i, runID)
		s.devices[d.ID] = clients[i]
	}
	s.mu.Unlock()

	var wg sync.WaitGroup
	pace := time.NewTicker(time.Second / time.Duration(s.cfg.ConnectRate))
	defer pace.Stop()
start:
	for i, c := range clients {
		if i > 0 {
			select {
			case <-ctx.Done():
				break start
			case <-pace.C:
			}
		}
		wg.Go(func() { c.run(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	s.log.Info("device sim stopped", "stats", fmt.Sprintf("%+v", s.Stats()))
	return nil
}

// Stats returns the counters now.
func (s *DeviceSim) Stats() DeviceSimStats {
	s.mu.Lock()
	n := len(s.devices)
	s.mu.Unlock()
	c := &s.counts
	return DeviceSimStats{
		Devices:    n,
		Connected:  int(c.connected.Load()),
		Connects:   c.connects.Load(),
		Cuts:       c.cuts.Load(),
		Heartbeats: c.heartbeats.Load(),
		Published:  c.published.Load(),
		Garbage:    c.garbage.Load(),
		Acked:      c.acked.Load(),
		Errors:     c.errs.Load(),
	}
}

// PublishEvent publishes payload as an event of the device, with QoS 1,
// and waits for the broker's PUBACK. It waits for the device's first
// connection if it is not connected. The device must be running.
func (s *DeviceSim) PublishEvent(ctx context.Context, deviceID string, payload []byte) error {
	s.mu.Lock()
	dev := s.devices[deviceID]
	s.mu.Unlock()
	if dev == nil {
		return fmt.Errorf("device sim: device %q: %w", deviceID, ErrUnknownDevice)
	}
	if err := dev.waitUp(ctx); err != nil {
		return fmt.Errorf("device sim: device %s: waiting for a connection: %w", deviceID, err)
	}
	if err := dev.publishEvent(ctx, payload); err != nil {
		return fmt.Errorf("device sim: device %s: %w", deviceID, err)
	}
	return nil
}
