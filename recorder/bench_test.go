package recorder

import (
	"io"
	"testing"
	"time"

	"github.com/skywatch/skywatch/ingest"
)

// BenchmarkFMP4Writer measures the muxer alone: one camera's units (the
// 4 s GOP clip, 640x360 at about 400 kbit/s, RTP payloads of 1,200 bytes)
// written as fragmented MP4 to nothing. It reports the CPU time per second
// of video; what it costs per byte tells what a 2 Mbit/s camera costs (see
// docs/benchmarks.md, Recording). The whole path, ingest and disk included,
// is measured by skywatch sim record.
func BenchmarkFMP4Writer(b *testing.B) {
	clip := loadTestClip(b, "gop4s")
	tracks := clip.tracks(false)
	feed := newUnitFeed(b, clip, testBase, false)
	var units []*ingest.Unit
	var payload int64
	for feed.frame < len(clip.aus) {
		u := feed.next(b)
		units = append(units, u)
		for _, p := range u.Packets {
			payload += int64(len(p.Payload))
		}
	}
	video := time.Duration(len(clip.aus)) * 40 * time.Millisecond
	b.SetBytes(payload)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w, err := newFMP4Writer(io.Discard, tracks, testBase)
		if err != nil {
			b.Fatal(err)
		}
		var clock unitClock
		for _, u := range units {
			if err := w.write(u, clock.at(u, tracks)); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/video.Seconds(), "µs/video-s")
}
