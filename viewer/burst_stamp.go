package viewer

import (
	"time"

	"github.com/skywatch/skywatch/ingest"
)

// A session starts its viewer on the camera's cached keyframe group: up to
// a GOP of pictures taken over the past seconds, sent at once. With their
// own timestamps, they tell the browser that the stream was captured
// seconds ago and arrived at once; Chromium's video timing then anchors on
// that and shows the live pictures that follow as soon as they are decoded,
// whatever their timestamps say, so lip sync, which works by delaying them,
// has no effect: the sound trails the picture by its jitter buffer. So the
// group's pictures (what the session sends that arrived before its viewer
// connected) are stamped with the moment each is sent, as a live encoder
// would stamp them, and the first live picture with the moment it arrived:
// to the browser the stream starts as a live one does, on a keyframe, only
// without waiting for it. The sender reports map send time to RTP time,
// so they agree.
//
// Only sessions that send sound do this: without sound there is nothing to
// sync, and the browser showing each picture as soon as it is decoded
// keeps the picture closest to live.

// startLive sets the moment the viewer connected: units received before it
// are the group's burst.
func (w *trackWriter) startLive(from time.Time) {
	w.liveFrom = from
}

// stampBurst sets the timestamp offset for u, sent at now, when u belongs
// to the burst or is the first live unit after one, and reports whether it
// did; other units are left to rebase.
func (w *trackWriter) stampBurst(u *ingest.Unit, seen, now time.Time) bool {
	if w.liveFrom.IsZero() || w.live {
		return false
	}
	at := now
	if !seen.Before(w.liveFrom) {
		w.live = true
		if !w.started {
			return false // no burst: an ordinary start
		}
		at = seen
	}
	if !w.started {
		w.started = true
		w.liveTS = w.tsOffset // the random start, for the moment the viewer connected
		w.tsOffset = w.liveTS + w.since(at) - u.Timestamp()
	} else {
		// Monotonic: a slow burst may still be going out when a live unit
		// arrives.
		step := max(int32(w.liveTS+w.since(at)-w.lastTS), 1)
		w.tsOffset = w.lastTS + uint32(step) - u.Timestamp()
	}
	w.epoch = u.Epoch
	return true
}

// since is the time from the moment the viewer connected to at, in ticks.
func (w *trackWriter) since(at time.Time) uint32 {
	d := at.Sub(w.liveFrom)
	if d <= 0 {
		return 0
	}
	return uint32(uint64(d) * uint64(w.clockRate) / uint64(time.Second))
}
