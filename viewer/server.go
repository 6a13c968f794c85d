package viewer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/skywatch/skywatch/accounts"
)

// ErrServerClosed is returned by Start after Close.
var ErrServerClosed = errors.New("viewer server closed")

// Deps are what the server uses but does not own.
type Deps struct {
	// Cameras gives readers of the cameras' streams and their state.
	// Required.
	Cameras CameraSource
	// Registry receives the viewer's metrics and is what /metrics serves.
	// Nil: a private registry.
	Registry *prometheus.Registry
	// Ready reports whether the whole process is ready to serve (/readyz).
	// Nil: ready once Start has returned.
	Ready func() bool
	// Alarms gives the alarm API its events, devices and live stream, and
	// makes /readyz fail while the intake cannot take alarms. Nil: the
	// alarm routes answer 503.
	Alarms AlarmSource
	// Incidents gives the incident API (incidents, operator actions, units,
	// areas) and the incident changes of /api/stream. Nil: the incident
	// routes answer 503 and the stream carries alarms only.
	Incidents IncidentSource
	// Patrol serves the patrol page's API on behalf of the logged-in unit.
	// Nil: the patrol API answers 503 (the page itself is still served).
	Patrol PatrolSource
	// CheckUnit checks a patrol unit's user name and password (as the
	// alarm config's units give them) from a client's remote address and
	// returns the unit's ID, or an error (alarms.ErrLoginThrottled and
	// alarms.ErrLoginBusy are told apart from a wrong password); the patrol
	// page's login uses it. Nil: the login answers 503.
	CheckUnit func(username, password, remote string) (unitID string, err error)
	// Accounts checks operators' logins. With it every API, WHEP and event
	// stream request needs a logged-in operator and is held to the
	// operator's role and area. Nil: no accounts, and the console and the
	// API are open to anyone who reaches the address (for tests and
	// embedding; `skywatch serve` always sets it).
	Accounts Accounts
	// Records keeps the audit log and the operators' preferences. Nil:
	// audit records only go to the log.
	Records Records
	// CameraPlaces say where cameras are: their area decides who may see
	// them. A camera without a place is seen only from the top of the tree.
	CameraPlaces []CameraPlace
	// Tokens are the API tokens of the config file: programs (video-wall
	// decoders, WHEP players) send one as Authorization: Bearer to watch
	// video and read the API. They need Accounts.
	Tokens []accounts.Token
	// TokenStore keeps the tokens admins make in the console. Nil: the
	// console cannot make tokens (configured ones still work).
	TokenStore TokenStore
	// Shared keeps the operators' sessions and login limits where every
	// node of a cluster sees them (accounts.RedisStore, the same store as
	// Records). Nil: one node; sessions live in this process (copied to
	// Records for restarts) and login limits are this process's own.
	Shared SharedLogins
	// SharedPatrol keeps the patrol page's sessions where every node of a
	// cluster sees them (accounts.RedisStore). Nil: in this process (a
	// restart logs officers out).
	SharedPatrol SharedPatrolSessions
	// Cluster shows the cluster for GET /api/cluster. Nil: one node.
	Cluster ClusterView
	// NodeStats gives this node's figures for GET /api/cluster without a
	// cluster. Nil: none.
	NodeStats func() NodeStats
	// Recordings serves recorded video and incidents' evidence clips
	// (AdaptRecorder). Nil: the playback routes answer 503.
	Recordings Recordings
	// Peers, in a cluster, tell which node pulls a camera: a WHEP request
	// for a camera another node pulls is proxied there. Nil: one node.
	Peers Peers
	// Reloader reloads the config file for POST /api/admin/reload. Nil:
	// no file to reload (the demo); the route answers 503.
	Reloader Reloader
}

// CameraPlace is a camera's area and position, from the config.
type CameraPlace struct {
	ID       string
	Area     string
	Lat, Lon float64
}

// Server serves the operator page, the REST API, WHEP, metrics and health.
type Server struct {
	cfg     Config
	deps    Deps
	logger  *slog.Logger
	metrics *metrics
	handler http.Handler

	mu       sync.Mutex
	started  bool
	closed   bool
	sessions map[string]*session
	listener net.Listener
	ice      *iceListeners
	http     *http.Server
	cancel   context.CancelFunc // of the requests' base context

	streamHeartbeat time.Duration // comment interval of /api/stream

	patrolSessions *patrolSessions
	patrols        patrolStore // patrolSessions, or the shared one in a cluster
	loginLimiter   *loginLimiter
	unitLimits     unitLimits // loginLimiter, or the shared one in a cluster

	opSessions  *opSessions
	streams     *sessionStreams // event streams by login session
	ended       *endedSessions  // WHEP sessions a configuration change ended
	opLimiter   *operatorLimiter
	limits      opLimits // opLimiter, or the shared one in a cluster
	sweepEvery  time.Duration
	startedAt   time.Time // when Start served
	auditBudget *auditBudget
	videoSlots  *videoSlots
	exportSlots *exportSlots
	tokens      *apiTokens
	// places are the cameras' places by ID; a reload swaps the map
	// whole (live.go), so readers take it with place.
	places atomic.Pointer[map[string]CameraPlace]
	// mapTile is map.tile_url, swapped by a reload.
	mapTile atomic.Pointer[string]
	// accounts is Deps.Accounts behind a switch a reload swaps; nil
	// without accounts.
	accounts *accountsSwitch
	// patrolRevoked ends the patrol sessions of units a reload changed.
	patrolRevoked *patrolRevocations
	// applyMu makes reloads apply one at a time.
	applyMu sync.Mutex
	tls     *tls.Config // nil: plain HTTP
	// cert is the TLS certificate served, which ReloadCertificate
	// replaces (a renewed certificate needs no restart).
	cert atomic.Pointer[tls.Certificate]
	// trustedProxies are http.trusted_proxies, parsed.
	trustedProxies []netip.Prefix
	sweepDone      chan struct{}

	// proxyTransport and proxyMetrics serve WHEP requests proxied to
	// other nodes; nil without Deps.Peers.
	proxyTransport *http.Transport
	proxyMetrics   *proxyMetrics

	sessionsWG sync.WaitGroup
	serveDone  chan struct{}
	closeOnce  sync.Once
}

// New builds a server; it listens only on Start.
func New(cfg Config, deps Deps, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Cameras == nil {
		return nil, errors.New("viewer: no camera source")
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:       cfg.withDefaults(),
		deps:      deps,
		logger:    logger,
		sessions:  make(map[string]*session),
		serveDone: make(chan struct{}),

		streamHeartbeat: defaultStreamHeartbeat,
		patrolSessions:  newPatrolSessions(patrolSessionTTL),
		loginLimiter:    newLoginLimiter(),
		sweepDone:       make(chan struct{}),
		streams:         newSessionStreams(),
		ended:           newEndedSessions(),
	}
	s.opSessions = newOpSessions(s.cfg.SessionIdle, s.cfg.SessionMax)
	s.opLimiter = newOperatorLimiter(bucketRule{Burst: float64(s.cfg.LoginFailures), Every: s.cfg.LoginLockout},
		defaultOperatorAddrRule, defaultAccountWideRule)
	s.limits, s.unitLimits, s.sweepEvery, s.patrols = s.opLimiter, s.loginLimiter, sessionSweep, s.patrolSessions
	if deps.SharedPatrol != nil {
		s.patrols = &sharedPatrol{st: deps.SharedPatrol, local: s.patrolSessions, failed: s.sharedFailed}
	}
	s.patrolRevoked = newPatrolRevocations(patrolSessionTTL)
	s.patrols = revokingPatrol{patrolStore: s.patrols, revoked: s.patrolRevoked}
	if deps.Shared != nil {
		if deps.Records == nil {
			return nil, errors.New("viewer: shared logins need the records store")
		}
		shared := &sharedLimiter{st: deps.Shared, pairRule: s.opLimiter.pairRule, addrRule: s.opLimiter.addrRule,
			wideRule: s.opLimiter.wideRule, unitRule: s.loginLimiter.unitRule, unitAddrRule: s.loginLimiter.addrRule,
			local: s.opLimiter, localUnits: s.loginLimiter, failed: s.sharedFailed}
		s.limits, s.unitLimits = shared, sharedUnits{shared}
		s.opSessions.persistEvery, s.opSessions.slack = sharedPersistEvery, sharedPersistEvery
		s.sweepEvery = sharedSweep
	}
	s.auditBudget = newAuditBudget(s.cfg.AuditUnauthPerAddr, s.cfg.AuditUnauthTotal)
	s.videoSlots = newVideoSlots(s.cfg.VideoSessionsPerUser, s.cfg.VideoSessionsPerAddr)
	s.exportSlots = newExportSlots(s.cfg.ExportsPerUser, s.cfg.ExportsTotal)
	s.tokens = newAPITokens(s.cfg.MaxTokens)
	for _, t := range deps.Tokens {
		t.Configured = true
		if err := s.tokens.add(t); err != nil {
			return nil, fmt.Errorf("tokens: %s: %w", t.Name, err)
		}
	}
	s.setPlaces(deps.CameraPlaces)
	s.mapTile.Store(&s.cfg.MapTileURL)
	if deps.Accounts != nil {
		s.accounts = newAccountsSwitch(deps.Accounts)
		s.deps.Accounts = s.accounts
	}
	var err error
	if s.trustedProxies, err = parseTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	if cfg.TLSCertFile != "" {
		if _, err := s.ReloadCertificate(); err != nil {
			return nil, err
		}
		s.tls = &tls.Config{MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil }}
	}
	m, err := newMetrics(deps.Registry, s.sessionCount)
	if err != nil {
		return nil, fmt.Errorf("viewer: %w", err)
	}
	s.metrics = m
	if deps.Peers != nil {
		if s.proxyMetrics, err = newProxyMetrics(deps.Registry); err != nil {
			return nil, fmt.Errorf("viewer: %w", err)
		}
		s.proxyTransport = newProxyTransport()
	}
	s.handler = s.routes()
	s.restoreSessions()
	s.loadStoredTokens()
	return s, nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whep/{camera}", s.handleWHEPOffer)
	mux.HandleFunc("OPTIONS /whep/{camera}", s.handleWHEPOptions)
	mux.HandleFunc("DELETE /whep/{camera}/{session}", s.handleWHEPDelete)
	mux.HandleFunc("GET /whep/{camera}/{session}", s.handleWHEPSession)
	mux.HandleFunc("GET /api/cameras", s.handleCameras)
	mux.HandleFunc("GET /api/cameras/{id}", s.handleCamera)
	mux.HandleFunc("POST /api/login", s.handleLogin)
	mux.HandleFunc("POST /api/logout", s.handleLogout)
	mux.HandleFunc("GET /api/me", s.handleMe)
	mux.HandleFunc("PUT /api/me/prefs", s.handlePutPrefs)
	s.auditRoutes(mux)
	s.adminRoutes(mux)
	s.reloadRoutes(mux)
	s.clusterRoutes(mux)
	s.tokenRoutes(mux)
	s.alarmRoutes(mux)
	s.incidentRoutes(mux)
	s.recordingRoutes(mux)
	s.patrolRoutes(mux)
	s.pprofRoutes(mux)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{}))
	mux.Handle("GET /", pageHandler(s.tileOrigin))
	// The trusted proxies' headers first (X-Forwarded-Proto matters to the
	// security headers), then a node's proxied request (its
	// X-Forwarded-For is believed only from a peer).
	return s.recoverPanics(s.trustedForwarded(s.securityHeaders(s.peerForwarded(s.guard(mux)))))
}

// Start listens on the HTTP and ICE addresses and serves in the
// background. A failed Start closes what it opened.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	if s.started {
		return errors.New("viewer: already started")
	}
	ln, err := net.Listen("tcp", s.cfg.HTTPAddress)
	if err != nil {
		return fmt.Errorf("http.address: %w", err)
	}
	ice, err := listenICE(s.cfg, s.logger)
	if err != nil {
		_ = ln.Close()
		return err
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	baseCtx, cancel := context.WithCancel(context.Background())
	s.listener, s.ice, s.cancel = ln, ice, cancel
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// WHEP may wait for an on-demand camera to start.
		WriteTimeout: 60 * time.Second,
		IdleTimeout:  120 * time.Second,
		// Closing the server cancels requests that wait on a camera and
		// ends event streams.
		BaseContext: func(net.Listener) context.Context { return baseCtx },
		ErrorLog:    slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
	s.started = true
	s.startedAt = time.Now()
	go s.sweepSessions(baseCtx)
	go func() {
		defer close(s.serveDone)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("http server stopped", "err", err)
		}
	}()
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	s.logger.Info("viewer listening", "http", ln.Addr().String(), "scheme", scheme,
		"webrtc_udp", fmt.Sprint(ice.udpAddrs()), "webrtc_tcp", fmt.Sprint(ice.tcpAddr))
	return nil
}

// Addr is the HTTP listener's address, nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return nil
	}
	return s.listener.Addr()
}

// Close stops serving, ends every WHEP session and waits for them. It is
// idempotent.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		started := s.started
		sessions := make([]*session, 0, len(s.sessions))
		for _, se := range s.sessions {
			sessions = append(sessions, se)
		}
		s.mu.Unlock()

		if started {
			s.cancel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if e := s.http.Shutdown(ctx); e != nil {
				err = errors.Join(err, fmt.Errorf("viewer: http shutdown: %w", e))
				_ = s.http.Close()
			}
			cancel()
			<-s.serveDone
			<-s.sweepDone
		}
		for _, se := range sessions {
			se.stop()
		}
		s.sessionsWG.Wait()
		if s.proxyTransport != nil {
			s.proxyTransport.CloseIdleConnections()
		}
		s.writeSummaries(s.auditBudget.flush(time.Now(), true))
		if started {
			if e := s.ice.close(); e != nil {
				s.logger.Debug("close ice sockets", "err", e)
			}
		}
	})
	return err
}

// addSession registers a negotiated session and starts it, unless the
// server is closing.
func (s *Server) addSession(se *session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	s.sessions[se.id] = se
	s.sessionsWG.Add(1)
	go func() {
		defer s.sessionsWG.Done()
		start := time.Now().UTC()
		se.run(context.Background(), func() {
			if code := se.endReason; code == reasonCameraRemoved || code == reasonCameraChanged {
				// Before the session leaves the table: its viewer asks
				// as soon as the picture stops.
				s.ended.add(se.id, endedSession{camera: se.camera, owner: se.owner.User.Username,
					code: code, at: time.Now()})
			}
			s.removeSession(se.id)
			if se.release != nil {
				se.release()
			}
		})
		detail := "session " + se.id
		if text := endedText(se.endReason); text != "" {
			detail += "; ended: " + text
		}
		s.auditRecord(accounts.AuditRecord{User: se.owner.User.Username, Role: string(se.owner.User.Role),
			Addr: se.owner.Addr, Action: "watch", Target: "camera:" + se.camera, Outcome: "ok",
			Start: start, End: time.Now().UTC(), Detail: detail})
	}()
	return nil
}

func (s *Server) removeSession(id string) {
	s.mu.Lock()
	delete(s.sessions, id)
	s.mu.Unlock()
}

func (s *Server) session(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

func (s *Server) sessionCount() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return float64(len(s.sessions))
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// handleReadyz answers 200 while the process can serve and, with an alarm
// source, take alarms; else 503 with the reason (the API keeps serving, so
// that operators see the details in /api/alarms/status).
func (s *Server) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	ready := s.started && !s.closed
	s.mu.Unlock()
	if ready && s.deps.Ready != nil {
		ready = s.deps.Ready()
	}
	reason := ""
	if ready && s.deps.Alarms != nil {
		reason = alarmsNotReady(s.deps.Alarms)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ready || reason != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		if reason != "" {
			reason = ": " + reason
		}
		_, _ = w.Write([]byte("not ready" + reason + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// recoverPanics turns a handler's panic into a 500 and a log line, so that
// one bad request cannot take the server down.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.logger.Error("panic in http handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
			writeError(w, http.StatusInternalServerError, "internal error")
		}()
		next.ServeHTTP(w, r)
	})
}

// securityHeaders are sent with every answer: no sniffing, no framing by
// other sites, no referrer leaking IDs, and HSTS under TLS.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if secure(r) {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// sessionSweep is how often expired operator sessions are looked for, so
// that their end is recorded and their video stopped even when the
// browser is gone.
const sessionSweep = 30 * time.Second

func (s *Server) sweepSessions(ctx context.Context) {
	defer close(s.sweepDone)
	t := time.NewTicker(s.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.syncSessions()
			for _, sess := range s.opSessions.sweep(now) {
				s.sessionEnded(sess, "session_expired")
			}
			s.sweepTokens(now)
			s.writeSummaries(s.auditBudget.flush(now, false))
		}
	}
}

// stopSessionsOf stops the video sessions a login session opened.
func (s *Server) stopSessionsOf(key string) {
	if key == "" {
		return
	}
	s.mu.Lock()
	var mine []*session
	for _, se := range s.sessions {
		if se.owner.Key == key {
			mine = append(mine, se)
		}
	}
	s.mu.Unlock()
	for _, se := range mine {
		se.stop()
	}
}
