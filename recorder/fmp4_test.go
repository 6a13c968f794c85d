package recorder

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
	"github.com/pion/rtp"

	"github.com/skywatch/skywatch/ingest"
)

var testBase = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// writeClip writes frames video frames of clip (and their audio) from
// testBase and flushes.
func writeClip(t *testing.T, clip *testClip, frames int, audio bool) ([]byte, *fmp4Writer) {
	t.Helper()
	return writeClipAt(t, clip, testBase, frames, audio)
}

// writeClipAt is writeClip from start.
func writeClipAt(t *testing.T, clip *testClip, start time.Time, frames int, audio bool) ([]byte, *fmp4Writer) {
	t.Helper()
	var buf bytes.Buffer
	tracks := clip.tracks(audio)
	w, err := newFMP4Writer(&buf, tracks, start)
	if err != nil {
		t.Fatal(err)
	}
	feed := newUnitFeed(t, clip, start, audio)
	var clock unitClock
	for feed.frame < frames {
		u := feed.next(t)
		if err := w.write(u, clock.at(u, tracks)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w
}

func TestFMP4WriterFragmentsAndTimes(t *testing.T) {
	for _, tc := range []struct {
		clip  string
		audio bool
	}{{"gop1s", false}, {"gop4s", true}} {
		t.Run(tc.clip, func(t *testing.T) {
			clip := loadTestClip(t, tc.clip)
			const frames = 250 // 10 s
			out, w := writeClip(t, clip, frames, tc.audio)
			if got, want := w.end(), testBase.Add(frames*40*time.Millisecond); !got.Equal(want) {
				t.Errorf("end = %v, want %v", got, want)
			}

			var ini fmp4.Init
			if err := ini.Unmarshal(bytes.NewReader(out)); err != nil {
				t.Fatalf("init: %v", err)
			}
			wantTracks := 1
			if tc.audio {
				wantTracks = 2
			}
			if len(ini.Tracks) != wantTracks {
				t.Fatalf("%d tracks, want %d", len(ini.Tracks), wantTracks)
			}
			if _, ok := ini.Tracks[0].Codec.(*mp4.CodecH264); !ok {
				t.Fatalf("video codec %T", ini.Tracks[0].Codec)
			}
			if tc.audio {
				if c, ok := ini.Tracks[1].Codec.(*mp4.CodecLPCM); !ok || c.SampleRate != 8000 || c.BitDepth != 16 {
					t.Fatalf("audio codec %#v", ini.Tracks[1].Codec)
				}
			}

			scan, err := scanFile(bytes.NewReader(out), int64(len(out)))
			if err != nil {
				t.Fatal(err)
			}
			if scan.valid != int64(len(out)) {
				t.Fatalf("valid %d of %d", scan.valid, len(out))
			}
			var parts fmp4.Parts
			if err := parts.Unmarshal(out[scan.initSize:]); err != nil {
				t.Fatalf("parts: %v", err)
			}
			if len(parts) != len(scan.frags) {
				t.Fatalf("%d parts, scan found %d", len(parts), len(scan.frags))
			}
			var videoSamples, audioSamples int
			next := uint64(0)
			for i, p := range parts {
				if p.SequenceNumber != uint32(i+1) {
					t.Errorf("part %d: sequence %d", i, p.SequenceNumber)
				}
				for _, pt := range p.Tracks {
					if pt.ID != 1 {
						audioSamples += len(pt.Samples)
						continue
					}
					if pt.BaseTime != next {
						t.Errorf("part %d: video base %d, want %d", i, pt.BaseTime, next)
					}
					var d uint64
					for j, s := range pt.Samples {
						if j > 0 && !s.IsNonSyncSample {
							t.Errorf("part %d: keyframe inside a fragment at %d", i, j)
						}
						d += uint64(s.Duration)
					}
					if d > uint64(videoTimescale) {
						t.Errorf("part %d lasts %d ticks, more than a second", i, d)
					}
					fi := scan.frags[i].track(1)
					if fi.base != pt.BaseTime || fi.duration != d || fi.sync != !pt.Samples[0].IsNonSyncSample {
						t.Errorf("part %d: scan %+v disagrees (base %d, duration %d)", i, fi, pt.BaseTime, d)
					}
					next += d
					videoSamples += len(pt.Samples)
				}
			}
			if videoSamples != frames || next != frames*3600 {
				t.Errorf("%d video samples lasting %d ticks, want %d and %d", videoSamples, next, frames, frames*3600)
			}
			if tc.audio && audioSamples < 490 {
				t.Errorf("%d audio samples, want about 500", audioSamples)
			}
			if parts[0].Tracks[0].Samples[0].IsNonSyncSample {
				t.Error("first sample is not a keyframe")
			}

			again, _ := writeClip(t, clip, frames, tc.audio)
			if !bytes.Equal(out, again) {
				t.Error("the same units gave different bytes")
			}
		})
	}
}

func TestScanFileTruncated(t *testing.T) {
	out, _ := writeClip(t, loadTestClip(t, "gop1s"), 100, true)
	full, err := scanFile(bytes.NewReader(out), int64(len(out)))
	if err != nil {
		t.Fatal(err)
	}
	last := full.frags[len(full.frags)-1]
	for _, cut := range []int64{last.off + last.size - 1, last.off + 5, last.off + last.moofSize + 3} {
		s, err := scanFile(bytes.NewReader(out[:cut]), cut)
		if err != nil {
			t.Fatal(err)
		}
		if s.valid != last.off || len(s.frags) != len(full.frags)-1 {
			t.Errorf("cut at %d: valid %d with %d fragments, want %d with %d", cut, s.valid, len(s.frags), last.off, len(full.frags)-1)
		}
	}
	garbage := append(append([]byte(nil), out[:last.off]...), bytes.Repeat([]byte{0xff}, 100)...)
	s, err := scanFile(bytes.NewReader(garbage), int64(len(garbage)))
	if err != nil || s.valid != last.off {
		t.Errorf("garbage tail: valid %d, %v", s.valid, err)
	}
	if _, err := scanFile(bytes.NewReader(out[:full.initSize-1]), full.initSize-1); !errors.Is(err, errBadFile) {
		t.Errorf("cut init: %v", err)
	}
	if _, err := scanFile(bytes.NewReader([]byte("hello world, not an mp4")), 23); !errors.Is(err, errBadFile) {
		t.Errorf("text: %v", err)
	}
}

func TestFMP4WriterRules(t *testing.T) {
	clip := loadTestClip(t, "gop1s")
	tracks := clip.tracks(false)
	var buf bytes.Buffer
	w, err := newFMP4Writer(&buf, tracks, testBase)
	if err != nil {
		t.Fatal(err)
	}
	feed := newUnitFeed(t, clip, testBase, false)
	feed.frame = 1 // not a keyframe
	u := feed.next(t)
	if err := w.write(u, u.Received); !errors.Is(err, errNoKeyframe) || buf.Len() != 0 {
		t.Fatalf("first unit not a keyframe: %v, %d bytes", err, buf.Len())
	}
	feed.frame = 0
	u = feed.next(t)
	if err := w.write(u, u.Received); err != nil {
		t.Fatal(err)
	}
	bad := &ingest.Unit{Track: 0, Epoch: 1, Received: testBase, Packets: []*rtp.Packet{{Payload: []byte{28, 0x05, 1}}}}
	if err := w.write(bad, testBase.Add(40*time.Millisecond)); !errors.Is(err, errBadUnit) {
		t.Fatalf("FU-A without start: %v", err)
	}

	// A keyframe with another SPS (here another level) needs a new file.
	feed.frame = 25
	sps := append([]byte(nil), clip.sps...)
	sps[3]++
	au := append([][]byte{sps}, clip.aus[25][1:]...)
	pkts, _ := feed.enc.Encode(au)
	nu := &ingest.Unit{Track: 0, Epoch: 1, Keyframe: true, Received: testBase.Add(time.Second), Packets: pkts}
	if err := w.write(nu, nu.Received); !errors.Is(err, errNewInit) {
		t.Fatalf("new SPS: %v", err)
	}
	if _, err := newFMP4Writer(&buf, []ingest.Track{{Kind: ingest.KindAudio, Codec: ingest.CodecPCMU}}, testBase); !errors.Is(err, errNoVideo) {
		t.Fatalf("audio only: %v", err)
	}
}

func TestUnitClockWrapsAndRebases(t *testing.T) {
	tracks := []ingest.Track{{Kind: ingest.KindVideo, ClockRate: 90000}}
	var c unitClock
	mk := func(epoch uint64, ts uint32, rx time.Time) *ingest.Unit {
		return &ingest.Unit{Epoch: epoch, Received: rx, Packets: []*rtp.Packet{{Header: rtp.Header{Timestamp: ts}}}}
	}
	if got := c.at(mk(1, 0xffffff00, testBase), tracks); !got.Equal(testBase) {
		t.Fatalf("first: %v", got)
	}
	// 0x100 + 90000 ticks later, across the wrap, received late.
	if got, want := c.at(mk(1, 90000, testBase.Add(3*time.Second)), tracks), testBase.Add(ticksToDuration(0x100+90000, 90000)); !got.Equal(want) {
		t.Fatalf("after wrap: %v, want %v", got, want)
	}
	later := testBase.Add(time.Hour)
	if got := c.at(mk(2, 5, later), tracks); !got.Equal(later) {
		t.Fatalf("new epoch: %v", got)
	}
}

func TestDepacketizeH265(t *testing.T) {
	// VPS (32) in an AP with SPS (33), then an IDR (19) in three FUs.
	vps := []byte{32 << 1, 1, 0xaa}
	sps := []byte{33 << 1, 1, 0xbb, 0xcc}
	ap := []byte{48 << 1, 1, 0, byte(len(vps))}
	ap = append(ap, vps...)
	ap = append(ap, 0, byte(len(sps)))
	ap = append(ap, sps...)
	idr := []byte{19 << 1, 1, 1, 2, 3, 4, 5, 6}
	fu := func(se byte, data ...byte) *rtp.Packet {
		return &rtp.Packet{Payload: append([]byte{49 << 1, 1, se | 19}, data...)}
	}
	au, err := depacketize(ingest.CodecH265, []*rtp.Packet{{Payload: ap}, fu(0x80, 1, 2), fu(0, 3, 4), fu(0x40, 5, 6)})
	if err != nil {
		t.Fatal(err)
	}
	if len(au) != 3 || !bytes.Equal(au[0], vps) || !bytes.Equal(au[1], sps) || !bytes.Equal(au[2], idr) {
		t.Fatalf("au = %x", au)
	}
	v, s, _ := paramSets(ingest.CodecH265, au)
	if !bytes.Equal(v, vps) || !bytes.Equal(s, sps) {
		t.Fatal("param sets")
	}
	if _, err := depacketize(ingest.CodecH265, []*rtp.Packet{fu(0x80, 1)}); !errors.Is(err, errBadUnit) {
		t.Fatalf("unfinished FU: %v", err)
	}
}

// TestFMP4WriterBoundsSoundPastThePicture: a camera whose picture stops
// while its sound goes on does not grow the writer past fragmentMaxBytes.
func TestFMP4WriterBoundsSoundPastThePicture(t *testing.T) {
	clip := loadTestClip(t, "gop1s")
	tracks := clip.tracks(true)
	w, err := newFMP4Writer(io.Discard, tracks, testBase)
	if err != nil {
		t.Fatal(err)
	}
	feed := newUnitFeed(t, clip, testBase, true)
	var clock unitClock
	for feed.frame < 30 {
		u := feed.next(t)
		if err := w.write(u, clock.at(u, tracks)); err != nil {
			t.Fatal(err)
		}
	}
	// Then sound alone, in big packets: three times the cap.
	ts, at := feed.audioTS, feed.audioAt
	payload := make([]byte, 1400)
	for range 3 * fragmentMaxBytes / (2 * len(payload)) {
		u := &ingest.Unit{Track: 1, Epoch: 1, Received: testBase.Add(at),
			Packets: []*rtp.Packet{{Header: rtp.Header{Timestamp: ts, PayloadType: 0}, Payload: payload}}}
		ts += uint32(len(payload))
		at += time.Duration(len(payload)) * time.Second / 8000
		if err := w.write(u, clock.at(u, tracks)); err != nil {
			t.Fatal(err)
		}
		if w.fragBytes > fragmentMaxBytes {
			t.Fatalf("the writer holds %d bytes of a fragment, past its cap of %d", w.fragBytes, fragmentMaxBytes)
		}
	}
}
