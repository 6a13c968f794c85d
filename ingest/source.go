package ingest

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
)

// maxBackoff caps the delay between reconnects.
const maxBackoff = 30 * time.Second

// Labels of a camera's two streams, in logs and metrics.
const (
	streamMain = "main"
	streamSub  = "sub"
)

// source supervises one stream of a camera (its main or its sub stream): it
// runs sessions (connect, describe, setup, play, read) one after the other
// with backoff, feeds the stream, and keeps the stream's state. On-demand
// streams run while they have users (readers, or AddReader calls waiting)
// or a hold (Manager.Hold), and for the linger after both are gone. A
// camera's main and sub streams are two sources that share nothing but the
// camera's config.
//
// Each run is one goroutine, started by start and stopped by cancelling it;
// the rest is a small locked API.
type source struct {
	cfg       CameraConfig
	name      string // streamMain or streamSub
	mcfg      *Config
	logger    *slog.Logger
	wg        *sync.WaitGroup // the manager's
	lease     *lease          // the camera's, nil without a Gate
	stream    *stream
	url       *base.URL // with credentials: only ever handed to gortsplib
	transport *gortsplib.Transport

	bytes      atomic.Uint64
	packets    atomic.Uint64
	videoUnits atomic.Uint64
	lost       atomic.Uint64
	decodeErrs atomic.Uint64
	split      atomic.Uint64
	unsplit    atomic.Uint64

	// unsupported remembers codecs already logged as skipped. Runs are
	// sequential (each waits for the previous one), so it needs no lock.
	unsupported map[string]bool

	mu     sync.Mutex
	closed bool
	// closeErr is what acquire and hold return once closed:
	// ErrManagerClosed, or why Apply closed the source (ErrCameraRemoved,
	// ErrCameraChanged, wrapped with the camera's id).
	closeErr    error
	run         *sourceRun // nil when not pulling
	prevDone    <-chan struct{}
	users       int
	lingerTimer *time.Timer
	lingerGen   uint64
	// heldUntil is the end of the current hold, zero when none; holdTimer
	// fires then, and holdGen tells a stale firing from the current one.
	heldUntil   time.Time
	holdTimer   *time.Timer
	holdGen     uint64
	status      Status
	since       time.Time
	lastErr     string
	reason      Reason
	reconnects  uint64
	bitrateKbps float64
	frameRate   float64
	changed     chan struct{} // closed and replaced on every change
}

// sourceRun is one supervising goroutine.
type sourceRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// newSource builds the source of one of a camera's streams: name is
// streamMain or streamSub, rawURL its validated URL (cfg.URL or cfg.SubURL).
func newSource(cfg CameraConfig, name, rawURL string, mcfg *Config, logger *slog.Logger, wg *sync.WaitGroup) *source {
	s := &source{
		cfg:         cfg,
		name:        name,
		mcfg:        mcfg,
		logger:      logger.With("camera", cfg.ID, "stream", name),
		wg:          wg,
		unsupported: map[string]bool{},
		status:      StatusOffline,
		since:       time.Now(),
		changed:     make(chan struct{}),
	}
	s.stream = newStream(mcfg.QueueSize, s.logger, s.notify)
	// Validate checked the URL.
	u, _ := url.Parse(rawURL)
	if cfg.Username != "" {
		u.User = url.UserPassword(cfg.Username, cfg.Password)
	}
	s.url = (*base.URL)(u)
	switch cfg.Transport {
	case TransportUDP:
		t := gortsplib.TransportUDP
		s.transport = &t
	case TransportTCP:
		t := gortsplib.TransportTCP
		s.transport = &t
	default:
		// nil: gortsplib tries UDP and switches to TCP when the camera
		// refuses UDP or no UDP packet arrives within 3 s.
	}
	return s
}

func (s *source) onDemand() bool { return s.cfg.Mode != ModeAlways }

// start begins pulling, unless already pulling or closed.
func (s *source) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startLocked()
}

func (s *source) startLocked() {
	if s.closed || s.run != nil {
		return
	}
	// With a gate a run holds a reference on the camera's lease, which
	// its starter (addReader, hold, claimLoop) claimed; none is started
	// once the lease is lost.
	if s.lease != nil && !s.lease.ref() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &sourceRun{cancel: cancel, done: make(chan struct{})}
	prev := s.prevDone
	s.run = run
	s.setStatusLocked(StatusConnecting)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(run.done)
		if s.lease != nil {
			// After the session is closed: the next holder may connect.
			defer s.lease.unref()
		}
		if prev != nil {
			// The previous run may still be closing its session: never
			// hold two sessions to one camera.
			<-prev
		}
		s.supervise(ctx, run)
	}()
}

// stopLocked cancels the current run; the camera goes offline at once.
func (s *source) stopLocked() {
	if s.run == nil {
		return
	}
	s.run.cancel()
	s.prevDone = s.run.done
	s.run = nil
	s.setStatusLocked(StatusOffline)
}

// pulling tells whether the source runs.
func (s *source) pulling() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.run != nil
}

// isClosed tells whether the source was closed (by Close or Apply).
func (s *source) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// evict stops the source at once because its camera's lease was lost: its
// hold and linger end, and its readers are closed (the stream stays, for
// a later run).
func (s *source) evict() {
	s.mu.Lock()
	s.stopLingerLocked()
	s.stopHoldLocked()
	s.stopLocked()
	s.mu.Unlock()
	s.stream.dropReaders()
}

// acquire registers a user (an AddReader call, then its reader) and starts an
// on-demand camera.
func (s *source) acquire() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.closeErr
	}
	s.users++
	s.stopLingerLocked()
	if s.onDemand() {
		s.startLocked()
	}
	return nil
}

// release unregisters a user. The last one leaving an on-demand camera
// that is not held starts the linger timer.
func (s *source) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users--
	s.lingerLocked()
}

// hold keeps an on-demand camera pulled until until, without a user; an
// earlier until than the current hold's changes nothing. It starts the
// camera if it is not pulled. An always-on camera is not affected.
func (s *source) hold(until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.closeErr
	}
	if !s.onDemand() || !until.After(s.heldUntil) || !until.After(time.Now()) {
		return nil
	}
	s.stopHoldLocked()
	s.heldUntil = until
	gen := s.holdGen
	s.holdTimer = time.AfterFunc(time.Until(until), func() { s.holdExpired(gen) })
	s.stopLingerLocked()
	s.startLocked()
	s.logger.Debug("camera held", "until", until.Format(time.RFC3339))
	return nil
}

func (s *source) stopHoldLocked() {
	s.holdGen++
	s.heldUntil = time.Time{}
	if s.holdTimer != nil {
		s.holdTimer.Stop()
		s.holdTimer = nil
	}
}

// holdExpired ends the hold; the camera then lingers like one whose last
// reader left, unless it has readers.
func (s *source) holdExpired(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.holdGen || s.closed {
		return
	}
	s.holdTimer = nil
	s.heldUntil = time.Time{}
	s.lingerLocked()
}

// lingerLocked starts the linger timer of an on-demand camera that is
// pulled but has neither users nor a hold.
func (s *source) lingerLocked() {
	if s.users > 0 || !s.heldUntil.IsZero() || s.closed || !s.onDemand() || s.run == nil {
		return
	}
	s.stopLingerLocked()
	gen := s.lingerGen
	s.lingerTimer = time.AfterFunc(s.mcfg.Linger, func() { s.lingerExpired(gen) })
}

func (s *source) stopLingerLocked() {
	s.lingerGen++
	if s.lingerTimer != nil {
		s.lingerTimer.Stop()
		s.lingerTimer = nil
	}
}

func (s *source) lingerExpired(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.lingerGen || s.users > 0 || !s.heldUntil.IsZero() || s.closed || s.run == nil {
		return
	}
	s.lingerTimer = nil
	s.logger.Info("no readers, stopping camera")
	s.stopLocked()
}

// close stops the camera for good and closes its readers. why is
// ErrManagerClosed (readers then get ErrReaderClosed alone) or the reason
// Apply closed the source, which AddReader, Hold and the readers' Read
// return (wrapped). It returns a channel closed once the last run has
// ended (its RTSP session closed); the manager's WaitGroup waits for it
// too.
func (s *source) close(why error) <-chan struct{} {
	s.mu.Lock()
	if s.closed {
		done := s.prevDone
		s.mu.Unlock()
		return doneOrClosed(done)
	}
	s.closed = true
	s.closeErr = why
	s.stopLingerLocked()
	s.stopHoldLocked()
	s.stopLocked()
	s.notifyLocked()
	done := s.prevDone
	s.mu.Unlock()
	readersWhy := why
	if errors.Is(why, ErrManagerClosed) {
		readersWhy = nil
	}
	s.stream.close(readersWhy)
	return doneOrClosed(done)
}

// doneOrClosed returns c, or a closed channel when there is no run to
// wait for.
func doneOrClosed(c <-chan struct{}) <-chan struct{} {
	if c == nil {
		done := make(chan struct{})
		close(done)
		return done
	}
	return c
}

// supervise runs sessions until ctx ends, waiting with backoff between them.
func (s *source) supervise(ctx context.Context, run *sourceRun) {
	backoff := s.mcfg.minBackoff
	for {
		s.setStatus(run, StatusConnecting)
		delivered, err := s.runSession(ctx, run)
		if ctx.Err() != nil {
			return
		}
		if delivered {
			backoff = s.mcfg.minBackoff
		}
		msg, reason := s.describeError(err), classify(err)
		s.logger.Warn("camera session ended", "reason", reason, "error", msg, "retry_in", backoff)
		s.setFailed(run, msg, reason)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
		s.mu.Lock()
		if s.run == run {
			s.reconnects++
		}
		s.mu.Unlock()
	}
}

// setStatus changes the status on behalf of run; a run that has been
// stopped changes nothing.
func (s *source) setStatus(run *sourceRun, st Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run == run {
		s.setStatusLocked(st)
	}
}

// setFailed records why run's session ended and that it is retrying.
func (s *source) setFailed(run *sourceRun, lastErr string, reason Reason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run == run {
		s.lastErr, s.reason = lastErr, reason
		s.setStatusLocked(StatusRetrying)
	}
}

func (s *source) setStatusLocked(st Status) {
	if st != s.status {
		s.status = st
		s.since = time.Now()
	}
	if st != StatusOnline {
		s.bitrateKbps, s.frameRate = 0, 0
	}
	s.notifyLocked()
}

func (s *source) setRates(run *sourceRun, kbps, fps float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run == run && s.status == StatusOnline {
		s.bitrateKbps, s.frameRate = kbps, fps
	}
}

// notify wakes AddReader calls waiting for this camera.
func (s *source) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notifyLocked()
}

func (s *source) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitState returns the status and a channel closed at the next change;
// closed is the source's close error once it is closed, nil before.
func (s *source) waitState() (st Status, closed error, changed <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		closed = s.closeErr
	}
	return s.status, closed, s.changed
}

// state returns a snapshot for the API.
func (s *source) state() StreamState {
	s.mu.Lock()
	st := StreamState{
		Status:      s.status,
		Since:       s.since,
		LastError:   s.lastErr,
		Reason:      s.reason,
		BitrateKbps: s.bitrateKbps,
		FrameRate:   s.frameRate,
		Reconnects:  s.reconnects,
		Held:        s.heldUntil,
	}
	s.mu.Unlock()
	st.Tracks, st.Viewers = s.stream.snapshot()
	st.Dropped = s.stream.dropped.Load()
	st.BytesReceived = s.bytes.Load()
	st.PacketsReceived = s.packets.Load()
	st.PacketsLost = s.lost.Load()
	st.PacketsSplit = s.split.Load()
	st.PacketsUnsplit = s.unsplit.Load()
	return st
}
