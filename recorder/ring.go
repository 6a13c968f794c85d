package recorder

import (
	"time"

	"github.com/skywatch/skywatch/ingest"
)

// ringUnit is one unit kept for a future clip, with its wall-clock time.
type ringUnit struct {
	u     *ingest.Unit
	at    time.Time
	video bool
	size  int64
}

// unitSize is what a unit holds in memory: its payloads and a fixed cost
// per packet for the header and the pointers.
func unitSize(u *ingest.Unit) int64 {
	var n int64
	for _, p := range u.Packets {
		n += int64(len(p.Payload)) + 64
	}
	return n
}

// ring keeps the last span of one camera's units in memory: from the
// latest keyframe at or before (newest - keep), so that a clip asked to
// start keep ago can start decodable, and never more than maxBytes. The
// units are the ones ingest hands every reader (shared, read-only): the
// ring holds pointers, not copies. Not safe for concurrent use: the
// camera's feed goroutine owns it.
type ring struct {
	keep     time.Duration
	maxBytes int64

	units []ringUnit // oldest first; units[head] is a video keyframe when not empty
	head  int        // units[head:] are live; the rest waits to be compacted
	bytes int64
	// keys are the live video keyframes, oldest first, by their sequence
	// number (first is the live front's), so that trimming and from look
	// at keyframes only, not at every unit.
	keys        []ringKey
	first, next uint64
}

// ringKey is a keyframe held in the ring.
type ringKey struct {
	seq uint64
	at  time.Time
}

func newRing(keep time.Duration, maxBytes int64) *ring {
	return &ring{keep: keep, maxBytes: maxBytes}
}

// live returns the units held, oldest first.
func (r *ring) live() []ringUnit { return r.units[r.head:] }

// push adds a unit. A ring that is empty starts at a video keyframe: what
// comes before one cannot be decoded.
func (r *ring) push(ru ringUnit) {
	key := ru.video && ru.u.Keyframe
	if len(r.live()) == 0 && !key {
		return
	}
	if key {
		r.keys = append(r.keys, ringKey{seq: r.next, at: ru.at})
	}
	r.units = append(r.units, ru)
	r.next++
	r.bytes += ru.size
	r.trim(ru.at)
}

// trim drops whole keyframe groups from the front while the keyframe after
// them still reaches back keep from newest, and while the ring holds more
// than maxBytes (then, if the newest group alone is too big, everything).
func (r *ring) trim(newest time.Time) {
	for len(r.keys) >= 2 && !r.keys[1].at.After(newest.Add(-r.keep)) {
		r.dropTo(1)
	}
	for r.bytes > r.maxBytes {
		if len(r.keys) >= 2 {
			r.dropTo(1)
			continue
		}
		r.reset()
	}
}

// dropTo forgets the units before keys[k].
func (r *ring) dropTo(k int) {
	r.drop(int(r.keys[k].seq - r.first))
	r.keys = r.keys[k:]
}

// drop forgets the n oldest units.
func (r *ring) drop(n int) {
	if n == 0 {
		return
	}
	live := r.live()
	for i := range n {
		r.bytes -= live[i].size
		live[i] = ringUnit{} // let the unit go
	}
	r.head += n
	r.first += uint64(n)
	// Compact when the dead front is as large as the live part, so that
	// appends reuse memory instead of growing the slice for ever.
	if r.head >= len(r.units)-r.head {
		n := copy(r.units, r.units[r.head:])
		clear(r.units[n:])
		r.units = r.units[:n]
		r.head = 0
	}
}

// reset forgets everything: the camera's stream changed.
func (r *ring) reset() {
	clear(r.units)
	r.units, r.head, r.bytes = r.units[:0], 0, 0
	r.keys, r.first = r.keys[:0], r.next
}

// from returns the units from the latest keyframe at or before t, or from
// the oldest unit (a keyframe) when the ring does not reach back to t. The
// slice is the ring's: read it before the next push.
func (r *ring) from(t time.Time) []ringUnit {
	live := r.live()
	if len(r.keys) == 0 {
		return live
	}
	start := r.keys[0].seq
	for _, k := range r.keys[1:] {
		if k.at.After(t) {
			break
		}
		start = k.seq
	}
	return live[start-r.first:]
}
