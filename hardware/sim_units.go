package hardware

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// DurationRange is a range of durations from which a simulator draws
// uniformly.
type DurationRange struct {
	Min, Max time.Duration
}

// draw returns a uniform duration in [Min, Max].
func (r DurationRange) draw(rng *rand.Rand) time.Duration {
	if r.Max <= r.Min {
		return r.Min
	}
	return r.Min + time.Duration(rng.Int64N(int64(r.Max-r.Min)+1))
}

func (r DurationRange) validate(key string) error {
	switch {
	case r.Min < 0:
		return fmt.Errorf("%s.min: negative", key)
	case r.Max < r.Min:
		return fmt.Errorf("%s.max: less than min", key)
	}
	return nil
}

// UnitSimConfig configures a fleet of simulated patrol units.
type UnitSimConfig struct {
	// Broker is the MQTT broker's URL, tcp://host:port (mqtt:// is the
	// same). Required.
	Broker string
	// Prefix is the topic prefix; it defaults to "skywatch".
	Prefix string
	// Units are the units to simulate; see SimUnits for a fleet.
	Units []SimUnit
	// PositionEvery is the interval between a unit's position reports; it
	// defaults to 10 s. Each unit starts at a random phase.
	PositionEvery time.Duration
	// AcceptRatio, DeclineRatio and IgnoreRatio weigh what a unit does
	// with an offer: accept it, decline it, or leave it unanswered until
	// the server withdraws it. When all three are 0 they default to 0.85,
	// 0.1 and 0.05; otherwise a zero IgnoreRatio is what the other two
	// leave of 1 (at least 0), and the three are scaled to add up to 1.
	// So AcceptRatio 1 alone accepts every offer and DeclineRatio 1 alone
	// declines every one.
	AcceptRatio, DeclineRatio, IgnoreRatio float64
	// AcceptDelay is how long a unit takes to answer an offer (accept or
	// decline); it defaults to 2-15 s when Max is 0.
	AcceptDelay DurationRange
	// TravelSpeed is every unit's speed to an incident, in m/s; 0 uses the
	// kind's (patrol car 12, foot patrol 1.5, volunteer patrol 4, grid
	// manager 5). A unit patrols its beat at half that speed.
	TravelSpeed float64
	// OnSceneTime is how long a unit stays at an incident before it
	// clears; it defaults to 30 s - 3 min when Max is 0.
	OnSceneTime DurationRange
	// ConnectRate paces the first connections, per second; it defaults to
	// 500.
	ConnectRate int
	// Seed seeds the random choices; the same seed makes the same choices
	// (timing aside).
	Seed int64
	// OnDispatch, when set, is called with every message a unit receives
	// on its dispatch topic, repeated deliveries included, before the unit
	// looks at it: tests count what reached the units with it. It runs on
	// the unit's MQTT client's goroutine and must not block.
	OnDispatch func(unit string, payload []byte)
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// Defaults of UnitSimConfig.
const (
	defaultUnitPositionEvery = 10 * time.Second
	defaultUnitAcceptRatio   = 0.85
	defaultUnitDeclineRatio  = 0.1
	defaultUnitIgnoreRatio   = 0.05
)

// withDefaults returns the config with its defaults filled in and the
// ratios scaled to add up to 1.
func (cfg UnitSimConfig) withDefaults() UnitSimConfig {
	if cfg.Prefix == "" {
		cfg.Prefix = defaultSimPrefix
	}
	if cfg.PositionEvery == 0 {
		cfg.PositionEvery = defaultUnitPositionEvery
	}
	if cfg.AcceptRatio == 0 && cfg.DeclineRatio == 0 && cfg.IgnoreRatio == 0 {
		cfg.AcceptRatio, cfg.DeclineRatio, cfg.IgnoreRatio = defaultUnitAcceptRatio, defaultUnitDeclineRatio, defaultUnitIgnoreRatio
	}
	if cfg.IgnoreRatio == 0 {
		cfg.IgnoreRatio = max(0, 1-cfg.AcceptRatio-cfg.DeclineRatio)
	}
	if sum := cfg.AcceptRatio + cfg.DeclineRatio + cfg.IgnoreRatio; sum > 0 && cfg.AcceptRatio >= 0 && cfg.DeclineRatio >= 0 && cfg.IgnoreRatio >= 0 {
		cfg.AcceptRatio /= sum
		cfg.DeclineRatio /= sum
		cfg.IgnoreRatio /= sum
	}
	if cfg.AcceptDelay.Max == 0 {
		cfg.AcceptDelay = DurationRange{2 * time.Second, 15 * time.Second}
	}
	if cfg.OnSceneTime.Max == 0 {
		cfg.OnSceneTime = DurationRange{30 * time.Second, 3 * time.Minute}
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
func (cfg UnitSimConfig) Validate() error {
	if err := validateBroker(cfg.Broker); err != nil {
		return err
	}
	switch {
	case cfg.PositionEvery < 0:
		return errors.New("position_every: negative")
	case badRatio(cfg.AcceptRatio):
		return errors.New("accept_ratio: must be between 0 and 1")
	case badRatio(cfg.DeclineRatio):
		return errors.New("decline_ratio: must be between 0 and 1")
	case badRatio(cfg.IgnoreRatio):
		return errors.New("ignore_ratio: must be between 0 and 1")
	case math.IsNaN(cfg.TravelSpeed) || cfg.TravelSpeed < 0 || cfg.TravelSpeed > 1e6:
		return errors.New("travel_speed: must be between 0 and 1,000,000 m/s")
	case cfg.ConnectRate < 0:
		return errors.New("connect_rate: negative")
	}
	if err := cfg.AcceptDelay.validate("accept_delay"); err != nil {
		return err
	}
	if err := cfg.OnSceneTime.validate("on_scene_time"); err != nil {
		return err
	}
	seen := make(map[string]bool, len(cfg.Units))
	for i, d := range cfg.Units {
		if err := d.validate(i); err != nil {
			return err
		}
		if seen[d.ID] {
			return fmt.Errorf("units[%d].id: %q is repeated", i, d.ID)
		}
		seen[d.ID] = true
	}
	return nil
}

func badRatio(r float64) bool { return math.IsNaN(r) || r < 0 || r > 1 }

// UnitSimStats counts what a UnitSim did since it was made.
type UnitSimStats struct {
	Units     int    // units running
	Connected int    // units connected now
	Connects  uint64 // connections made, reconnections included
	Offers    uint64 // offers received (repeated deliveries of one offer count once)
	Accepted  uint64 // offers accepted
	Declined  uint64 // offers declined (busy units decline too)
	Ignored   uint64 // offers left unanswered on purpose
	Withdrawn uint64 // offers withdrawn by the server before the unit answered
	Cancelled uint64 // incidents a unit was on that the server ended (cancelled, resolved)
	Arrived   uint64 // arrivals on scene
	Cleared   uint64 // incidents cleared by a unit
	Positions uint64 // position reports sent (QoS 0)
	Refused   uint64 // replies the server refused ("error" messages)
	Errors    uint64 // failed connections, publishes without a PUBACK in time, undecodable messages
}

// UnitSim runs simulated patrol units against an MQTT broker, each with
// its own MQTT client, as a patrol terminal would: client id = unit ID, a
// persistent session (clean session off), a QoS 1 subscription to
// {prefix}/unit/{id}/dispatch, position reports (QoS 0) on
// {prefix}/unit/{id}/pos and replies (QoS 1) on {prefix}/unit/{id}/reply,
// in the JSON that the alarms package reads. A unit patrols its beat,
// answers offers after a delay, drives to the incident reporting its
// position, arrives, stays a while, and clears it with a disposition. It
// reconnects by itself.
type UnitSim struct {
	cfg UnitSimConfig
	log *slog.Logger

	mu      sync.Mutex
	running bool
	units   int // while Run runs

	counts unitSimCounts
}

// unitSimCounts are the counters behind UnitSimStats.
type unitSimCounts struct {
	connected atomic.Int64
	connects, offers, accepted, declined, ignored, withdrawn, cancelled,
	arrived, cleared, positions, refused, errs atomic.Uint64
}

// NewUnitSim makes a simulator; Run starts it.
func NewUnitSim(cfg UnitSimConfig) *UnitSim {
	cfg = cfg.withDefaults()
	return &UnitSim{cfg: cfg, log: cfg.Logger}
}

// Run connects the units, paced by ConnectRate, and runs them until ctx
// ends; then every unit disconnects and Run returns nil. It returns an
// error for a bad config or when it is already running.
func (s *UnitSim) Run(ctx context.Context) error {
	if err := s.cfg.Validate(); err != nil {
		return fmt.Errorf("unit sim: %w", err)
	}
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("unit sim: already running")
	}
	s.running = true
	s.units = len(s.cfg.Units)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.units = 0
		s.mu.Unlock()
	}()
	s.log.Info("unit sim starting", "units", len(s.cfg.Units))

	var wg sync.WaitGroup
	pace := time.NewTicker(time.Second / time.Duration(s.cfg.ConnectRate))
	defer pace.Stop()
start:
	for i, u := range s.cfg.Units {
		if i > 0 {
			select {
			case <-ctx.Done():
				break start
			case <-pace.C:
			}
		}
		c := newUnitSimClient(s, u, i)
		wg.Go(func() { c.run(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	s.log.Info("unit sim stopped", "stats", fmt.Sprintf("%+v", s.Stats()))
	return nil
}

// Stats returns the counters now.
func (s *UnitSim) Stats() UnitSimStats {
	s.mu.Lock()
	n := s.units
	s.mu.Unlock()
	c := &s.counts
	return UnitSimStats{
		Units:     n,
		Connected: int(c.connected.Load()),
		Connects:  c.connects.Load(),
		Offers:    c.offers.Load(),
		Accepted:  c.accepted.Load(),
		Declined:  c.declined.Load(),
		Ignored:   c.ignored.Load(),
		Withdrawn: c.withdrawn.Load(),
		Cancelled: c.cancelled.Load(),
		Arrived:   c.arrived.Load(),
		Cleared:   c.cleared.Load(),
		Positions: c.positions.Load(),
		Refused:   c.refused.Load(),
		Errors:    c.errs.Load(),
	}
}
