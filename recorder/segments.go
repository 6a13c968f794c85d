package recorder

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Timings of continuous recording. Tests shorten them through the fields
// of segments that copy them.
const (
	// readerRetry is how often a camera that cannot be read is tried again.
	readerRetry = 3 * time.Second
	// faultRetry is how long a camera stopped by a write error waits
	// before it tries again.
	faultRetry = 30 * time.Second
	// retentionEvery is how often retention looks at age and space.
	// Between two looks the cameras write at most this long: at 100
	// cameras of 2 Mbit/s, 25 MB, far below min_free's default.
	retentionEvery = time.Second
	// spanGap is the largest hole between two segments that still counts
	// as one span (a segment starts at the first keyframe after the
	// previous one ended, a frame or so later).
	spanGap = 1500 * time.Millisecond
	// resumeRoom is the room that must be free again, beyond max_bytes and
	// min_free, before cameras stopped for space record again, so that
	// they do not stop and start every second: 32 MiB, or a quarter of
	// min_free or a sixteenth of max_bytes when those are smaller.
	resumeRoom = 32 << 20
)

// segments is continuous recording: one owner goroutine per camera that
// records always, writing keyframe-aligned fMP4 segments under
// {path}/segments/{camera}/{day}/; an index of every segment on disk
// (rebuilt at Start) behind a mutex; and a retention goroutine. See
// segments_*.go.
type segments struct {
	r   *Recorder
	dir string

	// Function fields and timings that tests swap.
	openFile       func(name string) (segmentFile, error)
	statfs         func(path string) (free, total uint64, err error)
	readerRetry    time.Duration
	faultRetry     time.Duration
	retentionEvery time.Duration
	rescanEvery    time.Duration
	resumeRoom     int64
	now            func() time.Time
	evidenceBytes  func() int64

	// noSpace is set by retention while cameras must not write.
	noSpace atomic.Bool
	// spaceBack is closed (and replaced) when noSpace clears.
	spaceMu   sync.Mutex
	spaceBack chan struct{}

	mu    sync.Mutex
	index map[string]*camIndex // every camera with segments or recording
	// runs are the goroutines of the cameras recorded always.
	runs map[string]*camRun

	metrics *segMetrics
	wg      sync.WaitGroup
}

// camRun is one camera's recording goroutine.
type camRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// segment is one file of the index.
type segment struct {
	path       string
	start, end time.Time
	bytes      int64
	live       bool // being written: end and bytes grow
}

// camIndex is one camera's segments, oldest first, and its state.
type camIndex struct {
	segs  []*segment
	bytes int64

	state  string
	reason string
	since  time.Time
	cfg    CameraConfig
	rec    bool // records always

	deletedAge, deletedSpace atomic.Uint64
	writeErrors, badUnits    atomic.Uint64
	written                  atomic.Uint64
}

func newSegments(r *Recorder, reg prometheus.Registerer) (*segments, error) {
	s := &segments{
		r:              r,
		dir:            r.cfg.Path + "/segments",
		openFile:       openSegmentFile,
		statfs:         statfs,
		readerRetry:    readerRetry,
		faultRetry:     faultRetry,
		retentionEvery: retentionEvery,
		rescanEvery:    rescanEvery,
		resumeRoom:     resumeRoomFor(r.cfg),
		now:            time.Now,
		evidenceBytes:  func() int64 { return r.evidence.bytes() },
		spaceBack:      make(chan struct{}),
		index:          make(map[string]*camIndex),
		runs:           make(map[string]*camRun),
	}
	for _, c := range r.cfg.Cameras {
		if !c.records() {
			continue
		}
		ci := s.cam(c.ID)
		ci.cfg = c
		ci.state = StateOff
		if c.Record == RecordAlways {
			ci.rec = true
			ci.state = StateWaiting
		}
	}
	s.metrics = newSegMetrics(s)
	if reg != nil {
		if err := reg.Register(s.metrics); err != nil {
			return nil, fmt.Errorf("recorder metrics: %w", err)
		}
	}
	return s, nil
}

func resumeRoomFor(cfg Config) int64 {
	room := int64(resumeRoom)
	if cfg.MinFree > 0 {
		room = min(room, int64(cfg.MinFree)/4)
	}
	if cfg.MaxBytes > 0 {
		room = min(room, int64(cfg.MaxBytes)/16)
	}
	return room
}

// cam returns the index entry of id, creating it; s.mu held or not yet
// shared.
func (s *segments) cam(id string) *camIndex {
	ci := s.index[id]
	if ci == nil {
		ci = &camIndex{state: StateOff, cfg: CameraConfig{ID: id}}
		s.index[id] = ci
	}
	return ci
}

// start rebuilds the index from the disk (repairing what a crash left),
// then starts retention and the cameras.
func (s *segments) start(ctx context.Context) error {
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return fmt.Errorf("recordings.path: %w", err)
	}
	if err := s.load(); err != nil {
		return err
	}
	s.retain(ctx) // before the cameras write: a full disk stops them at once
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.runRetention(ctx)
	}()
	// The cameras as they are now: an Apply may have come before Start.
	s.r.camMu.RLock()
	var cams []CameraConfig
	for _, c := range s.r.cameras {
		if c.Record == RecordAlways {
			cams = append(cams, c)
		}
	}
	s.r.camMu.RUnlock()
	slices.SortFunc(cams, func(a, b CameraConfig) int { return strings.Compare(a.ID, b.ID) })
	for _, c := range cams {
		s.startCamera(ctx, c)
	}
	return nil
}

// startCamera starts recording a camera always; ctx is the recorder's.
func (s *segments) startCamera(ctx context.Context, cfg CameraConfig) {
	ctx, cancel := context.WithCancel(ctx)
	run := &camRun{cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	ci := s.cam(cfg.ID)
	ci.cfg, ci.rec = cfg, true
	if ci.state == StateOff {
		ci.state, ci.reason, ci.since = StateWaiting, "", s.now()
	}
	s.runs[cfg.ID] = run
	s.mu.Unlock()
	cr := newCamRecorder(s, cfg)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(run.done)
		cr.run(ctx)
	}()
}

// stopCamera stops recording a camera always (its open segment is closed
// and stays playable) and waits for it; cfg is the camera's settings now
// (record "off" when it no longer records).
func (s *segments) stopCamera(cfg CameraConfig) {
	s.mu.Lock()
	run := s.runs[cfg.ID]
	delete(s.runs, cfg.ID)
	s.mu.Unlock()
	if run != nil {
		run.cancel()
		<-run.done
	}
	s.mu.Lock()
	if ci := s.index[cfg.ID]; ci != nil {
		ci.cfg, ci.rec = cfg, false
		ci.state, ci.reason, ci.since = StateOff, "", s.now()
	}
	s.mu.Unlock()
}

// setConfig updates the settings of a camera that records for alarms
// only (its status shows them).
func (s *segments) setConfig(cfg CameraConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cam(cfg.ID).cfg = cfg
}

// close waits for the goroutines; the Recorder has cancelled their context.
func (s *segments) close() { s.wg.Wait() }

func (s *segments) statusLocked(id string, ci *camIndex) CameraStatus {
	st := CameraStatus{Camera: id, Record: ci.cfg.Record, Stream: ci.cfg.Stream, State: ci.state,
		Reason: ci.reason, Since: ci.since, Bytes: ci.bytes, Segments: len(ci.segs)}
	if len(ci.segs) > 0 {
		st.Oldest = ci.segs[0].start
	}
	return st
}

func (s *segments) statuses() []CameraStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []CameraStatus
	for id, ci := range s.index {
		if ci.cfg.Record != "" && ci.cfg.Record != RecordOff {
			out = append(out, s.statusLocked(id, ci))
		}
	}
	slices.SortFunc(out, func(a, b CameraStatus) int {
		if a.Camera < b.Camera {
			return -1
		}
		if a.Camera > b.Camera {
			return 1
		}
		return 0
	})
	return out
}

func (s *segments) status(id string) (CameraStatus, error) {
	if !s.r.Records(id) {
		return CameraStatus{}, ErrUnknownCamera
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusLocked(id, s.index[id]), nil
}

// setState records a camera's state; it returns the previous one.
func (s *segments) setState(id, state, reason string) (prev, prevReason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ci := s.index[id]
	prev, prevReason = ci.state, ci.reason
	if prev != state || prevReason != reason {
		ci.state, ci.reason, ci.since = state, reason, s.now()
	}
	return prev, prevReason
}

// waitSpace blocks while recording is stopped for space, until ctx ends.
func (s *segments) waitSpace(ctx context.Context) bool {
	for s.noSpace.Load() {
		s.spaceMu.Lock()
		ch := s.spaceBack
		s.spaceMu.Unlock()
		if !s.noSpace.Load() {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
	return ctx.Err() == nil
}

// setNoSpace stops or resumes every camera's writing.
func (s *segments) setNoSpace(v bool) {
	if s.noSpace.Swap(v) == v || v {
		return
	}
	s.spaceMu.Lock()
	close(s.spaceBack)
	s.spaceBack = make(chan struct{})
	s.spaceMu.Unlock()
}
