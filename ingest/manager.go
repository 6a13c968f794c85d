package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Manager owns every configured camera: the sources of its main and sub
// streams, their streams and their readers. It is the package's entry point;
// its methods are safe for concurrent use.
//
// The cameras can change while readers come and go (Apply). They are held
// in a cameraSet that is never modified once published: Apply builds the
// next one and swaps it in (copy on write). The many readers of the set
// (AddReader, Hold, Cameras, the collector, the gate's loops) load it once
// and take no lock, so a scrape or a viewer never waits for an Apply; a
// camera they loaded may meanwhile have been closed by Apply, and its
// sources then answer with the reason (ErrCameraRemoved, ErrCameraChanged)
// instead of starting. The writers (Apply, Start, Close, UseGate) take mu,
// one at a time.
type Manager struct {
	// cfg holds the manager-wide settings, which stay as NewManager got
	// them (Apply reports changes as restart-only). Sources point at it.
	cfg    Config
	logger *slog.Logger
	set    atomic.Pointer[cameraSet]

	wg sync.WaitGroup // runs of every source, and claimLoop

	// mu serialises Apply, Start, Close and UseGate.
	mu      sync.Mutex
	started bool
	closed  bool

	// gate, when set (UseGate), grants this node the cameras it may pull.
	gate      Gate
	gateRetry time.Duration
	rebalance chan struct{}
	stopClaim context.CancelFunc // of claimLoop, once started
}

// cameraSet is the cameras at one time. It is read-only once published.
type cameraSet struct {
	byID map[string]*camera
	ids  []string // sorted
	// removed are the IDs Apply removed (and no later Apply added back),
	// so that AddReader can say why a camera is unknown; at most
	// maxRemoved of them.
	removed map[string]bool
}

// maxRemoved bounds how many removed camera IDs are remembered.
const maxRemoved = 4096

func (set *cameraSet) add(c *camera) {
	set.byID[c.id] = c
	set.ids = append(set.ids, c.id)
}

// camera is one configured camera: its main stream's source, and its sub
// stream's when it has one. It is read-only; Apply replaces it.
type camera struct {
	id, name string
	cfg      CameraConfig
	main     *source
	sub      *source // nil without SubURL
	lease    *lease  // nil without a Gate
}

func (c *camera) sources() []*source {
	if c.sub == nil {
		return []*source{c.main}
	}
	return []*source{c.main, c.sub}
}

func (c *camera) state() CameraState {
	var sub *StreamState
	if c.sub != nil {
		st := c.sub.state()
		sub = &st
	}
	return cameraState(c.id, c.name, c.main.state(), sub)
}

// NewManager builds a manager for a validated configuration (see
// Config.Validate). Nothing is pulled until Start or AddReader.
func NewManager(cfg Config, logger *slog.Logger) *Manager {
	cfg.Cameras = slices.Clone(cfg.Cameras)
	cfg.setDefaults()
	m := &Manager{
		cfg:       cfg,
		logger:    logger,
		rebalance: make(chan struct{}, 1),
	}
	set := &cameraSet{byID: make(map[string]*camera, len(cfg.Cameras))}
	for _, cc := range cfg.Cameras {
		set.add(m.newCamera(cc, nil))
	}
	slices.Sort(set.ids)
	m.set.Store(set)
	return m
}

// newCamera builds a camera and its sources; lease is its lease when it
// replaces a camera of the same ID (nil: a new one when there is a gate).
func (m *Manager) newCamera(cc CameraConfig, lease *lease) *camera {
	if lease == nil && m.gate != nil {
		lease = m.newLease(cc.ID)
	}
	c := &camera{id: cc.ID, name: cc.Name, cfg: cc, lease: lease}
	c.main = m.newSource(cc, streamMain, lease, nil)
	if cc.SubURL != "" {
		c.sub = m.newSource(cc, streamSub, lease, nil)
	}
	return c
}

// newSource builds one of a camera's sources; its first run waits for
// prev (the run of the source it replaces) to end, so that the camera
// never sees two of our sessions for one stream.
func (m *Manager) newSource(cc CameraConfig, name string, lease *lease, prev <-chan struct{}) *source {
	rawURL := cc.URL
	if name == streamSub {
		rawURL = cc.SubURL
	}
	s := newSource(cc, name, rawURL, &m.cfg, m.logger, &m.wg)
	s.lease = lease
	s.prevDone = prev
	return s
}

// lookup returns a camera of the current set, or an error wrapping
// ErrUnknownCamera (and ErrCameraRemoved when Apply removed it).
func (m *Manager) lookup(id string) (*camera, error) {
	set := m.set.Load()
	if c := set.byID[id]; c != nil {
		return c, nil
	}
	if set.removed[id] {
		return nil, removedError(id)
	}
	return nil, fmt.Errorf("camera %q: %w", id, ErrUnknownCamera)
}

// removedError is AddReader's, Hold's and Camera's error for a camera that
// Apply removed.
func removedError(id string) error {
	return fmt.Errorf("camera %q: %w: %w", id, ErrUnknownCamera, ErrCameraRemoved)
}

// Start starts pulling the cameras whose mode is "always": their main and
// their sub streams. With a Gate it starts claiming their leases instead,
// and pulls those it gets.
func (m *Manager) Start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started || m.closed {
		return
	}
	m.started = true
	if m.gate != nil {
		ctx, cancel := context.WithCancel(context.Background())
		m.stopClaim = cancel
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.claimLoop(ctx)
		}()
		return
	}
	set := m.set.Load()
	for _, id := range set.ids {
		for _, s := range set.byID[id].sources() {
			if !s.onDemand() {
				s.start()
			}
		}
	}
}

// Close stops every camera, closes every reader (their Read returns
// ErrReaderClosed) and waits for the manager's goroutines. It is idempotent.
func (m *Manager) Close() {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		if m.stopClaim != nil {
			m.stopClaim()
		}
		set := m.set.Load()
		for _, id := range set.ids {
			for _, s := range set.byID[id].sources() {
				s.close(ErrManagerClosed)
			}
		}
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// AddReader adds a reader of a camera's main stream. An on-demand camera
// that is not pulled starts, and AddReader waits (at most ReadyTimeout, and
// while ctx lasts) until its tracks and parameter sets are known. It returns
// an error wrapping ErrUnknownCamera for an unknown id (and also
// ErrCameraRemoved for one that Apply removed), and an *UnavailableError
// when the camera is retrying after a failure (at once) or is not ready in
// time.
func (m *Manager) AddReader(ctx context.Context, cameraID string) (*Reader, error) {
	return m.read(ctx, cameraID, false)
}

// AddSubReader adds a reader of a camera's sub stream, which is pulled on
// its own (one RTSP session however many readers), as AddReader does for
// the main stream. It returns an error wrapping ErrNoSubStream when the
// camera has no sub stream, so that the caller can fall back to AddReader;
// other errors are AddReader's, with UnavailableError.Sub set.
func (m *Manager) AddSubReader(ctx context.Context, cameraID string) (*Reader, error) {
	return m.read(ctx, cameraID, true)
}

// applyRetries bounds how often read starts again on the new camera when
// an Apply changed the one it was reading.
const applyRetries = 3

func (m *Manager) read(ctx context.Context, cameraID string, sub bool) (*Reader, error) {
	for attempt := 0; ; attempt++ {
		c, err := m.lookup(cameraID)
		if err != nil {
			return nil, err
		}
		s := c.main
		if sub {
			if c.sub == nil {
				return nil, fmt.Errorf("camera %q: %w", cameraID, ErrNoSubStream)
			}
			s = c.sub
		}
		r, err := m.addReader(ctx, c, s)
		switch {
		case errors.Is(err, ErrCameraChanged) && attempt < applyRetries && ctx.Err() == nil:
			// An Apply replaced the camera while we waited: read the new one.
			continue
		case errors.Is(err, ErrCameraRemoved):
			return nil, removedError(cameraID)
		}
		return r, err
	}
}

// Hold keeps a camera's main stream (or its sub stream, with sub) pulled
// until until, with or without readers, so that the first reader to come
// gets a picture at once from the keyframe cache instead of waiting for the
// camera to start and send its next keyframe. After until, the stream
// lingers and stops like one whose last reader left. A later until extends
// the hold; an earlier one changes nothing. A camera whose mode is "always"
// is not affected. Hold returns an error wrapping ErrUnknownCamera for an
// unknown id, ErrNoSubStream (wrapped) when sub is asked of a camera
// without one, and ErrManagerClosed after Close, which ends every hold.
// A hold does not survive an Apply that changes or removes the camera.
func (m *Manager) Hold(cameraID string, sub bool, until time.Time) error {
	for attempt := 0; ; attempt++ {
		err := m.hold(cameraID, sub, until)
		switch {
		case errors.Is(err, ErrCameraChanged) && attempt < applyRetries:
			continue // an Apply replaced the camera meanwhile: hold the new one
		case errors.Is(err, ErrCameraRemoved):
			return removedError(cameraID)
		}
		return err
	}
}

func (m *Manager) hold(cameraID string, sub bool, until time.Time) error {
	c, err := m.lookup(cameraID)
	if err != nil {
		return err
	}
	s := c.main
	if sub {
		if c.sub == nil {
			return fmt.Errorf("camera %q: %w", cameraID, ErrNoSubStream)
		}
		s = c.sub
	}
	if c.lease != nil && s.onDemand() {
		// Warm the camera only where it may be pulled: when another node
		// holds it, that node serves its viewers.
		ctx, cancel := context.WithTimeout(context.Background(), gateTimeout)
		defer cancel()
		if err := c.lease.claim(ctx); err != nil {
			if errors.Is(err, ErrPulledElsewhere) {
				return nil
			}
			return err
		}
		defer c.lease.unref()
	}
	return s.hold(until)
}

// addReader adds a reader to s, one of c's sources.
func (m *Manager) addReader(ctx context.Context, c *camera, s *source) (*Reader, error) {
	unavailable := func(err error) error {
		return &UnavailableError{State: c.state(), Sub: s == c.sub, Err: err}
	}
	if c.lease != nil {
		// The claim's reference lasts until the source's run holds its
		// own (acquire starts it).
		if err := c.lease.claim(ctx); err != nil {
			return nil, unavailable(err)
		}
		defer c.lease.unref()
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.ReadyTimeout)
	defer cancel()
	for {
		st, closed, changed := s.waitState()
		switch {
		case closed != nil:
			s.release()
			return nil, closed
		case st == StatusOnline:
			// The reader holds the user registered by acquire.
			if r := s.stream.addReader(s.release); r != nil {
				return r, nil
			}
		case st == StatusRetrying:
			s.release()
			return nil, unavailable(nil)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			s.release()
			return nil, unavailable(ctx.Err())
		}
	}
}

// Cameras returns the state of every camera, sorted by ID.
func (m *Manager) Cameras() []CameraState {
	set := m.set.Load()
	out := make([]CameraState, 0, len(set.ids))
	for _, id := range set.ids {
		out = append(out, set.byID[id].state())
	}
	return out
}

// Camera returns one camera's state, or an error wrapping ErrUnknownCamera.
func (m *Manager) Camera(id string) (CameraState, error) {
	c, err := m.lookup(id)
	if err != nil {
		return CameraState{}, err
	}
	return c.state(), nil
}
