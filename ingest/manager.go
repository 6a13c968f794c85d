package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Manager owns every configured camera: the sources of its main and sub
// streams, their streams and their readers. It is the package's entry point;
// its methods are safe for concurrent use.
type Manager struct {
	cfg     Config
	logger  *slog.Logger
	cameras map[string]*camera
	ids     []string // sorted

	wg        sync.WaitGroup // runs of every source, and claimLoop
	closeOnce sync.Once

	// gate, when set (UseGate), grants this node the cameras it may pull.
	gate      Gate
	gateRetry time.Duration
	rebalance chan struct{}
	stopClaim context.CancelFunc // of claimLoop, once started
}

// camera is one configured camera: its main stream's source, and its sub
// stream's when it has one.
type camera struct {
	id, name string
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
		cameras:   make(map[string]*camera, len(cfg.Cameras)),
		rebalance: make(chan struct{}, 1),
	}
	for _, cc := range cfg.Cameras {
		c := &camera{
			id:   cc.ID,
			name: cc.Name,
			main: newSource(cc, streamMain, cc.URL, &m.cfg, logger, &m.wg),
		}
		if cc.SubURL != "" {
			c.sub = newSource(cc, streamSub, cc.SubURL, &m.cfg, logger, &m.wg)
		}
		m.cameras[cc.ID] = c
		m.ids = append(m.ids, cc.ID)
	}
	slices.Sort(m.ids)
	return m
}

// Start starts pulling the cameras whose mode is "always": their main and
// their sub streams. With a Gate it starts claiming their leases instead,
// and pulls those it gets.
func (m *Manager) Start() {
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
	for _, id := range m.ids {
		for _, s := range m.cameras[id].sources() {
			if !s.onDemand() {
				s.start()
			}
		}
	}
}

// Close stops every camera, closes every reader (their Read returns
// ErrReaderClosed) and waits for the manager's goroutines. It is idempotent.
func (m *Manager) Close() {
	m.closeOnce.Do(func() {
		if m.stopClaim != nil {
			m.stopClaim()
		}
		for _, id := range m.ids {
			for _, s := range m.cameras[id].sources() {
				s.close()
			}
		}
	})
	m.wg.Wait()
}

// AddReader adds a reader of a camera's main stream. An on-demand camera
// that is not pulled starts, and AddReader waits (at most ReadyTimeout, and
// while ctx lasts) until its tracks and parameter sets are known. It returns
// an error wrapping ErrUnknownCamera for an unknown id, and an
// *UnavailableError when the camera is retrying after a failure (at once)
// or is not ready in time.
func (m *Manager) AddReader(ctx context.Context, cameraID string) (*Reader, error) {
	c, ok := m.cameras[cameraID]
	if !ok {
		return nil, fmt.Errorf("camera %q: %w", cameraID, ErrUnknownCamera)
	}
	return m.addReader(ctx, c, c.main)
}

// AddSubReader adds a reader of a camera's sub stream, which is pulled on
// its own (one RTSP session however many readers), as AddReader does for
// the main stream. It returns an error wrapping ErrNoSubStream when the
// camera has no sub stream, so that the caller can fall back to AddReader;
// other errors are AddReader's, with UnavailableError.Sub set.
func (m *Manager) AddSubReader(ctx context.Context, cameraID string) (*Reader, error) {
	c, ok := m.cameras[cameraID]
	if !ok {
		return nil, fmt.Errorf("camera %q: %w", cameraID, ErrUnknownCamera)
	}
	if c.sub == nil {
		return nil, fmt.Errorf("camera %q: %w", cameraID, ErrNoSubStream)
	}
	return m.addReader(ctx, c, c.sub)
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
func (m *Manager) Hold(cameraID string, sub bool, until time.Time) error {
	c, ok := m.cameras[cameraID]
	if !ok {
		return fmt.Errorf("camera %q: %w", cameraID, ErrUnknownCamera)
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
		case closed:
			s.release()
			return nil, ErrManagerClosed
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
	out := make([]CameraState, 0, len(m.ids))
	for _, id := range m.ids {
		out = append(out, m.cameras[id].state())
	}
	return out
}

// Camera returns one camera's state, or an error wrapping ErrUnknownCamera.
func (m *Manager) Camera(id string) (CameraState, error) {
	c, ok := m.cameras[id]
	if !ok {
		return CameraState{}, fmt.Errorf("camera %q: %w", id, ErrUnknownCamera)
	}
	return c.state(), nil
}
