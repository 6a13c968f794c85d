package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skywatch/skywatch/ingest"
)

// Source is what the recorder needs of ingest: readers of a camera's main
// and sub streams. *ingest.Manager is one. AddSubReader fails with
// ingest.ErrNoSubStream for a camera without a sub stream; the recorder
// then reads the main stream.
type Source interface {
	AddReader(ctx context.Context, cameraID string) (*ingest.Reader, error)
	AddSubReader(ctx context.Context, cameraID string) (*ingest.Reader, error)
}

// Recorder records the cameras of its config and keeps their evidence. Its
// methods are safe for concurrent use.
type Recorder struct {
	cfg    Config
	src    Source
	logger *slog.Logger

	// camMu guards cameras, which Apply replaces whole.
	camMu   sync.RWMutex
	cameras map[string]CameraConfig // those that record

	// applyMu serialises Start, Apply and Close.
	applyMu sync.Mutex
	// ctx is the recorder's own lifetime, from Start to Close: the
	// goroutines of the cameras that Apply starts derive theirs from it.
	// nil before Start (or when Start had nothing to record).
	ctx         context.Context
	startCalled bool
	closed      bool

	segments *segments
	evidence *evidence
	notices  chan Notice

	startOnce sync.Once
	closeOnce sync.Once
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// noticeQueue is how many notices wait for the reader of Notices before
// the recorder blocks on it: clips and faults are rare.
const noticeQueue = 1024

// New builds a recorder for a validated config (SetDefaults, Validate).
// Nothing is read or written until Start. reg receives the recorder's
// metrics; nil means none.
func New(cfg Config, src Source, reg prometheus.Registerer, logger *slog.Logger) (*Recorder, error) {
	r := &Recorder{
		cfg:     cfg,
		src:     src,
		logger:  logger,
		cameras: make(map[string]CameraConfig, len(cfg.Cameras)),
		notices: make(chan Notice, noticeQueue),
	}
	for _, c := range cfg.Cameras {
		if c.records() {
			r.cameras[c.ID] = c
		}
	}
	var err error
	if r.segments, err = newSegments(r, reg); err != nil {
		return nil, err
	}
	if r.evidence, err = newEvidence(r, reg); err != nil {
		return nil, err
	}
	return r, nil
}

// Start creates the directories, repairs or skips what a crash left
// half-written, and starts recording. It fails when the path cannot be
// used; a camera that does not deliver is retried, never an error.
func (r *Recorder) Start(ctx context.Context) error {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	r.startCalled = true
	r.camMu.RLock()
	n := len(r.cameras)
	r.camMu.RUnlock()
	if n == 0 || r.closed {
		return nil
	}
	return r.startLocked(ctx)
}

// startLocked starts the recorder once; applyMu held.
func (r *Recorder) startLocked(ctx context.Context) error {
	if err := os.MkdirAll(r.cfg.Path, 0o750); err != nil {
		return fmt.Errorf("recordings.path: %w", err)
	}
	var err error
	r.startOnce.Do(func() {
		ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
		r.ctx = ctx
		if err = r.segments.start(ctx); err != nil {
			return
		}
		err = r.evidence.start(ctx)
	})
	return err
}

// Close stops recording, finishes what is being written (a segment or a
// clip in progress stays playable) and waits for the recorder's goroutines.
// It is idempotent.
func (r *Recorder) Close() error {
	r.closeOnce.Do(func() {
		r.applyMu.Lock()
		r.closed = true
		r.applyMu.Unlock()
		if r.cancel != nil {
			r.cancel()
		}
		r.segments.close()
		r.evidence.close()
		r.wg.Wait()
	})
	return nil
}

// Notices returns what the recorder has to tell: clips complete or failed,
// cameras that stopped recording or record again. One reader.
func (r *Recorder) Notices() <-chan Notice { return r.notices }

// notify queues a notice; it waits while the queue is full, until ctx ends.
func (r *Recorder) notify(ctx context.Context, n Notice) {
	select {
	case r.notices <- n:
	case <-ctx.Done():
	}
}

// addReader adds a reader of the camera's record_stream, the main one when
// the camera has no sub stream. The segments and the evidence each add
// their own.
func (r *Recorder) addReader(ctx context.Context, cam CameraConfig) (*ingest.Reader, error) {
	if cam.Stream == StreamSub {
		rd, err := r.src.AddSubReader(ctx, cam.ID)
		if !errors.Is(err, ingest.ErrNoSubStream) {
			return rd, err
		}
	}
	return r.src.AddReader(ctx, cam.ID)
}

// Records tells whether a camera is configured to record or keep evidence.
func (r *Recorder) Records(cameraID string) bool {
	_, ok := r.camera(cameraID)
	return ok
}

// camera returns a recording camera's settings.
func (r *Recorder) camera(id string) (CameraConfig, bool) {
	r.camMu.RLock()
	defer r.camMu.RUnlock()
	c, ok := r.cameras[id]
	return c, ok
}

// Statuses returns every recording camera's status, sorted by camera.
func (r *Recorder) Statuses() []CameraStatus { return r.segments.statuses() }

// Status returns one camera's status, or ErrUnknownCamera.
func (r *Recorder) Status(cameraID string) (CameraStatus, error) {
	return r.segments.status(cameraID)
}

// Spans returns the spans a camera was recorded in [from, to], oldest
// first, clipped to [from, to].
func (r *Recorder) Spans(cameraID string, from, to time.Time) ([]Span, error) {
	return r.segments.spans(cameraID, from, to)
}

// Export plans an export of [start, end] of a camera's recordings. It
// fails with ErrBadSpan for a reversed, empty or too long span,
// ErrUnknownCamera, or ErrNotRecorded when nothing was recorded in it; then
// nothing was written.
func (r *Recorder) Export(cameraID string, start, end time.Time) (*Export, error) {
	return r.segments.export(cameraID, start, end)
}

// StartClips opens an evidence clip of incidentID on each of cameras that
// records (the first evidence.cameras_per_incident of them), from
// pre_alarm before alarm to post_alarm after it. A clip already open is
// left as it is, and none opens once post_alarm after alarm has passed
// (an incident seen again after a restart).
func (r *Recorder) StartClips(incidentID string, cameras []string, alarm time.Time) {
	r.evidence.startClips(incidentID, cameras, alarm)
}

// ExtendClips moves the end of the incident's open clips to post_alarm
// after last, up to recordings.clip_max.
func (r *Recorder) ExtendClips(incidentID string, last time.Time) {
	r.evidence.extendClips(incidentID, last)
}

// EndIncident starts the evidence.keep clock of the incident's clips.
func (r *Recorder) EndIncident(incidentID string, ended time.Time) {
	r.evidence.endIncident(incidentID, ended)
}

// Unended lists the incidents that have a clip whose evidence.keep clock
// has not started (EndIncident was not called), sorted: the caller
// reconciles them with the incidents' states, since an end can be missed.
func (r *Recorder) Unended() []string { return r.evidence.unended() }

// Clips returns the incident's clips, in the order they were opened.
func (r *Recorder) Clips(incidentID string) []Clip { return r.evidence.clips(incidentID) }

// ClipFile opens a clip's MP4 for reading. A clip still recording is served
// as far as it is written.
func (r *Recorder) ClipFile(incidentID, clipID string) (io.ReadSeekCloser, Clip, error) {
	return r.evidence.clipFile(incidentID, clipID)
}
