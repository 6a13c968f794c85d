package recorder

import (
	"time"

	"github.com/skywatch/skywatch/ingest"
)

// unitClock maps one reader's units to wall-clock times: within an epoch by
// RTP timestamp from the epoch's first unit of each track (its Received
// time), re-based at each new epoch (a camera reconnect). RTP time rather
// than arrival time keeps frame spacing exact however the network bunches
// packets; the camera's clock may drift from ours by a few seconds a day,
// which a reconnect resets.
type unitClock struct {
	epoch  uint64
	tracks []clockTrack
}

type clockTrack struct {
	started bool
	base    time.Time // Received of the track's first unit in the epoch
	baseTS  uint32
	lastTS  uint32
	ext     int64 // ticks from baseTS, with 32-bit wraps unrolled
}

// at returns the wall-clock time of u, whose track is tracks[u.Track].
func (c *unitClock) at(u *ingest.Unit, tracks []ingest.Track) time.Time {
	if c.tracks == nil || u.Epoch != c.epoch {
		c.epoch = u.Epoch
		c.tracks = make([]clockTrack, len(tracks))
	}
	if u.Track < 0 || u.Track >= len(c.tracks) {
		return u.Received
	}
	t := &c.tracks[u.Track]
	ts := u.Timestamp()
	if !t.started {
		*t = clockTrack{started: true, base: u.Received, baseTS: ts, lastTS: ts}
		return t.base
	}
	// A signed 32-bit difference unrolls wraps and tolerates reordering.
	t.ext += int64(int32(ts - t.lastTS))
	t.lastTS = ts
	rate := int64(tracks[u.Track].ClockRate)
	if rate <= 0 {
		rate = 90000
	}
	return t.base.Add(ticksToDuration(t.ext, rate))
}

// anchoredAt is at, re-anchored on u's arrival when the two are further
// apart than skew (the camera's timestamps ran away from our clock); it
// says whether it re-anchored.
func (c *unitClock) anchoredAt(u *ingest.Unit, tracks []ingest.Track, skew time.Duration) (time.Time, bool) {
	at := c.at(u, tracks)
	if d := at.Sub(u.Received); d > skew || d < -skew {
		*c = unitClock{}
		return c.at(u, tracks), true
	}
	return at, false
}

// ticksToDuration converts ticks of a clock of rate Hz without overflow for
// any span a camera can produce.
func ticksToDuration(ticks, rate int64) time.Duration {
	sec := ticks / rate
	rem := ticks % rate
	return time.Duration(sec)*time.Second + time.Duration(rem*int64(time.Second)/rate)
}

// durationToTicks converts d to ticks of a clock of rate Hz, rounded to the
// nearest tick.
func durationToTicks(d time.Duration, rate int64) int64 {
	sec := int64(d / time.Second)
	rem := int64(d % time.Second)
	return sec*rate + (rem*rate+int64(time.Second)/2)/int64(time.Second)
}
