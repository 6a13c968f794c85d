package recorder

// A stand-in for the muxer (fmp4.go), with its signatures, until the real
// one is merged: boxes of the right kinds, not a playable file.

import (
	"encoding/binary"
	"io"
	"time"

	"github.com/skywatch/skywatch/ingest"
)

type unitClock struct {
	started bool
	epoch   uint64
	base    time.Time
	baseTS  map[int]uint32
}

func (c *unitClock) at(u *ingest.Unit, tracks []ingest.Track) time.Time {
	if !c.started || u.Epoch != c.epoch {
		c.started, c.epoch, c.base, c.baseTS = true, u.Epoch, u.Received, map[int]uint32{}
	}
	ts, ok := c.baseTS[u.Track]
	if !ok {
		c.baseTS[u.Track] = u.Timestamp()
		return c.base
	}
	d := int64(int32(u.Timestamp() - ts))
	return c.base.Add(time.Duration(d) * time.Second / time.Duration(tracks[u.Track].ClockRate))
}

type fmp4Writer struct {
	w       io.Writer
	start   time.Time
	pending []byte
	fragAt  time.Time
	last    time.Time
	flushed time.Time
}

func box(typ string, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint32(b, uint32(8+len(payload)))
	copy(b[4:], typ)
	return append(b, payload...)
}

func newFMP4Writer(w io.Writer, tracks []ingest.Track, start time.Time) (*fmp4Writer, error) {
	if _, err := w.Write(append(box("ftyp", []byte("isom")), box("moov", nil)...)); err != nil {
		return nil, err
	}
	return &fmp4Writer{w: w, start: start, flushed: start}, nil
}

func (f *fmp4Writer) write(u *ingest.Unit, at time.Time) error {
	if (u.Keyframe || at.Sub(f.fragAt) >= time.Second) && len(f.pending) > 0 {
		if err := f.flush(); err != nil {
			return err
		}
	}
	if len(f.pending) == 0 {
		f.fragAt = at
	}
	for _, p := range u.Packets {
		f.pending = append(f.pending, p.Payload...)
	}
	f.last = at
	return nil
}

func (f *fmp4Writer) flush() error {
	if len(f.pending) == 0 {
		return nil
	}
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], uint64(f.fragAt.Sub(f.start)))
	if _, err := f.w.Write(append(box("moof", t[:]), box("mdat", f.pending)...)); err != nil {
		return err
	}
	f.pending = f.pending[:0]
	f.flushed = f.last
	return nil
}

func (f *fmp4Writer) end() time.Time { return f.flushed }
