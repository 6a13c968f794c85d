package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/recorder"
)

// evidenceRecorder is what the evidence wiring needs of the recorder.
type evidenceRecorder interface {
	StartClips(incidentID string, cameras []string, alarm time.Time)
	ExtendClips(incidentID string, last time.Time)
	EndIncident(incidentID string, ended time.Time)
	Unended() []string
	Notices() <-chan recorder.Notice
}

// evidenceEngine is what the evidence wiring needs of the incident engine.
type evidenceEngine interface {
	SubscribeIncidents(ctx context.Context) <-chan alarms.IncidentChange
	Incident(ctx context.Context, id string) (alarms.Incident, error)
	Note(ctx context.Context, incidentID, action, reason string) (alarms.Incident, error)
	CameraTrouble(ctx context.Context, cameraID, reason string) (alarms.Incident, error)
	CameraRestored(ctx context.Context, cameraID, reason string) (alarms.Incident, error)
}

// incidentEvidence connects incidents and the recorder both ways: a new
// response incident opens clips on its cameras, an event that joins it
// extends them, its end starts their keep clock; a clip's end goes into
// its incident's timeline with its SHA-256, and a camera that stops
// recording raises a maintenance incident (restored when it records
// again).
//
// Two goroutines: one reads the engine's changes (the engine never waits
// for it; a slow subscriber misses changes, so it must not wait on the
// engine either), one the recorder's notices (which does call the engine).
type incidentEvidence struct {
	rec    evidenceRecorder
	engine evidenceEngine
	logger *slog.Logger

	// retryWait is how long a notice waits before the engine is asked
	// again after a failure (a store outage).
	retryWait time.Duration
	// reconcileEvery is how often clips whose incident's end was not seen
	// are checked against the engine (a slow subscriber misses changes).
	reconcileEvery time.Duration

	// seen is the latest event time handled of each open incident; touched
	// only by the changes goroutine.
	seen      map[string]time.Time
	lastPrune time.Time

	cancel context.CancelFunc
	done   chan struct{}
}

// evidenceForget is how long an incident not heard of is remembered: its
// end may have been missed. Seen again, StartClips does nothing for clips
// that exist.
const evidenceForget = 24 * time.Hour

// noticeTries bounds the tries of one notice while the engine fails.
const noticeTries = 5

func newIncidentEvidence(rec evidenceRecorder, engine evidenceEngine, logger *slog.Logger) *incidentEvidence {
	return &incidentEvidence{rec: rec, engine: engine, logger: logger, retryWait: 2 * time.Second,
		reconcileEvery: 10 * time.Minute, seen: map[string]time.Time{}}
}

// start subscribes to the engine's changes (before the engine starts, so
// that incidents opened while it catches up are seen) and reads the
// recorder's notices, until close.
func (v *incidentEvidence) start() {
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	v.done = make(chan struct{})
	changes := v.engine.SubscribeIncidents(ctx)
	noticesDone := make(chan struct{})
	go func() {
		defer close(noticesDone)
		reconcile := time.NewTicker(v.reconcileEvery)
		defer reconcile.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case n := <-v.rec.Notices():
				v.notice(ctx, n)
			case <-reconcile.C:
				v.reconcile(ctx)
			}
		}
	}()
	go func() {
		defer close(v.done)
		for ch := range changes {
			v.take(ch, time.Now())
		}
		<-noticesDone
	}()
}

// reconcile starts the keep clock of clips whose incident ended without
// the wiring seeing it: the engine's subscriber misses changes when it
// falls behind, and without this those clips would be kept for ever. An
// incident the engine no longer has ends now.
func (v *incidentEvidence) reconcile(ctx context.Context) {
	for _, id := range v.rec.Unended() {
		inc, err := v.engine.Incident(ctx, id)
		switch {
		case errors.Is(err, alarms.ErrNotFound):
			v.rec.EndIncident(id, time.Now())
		case err != nil:
			// A store outage: the next round tries again.
			v.logger.Debug("evidence: incident not read", "incident", id, "error", err)
			return
		case !inc.State.Open():
			v.rec.EndIncident(id, endedAt(&inc))
		}
	}
}

// endedAt is when inc left the open states: its latest entry that did.
func endedAt(inc *alarms.Incident) time.Time {
	for i := len(inc.Timeline) - 1; i >= 0; i-- {
		if to := inc.Timeline[i].To; to != "" && !to.Open() {
			return inc.Timeline[i].At
		}
	}
	return inc.Updated
}

// close stops both goroutines and waits for them. It is idempotent.
func (v *incidentEvidence) close() {
	if v.cancel == nil {
		return
	}
	v.cancel()
	<-v.done
}

// take handles one change of an incident.
func (v *incidentEvidence) take(ch alarms.IncidentChange, now time.Time) {
	if now.Sub(v.lastPrune) > time.Hour {
		for id, at := range v.seen {
			if now.Sub(at) > evidenceForget {
				delete(v.seen, id)
			}
		}
		v.lastPrune = now
	}
	inc := ch.Incident
	if inc == nil || inc.Kind != alarms.KindResponse || len(inc.Cameras) == 0 {
		return
	}
	if !inc.State.Open() {
		if to := ch.Entry.To; to != "" && !to.Open() {
			// Resolved, then closed: the later end starts the clock.
			v.rec.EndIncident(inc.ID, ch.Entry.At)
		}
		delete(v.seen, inc.ID)
		return
	}
	last, ok := v.seen[inc.ID]
	if !ok {
		// New, or seen first after a restart: clips that exist are kept
		// as they are, none is opened twice.
		cams := make([]string, 0, len(inc.Cameras))
		for _, c := range inc.Cameras {
			cams = append(cams, c.ID)
		}
		v.rec.StartClips(inc.ID, cams, inc.First)
		last = inc.First
	}
	if inc.Last.After(last) {
		v.rec.ExtendClips(inc.ID, inc.Last)
		last = inc.Last
	}
	v.seen[inc.ID] = last
}

// notice passes one of the recorder's notices to the engine, trying again
// a few times while the engine fails (its store is away).
func (v *incidentEvidence) notice(ctx context.Context, n recorder.Notice) {
	var try func() error
	switch n.Kind {
	case recorder.NoticeClip:
		if n.Clip == nil {
			return
		}
		c := *n.Clip
		try = func() error {
			_, err := v.engine.Note(ctx, c.Incident, "evidence", clipLine(c))
			return err
		}
	case recorder.NoticeFault:
		try = func() error {
			_, err := v.engine.CameraTrouble(ctx, n.Camera, "recording stopped: "+n.Reason)
			return err
		}
	case recorder.NoticeRecovered:
		try = func() error {
			_, err := v.engine.CameraRestored(ctx, n.Camera, "recording again: "+n.Reason)
			if errors.Is(err, alarms.ErrNotFound) {
				return nil // no ticket open (closed by an operator already)
			}
			return err
		}
	default:
		return
	}
	for i := 1; ; i++ {
		err := try()
		if err == nil {
			return
		}
		if i == noticeTries || errors.Is(err, alarms.ErrNotFound) || errors.Is(err, alarms.ErrInvalidAction) ||
			errors.Is(err, alarms.ErrEngineClosed) {
			v.logger.Warn("recorder notice not recorded", "kind", n.Kind, "camera", n.Camera, "error", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(v.retryWait):
		}
	}
}

// clipLine is a clip's timeline entry: which camera, which span, and its
// SHA-256 or why it failed.
func clipLine(c recorder.Clip) string {
	span := c.Start.UTC().Format("15:04:05") + "-" + c.End.UTC().Format("15:04:05") + " UTC"
	if c.Status != recorder.ClipComplete {
		return fmt.Sprintf("camera %s clip %s %s: %s", c.Camera, span, c.Status, c.Reason)
	}
	line := fmt.Sprintf("camera %s clip %s complete, %d bytes, sha256 %s", c.Camera, span, c.Bytes, c.SHA256)
	if c.Reason != "" {
		line += " (" + c.Reason + ")"
	}
	return line
}
