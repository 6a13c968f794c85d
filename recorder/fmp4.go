package recorder

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"github.com/skywatch/skywatch/ingest"
)

// Fragmenting: a fragment ends at each keyframe, after fragmentMax of
// media, or when it holds fragmentMaxBytes, whichever comes first. The
// byte cap bounds memory per camera whatever the camera sends.
const (
	fragmentMax      = time.Second
	fragmentMaxBytes = 16 << 20
	videoTimescale   = 90000
)

var (
	// errNewInit: a keyframe brought parameter sets that differ from the
	// file's (a new resolution or profile). Nothing was written; the caller
	// ends this file and writes the unit to a new one.
	errNewInit = errors.New("parameter sets changed")
	// errNoKeyframe: a video unit came before the file's first keyframe.
	errNoKeyframe = errors.New("file must start with a keyframe")
	// errNoVideo: the tracks have no H.264 or H.265 video track.
	errNoVideo = errors.New("no H.264 or H.265 video track")
)

// fmp4Writer writes one camera's units as fragmented MP4 to w: an init
// segment (ftyp+moov) at the first keyframe, with the video track's
// parameter sets as the keyframe carries them (else as the track knows
// them), then a moof+mdat fragment at each keyframe and at least every
// second. File time 0 is start. Audio is written as fmp4Audio decides
// (G.711 as 16-bit LPCM); other audio codecs are left out. Nothing in the
// file depends on when it was written: the same units give the same bytes.
type fmp4Writer struct {
	w      io.Writer
	tracks []ingest.Track
	start  time.Time

	video   int         // index in tracks of the video track
	mux     []*muxTrack // per ingest track; nil for tracks not written
	ordered []*muxTrack // by MP4 track id

	initDone       bool
	vps, sps, pps  []byte
	seq            uint32
	fragBytes      int
	fragStartTicks int64 // video DTS of the fragment's first sample
	fragOpen       bool
	endTicks       int64 // video: end of the last flushed sample
	buf            seekablebuffer.Buffer
}

// muxTrack is one track of the file and its fragment in progress.
type muxTrack struct {
	id        int
	timescale int64
	codec     string
	audio     *fmp4Audio
	samples   []*fmp4.Sample
	dts       []int64 // of samples
	lastDTS   int64
	lastDur   uint32
	started   bool
	dtsH264   h264.DTSExtractor
	dtsH265   h265.DTSExtractor
	dtsBroken bool
}

// newFMP4Writer returns a writer of tracks to w; nothing is written before
// the first keyframe.
func newFMP4Writer(w io.Writer, tracks []ingest.Track, start time.Time) (*fmp4Writer, error) {
	f := &fmp4Writer{w: w, tracks: tracks, start: start, video: -1, mux: make([]*muxTrack, len(tracks))}
	for i, t := range tracks {
		if t.Kind == ingest.KindVideo && (t.Codec == ingest.CodecH264 || t.Codec == ingest.CodecH265) {
			f.video = i
			break
		}
	}
	if f.video < 0 {
		return nil, errNoVideo
	}
	vt := &muxTrack{id: 1, timescale: videoTimescale, codec: tracks[f.video].Codec}
	vt.dtsH264.Initialize()
	vt.dtsH265.Initialize()
	f.mux[f.video] = vt
	f.ordered = append(f.ordered, vt)
	for i, t := range tracks {
		if i == f.video || t.Kind != ingest.KindAudio {
			continue
		}
		if a := newFMP4Audio(t); a != nil {
			mt := &muxTrack{id: len(f.ordered) + 1, timescale: int64(a.rate), codec: t.Codec, audio: a}
			f.mux[i] = mt
			f.ordered = append(f.ordered, mt)
		}
	}
	return f, nil
}

// ticks returns at as ticks of timescale from the file's start, never
// negative.
func (f *fmp4Writer) ticks(at time.Time, timescale int64) int64 {
	d := at.Sub(f.start)
	if d < 0 {
		return 0
	}
	return durationToTicks(d, timescale)
}

// write adds u, taken at wall-clock time at. The first video unit must be
// a keyframe (errNoKeyframe otherwise); a keyframe with new parameter sets
// returns errNewInit; a malformed unit returns an error wrapping
// errBadUnit. In each case nothing was written and the writer can go on.
func (f *fmp4Writer) write(u *ingest.Unit, at time.Time) error {
	if u.Track < 0 || u.Track >= len(f.mux) || f.mux[u.Track] == nil {
		return nil
	}
	mt := f.mux[u.Track]
	if mt.audio != nil {
		if !f.initDone {
			return nil // audio before the first picture has nothing to go with
		}
		return f.writeAudio(mt, u, at)
	}
	au, err := depacketize(mt.codec, u.Packets)
	if err != nil {
		return err
	}
	if !f.initDone {
		if !u.Keyframe {
			return errNoKeyframe
		}
		if err := f.writeInit(au); err != nil {
			return err
		}
	} else if u.Keyframe {
		vps, sps, pps := paramSets(mt.codec, au)
		if (sps != nil && !bytes.Equal(sps, f.sps)) || (pps != nil && !bytes.Equal(pps, f.pps)) ||
			(vps != nil && !bytes.Equal(vps, f.vps)) {
			return errNewInit
		}
	}
	return f.writeVideo(mt, u, au, at)
}

func (f *fmp4Writer) writeVideo(mt *muxTrack, u *ingest.Unit, au [][]byte, at time.Time) error {
	pts := f.ticks(at, mt.timescale)
	dts := pts
	if !mt.dtsBroken {
		var d int64
		var err error
		if mt.codec == ingest.CodecH265 {
			d, err = mt.dtsH265.Extract(au, pts)
		} else {
			d, err = mt.dtsH264.Extract(au, pts)
		}
		if err == nil {
			dts = d
		} else {
			// An odd stream: presentation order is taken as decoding order,
			// which is right for streams without B-frames, most cameras.
			mt.dtsBroken = true
		}
	}
	if mt.started && dts <= mt.lastDTS {
		dts = mt.lastDTS + 1
	}
	var s fmp4.Sample
	avcc, err := h264.AVCC(au).Marshal()
	if err != nil {
		return fmt.Errorf("%w: %w", errBadUnit, err)
	}
	s.Payload = avcc
	s.IsNonSyncSample = !u.Keyframe
	off := pts - dts
	if off > 1<<30 || off < -(1<<30) {
		off = 0
	}
	s.PTSOffset = int32(off)

	// The previous sample's duration is known now.
	if n := len(mt.samples); n > 0 {
		mt.samples[n-1].Duration = uint32(dts - mt.dts[n-1])
		mt.lastDur = mt.samples[n-1].Duration
	}
	if f.fragOpen && (u.Keyframe || dts-f.fragStartTicks >= durationToTicks(fragmentMax, mt.timescale) ||
		f.fragBytes+len(avcc) > fragmentMaxBytes) {
		if err := f.writeFragment(dts); err != nil {
			return err
		}
	}
	if !f.fragOpen {
		f.fragOpen, f.fragStartTicks, f.fragBytes = true, dts, 0
	}
	mt.samples = append(mt.samples, &s)
	mt.dts = append(mt.dts, dts)
	mt.lastDTS, mt.started = dts, true
	f.fragBytes += len(avcc)
	return nil
}

func (f *fmp4Writer) writeAudio(mt *muxTrack, u *ingest.Unit, at time.Time) error {
	if len(u.Packets) == 0 {
		return nil
	}
	payload, dur := mt.audio.sample(u.Packets[0].Payload)
	if dur == 0 {
		return nil
	}
	dts := f.ticks(at, mt.timescale)
	if mt.started && dts < mt.lastDTS+int64(mt.lastDur) {
		// Overlap (jitter, reordering): keep audio contiguous.
		dts = mt.lastDTS + int64(mt.lastDur)
	}
	mt.samples = append(mt.samples, &fmp4.Sample{Payload: payload, Duration: dur})
	mt.dts = append(mt.dts, dts)
	mt.lastDTS, mt.lastDur, mt.started = dts, dur, true
	f.fragBytes += len(payload)
	if f.fragBytes > fragmentMaxBytes {
		// Only a camera sending audio without video gets here.
		if err := f.writeFragment(f.mux[f.video].lastDTS + int64(f.mux[f.video].lastDur)); err != nil {
			return err
		}
		if f.fragBytes > fragmentMaxBytes {
			// What is left is sound past the last picture, which no
			// fragment carries until a picture comes: dropped, as flush
			// drops it, so that the cap holds while the picture stalls.
			for _, s := range mt.samples {
				f.fragBytes -= len(s.Payload)
			}
			mt.samples, mt.dts = nil, nil
		}
	}
	return nil
}

// writeInit writes ftyp+moov with the parameter sets of the keyframe au,
// falling back to the track's.
func (f *fmp4Writer) writeInit(au [][]byte) error {
	vt := f.tracks[f.video]
	vps, sps, pps := paramSets(vt.Codec, au)
	if sps == nil {
		sps = vt.SPS
	}
	if pps == nil {
		pps = vt.PPS
	}
	if vps == nil {
		vps = vt.VPS
	}
	var codec mp4.Codec
	switch vt.Codec {
	case ingest.CodecH264:
		if sps == nil || pps == nil {
			return fmt.Errorf("%w: H.264 keyframe without SPS/PPS", errBadUnit)
		}
		codec = &mp4.CodecH264{SPS: sps, PPS: pps}
	default:
		if vps == nil || sps == nil || pps == nil {
			return fmt.Errorf("%w: H.265 keyframe without VPS/SPS/PPS", errBadUnit)
		}
		codec = &mp4.CodecH265{VPS: vps, SPS: sps, PPS: pps}
	}
	ini := fmp4.Init{}
	for _, mt := range f.ordered {
		c := codec
		if mt.audio != nil {
			c = mt.audio.codec()
		}
		ini.Tracks = append(ini.Tracks, &fmp4.InitTrack{ID: mt.id, TimeScale: uint32(mt.timescale), Codec: c})
	}
	f.buf.Reset()
	if err := ini.Marshal(&f.buf); err != nil {
		return fmt.Errorf("%w: %w", errBadUnit, err)
	}
	if _, err := f.w.Write(f.buf.Bytes()); err != nil {
		return fmt.Errorf("write init: %w", err)
	}
	f.initDone = true
	f.vps, f.sps, f.pps = bytes.Clone(vps), bytes.Clone(sps), bytes.Clone(pps)
	return nil
}

// writeFragment writes the fragment in progress: every sample of it whose
// duration is known. Audio samples from cut (video ticks) on wait for the
// next fragment.
func (f *fmp4Writer) writeFragment(cut int64) error {
	part := fmp4.Part{SequenceNumber: f.seq + 1}
	vt := f.mux[f.video]
	var keep [][]*fmp4.Sample
	var keepDTS [][]int64
	for _, mt := range f.ordered {
		n := len(mt.samples)
		if mt.audio != nil {
			cutA := cut * mt.timescale / videoTimescale
			n = 0
			for n < len(mt.samples) && mt.dts[n] < cutA {
				n++
			}
		}
		if n == 0 {
			keep, keepDTS = append(keep, mt.samples), append(keepDTS, mt.dts)
			continue
		}
		pt := &fmp4.PartTrack{ID: mt.id, BaseTime: uint64(mt.dts[0])}
		for i := 0; i < n; i++ {
			s := mt.samples[i]
			if mt.audio != nil && i+1 < len(mt.samples) {
				// Gaps in audio (lost packets) stretch the sample before.
				s.Duration = uint32(mt.dts[i+1] - mt.dts[i])
			}
			pt.Samples = append(pt.Samples, s)
		}
		part.Tracks = append(part.Tracks, pt)
		keep = append(keep, mt.samples[n:])
		keepDTS = append(keepDTS, mt.dts[n:])
	}
	if len(part.Tracks) == 0 {
		return nil
	}
	f.buf.Reset()
	if err := part.Marshal(&f.buf); err != nil {
		return fmt.Errorf("marshal fragment: %w", err)
	}
	if _, err := f.w.Write(f.buf.Bytes()); err != nil {
		return fmt.Errorf("write fragment: %w", err)
	}
	f.seq++
	if n := len(vt.samples); n > 0 {
		f.endTicks = vt.dts[n-1] + int64(vt.samples[n-1].Duration)
	}
	for i, mt := range f.ordered {
		mt.samples = append(mt.samples[:0:0], keep[i]...)
		mt.dts = append(mt.dts[:0:0], keepDTS[i]...)
	}
	f.fragOpen, f.fragBytes = false, 0
	for _, mt := range f.ordered {
		for _, s := range mt.samples {
			f.fragBytes += len(s.Payload)
		}
	}
	return nil
}

// flush ends the fragment in progress (Close, segment end): its last
// picture lasts as long as the one before it.
func (f *fmp4Writer) flush() error {
	vt := f.mux[f.video]
	n := len(vt.samples)
	if n == 0 {
		return nil
	}
	d := vt.lastDur
	if d == 0 {
		d = videoTimescale / 25
	}
	vt.samples[n-1].Duration = d
	end := vt.dts[n-1] + int64(d)
	if err := f.writeFragment(end); err != nil {
		return err
	}
	// Audio past the last picture is dropped: the file ends with its video.
	for _, mt := range f.ordered {
		mt.samples, mt.dts = nil, nil
	}
	return nil
}

// end returns the wall-clock end of the last sample written and flushed;
// start when nothing is.
func (f *fmp4Writer) end() time.Time {
	return f.start.Add(ticksToDuration(f.endTicks, videoTimescale))
}

// started tells whether the init segment is written.
func (f *fmp4Writer) started() bool { return f.initDone }
