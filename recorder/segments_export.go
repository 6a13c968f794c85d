package recorder

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// spans returns the spans a camera was recorded in [from, to], merging
// segments less than spanGap apart.
func (s *segments) spans(id string, from, to time.Time) ([]Span, error) {
	if !s.r.Records(id) {
		return nil, ErrUnknownCamera
	}
	if to.Before(from) {
		return nil, fmt.Errorf("%w: the end is before the start", ErrBadSpan)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Span{}
	for _, seg := range s.index[id].segs {
		if !seg.end.After(from) || !seg.start.Before(to) || !seg.end.After(seg.start) {
			continue
		}
		sp := Span{Start: maxTime(seg.start, from), End: minTime(seg.end, to)}
		if n := len(out); n > 0 && sp.Start.Sub(out[n-1].End) <= spanGap {
			out[n-1].End = maxTime(out[n-1].End, sp.End)
			continue
		}
		out = append(out, sp)
	}
	return out, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// exportPart is the part of one segment file an export copies.
type exportPart struct {
	path  string
	frags []fragInfo
	// offsets re-time each track (by MP4 track id) onto the export's
	// timeline, in ticks of its timescale.
	offsets map[uint32]int64
	// trim: the last fragment keeps only samples that start before these
	// ticks (of the segment's timeline), per track id; nil for none.
	trim map[uint32]int64
}

// export plans the export of [start, end] of camera id: from the keyframe
// at or before start (or the first recorded after it), through the
// segments that follow without a gap and with the same init segment (a
// codec or resolution change ends an export, since one MP4 has one init),
// to end. Segments are read to plan, so that Start and End are exact and
// the bytes depend only on what is on disk.
func (s *segments) export(id string, start, end time.Time) (*Export, error) {
	if !s.r.Records(id) {
		return nil, ErrUnknownCamera
	}
	switch {
	case !end.After(start):
		return nil, fmt.Errorf("%w: the end is not after the start", ErrBadSpan)
	case end.Sub(start) > s.r.cfg.MaxExport:
		return nil, fmt.Errorf("%w: longer than recordings.max_export (%s)", ErrBadSpan, s.r.cfg.MaxExport)
	}
	segs := s.snapshot(id, start, end)
	if len(segs) == 0 {
		return nil, ErrNotRecorded
	}
	var (
		init       []byte
		timescales map[uint32]int64
		parts      []exportPart
		exStart    time.Time
		exEnd      time.Time
	)
	for i, seg := range segs {
		if i > 0 && seg.start.Sub(exEnd) > spanGap {
			break // a gap: an export covers one contiguous run
		}
		ini, scan, err := readSegment(seg)
		if err != nil {
			if i == 0 {
				return nil, fmt.Errorf("export %s: %w", id, err)
			}
			break
		}
		if init == nil {
			init = ini
			if timescales, err = initTimescales(ini); err != nil {
				return nil, fmt.Errorf("export %s: %w", id, err)
			}
		} else if !bytes.Equal(init, ini) {
			break
		}
		p := exportPart{path: seg.path}
		first := 0
		if i == 0 {
			for j, f := range scan.frags {
				v := f.track(1)
				if v != nil && v.sync && !seg.start.Add(ticksToDuration(int64(v.base), videoTimescale)).After(start) {
					first = j
				}
			}
			v := scan.frags[first].track(1)
			if v == nil {
				return nil, fmt.Errorf("export %s: %w: no picture", id, errBadFile)
			}
			exStart = seg.start.Add(ticksToDuration(int64(v.base), videoTimescale))
		}
		p.offsets = make(map[uint32]int64, len(timescales))
		for tid, ts := range timescales {
			p.offsets[tid] = durationToTicks(seg.start.Sub(exStart), ts)
		}
		if i == 0 {
			p.offsets[1] = -int64(scan.frags[first].track(1).base)
		}
		for _, f := range scan.frags[first:] {
			v := f.track(1)
			if v == nil {
				p.frags = append(p.frags, f)
				continue
			}
			fStart := seg.start.Add(ticksToDuration(int64(v.base), videoTimescale))
			if !fStart.Before(end) {
				break
			}
			p.frags = append(p.frags, f)
			fEnd := seg.start.Add(ticksToDuration(int64(v.base+v.duration), videoTimescale))
			if fEnd.After(end) {
				p.trim = make(map[uint32]int64, len(timescales))
				for tid, ts := range timescales {
					p.trim[tid] = durationToTicks(end.Sub(seg.start), ts)
				}
				exEnd = end
				break
			}
			exEnd = fEnd
		}
		if len(p.frags) > 0 {
			parts = append(parts, p)
		}
		if p.trim != nil || !seg.end.Before(end) {
			break
		}
	}
	if len(parts) == 0 {
		return nil, ErrNotRecorded
	}
	e := &Export{Camera: id, Start: exStart, End: exEnd, Size: -1}
	e.write = func(ctx context.Context, w io.Writer) (int64, error) {
		return writeExport(ctx, w, init, parts)
	}
	return e, nil
}

// snapshot copies the camera's segments that overlap [start, end], as
// they are now: a segment being written is taken as far as it is flushed.
func (s *segments) snapshot(id string, start, end time.Time) []segment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []segment
	for _, seg := range s.index[id].segs {
		if seg.end.After(start) && seg.start.Before(end) && seg.bytes > 0 {
			out = append(out, *seg)
		}
	}
	return out
}

// readSegment reads a segment's init and scans its fragments, up to the
// bytes the index knows of.
func readSegment(seg segment) ([]byte, fileScan, error) {
	f, err := os.Open(seg.path)
	if err != nil {
		return nil, fileScan{}, err
	}
	defer f.Close()
	scan, err := scanFile(f, seg.bytes)
	if err != nil {
		return nil, scan, err
	}
	if len(scan.frags) == 0 {
		return nil, scan, fmt.Errorf("%w: no fragment", errBadFile)
	}
	init := make([]byte, scan.initSize)
	if _, err := f.ReadAt(init, 0); err != nil {
		return nil, scan, err
	}
	return init, scan, nil
}

func initTimescales(b []byte) (map[uint32]int64, error) {
	var ini fmp4.Init
	if err := ini.Unmarshal(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadFile, err)
	}
	out := make(map[uint32]int64, len(ini.Tracks))
	for _, t := range ini.Tracks {
		out[uint32(t.ID)] = int64(t.TimeScale)
	}
	if out[1] != videoTimescale {
		return nil, fmt.Errorf("%w: track 1 is not video", errBadFile)
	}
	return out, nil
}

// writeExport streams the init and then each planned fragment, renumbered
// and re-timed: moof boxes are patched in place, mdat boxes copied as they
// are; only a last fragment cut at the end is rebuilt.
func writeExport(ctx context.Context, w io.Writer, init []byte, parts []exportPart) (int64, error) {
	var total int64
	n, err := w.Write(init)
	total += int64(n)
	if err != nil {
		return total, err
	}
	seq := uint32(0)
	for _, p := range parts {
		nw, err := writePart(ctx, w, p, &seq)
		total += nw
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func writePart(ctx context.Context, w io.Writer, p exportPart, seq *uint32) (int64, error) {
	f, err := os.Open(p.path)
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	defer f.Close()
	var total int64
	for i, fr := range p.frags {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		*seq++
		if p.trim != nil && i == len(p.frags)-1 {
			n, err := writeTrimmed(w, f, fr, p, *seq)
			total += n
			if err != nil {
				return total, err
			}
			continue
		}
		moof := make([]byte, fr.moofSize)
		if _, err := f.ReadAt(moof, fr.off); err != nil {
			return total, fmt.Errorf("export: %w", err)
		}
		binary.BigEndian.PutUint32(moof[fr.seqOff:], *seq)
		for _, t := range fr.tracks {
			binary.BigEndian.PutUint64(moof[t.baseOff:], rebase(t.base, p.offsets[t.id]))
		}
		n, err := w.Write(moof)
		total += int64(n)
		if err != nil {
			return total, err
		}
		m, err := io.Copy(w, io.NewSectionReader(f, fr.off+fr.moofSize, fr.size-fr.moofSize))
		total += m
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func rebase(base uint64, off int64) uint64 {
	v := int64(base) + off
	if v < 0 {
		return 0
	}
	return uint64(v)
}

// writeTrimmed writes fragment fr with only the samples that start before
// the part's trim times.
func writeTrimmed(w io.Writer, f *os.File, fr fragInfo, p exportPart, seq uint32) (int64, error) {
	buf := make([]byte, fr.size)
	if _, err := f.ReadAt(buf, fr.off); err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(buf); err != nil || len(parts) != 1 {
		return 0, fmt.Errorf("export: %w: fragment does not parse", errBadFile)
	}
	part := parts[0]
	part.SequenceNumber = seq
	var tracks []*fmp4.PartTrack
	for _, t := range part.Tracks {
		limit, ok := p.trim[uint32(t.ID)]
		at := int64(t.BaseTime)
		n := 0
		for n < len(t.Samples) && (!ok || at < limit) {
			at += int64(t.Samples[n].Duration)
			n++
		}
		if t.ID == 1 && n == 0 {
			n = 1 // a fragment starts before the end: its first picture stays
		}
		if n == 0 {
			continue
		}
		t.Samples = t.Samples[:n]
		t.BaseTime = rebase(t.BaseTime, p.offsets[uint32(t.ID)])
		tracks = append(tracks, t)
	}
	part.Tracks = tracks
	var sb seekablebuffer.Buffer
	if err := part.Marshal(&sb); err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	n, err := w.Write(sb.Bytes())
	return int64(n), err
}
