package recorder

import (
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/skywatch/skywatch/ingest"
)

// A camera whose pictures come later than their timestamps say (a slow
// clock, or a camera that sends late) must not drag the evidence clock
// more than evidenceClockSkew behind the pictures' arrival.
func TestAnchoredAtFollowsLateCamera(t *testing.T) {
	tracks := []ingest.Track{{Kind: ingest.KindVideo, Codec: ingest.CodecH264, ClockRate: 90000}}
	base := time.Date(2026, 12, 3, 20, 0, 0, 0, time.UTC)
	var clock unitClock
	var worst time.Duration
	// 25 fps by timestamp, but each frame arrives 44 ms after the last:
	// the camera falls 4 ms a frame, 6 s a minute, behind our clock.
	for i := range 25 * 60 {
		u := &ingest.Unit{
			Packets:  []*rtp.Packet{{Header: rtp.Header{Timestamp: uint32(i * 3600)}}},
			Epoch:    1,
			Received: base.Add(time.Duration(i) * 44 * time.Millisecond),
		}
		at, _ := clock.anchoredAt(u, tracks, evidenceClockSkew)
		worst = max(worst, u.Received.Sub(at))
		if at.After(u.Received.Add(evidenceClockSkew)) {
			t.Fatalf("frame %d labelled %s after its arrival", i, at.Sub(u.Received))
		}
	}
	if worst > evidenceClockSkew {
		t.Fatalf("labels fell %s behind arrival, more than %s", worst, evidenceClockSkew)
	}
}
