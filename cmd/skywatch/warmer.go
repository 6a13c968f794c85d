package main

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/ingest"
)

// defaultWarmOnAlarm is how long a new incident's cameras are held pulled
// when the config does not say (ingest.warm_on_alarm).
const defaultWarmOnAlarm = 2 * time.Minute

// maxWarmCameras bounds the cameras of one incident that are warmed: the
// incident view shows the first large and the next few small.
const maxWarmCameras = 4

// cameraHolder is what the warmer needs of the camera manager.
type cameraHolder interface {
	Hold(cameraID string, sub bool, until time.Time) error
}

// incidentFeed is what the warmer needs of the incident engine.
type incidentFeed interface {
	SubscribeIncidents(ctx context.Context) <-chan alarms.IncidentChange
}

// incidentWarmer pulls the cameras of a new incident before anyone watches
// them ("warms" them), so that the operator who opens the incident seconds
// later gets a picture at once from the keyframe cache, instead of waiting
// for the camera's RTSP session to start and then for its next keyframe
// (street cameras send one every 2 to 4 s). It holds the first camera's main
// stream, which the incident view plays large, and the sub streams of the
// next ones, which it plays small, for a while after the incident opened
// and again when the incident is escalated.
//
// It reads the engine's changes on a goroutine of its own; the engine never
// waits for it (a slow subscriber misses changes).
type incidentWarmer struct {
	cameras cameraHolder
	// hold is ingest.warm_on_alarm, which a reload may change (0: warm
	// nothing).
	hold   atomic.Int64
	logger *slog.Logger

	// warmed is when each incident's cameras were last held; touched only
	// by run.
	warmed map[string]time.Time

	cancel context.CancelFunc
	done   chan struct{}
}

func newIncidentWarmer(cameras cameraHolder, hold time.Duration, logger *slog.Logger) *incidentWarmer {
	w := &incidentWarmer{cameras: cameras, logger: logger, warmed: map[string]time.Time{}}
	w.hold.Store(int64(hold))
	return w
}

// start subscribes to feed's changes and warms cameras until close.
func (w *incidentWarmer) start(feed incidentFeed) {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.done = make(chan struct{})
	changes := feed.SubscribeIncidents(ctx)
	go func() {
		defer close(w.done)
		for ch := range changes {
			w.take(ch, time.Now())
		}
	}()
}

// close stops the warmer and waits for its goroutine; holds already taken
// end by themselves. It is idempotent.
func (w *incidentWarmer) close() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
}

// take warms the cameras of ch's incident if it is a new response incident
// not warmed yet, or an escalated one.
func (w *incidentWarmer) take(ch alarms.IncidentChange, now time.Time) {
	hold := time.Duration(w.hold.Load())
	for id, at := range w.warmed {
		if now.Sub(at) >= hold {
			delete(w.warmed, id)
		}
	}
	inc := ch.Incident
	if hold == 0 || inc == nil || inc.Kind != alarms.KindResponse || !inc.State.Open() || len(inc.Cameras) == 0 {
		return
	}
	_, seen := w.warmed[inc.ID]
	// The first change seen of an incident is normally its opening; one
	// created long ago (seen first after a restart) is not new.
	fresh := !seen && now.Sub(inc.Created) < hold
	if !fresh && ch.Entry.Action != "escalated" {
		return
	}
	w.warmed[inc.ID] = now
	until := now.Add(hold)
	for _, t := range warmTargets(inc) {
		err := w.cameras.Hold(t.camera, t.sub, until)
		if errors.Is(err, errWarmElsewhere) {
			continue
		}
		if t.sub && errors.Is(err, ingest.ErrNoSubStream) {
			// The incident view plays the main stream of a camera
			// without a sub stream.
			t.sub = false
			err = w.cameras.Hold(t.camera, false, until)
		}
		if err != nil {
			w.logger.Debug("cannot warm incident camera", "incident", inc.ID, "camera", t.camera, "error", err)
			continue
		}
		w.logger.Debug("warming incident camera", "incident", inc.ID, "action", ch.Entry.Action,
			"camera", t.camera, "sub", t.sub, "until", until.Format(time.RFC3339))
	}
}

// warmTarget is one camera stream to hold.
type warmTarget struct {
	camera string
	sub    bool
}

// warmTargets lists the streams to hold for inc, as its incident view
// plays them: the first camera on its main stream, the next on their sub
// streams, at most maxWarmCameras.
func warmTargets(inc *alarms.Incident) []warmTarget {
	var out []warmTarget
	for i, c := range inc.Cameras[:min(len(inc.Cameras), maxWarmCameras)] {
		out = append(out, warmTarget{camera: c.ID, sub: i > 0})
	}
	return out
}
