package recorder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/skywatch/skywatch/ingest"
)

// maxClockSkew is how far a unit's time from RTP timestamps may be from
// its arrival before the clock is re-anchored.
const maxClockSkew = 10 * time.Second

// errNoSpace: retention stopped recording until space returns.
var errNoSpace = errors.New("no space")

// camRecorder is the owner goroutine's state of one camera recorded
// always: its reader and its open segment.
type camRecorder struct {
	s   *segments
	cfg CameraConfig
	ci  *camIndex
	seg *openSegment
}

// openSegment is the segment being written.
type openSegment struct {
	file  segmentFile
	w     *fmp4Writer
	cw    countingWriter
	index *segment
	epoch uint64
	start time.Time
}

// countingWriter counts what reaches the file.
type countingWriter struct {
	f segmentFile
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	c.n += int64(n)
	return n, err
}

func newCamRecorder(s *segments, cfg CameraConfig) *camRecorder {
	s.mu.Lock()
	ci := s.index[cfg.ID]
	s.mu.Unlock()
	return &camRecorder{s: s, cfg: cfg, ci: ci}
}

// run records until ctx ends: it adds a reader (retrying while the camera
// does not deliver), records from it until it closes, and stops for a
// while after a write error or while there is no space.
func (c *camRecorder) run(ctx context.Context) {
	id := c.cfg.ID
	for ctx.Err() == nil {
		if c.s.noSpace.Load() {
			c.fault(ctx, errNoSpace.Error())
			if !c.s.waitSpace(ctx) {
				return
			}
		}
		rd, err := c.s.r.addReader(ctx, c.cfg)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.setState(ctx, StateWaiting, "camera unavailable")
			sleep(ctx, c.s.readerRetry)
			continue
		}
		c.setState(ctx, StateRecording, "")
		err = c.record(ctx, rd)
		rd.Close()
		switch {
		case err == nil, errors.Is(err, ingest.ErrReaderClosed), ctx.Err() != nil, errors.Is(err, errNoSpace):
		default:
			c.ci.writeErrors.Add(1)
			c.s.r.logger.Warn("recording stopped by a write error", "camera", id, "error", err)
			c.fault(ctx, writeReason(err))
			sleep(ctx, c.s.faultRetry)
		}
	}
}

// fault sets the stopped state and tells of it once.
func (c *camRecorder) fault(ctx context.Context, reason string) {
	prev, prevReason := c.s.setState(c.cfg.ID, StateStopped, reason)
	if prev != StateStopped || prevReason != reason {
		c.s.r.notify(ctx, Notice{Kind: NoticeFault, Camera: c.cfg.ID, Reason: reason, At: c.s.now()})
	}
}

// setState sets a state other than stopped, telling of a recovery: the
// disk fault or want of space is over, whether or not the camera delivers.
func (c *camRecorder) setState(ctx context.Context, state, reason string) {
	prev, _ := c.s.setState(c.cfg.ID, state, reason)
	if prev == StateStopped {
		c.s.r.notify(ctx, Notice{Kind: NoticeRecovered, Camera: c.cfg.ID, At: c.s.now()})
	}
}

// writeReason says what went wrong on the disk, without paths.
func writeReason(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return "write error: " + errno.Error()
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return "write error: " + pe.Err.Error()
	}
	return "write error"
}

// unitReader is what record needs of an *ingest.Reader.
type unitReader interface {
	Read(ctx context.Context) (*ingest.Unit, error)
	Tracks() []ingest.Track
}

// record writes rd's units into segments until rd ends, ctx ends, space
// runs out, or a write fails. The open segment is closed in every case.
func (c *camRecorder) record(ctx context.Context, rd unitReader) (err error) {
	tracks := rd.Tracks()
	video := -1
	for i, t := range tracks {
		if t.Kind == ingest.KindVideo {
			video = i
			break
		}
	}
	defer func() {
		if cerr := c.closeSegment(); err == nil || errors.Is(err, ingest.ErrReaderClosed) || ctx.Err() != nil {
			if cerr != nil {
				err = cerr
			}
		}
	}()
	var clock unitClock
	segLen := c.s.r.cfg.Segment
	for {
		u, err := rd.Read(ctx)
		if err != nil {
			return err
		}
		if c.s.noSpace.Load() {
			return errNoSpace
		}
		at, reanchored := clock.anchoredAt(u, tracks, maxClockSkew)
		if reanchored {
			// The camera's timestamps ran away from our clock (a jump, a
			// wrong clock rate, days of drift): a new segment, as at a
			// reconnect.
			if err := c.closeSegment(); err != nil {
				return err
			}
		}
		key := u.Track == video && u.Keyframe
		if c.seg != nil && (u.Epoch != c.seg.epoch || (key && at.Sub(c.seg.start) >= segLen)) {
			// A new epoch is a reconnect: a gap, so a new segment.
			if err := c.closeSegment(); err != nil {
				return err
			}
		}
		if c.seg == nil {
			if !key {
				continue
			}
			if err := c.openSegment(tracks, u.Epoch, at); err != nil {
				return err
			}
		}
		err = c.seg.w.write(u, at)
		if errors.Is(err, errNewInit) {
			// A new resolution or profile: a new segment with its own init.
			if err := c.closeSegment(); err != nil {
				return err
			}
			if err := c.openSegment(tracks, u.Epoch, at); err != nil {
				return err
			}
			err = c.seg.w.write(u, at)
		}
		switch {
		case err == nil:
		case errors.Is(err, errBadUnit), errors.Is(err, errNoKeyframe):
			c.ci.badUnits.Add(1)
			continue
		default:
			return err
		}
		c.update(c.seg)
	}
}

func (c *camRecorder) openSegment(tracks []ingest.Track, epoch uint64, start time.Time) error {
	name := c.s.segmentPath(c.cfg.ID, start, -1)
	f, err := c.s.openFile(name)
	if err != nil {
		return fmt.Errorf("open segment: %w", err)
	}
	seg := &openSegment{file: f, epoch: epoch, start: start}
	seg.cw.f = f
	seg.w, err = newFMP4Writer(&seg.cw, tracks, start)
	if err != nil {
		f.Close()
		_ = os.Remove(name)
		return fmt.Errorf("open segment: %w", err)
	}
	seg.index = &segment{path: name, start: start, end: start, live: true}
	c.s.mu.Lock()
	c.ci.segs = append(c.ci.segs, seg.index)
	c.s.mu.Unlock()
	c.seg = seg
	return nil
}

// update publishes what the open segment holds after a write.
func (c *camRecorder) update(seg *openSegment) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if grown := seg.cw.n - seg.index.bytes; grown > 0 {
		c.ci.bytes += grown
		c.ci.written.Add(uint64(grown))
		seg.index.bytes = seg.cw.n
		seg.index.end = seg.w.end()
	}
}

// closeSegment flushes the open segment, syncs it (once a segment: see
// the README on crashes) and renames it with its length. A segment with no
// whole fragment is removed.
func (c *camRecorder) closeSegment() error {
	seg := c.seg
	if seg == nil {
		return nil
	}
	c.seg = nil
	ferr := seg.w.flush()
	c.update(seg)
	serr := seg.file.Sync()
	cerr := seg.file.Close()
	c.s.mu.Lock()
	idx := seg.index
	idx.live = false
	if !seg.w.started() || !idx.end.After(idx.start) {
		_ = os.Remove(idx.path)
		c.removeLocked(idx)
		c.s.mu.Unlock()
		return errors.Join(ferr, serr, cerr)
	}
	final := c.s.segmentPath(c.cfg.ID, idx.start, idx.end.Sub(idx.start))
	rerr := os.Rename(idx.path, final)
	if rerr == nil {
		idx.path = final
	}
	c.s.mu.Unlock()
	if rerr == nil {
		syncDir(filepath.Dir(final))
	}
	if err := errors.Join(ferr, serr, cerr, rerr); err != nil {
		return fmt.Errorf("close segment: %w", err)
	}
	return nil
}

// removeLocked drops seg from the camera's index.
func (c *camRecorder) removeLocked(seg *segment) {
	for i, x := range c.ci.segs {
		if x == seg {
			c.ci.segs = append(c.ci.segs[:i], c.ci.segs[i+1:]...)
			c.ci.bytes -= seg.bytes
			return
		}
	}
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
