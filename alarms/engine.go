package alarms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// EngineOptions are the engine's inputs beside the intake and the store.
type EngineOptions struct {
	// Cameras are the camera sites to link to incidents by distance.
	Cameras []CameraSite
	// Logger defaults to the intake's.
	Logger *slog.Logger
	// Poll is how often the engine reads the event log without being woken
	// (a safety net: the intake wakes it on every stored event). It
	// defaults to 1 s, and to 200 ms in cluster mode (events stored by
	// other nodes do not wake the leader).
	Poll time.Duration
	// Cluster, when set, puts the engine in cluster mode (see
	// cluster_engine.go): Start runs no engine, Lead runs it for one term,
	// and the public methods go through Cluster's command stream to
	// whichever node leads. The store must then implement FencedStore.
	Cluster EngineCluster
	// ForwardTimeout bounds how long a request waits for the leader in
	// cluster mode (then it fails with ErrNoLeader). It defaults to
	// DefaultForwardTimeout; set it to the lease's failover time and a few
	// seconds.
	ForwardTimeout time.Duration
}

// Limits of the engine.
const (
	// eventBatch is how many events the engine applies per store write.
	eventBatch = 200
	// enRouteDistance is how far (metres) a committed unit must move from
	// where it accepted before the incident counts as en route.
	enRouteDistance = 100
	// maxTimeline bounds an incident's timeline; past it, entries that
	// change nothing (restores, other events) are no longer added.
	maxTimeline = 500
)

// Engine turns stored events into incidents and dispatches them to patrol
// units. One goroutine (run) owns its state: the open incidents, the
// units, the offer deadlines. The methods ask it through a channel and
// wait for the answer. Every change is saved before it is announced
// (subscribers, MQTT). See the summary at the top of incident.go.
type Engine struct {
	in    *Intake
	store IncidentStore
	opts  EngineOptions
	// cf is the configuration the engine works with: Apply replaces it
	// whole (see engineConf).
	cf      atomic.Pointer[engineConf]
	logger  *slog.Logger
	changes *fanout[IncidentChange]
	toUnits *fanout[DispatchMessage]

	reqs chan request
	wake chan struct{}

	// cl and fstore are set in cluster mode.
	cl     EngineCluster
	fstore FencedStore

	terms   sync.WaitGroup // the running term (cluster mode)
	mu      sync.Mutex     // guards started, closed, cancel, leading, life
	started bool
	closed  bool
	leading bool            // a term runs (cluster mode)
	life    context.Context // ends at Close (cluster mode)
	cancel  context.CancelFunc
	done    chan struct{} // closed when run returns (or at Close before Start)
	once    sync.Once

	// Owned by run.
	st *engineState

	// applyMu makes Apply calls one at a time.
	applyMu sync.Mutex
	// termDone is closed when the running term ends (cluster mode; nil
	// when none runs). Guarded by mu.
	termDone <-chan struct{}
}

// request is a function run by the engine's goroutine. It may change
// incidents through t; it returns false when it changed nothing or failed,
// and t is then put back as it was before it.
type request struct {
	fn   func(ctx context.Context, t *txn) bool
	done chan error // the outcome of saving t
	// cmd is the command stream entry the request comes from (cluster
	// mode), saved as the stream's read position with t.
	cmd string
}

// maxGroup bounds the requests whose changes are saved in one write.
const maxGroup = 64

// NewEngine builds the engine of an intake that has not started yet (the
// intake then hands it the units' MQTT messages and wakes it on every
// stored event). store is usually the intake's store. It starts nothing.
func NewEngine(in *Intake, store IncidentStore, opts EngineOptions) (*Engine, error) {
	if in == nil || store == nil {
		return nil, errors.New("alarms: engine: needs an intake and a store")
	}
	cf, err := newEngineConf(&in.cfg, opts.Cameras, nil)
	if err != nil {
		return nil, err // validated by NewIntake already
	}
	if opts.Logger == nil {
		opts.Logger = in.logger
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
		if opts.Cluster != nil {
			opts.Poll = clusterPoll
		}
	}
	if opts.ForwardTimeout <= 0 {
		opts.ForwardTimeout = DefaultForwardTimeout
	}
	var fstore FencedStore
	if opts.Cluster != nil {
		var ok bool
		if fstore, ok = store.(FencedStore); !ok {
			return nil, errors.New("alarms: engine: cluster mode needs a store with fenced writes (the Redis store)")
		}
	}
	e := &Engine{
		in:      in,
		store:   store,
		opts:    opts,
		logger:  opts.Logger,
		changes: newFanout[IncidentChange](),
		toUnits: newFanout[DispatchMessage](),
		reqs:    make(chan request),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		cl:      opts.Cluster,
		fstore:  fstore,
	}
	e.cf.Store(cf)
	e.st = newEngineState(e)
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.started || in.closed {
		return nil, errors.New("alarms: engine: the intake has started already")
	}
	if in.engine != nil {
		return nil, errors.New("alarms: engine: the intake has an engine already")
	}
	in.engine = e
	return e, nil
}

// Start loads the units and the open incidents, re-arms offer deadlines
// (one already passed fires at once), and starts the engine's goroutine,
// which first catches up with the event log. Start the intake first:
// offers are published through its broker. ctx bounds the start only.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrEngineClosed
	}
	if e.started {
		return errors.New("alarms: engine already started")
	}
	if e.cl != nil {
		return e.startFollower(ctx)
	}
	if err := e.st.load(ctx); err != nil {
		return fmt.Errorf("alarms: engine: %w", err)
	}
	reports := e.conf().reports
	for _, u := range e.st.unitOrder {
		r := reports[u.cfg.ID]
		r.mu.Lock()
		r.last = u.st
		r.mu.Unlock()
	}
	e.started = true
	life, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	go e.run(life)
	return nil
}

// Close stops the engine and waits for its goroutine; subscriptions are
// closed. It is idempotent. Close the engine before the intake.
func (e *Engine) Close() error {
	e.once.Do(func() {
		e.mu.Lock()
		e.closed = true
		started, cancel := e.started, e.cancel
		e.mu.Unlock()
		if started {
			cancel()
		} else {
			close(e.done)
		}
		<-e.done
		e.changes.close()
		e.toUnits.close()
	})
	return nil
}

// notify wakes the engine to read the event log; it never blocks.
func (e *Engine) notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// run is the engine's goroutine (single-node mode).
func (e *Engine) run(ctx context.Context) {
	defer close(e.done)
	e.loop(ctx, e.st)
}

// loop runs the engine on st until ctx ends: the whole life of a
// single-node engine, or one term in cluster mode.
func (e *Engine) loop(ctx context.Context, st *engineState) {
	poll := time.NewTicker(e.opts.Poll)
	defer poll.Stop()
	deadline := time.NewTimer(time.Hour)
	defer deadline.Stop()
	// Deadlines that passed meanwhile (a new term's, or a restart's) fire
	// at once, before the event log's backlog is applied.
	st.expireOffers(ctx)
	st.catchUp(ctx)
	st.dispatchWaiting(ctx)
	for {
		st.arm(deadline)
		select {
		case <-ctx.Done():
			return
		case r := <-e.reqs:
			st.serve(ctx, r)
		case <-e.wake:
			st.catchUp(ctx)
		case <-poll.C:
			st.catchUp(ctx)
			if st.retry {
				st.dispatchWaiting(ctx)
			}
		case <-deadline.C:
			st.expireOffers(ctx)
		}
		if st.freed {
			st.dispatchWaiting(ctx)
		}
	}
}

// call runs fn on the engine's goroutine and waits until its changes are
// saved (or failed to be: the error). cmd is the command stream entry of
// the request in cluster mode ("" otherwise).
func (e *Engine) call(ctx context.Context, cmd string, fn func(ctx context.Context, t *txn) bool) error {
	r := request{fn: fn, done: make(chan error, 1), cmd: cmd}
	select {
	case e.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		return ErrEngineClosed
	}
	select {
	case err := <-r.done:
		return err
	case <-e.done:
		return ErrEngineClosed
	}
}

// callFor is call, or callTerm for a command of the stream (cluster mode).
func (e *Engine) callFor(ctx context.Context, cmd string, fn func(ctx context.Context, t *txn) bool) error {
	if e.cl != nil {
		return e.callTerm(ctx, cmd, fn)
	}
	return e.call(ctx, cmd, fn)
}

// callTerm is call for a term's command reader: the term's ctx ending
// (without the request having run) is ctx.Err().
func (e *Engine) callTerm(ctx context.Context, cmd string, fn func(ctx context.Context, t *txn) bool) error {
	r := request{fn: fn, done: make(chan error, 1), cmd: cmd}
	select {
	case e.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once taken, the request is answered: serve runs to the end.
	return <-r.done
}

// serve runs a request, and the others already waiting (up to maxGroup),
// in one txn saved by one write: with the bolt store, each write waits for
// an fsync, and the engine's goroutine would otherwise wait for one per
// reply of a unit or action of an operator.
func (s *engineState) serve(ctx context.Context, r request) {
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	t := s.begin()
	group := []request{r}
	s.runRequest(sctx, t, r)
	cmd := r.cmd
more:
	for len(group) < maxGroup {
		select {
		case r := <-s.e.reqs:
			group = append(group, r)
			s.runRequest(sctx, t, r)
			if r.cmd != "" {
				cmd = r.cmd
			}
		default:
			break more
		}
	}
	err := t.commit(sctx, "", cmd)
	if err != nil {
		s.afterFailure(sctx, err)
	}
	for _, r := range group {
		r.done <- err
	}
}

// runRequest runs one request of a group, undoing its changes to t when it
// returns false.
func (s *engineState) runRequest(ctx context.Context, t *txn, r request) {
	sp := t.save()
	if !r.fn(ctx, t) {
		t.restore(sp)
	}
}

// Areas returns the jurisdiction tree; Apply replaces it, so hold it no
// longer than a request.
func (e *Engine) Areas() *AreaTree { return e.conf().tree }

// Act applies an operator's action and returns the incident after it.
func (e *Engine) Act(ctx context.Context, incidentID string, a Action) (Incident, error) {
	if e.cl != nil {
		return e.forwardIncident(ctx, command{Op: opAct, Incident: incidentID, Action: &a})
	}
	return e.act(ctx, "", incidentID, a)
}

func (e *Engine) act(ctx context.Context, cmd, incidentID string, a Action) (Incident, error) {
	var (
		p    *Incident
		keep bool
		err  error
	)
	if cerr := e.callFor(ctx, cmd, func(ctx context.Context, t *txn) bool {
		p, keep, err = t.s.act(ctx, t, incidentID, a)
		return keep
	}); cerr != nil {
		return Incident{}, fmt.Errorf("incident %s: %s: %w", incidentID, a.Kind, cerr)
	}
	if p == nil {
		return Incident{}, err
	}
	// Saved: the working copy is now the engine's (read-only) version.
	return *p.clone(), err
}

// UnitReply applies a unit's answer about an incident and returns the
// incident after it.
func (e *Engine) UnitReply(ctx context.Context, unitID, incidentID string, action ReplyAction, disposition Disposition, note string) (Incident, error) {
	if e.cl != nil {
		return e.forwardIncident(ctx, command{Op: opReply, Unit: unitID, Incident: incidentID, Reply: action,
			Disposition: disposition, Note: note})
	}
	return e.unitReply(ctx, "", unitID, incidentID, action, disposition, note)
}

func (e *Engine) unitReply(ctx context.Context, cmd, unitID, incidentID string, action ReplyAction, disposition Disposition, note string) (Incident, error) {
	var (
		p    *Incident
		keep bool
		err  error
	)
	if cerr := e.callFor(ctx, cmd, func(ctx context.Context, t *txn) bool {
		p, keep, err = t.s.reply(ctx, t, unitID, incidentID, action, disposition, note)
		return keep
	}); cerr != nil {
		return Incident{}, fmt.Errorf("incident %s: %s from %s: %w", incidentID, action, unitID, cerr)
	}
	if p == nil {
		return Incident{}, err
	}
	return *p.clone(), err
}

// UnitPosition records a unit's position report. status is
// UnitAvailable, UnitOffDuty, or "" (keep what the unit said last).
//
// The report is saved on the caller's goroutine, in order per unit, and
// only then handed to the engine's goroutine: saving hundreds of positions
// a second must not hold up dispatch (with the bolt store each save waits
// for an fsync, shared by the saves that run at the same time).
//
// In cluster mode the report is checked, appended to the command stream,
// and UnitPosition returns: the leader saves and applies it in order.
func (e *Engine) UnitPosition(ctx context.Context, unitID string, lat, lon float64, status UnitStatus) error {
	if e.cl != nil {
		return e.forwardPosition(ctx, unitID, lat, lon, status)
	}
	return e.unitPosition(ctx, "", e.store.PutUnit, unitID, lat, lon, status, time.Now())
}

// unitPosition saves a report with put and hands it to the engine's
// goroutine.
func (e *Engine) unitPosition(ctx context.Context, cmd string, put func(context.Context, UnitState) error,
	unitID string, lat, lon float64, status UnitStatus, at time.Time) error {
	r := e.conf().reports[unitID]
	if r == nil {
		return fmt.Errorf("unit %q: %w", unitID, ErrUnknownUnit)
	}
	if !validLatLon(lat, lon) {
		return fmt.Errorf("unit %s: position (%g, %g) out of range: %w", unitID, lat, lon, ErrInvalidAction)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	next := r.last
	switch status {
	case "":
	case UnitAvailable:
		next.OffDuty = false
	case UnitOffDuty:
		next.OffDuty = true
	default:
		return fmt.Errorf("unit %s: status %q must be available or off_duty: %w", unitID, status, ErrInvalidAction)
	}
	next.Lat, next.Lon, next.Reported = lat, lon, at
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	if err := put(sctx, next); err != nil {
		return fmt.Errorf("unit %s: save position: %w", unitID, err)
	}
	r.last = next
	return e.callFor(ctx, cmd, func(ctx context.Context, t *txn) bool { return t.s.position(t, unitID, next) })
}

// unitReport is a unit's last report as saved; mu orders its saves.
type unitReport struct {
	mu   sync.Mutex
	last UnitState
}

// Incidents lists incidents (from the store) matching q. An unknown
// q.Area matches nothing.
func (e *Engine) Incidents(ctx context.Context, q IncidentQuery) (IncidentPage, error) {
	if q.Area != "" {
		q.Areas = e.conf().tree.Subtree(q.Area)
		if q.Areas == nil {
			return IncidentPage{}, nil
		}
	}
	return e.store.Incidents(ctx, q)
}

// Incident returns one incident with its timeline, or ErrNotFound.
func (e *Engine) Incident(ctx context.Context, id string) (Incident, error) {
	inc, err := e.store.Incident(ctx, id)
	if err != nil {
		return Incident{}, fmt.Errorf("incident %s: %w", id, err)
	}
	return inc, nil
}

// Units lists the configured units with their live state, in config
// order.
func (e *Engine) Units(ctx context.Context) ([]UnitView, error) {
	if e.cl != nil {
		a, err := e.forward(ctx, command{Op: opUnits})
		return a.Units, err
	}
	return e.units(ctx, "")
}

func (e *Engine) units(ctx context.Context, cmd string) ([]UnitView, error) {
	var out []UnitView
	if err := e.callFor(ctx, cmd, func(_ context.Context, t *txn) bool {
		now := time.Now()
		for _, u := range t.s.unitOrder {
			out = append(out, t.s.view(u, now))
		}
		return false
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// Unit returns one unit, or ErrUnknownUnit.
func (e *Engine) Unit(ctx context.Context, id string) (UnitView, error) {
	if e.cl != nil {
		a, err := e.forward(ctx, command{Op: opUnit, Unit: id})
		if a.Unit == nil {
			return UnitView{}, err
		}
		return *a.Unit, err
	}
	return e.unit(ctx, "", id)
}

func (e *Engine) unit(ctx context.Context, cmd, id string) (UnitView, error) {
	var (
		v  UnitView
		ok bool
	)
	if err := e.callFor(ctx, cmd, func(_ context.Context, t *txn) bool {
		if u := t.s.units[id]; u != nil {
			v, ok = t.s.view(u, time.Now()), true
		}
		return false
	}); err != nil {
		return UnitView{}, err
	}
	if !ok {
		return UnitView{}, fmt.Errorf("unit %q: %w", id, ErrUnknownUnit)
	}
	return v, nil
}

// SubscribeIncidents returns a channel of changes as they are saved, in
// order, until ctx ends or the engine closes (then it is closed). A
// subscriber that does not keep up misses changes: IncidentChange.Seq then
// jumps, and it should reload what it shows.
func (e *Engine) SubscribeIncidents(ctx context.Context) <-chan IncidentChange {
	ch := e.changes.add("")
	context.AfterFunc(ctx, func() { e.changes.remove(ch) })
	return ch
}

// DispatchMessages returns a channel of the messages sent to one unit (as
// on its MQTT dispatch topic), for the patrol page, until ctx ends or the
// engine closes. A slow reader misses messages.
func (e *Engine) DispatchMessages(ctx context.Context, unitID string) <-chan DispatchMessage {
	ch := e.toUnits.add(unitID)
	context.AfterFunc(ctx, func() { e.toUnits.remove(ch) })
	return ch
}
