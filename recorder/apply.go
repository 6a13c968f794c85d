package recorder

import (
	"context"
	"errors"
	"maps"
	"slices"
)

// errNotStarted: Apply turned recording on in a recorder that was never
// started, with no path to record into.
var errNotStarted = errors.New("recordings.path: no camera recorded at start and no path was set: turning recording on needs a restart")

// Apply changes the cameras' record settings to those of cfg (validated:
// SetDefaults, Validate), in place:
//   - a camera that now records always starts writing segments, and one
//     that no longer does stops (its open segment is closed, playable);
//   - a camera that now records (always or for alarms) gets its pre-alarm
//     ring and may open evidence clips; one that no longer records loses
//     them: its open clips are completed as far as they were recorded,
//     with the reason in the clip;
//   - a camera whose record_stream changed is stopped and started again on
//     the other stream (a new segment, a new ring; its open clips end);
//   - cameras whose settings did not change are not touched.
//
// What is on disk stays: segments until retention deletes them, clips
// until their evidence keep ends. A camera that no longer records is no
// longer listed in Statuses, nor played back or exported (as after a
// restart with the same config), but its clips stay playable and
// exportable through their incidents. Recorder-wide settings are not
// changed: RestartOnly names those that differ. Apply before Start only
// changes what Start will record.
func (r *Recorder) Apply(cfg Config) error {
	next := make(map[string]CameraConfig, len(cfg.Cameras))
	for _, c := range cfg.Cameras {
		if c.records() {
			next[c.ID] = c
		}
	}
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	if r.closed {
		return errors.New("recorder closed")
	}
	if r.ctx == nil && r.startCalled && len(next) > 0 && r.cfg.Path == "" {
		return errNotStarted // and nothing changed
	}
	r.camMu.Lock()
	prev := r.cameras
	r.cameras = next
	r.camMu.Unlock()

	if r.ctx == nil {
		// Not started: Start records what cameras says. A recorder that
		// had nothing to record at Start starts now, if it has a path.
		if len(next) == 0 || !r.startCalled {
			return nil
		}
		return r.startLocked(context.Background())
	}
	ids := slices.Sorted(maps.Keys(prev))
	for id := range next {
		if _, ok := prev[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		old, had := prev[id]
		now, has := next[id]
		if had && has && old == now {
			continue
		}
		if !has {
			now = CameraConfig{ID: id, Record: RecordOff, Stream: old.Stream}
		}
		restream := had && has && old.Stream != now.Stream
		// Segments: the goroutine of a camera recorded always.
		wasAlways, isAlways := had && old.Record == RecordAlways, now.Record == RecordAlways
		if wasAlways && (!isAlways || restream) {
			r.segments.stopCamera(now)
		}
		if isAlways && (!wasAlways || restream) {
			r.segments.startCamera(r.ctx, now)
		} else {
			r.segments.setConfig(now) // what Statuses shows
		}
		// Evidence: the feed of every camera that records.
		if had && (!has || restream) {
			why := "recording of the camera was turned off"
			if has {
				why = "the camera's record_stream changed"
			}
			r.evidence.stopFeed(id, why)
		}
		if has && (!had || restream) {
			r.evidence.startFeed(r.ctx, now)
		}
		r.logger.Info("camera recording changed", "camera", id, "record", now.Record, "stream", now.Stream)
	}
	return nil
}

// RestartOnly names the recorder-wide settings of cfg (defaults set) that
// differ from the running ones and take effect only after a restart,
// keyed as in the config file ("recordings.path", "evidence.keep"),
// sorted.
func (r *Recorder) RestartOnly(cfg Config) []string {
	a, b := r.cfg, cfg
	var keys []string
	add := func(key string, differ bool) {
		if differ {
			keys = append(keys, key)
		}
	}
	add("recordings.path", a.Path != b.Path)
	add("recordings.segment", a.Segment != b.Segment)
	add("recordings.keep", a.Keep != b.Keep)
	add("recordings.max_bytes", a.MaxBytes != b.MaxBytes)
	add("recordings.min_free", a.MinFree != b.MinFree)
	add("recordings.max_export", a.MaxExport != b.MaxExport)
	add("recordings.pre_alarm", a.PreAlarm != b.PreAlarm)
	add("recordings.pre_alarm_max_bytes", a.PreAlarmMaxBytes != b.PreAlarmMaxBytes)
	add("recordings.post_alarm", a.PostAlarm != b.PostAlarm)
	add("recordings.clip_max", a.ClipMax != b.ClipMax)
	add("evidence.keep", a.Evidence.Keep != b.Evidence.Keep)
	add("evidence.cameras_per_incident", a.Evidence.CamerasPerIncident != b.Evidence.CamerasPerIncident)
	add("evidence.max_open_clips", a.Evidence.MaxOpenClips != b.Evidence.MaxOpenClips)
	slices.Sort(keys)
	return keys
}
