package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
)

// Manager owns every configured camera: its source, its stream and its
// readers. It is the package's entry point; its methods are safe for
// concurrent use.
type Manager struct {
	cfg     Config
	logger  *slog.Logger
	sources map[string]*source
	ids     []string // sorted

	wg        sync.WaitGroup // runs of every source
	closeOnce sync.Once
}

// NewManager builds a manager for a validated configuration (see
// Config.Validate). Nothing is pulled until Start or AddReader.
func NewManager(cfg Config, logger *slog.Logger) *Manager {
	cfg.Cameras = slices.Clone(cfg.Cameras)
	cfg.setDefaults()
	m := &Manager{
		cfg:     cfg,
		logger:  logger,
		sources: make(map[string]*source, len(cfg.Cameras)),
	}
	for _, cc := range cfg.Cameras {
		m.sources[cc.ID] = newSource(cc, &m.cfg, logger, &m.wg)
		m.ids = append(m.ids, cc.ID)
	}
	slices.Sort(m.ids)
	return m
}

// Start starts pulling the cameras whose mode is "always".
func (m *Manager) Start() {
	for _, id := range m.ids {
		if s := m.sources[id]; !s.onDemand() {
			s.start()
		}
	}
}

// Close stops every camera, closes every reader (their Read returns
// ErrReaderClosed) and waits for the manager's goroutines. It is idempotent.
func (m *Manager) Close() {
	m.closeOnce.Do(func() {
		for _, id := range m.ids {
			m.sources[id].close()
		}
	})
	m.wg.Wait()
}

// AddReader adds a reader to a camera. An on-demand camera that is not
// pulled starts, and AddReader waits (at most ReadyTimeout, and while ctx
// lasts) until its tracks and parameter sets are known. It returns an error
// wrapping ErrUnknownCamera for an unknown id, and an *UnavailableError when
// the camera is retrying after a failure (at once) or is not ready in time.
func (m *Manager) AddReader(ctx context.Context, cameraID string) (*Reader, error) {
	s, ok := m.sources[cameraID]
	if !ok {
		return nil, fmt.Errorf("camera %q: %w", cameraID, ErrUnknownCamera)
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
			return nil, &UnavailableError{State: s.state()}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			s.release()
			return nil, &UnavailableError{State: s.state(), Err: ctx.Err()}
		}
	}
}

// Cameras returns the state of every camera, sorted by ID.
func (m *Manager) Cameras() []CameraState {
	out := make([]CameraState, 0, len(m.ids))
	for _, id := range m.ids {
		out = append(out, m.sources[id].state())
	}
	return out
}

// Camera returns one camera's state, or an error wrapping ErrUnknownCamera.
func (m *Manager) Camera(id string) (CameraState, error) {
	s, ok := m.sources[id]
	if !ok {
		return CameraState{}, fmt.Errorf("camera %q: %w", id, ErrUnknownCamera)
	}
	return s.state(), nil
}
