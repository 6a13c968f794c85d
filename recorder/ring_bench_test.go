package recorder

import (
	"testing"
	"time"
)

// BenchmarkRingPush is one camera's ring at 25 fps with 50 audio packets a
// second, 30 s kept, 4 s GOP: the cost per unit.
func BenchmarkRingPush(b *testing.B) {
	t0 := time.Now()
	r := newRing(30*time.Second, 1<<30)
	audio := testUnit(t0, 0, false, 160)
	audio.video = false
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%3 == 0 {
			r.push(testUnit(t0, i/3, (i/3)%100 == 0, 1000))
		} else {
			a := audio
			a.at = t0.Add(time.Duration(i) * 13 * time.Millisecond)
			r.push(a)
		}
	}
}
