package alarms

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Operations of the command stream.
const (
	opAct            = "act"
	opReply          = "reply"
	opPosition       = "position"
	opUnits          = "units"
	opUnit           = "unit"
	opNote           = "note"
	opCameraTrouble  = "camera_trouble"
	opCameraRestored = "camera_restored"
)

// command is a request in the command stream (JSON).
type command struct {
	Op string `json:"op"`
	// Key is where the answer goes (none for a position report).
	Key string `json:"key,omitempty"`
	// Deadline: the caller no longer waits after it; the leader then
	// drops the command unapplied (but a position report).
	Deadline time.Time `json:"deadline,omitzero"`

	Incident    string      `json:"incident,omitempty"`
	Action      *Action     `json:"action,omitempty"`
	Unit        string      `json:"unit,omitempty"`
	Reply       ReplyAction `json:"reply,omitempty"`
	Disposition Disposition `json:"disposition,omitempty"`
	Note        string      `json:"note,omitempty"`
	NoteAction  string      `json:"note_action,omitempty"`
	Camera      string      `json:"camera,omitempty"`
	Lat         float64     `json:"lat,omitempty"`
	Lon         float64     `json:"lon,omitempty"`
	Status      UnitStatus  `json:"status,omitempty"`
	At          time.Time   `json:"at,omitzero"`
}

// answer is the leader's answer to a command (JSON).
type answer struct {
	Incident *Incident  `json:"incident,omitempty"`
	Units    []UnitView `json:"units,omitempty"`
	Unit     *UnitView  `json:"unit,omitempty"`
	Err      *wireError `json:"err,omitempty"`
}

// wireError is an error crossing from the leader: its kind (the sentinel
// or type callers branch on) and its message.
type wireError struct {
	Kind       string           `json:"kind"`
	Msg        string           `json:"msg"`
	Transition *TransitionError `json:"transition,omitempty"`
}

// errorKinds are the sentinels that cross, in the order they are tried.
var errorKinds = []struct {
	kind string
	err  error
}{
	{"not_found", ErrNotFound},
	{"unknown_unit", ErrUnknownUnit},
	{"unit_unavailable", ErrUnitUnavailable},
	{"not_assigned", ErrNotAssigned},
	{"invalid_action", ErrInvalidAction},
	{"conflict", ErrConflict},
	{"engine_closed", ErrEngineClosed},
	{"fenced", ErrFenced},
}

func toWire(err error) *wireError {
	if err == nil {
		return nil
	}
	w := &wireError{Kind: "other", Msg: err.Error()}
	var te *TransitionError
	if errors.As(err, &te) {
		w.Kind, w.Transition = "transition", te
		return w
	}
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			w.Kind = k.kind
			break
		}
	}
	return w
}

// remoteError is an error of the leader rebuilt on the caller's node: its
// message as the leader had it, matching the same sentinel or type.
type remoteError struct {
	msg string
	err error // the sentinel, the *TransitionError, or nil
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.err }

func (w *wireError) rebuild() error {
	r := &remoteError{msg: w.Msg}
	if w.Kind == "transition" && w.Transition != nil {
		r.err = w.Transition
		return r
	}
	for _, k := range errorKinds {
		if k.kind == w.Kind {
			r.err = k.err
		}
	}
	return r
}

func randomKey() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// forward sends a command to the leader and waits for its answer. The
// error is the leader's (rebuilt), or wraps ErrNoLeader when none answered
// within ForwardTimeout.
func (e *Engine) forward(ctx context.Context, c command) (answer, error) {
	wait := e.opts.ForwardTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		wait = max(time.Until(dl), time.Second)
	}
	c.Key, c.Deadline = randomKey(), time.Now().Add(wait)
	data, err := json.Marshal(&c)
	if err != nil {
		return answer{}, fmt.Errorf("%s: %w", c.Op, err)
	}
	if _, err := e.cl.SendCommand(ctx, data); err != nil {
		return answer{}, fmt.Errorf("%s: send to the incident engine: %w", c.Op, err)
	}
	b, err := e.cl.AwaitReply(ctx, c.Key, wait)
	if err != nil {
		return answer{}, fmt.Errorf("%s: wait for the incident engine: %w", c.Op, err)
	}
	if b == nil {
		return answer{}, fmt.Errorf("%s: none within %s: %w", c.Op, wait, ErrNoLeader)
	}
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		return answer{}, fmt.Errorf("%s: answer of the incident engine: %w", c.Op, err)
	}
	if a.Err != nil {
		return a, a.Err.rebuild()
	}
	return a, nil
}

// forwardIncident forwards a command whose answer is an incident.
func (e *Engine) forwardIncident(ctx context.Context, c command) (Incident, error) {
	a, err := e.forward(ctx, c)
	if a.Incident == nil {
		return Incident{}, err
	}
	return *a.Incident, err
}

// forwardPosition checks a position report and appends it to the command
// stream; the leader saves and applies it.
func (e *Engine) forwardPosition(ctx context.Context, unitID string, lat, lon float64, status UnitStatus) error {
	if e.conf().reports[unitID] == nil {
		return fmt.Errorf("unit %q: %w", unitID, ErrUnknownUnit)
	}
	if !validLatLon(lat, lon) {
		return fmt.Errorf("unit %s: position (%g, %g) out of range: %w", unitID, lat, lon, ErrInvalidAction)
	}
	if status != "" && status != UnitAvailable && status != UnitOffDuty {
		return fmt.Errorf("unit %s: status %q must be available or off_duty: %w", unitID, status, ErrInvalidAction)
	}
	data, err := json.Marshal(&command{Op: opPosition, Unit: unitID, Lat: lat, Lon: lon, Status: status, At: time.Now()})
	if err != nil {
		return err
	}
	if _, err := e.cl.SendCommand(ctx, data); err != nil {
		return fmt.Errorf("unit %s: position: send to the incident engine: %w", unitID, err)
	}
	return nil
}

// readCommands is a term's goroutine: it applies the command stream in
// order from the saved position until ctx ends.
func (e *Engine) readCommands(ctx context.Context, st *engineState) {
	after := st.commands
	failing := false
	for ctx.Err() == nil {
		cmds, err := e.cl.ReadCommands(ctx, after, commandBatch, busWait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				e.logger.Warn("alarms: incident engine: cannot read commands; retrying", "err", err)
				failing = true
			}
			sleepCtx(ctx, 500*time.Millisecond)
			continue
		}
		failing = false
		for _, c := range cmds {
			if !e.applyCommand(ctx, st, c) {
				return // the term is over: the next one reads c again
			}
			after = c.ID
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// applyCommand applies one command and answers it; it retries a failure
// to save (the command is then not consumed) until the term ends, and
// reports false then.
func (e *Engine) applyCommand(ctx context.Context, st *engineState, entry CommandEntry) bool {
	var c command
	if err := json.Unmarshal(entry.Data, &c); err != nil {
		e.logger.Warn("alarms: incident engine: malformed command dropped", "id", entry.ID, "err", err)
		c = command{}
	}
	for {
		a, err := e.runCommand(ctx, st, entry.ID, c)
		if err == nil {
			// Saved: answer even if the term ended meanwhile (the next
			// term will not run it again).
			if c.Key != "" {
				e.answer(context.WithoutCancel(ctx), c, a)
			}
			return true
		}
		if ctx.Err() != nil || st.fenced.Load() {
			return false // not saved: the next term runs it
		}
		// Not saved (nor the command's position): run it again.
		e.logger.Warn("alarms: incident engine: command not saved; retrying", "op", c.Op, "err", err)
		sleepCtx(ctx, 500*time.Millisecond)
	}
}

// answer stores the answer to a command for its caller.
func (e *Engine) answer(ctx context.Context, c command, a answer) {
	data, err := json.Marshal(&a)
	if err == nil {
		sctx, cancel := storeCtx(ctx)
		err = e.cl.Reply(sctx, c.Key, data, time.Until(c.Deadline)+5*time.Second)
		cancel()
	}
	if err != nil {
		e.logger.Warn("alarms: incident engine: answer a command", "op", c.Op, "err", err)
	}
}

// runCommand applies c. Its error is a failure to save (the command must
// be run again); the leader's refusals and results are in the answer.
func (e *Engine) runCommand(ctx context.Context, st *engineState, id string, c command) (answer, error) {
	var (
		a   answer
		err error
	)
	saved := func(inc Incident, e error) {
		if inc.ID != "" {
			a.Incident = &inc
		}
		err = e
	}
	expired := c.Op != opPosition && !c.Deadline.IsZero() && time.Now().After(c.Deadline)
	switch {
	case expired || c.Op == "":
		// Consumed without effect: its caller is gone (or it was malformed).
		return a, e.callTerm(ctx, id, func(context.Context, *txn) bool { return false })
	case c.Op == opAct && c.Action != nil:
		saved(e.act(ctx, id, c.Incident, *c.Action))
	case c.Op == opReply:
		saved(e.unitReply(ctx, id, c.Unit, c.Incident, c.Reply, c.Disposition, c.Note))
	case c.Op == opNote:
		saved(e.note(ctx, id, c.Incident, c.NoteAction, c.Note))
	case c.Op == opCameraTrouble:
		saved(e.cameraTroubleLocal(ctx, id, c.Camera, c.Note))
	case c.Op == opCameraRestored:
		saved(e.cameraRestored(ctx, id, c.Camera, c.Note))
	case c.Op == opUnits:
		a.Units, err = e.units(ctx, id)
	case c.Op == opUnit:
		var v UnitView
		if v, err = e.unit(ctx, id, c.Unit); err == nil {
			a.Unit = &v
		}
	case c.Op == opPosition:
		put := func(ctx context.Context, u UnitState) error {
			err := e.fstore.PutUnitFenced(ctx, *st.fence, u)
			st.fencedOut(err)
			return err
		}
		err = e.unitPosition(ctx, id, put, c.Unit, c.Lat, c.Lon, c.Status, c.At)
	default:
		err = fmt.Errorf("command %q: %w", c.Op, ErrInvalidAction)
	}
	if err != nil && refusedByEngine(err) {
		a.Err = toWire(err)
		// A refusal saved the command's position (a txn without changes),
		// unless the refusal came before the engine's goroutine (a bad
		// position report): consume it then.
		if id != st.commands {
			if cerr := e.callTerm(ctx, id, func(context.Context, *txn) bool { return false }); cerr != nil {
				return a, cerr
			}
		}
		return a, nil
	}
	return a, err
}

// refusedByEngine reports whether err is an answer of the engine (a
// refusal) rather than a failure to save.
func refusedByEngine(err error) bool {
	return refused(err)
}
