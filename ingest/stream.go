package ingest

import (
	"log/slog"
	"sync"
	"sync/atomic"
)

// Bounds of the keyframe cache. A group that grows past them (a camera with
// a very long GOP) is not cached; new readers then wait for a keyframe.
// Video units are counted on their own: a camera's sound (G.711 sends 50
// packets a second) must not shorten the GOP that fits, and field cameras
// use 10 s GOPs (250 pictures at 25 fps). All units together are bounded by
// maxCachedAll and by bytes.
const (
	maxCachedUnits = 300 // video units
	maxCachedAll   = 1200
	maxCachedBytes = 8 << 20
)

// stream fans one camera's units out to its readers and keeps the latest
// keyframe group for readers that join mid-group. It outlives sessions:
// readers stay attached across reconnects as long as the tracks stay the
// same. A small locked API; push holds the lock while it offers a unit to
// every reader, which never blocks.
type stream struct {
	queueSize int
	logger    *slog.Logger
	// onChange is called, without the lock, when the tracks change, so that
	// AddReader calls waiting for parameter sets look again.
	onChange func()

	dropped atomic.Uint64

	mu       sync.Mutex
	closed   bool
	tracks   []Track // nil until the first session has described
	isVideo  []bool
	primary  int // the video track whose keyframes start a cached group; -1 if none
	epoch    uint64
	readers  []*Reader
	nextID   uint64
	gop      []*Unit
	gopBytes int
	gopVideo int // video units in gop
	caching  bool
}

func newStream(queueSize int, logger *slog.Logger, onChange func()) *stream {
	return &stream{queueSize: queueSize, logger: logger, onChange: onChange, primary: -1}
}

// begin starts a new epoch with the tracks of a new session and returns it.
// Readers stay when the codecs are the same, and then skip to the next
// keyframe; otherwise they are closed, because they negotiated the old
// codecs.
func (s *stream) begin(tracks []Track) uint64 {
	s.mu.Lock()
	var gone []*Reader
	if s.tracks != nil && !sameCodecs(s.tracks, tracks) {
		gone = s.readers
		s.readers = nil
	}
	for _, r := range s.readers {
		r.skipToKeyframe()
	}
	s.epoch++
	epoch := s.epoch
	s.tracks = cloneTracks(tracks)
	s.isVideo = make([]bool, len(tracks))
	s.primary = -1
	for i, t := range tracks {
		s.isVideo[i] = t.Kind == KindVideo
		if s.isVideo[i] && s.primary < 0 {
			s.primary = i
		}
	}
	s.resetCache()
	s.mu.Unlock()
	if len(gone) > 0 {
		s.logger.Info("camera tracks changed, closing readers", "readers", len(gone))
	}
	for _, r := range gone {
		r.terminate(nil)
	}
	s.onChange()
	return epoch
}

// setParams updates the parameter sets of track i, seen in-band in epoch.
func (s *stream) setParams(epoch uint64, i int, vps, sps, pps []byte) {
	s.mu.Lock()
	changed := !s.closed && epoch == s.epoch && s.tracks[i].setParams(vps, sps, pps)
	s.mu.Unlock()
	if changed {
		s.onChange()
	}
}

// push hands u to every reader and to the keyframe cache. Units of an
// ended epoch are ignored.
func (s *stream) push(u *Unit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || u.Epoch != s.epoch {
		return
	}
	s.cache(u)
	now := u.Received
	for _, r := range s.readers {
		r.offer(u, now)
	}
}

func (s *stream) cache(u *Unit) {
	if u.Keyframe && u.Track == s.primary {
		s.resetCache()
		s.caching = true
	}
	if !s.caching {
		return
	}
	size := unitSize(u)
	video := u.Track == s.primary
	if (video && s.gopVideo >= maxCachedUnits) || len(s.gop) >= maxCachedAll ||
		s.gopBytes+size > maxCachedBytes {
		s.resetCache()
		return
	}
	s.gop = append(s.gop, u)
	s.gopBytes += size
	if video {
		s.gopVideo++
	}
}

func (s *stream) resetCache() {
	clear(s.gop)
	s.gop = s.gop[:0]
	s.gopBytes = 0
	s.gopVideo = 0
	s.caching = false
}

func unitSize(u *Unit) int {
	n := 0
	for _, p := range u.Packets {
		n += len(p.Payload)
	}
	return n
}

// ready tells whether a reader can be added: a session has described the
// tracks and every video track's parameter sets are known.
func (s *stream) ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readyLocked()
}

func (s *stream) readyLocked() bool {
	if s.closed || s.tracks == nil {
		return false
	}
	for i := range s.tracks {
		if !s.tracks[i].hasParams() {
			return false
		}
	}
	return true
}

// addReader adds a reader, pre-filled with the cached keyframe group, or
// returns nil when the stream is not ready.
func (s *stream) addReader(release func()) *Reader {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.readyLocked() {
		return nil
	}
	s.nextID++
	// The queue holds the cached group and still has room for what comes
	// while the reader starts: a 10 s GOP with sound is longer than the
	// default queue, and a reader that could not take it would wait for
	// the next keyframe.
	size := max(s.queueSize, len(s.gop)+s.queueSize/2)
	r := newReader(cloneTracks(s.tracks), size, s.logger.With("reader", s.nextID), release)
	r.stream = s
	r.prefill(s.gop)
	s.readers = append(s.readers, r)
	return r
}

func (s *stream) removeReader(r *Reader) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.readers {
		if x == r {
			last := len(s.readers) - 1
			s.readers[i] = s.readers[last]
			s.readers[last] = nil
			s.readers = s.readers[:last]
			return
		}
	}
}

// close ends the stream for good and closes every reader; why (nil for a
// plain close) is what their Read returns, wrapped.
func (s *stream) close(why error) {
	s.mu.Lock()
	s.closed = true
	gone := s.readers
	s.readers = nil
	s.resetCache()
	s.mu.Unlock()
	for _, r := range gone {
		r.terminate(why)
	}
}

// dropReaders closes every reader but leaves the stream open: the camera
// stopped and its viewers must reconnect (elsewhere). The cache goes too:
// it would be stale by the next run.
func (s *stream) dropReaders() {
	s.mu.Lock()
	gone := s.readers
	s.readers = nil
	s.resetCache()
	s.mu.Unlock()
	for _, r := range gone {
		r.terminate(nil)
	}
}

// snapshot returns a copy of the tracks and the number of readers.
func (s *stream) snapshot() ([]Track, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneTracks(s.tracks), len(s.readers)
}
