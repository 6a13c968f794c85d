package recorder

import (
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/skywatch/skywatch/ingest"
)

// testUnit is a video unit of size payload bytes at t0 + i frames of 40 ms.
func testUnit(t0 time.Time, i int, key bool, size int) ringUnit {
	u := &ingest.Unit{Keyframe: key, Packets: []*rtp.Packet{{Payload: make([]byte, size)}}}
	return ringUnit{u: u, at: t0.Add(time.Duration(i) * 40 * time.Millisecond), video: true, size: unitSize(u)}
}

func TestRingKeepsBackToTheKeyframeBeforePreAlarm(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	r := newRing(2*time.Second, 1<<30)
	// A GOP of 1 s (25 frames); 10 s of video.
	for i := range 250 {
		r.push(testUnit(t0, i, i%25 == 0, 100))
		checkRing(t, r)
	}
	live := r.live()
	newest := live[len(live)-1].at
	if !live[0].u.Keyframe {
		t.Fatal("the ring does not start at a keyframe")
	}
	if age := newest.Sub(live[0].at); age < 2*time.Second || age >= 3*time.Second {
		t.Errorf("the ring reaches back %s, want 2 s to a GOP more", age)
	}
	// A clip asked from 2 s ago starts at the keyframe at or before it.
	from := r.from(newest.Add(-2 * time.Second))
	if !from[0].u.Keyframe || from[0].at.After(newest.Add(-2*time.Second)) {
		t.Errorf("from starts at %s (keyframe %v), want a keyframe at or before %s",
			from[0].at, from[0].u.Keyframe, newest.Add(-2*time.Second))
	}
	// Asked from before what it holds, it gives all it has.
	if got := r.from(t0); len(got) != len(live) {
		t.Errorf("from before the ring: %d units, want %d", len(got), len(live))
	}
	var sum int64
	for _, ru := range live {
		sum += ru.size
	}
	if sum != r.bytes {
		t.Errorf("bytes %d, units sum to %d", r.bytes, sum)
	}
}

func TestRingBoundedByBytes(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	const max = 100_000
	r := newRing(time.Minute, max)
	for i := range 1000 {
		r.push(testUnit(t0, i, i%25 == 0, 1000))
		if r.bytes > max {
			t.Fatalf("ring holds %d bytes, more than %d", r.bytes, max)
		}
		checkRing(t, r)
	}
	if len(r.live()) == 0 {
		t.Fatal("the ring is empty though a GOP fits")
	}
	// A hostile camera's GOP larger than the bound: nothing is kept, the
	// bound holds.
	r = newRing(time.Minute, max)
	for i := range 200 {
		r.push(testUnit(t0, i, i%100 == 0, 5000))
		checkRing(t, r)
		if r.bytes > max {
			t.Fatalf("ring holds %d bytes, more than %d", r.bytes, max)
		}
	}
	if cap(r.units) > 1000 {
		t.Errorf("the ring's slice grew to %d", cap(r.units))
	}
}

func TestRingStartsAtAKeyframe(t *testing.T) {
	t0 := time.Now()
	r := newRing(time.Second, 1<<20)
	r.push(testUnit(t0, 0, false, 10))
	r.push(ringUnit{u: &ingest.Unit{}, at: t0, video: false})
	if len(r.live()) != 0 {
		t.Fatal("a ring kept units before any keyframe")
	}
	r.push(testUnit(t0, 1, true, 10))
	r.reset()
	if len(r.live()) != 0 || r.bytes != 0 {
		t.Fatal("reset left units")
	}
}

// checkRing checks the ring's invariants: it starts at a keyframe, its
// keyframe index points at exactly its keyframes, its bytes add up.
func checkRing(t *testing.T, r *ring) {
	t.Helper()
	live := r.live()
	var keys int
	var sum int64
	for i, ru := range live {
		sum += ru.size
		if ru.video && ru.u.Keyframe {
			if keys >= len(r.keys) || r.keys[keys].seq-r.first != uint64(i) {
				t.Fatalf("keyframe %d at %d is not indexed: %+v (first %d)", keys, i, r.keys, r.first)
			}
			keys++
		}
	}
	if keys != len(r.keys) || sum != r.bytes || (len(live) > 0 && !live[0].u.Keyframe) {
		t.Fatalf("ring of %d units: %d keyframes indexed for %d, %d bytes for %d, starts at a keyframe: %v",
			len(live), len(r.keys), keys, r.bytes, sum, len(live) == 0 || live[0].u.Keyframe)
	}
}
