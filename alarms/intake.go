package alarms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of the intake.
const (
	// maxConcurrent bounds the messages handled (decoded and stored) at
	// once; more wait, which holds back their acknowledgements.
	maxConcurrent = 64
	// maxConcurrentUnits bounds the unit messages (replies, positions)
	// handled at once, apart from maxConcurrent: in cluster mode each waits
	// for the engine's leader (up to failover + 5 s when there is none), and
	// that wait must not hold up the storing of alarms.
	maxConcurrentUnits = 8
	// storeTimeout bounds one message's store writes.
	storeTimeout = 10 * time.Second
	// pingInterval is how often a failing store is pinged, so that Status
	// shows its recovery even when no message arrives.
	pingInterval = 5 * time.Second
)

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("alarms: intake closed")

// Intake takes device messages from an MQTT broker (embedded or external),
// stores their events and supervises the devices. Create it with NewIntake,
// then Start and Close it.
type Intake struct {
	cfg      Config
	store    Store
	logger   *slog.Logger
	topics   topics
	decoders map[string]Decoder
	// roster is the configured devices, swapped whole by Apply.
	roster   atomic.Pointer[roster]
	creds    *credentials
	metrics  *metrics
	hub      *hub
	health   health
	sem      chan struct{}
	unitSem  chan struct{} // unit messages' own: see maxConcurrentUnits
	embedded bool
	// uncertain holds the events whose append failed: see uncertainKeys.
	uncertain uncertainKeys

	// life is the intake's lifetime, cancelled by Close. It is kept here,
	// against our habit, because mochi's hooks and paho's handlers call the
	// intake without a context.
	life   context.Context
	cancel context.CancelFunc

	// applyMu makes Apply calls one at a time.
	applyMu sync.Mutex

	mu      sync.Mutex // guards started, closed and wg.Add
	started bool
	closed  bool
	wg      sync.WaitGroup

	closeOnce sync.Once
	closing   atomic.Bool
	broker    *broker       // embedded mode
	client    *brokerClient // external mode

	// engine, when NewEngine attached one, takes the units' messages and
	// is woken by every stored event. Set before Start, then read only.
	engine *Engine

	// cluster is set by SetCluster before Start (nil: one node).
	cluster *clusterNode
	// startedAt is when Start ran: no device is silent before a window
	// from it.
	startedAt time.Time
}

// NewIntake checks cfg and builds an intake that stores into store and
// decodes with decoders (by name: "skywatch", "contactid", "zigbee2mqtt";
// hardware.Decoders provides them). It starts nothing.
func NewIntake(cfg Config, store Store, decoders map[string]Decoder, logger *slog.Logger) (*Intake, error) {
	cfg.Models = append([]ModelConfig(nil), cfg.Models...)
	cfg.Devices = append([]DeviceConfig(nil), cfg.Devices...)
	cfg.Units = append([]UnitConfig(nil), cfg.Units...)
	cfg.Areas = append([]AreaConfig(nil), cfg.Areas...)
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("alarms: no store")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	in := &Intake{
		cfg:      cfg,
		store:    store,
		logger:   logger,
		topics:   topics{prefix: cfg.MQTT.TopicPrefix},
		decoders: decoders,
		metrics:  newMetrics(),
		hub:      newHub(),
		sem:      make(chan struct{}, maxConcurrent),
		unitSem:  make(chan struct{}, maxConcurrentUnits),
		embedded: cfg.MQTT.Embedded(),
	}
	r, err := newRoster(&cfg, decoders, nil)
	if err != nil {
		return nil, err
	}
	in.roster.Store(r)
	plain, hashed := 0, 0
	for _, dc := range cfg.Devices {
		if dc.Password != "" {
			plain++
		}
		if dc.PasswordHash != "" {
			hashed++
		}
	}
	for _, u := range cfg.Units {
		if u.Password != "" {
			plain++
		}
		if u.PasswordHash != "" {
			hashed++
		}
	}
	// The embedded broker checks devices and units with them; the patrol
	// page checks units with them whatever the broker.
	in.creds = newCredentials(cfg.Devices, cfg.Units, cfg.MQTT.Auth)
	if in.embedded {
		if plain > 0 {
			logger.Warn("alarms: devices or units with a plain password: use password_hash outside the demo", "count", plain)
		}
		if hashed > 0 && cfg.MQTT.Auth.CacheFile == "" {
			// A county's fleet would wait minutes for its alarms after each
			// restart (about 70 ms of CPU per cost-10 check).
			logger.Warn("alarms: no mqtt.auth.cache_file: after every restart each device or unit with a password_hash costs a bcrypt check again; set the file (with the Redis store there is no default) or use token_sha256", "count", hashed)
		}
	}
	in.health.storeResult(nil)
	return in, nil
}

// Start loads the devices' saved states, gives every device a fresh
// supervision window (a restart must not raise troubles for all devices at
// once), loads the verified-credential cache (mqtt.auth.cache_file), and
// starts the broker (or the connection to the external broker) and the
// supervisor. ctx bounds the start only. Start fails when the store
// cannot be read or the embedded broker cannot listen; the error names the
// config key ("mqtt.address: listen tcp :1883: bind: address already in
// use").
func (in *Intake) Start(ctx context.Context) error {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return ErrClosed
	}
	if in.started {
		in.mu.Unlock()
		return errors.New("alarms: intake already started")
	}
	in.started = true
	in.life, in.cancel = context.WithCancel(context.WithoutCancel(ctx))
	in.mu.Unlock()

	if dt, ok := in.store.(durabilityTeller); ok {
		if d := dt.Durability(); d.Warning != "" {
			in.logger.Warn("alarms: the store can lose acknowledged alarms: "+d.Warning, "store", d.Summary)
		}
	}
	states, err := in.store.Devices(ctx)
	in.health.storeResult(err)
	if err != nil {
		return fmt.Errorf("alarms: load device states: %w", err)
	}
	r := in.live()
	for _, st := range states {
		if d := r.devices[st.ID]; d != nil {
			d.mu.Lock()
			d.commit(st)
			d.mu.Unlock()
		}
	}
	now := time.Now()
	in.startedAt = now
	for _, d := range r.order {
		d.extend(now)
	}
	if err := in.openAuthCache(); err != nil {
		return err
	}

	if in.cluster != nil {
		// Live events come from the log every node writes, from now on.
		if err := in.startTail(ctx); err != nil {
			return err
		}
	}
	if in.embedded {
		b, err := newBroker(in)
		if err != nil {
			return err
		}
		in.broker = b
		in.health.setConnected(true, nil)
	} else {
		in.client = newBrokerClient(in)
		in.spawn(func() { in.client.run(in.life) })
	}
	if in.cluster == nil {
		// In cluster mode one node supervises: see Supervise.
		in.spawn(func() { in.supervise(in.life) })
	}
	return nil
}

// spawn runs f in a goroutine that Close waits for, unless closed.
func (in *Intake) spawn(f func()) bool {
	if !in.enter() {
		return false
	}
	go func() {
		defer in.wg.Done()
		f()
	}()
	return true
}

// enter counts a goroutine or callback that Close must wait for; false
// once closed.
func (in *Intake) enter() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return false
	}
	in.wg.Add(1)
	return true
}

// Close stops the broker (or disconnects from the external one), the
// supervisor and the live subscriptions, and waits for them. Messages being
// stored are abandoned unacknowledged: the device or the broker sends them
// again. Close is idempotent; it does not close the store.
func (in *Intake) Close() error {
	in.closeOnce.Do(func() {
		in.closing.Store(true)
		in.mu.Lock()
		in.closed = true
		cancel := in.cancel
		in.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		in.creds.close()
		if in.broker != nil {
			in.broker.close()
		}
		in.wg.Wait()
		if in.client != nil {
			in.client.close()
		}
		in.hub.close()
		in.saveAuthCache()
		in.health.setConnected(false, nil)
	})
	return nil
}

// publish sends a message from the server at QoS 1, not retained: through
// the embedded broker's inline client, or the external broker connection
// (without waiting for its PUBACK: the engine's goroutine must not wait on
// the network; a lost offer times out like an unanswered one).
func (in *Intake) publish(topic string, payload []byte) error {
	switch {
	case in.broker != nil:
		return in.broker.server.Publish(topic, payload, false, 1)
	case in.client != nil:
		tok := in.client.c.Publish(topic, 1, false, payload)
		select {
		case <-tok.Done():
			return tok.Error()
		default:
			return nil
		}
	}
	return errors.New("no broker")
}

// CheckUnit returns the ID of the patrol unit whose user name and password
// these are (its password_hash, token or plain demo password), for the
// patrol page at remote (host:port). Wrong passwords count against the same
// limits as the unit's MQTT logins (mqtt.auth), so that neither is a way
// around the other's. The error is ErrBadCredentials, ErrLoginThrottled or
// ErrLoginBusy.
func (in *Intake) CheckUnit(username, password, remote string) (unitID string, err error) {
	return in.creds.checkUnit(username, password, remote)
}

// BrokerAddr returns the embedded broker's TCP address once started (the
// port the OS chose for ":0"), or "" with an external broker.
func (in *Intake) BrokerAddr() string {
	if in.broker == nil {
		return ""
	}
	return in.broker.addr()
}

// Subscribe returns a channel of events as they are stored, until ctx ends
// or the intake closes (then the channel is closed). A subscriber that does
// not keep up misses events; it should read them again from Events.
func (in *Intake) Subscribe(ctx context.Context) <-chan Event {
	ch := in.hub.add()
	if ch == nil {
		ch = make(chan Event)
		close(ch)
		return ch
	}
	context.AfterFunc(ctx, func() { in.hub.remove(ch) })
	return ch
}

// Status reports the broker connection and the store's health.
func (in *Intake) Status() IntakeStatus {
	r := in.live()
	st := IntakeStatus{Broker: BrokerExternal, Devices: len(r.order)}
	if in.embedded {
		st.Broker = BrokerEmbedded
		st.Address = in.cfg.MQTT.Address
		if in.broker != nil {
			st.Address = in.broker.addr()
			st.Clients = in.broker.clients()
			lim := in.broker.lim
			st.Connections = lim.count()
			st.ConnectionsRefused = lim.refusedTotal.Load() + lim.refusedAddr.Load()
			st.ConnectTimeouts = lim.timedOut.Load()
		}
	} else if u, err := url.Parse(in.cfg.MQTT.URL); err == nil {
		st.Address = u.Host
	}
	in.health.fill(&st)
	if dt, ok := in.store.(durabilityTeller); ok {
		d := dt.Durability()
		st.StoreDurability, st.StoreWarning = d.Summary, d.Warning
	}
	for _, d := range r.order {
		if d.lost.Load() {
			st.SupervisionLost++
		}
	}
	return st
}

// Events lists stored events from the store; q.Area takes in the areas
// under it, as for incidents.
func (in *Intake) Events(ctx context.Context, q EventQuery) (EventPage, error) {
	if q.Area != "" && len(q.Areas) == 0 {
		if q.Areas = in.live().tree.Subtree(q.Area); q.Areas == nil {
			q.Areas = []string{q.Area}
		}
	}
	return in.store.Events(ctx, q)
}

// EventsAfter lists up to limit stored events in the log's order after the
// one whose Offset is after (a pass-through to the store): a live stream
// that resumes from it misses nothing, whichever node stored what.
func (in *Intake) EventsAfter(ctx context.Context, after string, limit int) ([]Event, error) {
	lg, ok := in.store.(interface {
		EventsAfter(ctx context.Context, after string, limit int) ([]Event, error)
	})
	if !ok {
		return nil, errors.New("alarms: the store cannot list its log in order")
	}
	return lg.EventsAfter(ctx, after, limit)
}

// Rejected lists rejected messages (a pass-through to the store).
func (in *Intake) Rejected(ctx context.Context, q RejectedQuery) ([]Rejected, error) {
	return in.store.Rejected(ctx, q)
}

// Devices lists the configured devices with their states, in config order,
// without their last events.
func (in *Intake) Devices(ctx context.Context) ([]DeviceView, error) {
	r := in.live()
	out := make([]DeviceView, 0, len(r.order))
	for _, d := range r.order {
		out = append(out, d.view())
	}
	if in.cluster != nil {
		// Other nodes heard the devices too: the store has the truth.
		states, err := in.store.Devices(ctx)
		if err != nil {
			return nil, fmt.Errorf("devices: %w", err)
		}
		byID := make(map[string]int, len(out))
		for i := range out {
			byID[out[i].ID] = i
		}
		for _, st := range states {
			if i, ok := byID[st.ID]; ok {
				out[i].State = st
			}
		}
	}
	return out, nil
}

// lastEvents is how many events Device returns.
const lastEvents = 10

// Device returns one configured device with its state and its last events,
// or ErrNotFound.
func (in *Intake) Device(ctx context.Context, id string) (DeviceView, error) {
	d := in.live().devices[id]
	if d == nil {
		return DeviceView{}, fmt.Errorf("device %q: %w", id, ErrNotFound)
	}
	v := d.view()
	if in.cluster != nil {
		st, err := in.store.Device(ctx, id)
		switch {
		case err == nil:
			v.State = st
		case !errors.Is(err, ErrNotFound):
			return v, fmt.Errorf("device %s: %w", id, err)
		}
	}
	page, err := in.store.Events(ctx, EventQuery{Device: id, Limit: lastEvents})
	if err != nil {
		return v, fmt.Errorf("device %s: last events: %w", id, err)
	}
	v.LastEvents = page.Events
	return v, nil
}
