package recorder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"time"
)

// clipRun is an open clip as its camera's feed writes it. A clip starts
// at the latest keyframe at or before from (alarm - pre_alarm) that the
// ring holds, or at the camera's next keyframe, and ends before the first
// unit at or after end; end moves with the incident's events, never past
// start + clip_max.
type clipRun struct {
	rec     *clipRecord // the index's; changed through evidence.update
	camera  string
	from    time.Time
	end     time.Time
	limit   time.Time
	clipMax time.Duration

	started   bool
	file      *os.File
	out       *clipOutput
	w         *fmp4Writer
	lastAt    time.Time // of the last unit written
	unflushed bool
	wroteAt   time.Time // wall-clock time of the last write
	saved     time.Time // the end last saved in the sidecar
}

func newClipRun(rec *clipRecord, clipMax time.Duration) *clipRun {
	return &clipRun{rec: rec, camera: rec.Camera, from: rec.Start, end: rec.End,
		limit: rec.Start.Add(clipMax), clipMax: clipMax}
}

// clipOutput is a clip's file with the SHA-256 and the length of what was
// written to it, so that a complete clip is not read again to be hashed.
type clipOutput struct {
	f   *os.File
	h   hash.Hash
	n   int64
	err error // the first write error; every later write fails with it
}

func (o *clipOutput) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.f.Write(p)
	o.h.Write(p[:n])
	o.n += int64(n)
	if err != nil {
		o.err = err
	}
	return n, err
}

// feedClip gives a unit to a clip: it starts the clip at a keyframe,
// writes, or ends the clip at its end. It returns false when the clip is
// no longer open.
func (f *feed) feedClip(ctx context.Context, c *clipRun, ru ringUnit) bool {
	if !c.started {
		if !ru.video || !ru.u.Keyframe {
			return true
		}
		if !ru.at.Before(c.end) {
			f.fail(ctx, c, "the camera delivered no video from "+clock(c.from)+" to "+clock(c.end), false)
			return false
		}
		if err := f.begin(c, ru.at); err != nil {
			f.fail(ctx, c, err.Error(), true)
			return false
		}
	}
	if !ru.at.Before(c.end) {
		f.finish(ctx, c, "")
		return false
	}
	if f.e.r.segments.noSpace.Load() {
		// Only evidence is left on a disk still short of space: what the
		// clip holds is kept, and it writes no more.
		f.finish(ctx, c, "no space left for recordings at "+clock(ru.at))
		return false
	}
	switch err := c.w.write(ru.u, ru.at); {
	case err == nil:
	case errors.Is(err, errNewInit):
		// A new resolution or profile cannot go on in this file.
		f.finish(ctx, c, "the camera's picture changed at "+clock(ru.at))
		return false
	case errors.Is(err, errBadUnit), errors.Is(err, errNoKeyframe):
		return true // nothing written; the clip goes on without the unit
	default:
		f.fail(ctx, c, fmt.Sprintf("write: %v", err), true)
		return false
	}
	c.lastAt, c.unflushed, c.wroteAt = ru.at, true, f.e.now()
	return true
}

// begin creates the clip's file at its first keyframe.
func (f *feed) begin(c *clipRun, start time.Time) error {
	file, err := os.OpenFile(c.rec.paths.mp4, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	out := &clipOutput{f: file, h: sha256.New()}
	w, err := newFMP4Writer(out, f.tracks, start)
	if err != nil {
		_ = file.Close()
		return fmt.Errorf("write: %w", err)
	}
	c.started, c.file, c.out, c.w = true, file, out, w
	c.limit = start.Add(c.clipMax)
	if c.end.After(c.limit) {
		c.end = c.limit
	}
	end := c.end
	f.e.update(c.rec, false, func(r *clipRecord) { r.Start, r.End, r.Bytes = start, end, out.n })
	return nil
}

// extend moves a clip's end to end, if later, up to its limit.
func (f *feed) extend(c *clipRun, end time.Time) {
	if end.After(c.limit) {
		end = c.limit
	}
	if !end.After(c.end) {
		return
	}
	c.end = end
	f.e.update(c.rec, false, func(r *clipRecord) { r.End = end })
}

// flush ends the fragment in progress of a camera that has sent nothing
// for a second (the writer ends one at each keyframe and every second of
// video it gets), so that what a camera sent is in the file within about
// a second, and saves how far the file goes in the sidecar: the end of a
// clip a crash cuts short.
func (f *feed) flush(ctx context.Context, c *clipRun, now time.Time) {
	if !c.started {
		return
	}
	if c.unflushed && now.Sub(c.wroteAt) >= time.Second {
		if err := c.w.flush(); err != nil {
			f.fail(ctx, c, fmt.Sprintf("write: %v", err), true)
			return
		}
		c.unflushed = false
	}
	if end := c.w.end(); end.After(c.saved) {
		c.saved = end
		n := c.out.n
		f.e.update(c.rec, false, func(r *clipRecord) { r.written, r.Bytes = end, n })
	}
}

// finish completes a clip: the file is flushed, synced and closed, its
// hash goes into the sidecar, and a notice out.
func (f *feed) finish(ctx context.Context, c *clipRun, reason string) {
	f.remove(c)
	if !c.w.started() {
		// Only units the muxer could not use reached the clip.
		f.fail(ctx, c, "the camera delivered no decodable picture from "+clock(c.from)+" to "+clock(c.end), false)
		return
	}
	err := c.w.flush()
	if err == nil {
		err = c.file.Sync()
	}
	if cerr := c.file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		c.file = nil
		f.fail(ctx, c, fmt.Sprintf("write: %v", err), true)
		return
	}
	sum := hex.EncodeToString(c.out.h.Sum(nil))
	end, n := c.w.end(), c.out.n
	clip := f.e.update(c.rec, true, func(r *clipRecord) {
		r.Status, r.SHA256, r.Bytes, r.End, r.Reason, r.written = ClipComplete, sum, n, end, reason, end
	})
	f.e.r.logger.Info("evidence: clip complete", "incident", clip.Incident, "camera", clip.Camera,
		"start", clip.Start.UTC().Format(time.RFC3339), "end", clip.End.UTC().Format(time.RFC3339),
		"bytes", clip.Bytes, "sha256", clip.SHA256)
	f.notify(ctx, clip)
}

// fail ends a clip as failed; writeErr counts it as a write error. What
// the file holds stays (it may play as far as it goes).
func (f *feed) fail(ctx context.Context, c *clipRun, reason string, writeErr bool) {
	f.remove(c)
	var n int64
	if c.file != nil {
		_ = c.file.Sync()
		_ = c.file.Close()
		c.file = nil
	}
	if c.out != nil {
		n = c.out.n
	}
	if writeErr {
		f.e.metrics.writeErrors.Inc()
	}
	clip := f.e.update(c.rec, true, func(r *clipRecord) { r.Status, r.Reason, r.Bytes = ClipFailed, reason, n })
	f.e.r.logger.Warn("evidence: clip failed", "incident", clip.Incident, "camera", clip.Camera, "reason", reason)
	f.notify(ctx, clip)
}

// suspend leaves an open clip playable at a stop of the recorder: flushed,
// synced and still recording, to be completed at the next start.
func (f *feed) suspend(c *clipRun) {
	if !c.started {
		return
	}
	err := c.w.flush()
	if err == nil {
		err = c.file.Sync()
	}
	_ = c.file.Close()
	if err != nil {
		f.e.r.logger.Warn("evidence: clip not flushed at stop", "incident", c.rec.Incident, "camera", c.camera, "error", err)
		return
	}
	end, n := c.w.end(), c.out.n
	f.e.update(c.rec, true, func(r *clipRecord) { r.written, r.Bytes = end, n })
}

// notify tells the rest of the server about a clip that ended; it waits
// while the notice queue is full, until the recorder stops (the clip's
// sidecar still says what became of it).
func (f *feed) notify(ctx context.Context, c Clip) {
	f.e.r.notify(ctx, Notice{Kind: NoticeClip, Camera: c.Camera, Clip: &c, At: f.e.now()})
}
