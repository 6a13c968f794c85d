package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Reader receives one camera's units through a bounded queue. The stream
// never waits for a reader: when the queue is full the unit is dropped, and
// the reader then skips video until the next keyframe, so that what it does
// get stays decodable. Methods are safe for concurrent use.
type Reader struct {
	tracks  []Track
	isVideo []bool
	logger  *slog.Logger
	// release is called once, when the reader leaves (Close or the stream
	// closing it), to let its camera linger and stop.
	release func()
	stream  *stream

	// notify has room for one token: a Read waiting for a unit.
	notify chan struct{}
	done   chan struct{}

	dropped atomic.Uint64

	mu     sync.Mutex
	closed bool
	// err is what Read returns once closed: ErrReaderClosed, or an error
	// wrapping it and the reason the camera ended (ErrCameraRemoved...).
	err   error
	queue []*Unit // ring buffer
	head  int
	n     int
	// skipping: video units are skipped until a keyframe; countSkips says
	// whether they count as drops (after an overflow) or not (a new reader,
	// a new epoch).
	skipping   bool
	countSkips bool
	// logged summarises drops in one log line a second.
	unlogged int
	lastLog  time.Time
}

func newReader(tracks []Track, queueSize int, logger *slog.Logger, release func()) *Reader {
	r := &Reader{
		tracks:   tracks,
		isVideo:  make([]bool, len(tracks)),
		logger:   logger,
		release:  release,
		notify:   make(chan struct{}, 1),
		done:     make(chan struct{}),
		queue:    make([]*Unit, queueSize),
		skipping: true,
	}
	for i, t := range tracks {
		r.isVideo[i] = t.Kind == KindVideo
	}
	return r
}

// Tracks returns the tracks of the stream as they were when the reader was
// added. Unit.Track indexes this list.
func (r *Reader) Tracks() []Track {
	return cloneTracks(r.tracks)
}

// Dropped returns how many units the reader lost because it was too slow.
func (r *Reader) Dropped() uint64 {
	return r.dropped.Load()
}

// Read returns the next unit. It blocks until one arrives, ctx ends, or the
// reader is closed: then it returns ErrReaderClosed, or an error wrapping
// it and why the stream ended for this reader (ErrCameraRemoved,
// ErrCameraChanged). The unit is shared with other readers: do not modify
// it.
func (r *Reader) Read(ctx context.Context) (*Unit, error) {
	for {
		r.mu.Lock()
		if r.closed {
			err := r.err
			r.mu.Unlock()
			return nil, err
		}
		if r.n > 0 {
			u := r.queue[r.head]
			r.queue[r.head] = nil
			r.head = (r.head + 1) % len(r.queue)
			r.n--
			r.mu.Unlock()
			return u, nil
		}
		r.mu.Unlock()
		select {
		case <-r.notify:
		case <-r.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close removes the reader from its stream. It is idempotent. When it was
// the last reader of an on-demand camera, the camera stops after the linger.
func (r *Reader) Close() {
	if r.stream != nil {
		r.stream.removeReader(r)
	}
	r.terminate(nil)
}

// terminate marks the reader closed, wakes Read, and releases the camera;
// it is idempotent. why, when not nil, is the reason Read gives (wrapped
// with ErrReaderClosed); the first call's reason stays.
func (r *Reader) terminate(why error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.err = ErrReaderClosed
	if why != nil {
		r.err = fmt.Errorf("%w: %w", ErrReaderClosed, why)
	}
	clear(r.queue)
	r.n = 0
	unlogged := r.unlogged
	r.unlogged = 0
	r.mu.Unlock()
	close(r.done)
	if unlogged > 0 {
		r.logger.Warn("reader is too slow, discarded units", "count", unlogged)
	}
	if r.release != nil {
		r.release()
	}
}

// prefill queues a keyframe group for a reader that was just added, so that
// its first video unit is a keyframe. A group longer than the queue is not
// queued; the reader waits for the next keyframe instead.
func (r *Reader) prefill(units []*Unit) {
	if len(units) == 0 || len(units) > len(r.queue) {
		return
	}
	r.mu.Lock()
	for _, u := range units {
		r.queue[(r.head+r.n)%len(r.queue)] = u
		r.n++
	}
	r.skipping = false
	r.mu.Unlock()
	r.wake()
}

// skipToKeyframe makes the reader skip video until a keyframe, without
// counting drops: the stream has started a new epoch.
func (r *Reader) skipToKeyframe() {
	r.mu.Lock()
	r.skipping, r.countSkips = true, false
	r.mu.Unlock()
}

// offer queues u if the reader can take it, and otherwise counts the drop.
// It never blocks for long: Read and offer hold the lock for a few
// instructions only.
func (r *Reader) offer(u *Unit, now time.Time) {
	video := r.isVideo[u.Track]
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	full := r.n == len(r.queue)
	var drop bool
	switch {
	case r.skipping && video && !u.Keyframe:
		drop = r.countSkips
	case full:
		drop = true
		r.skipping, r.countSkips = true, true
	default:
		if video {
			r.skipping = false
		}
		r.queue[(r.head+r.n)%len(r.queue)] = u
		r.n++
		r.mu.Unlock()
		r.wake()
		return
	}
	if !drop {
		r.mu.Unlock()
		return
	}
	r.unlogged++
	var logCount int
	if now.Sub(r.lastLog) >= time.Second {
		logCount, r.unlogged, r.lastLog = r.unlogged, 0, now
	}
	r.mu.Unlock()
	r.dropped.Add(1)
	if r.stream != nil {
		r.stream.dropped.Add(1)
	}
	if logCount > 0 {
		r.logger.Warn("reader is too slow, discarded units", "count", logCount)
	}
}

func (r *Reader) wake() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}
