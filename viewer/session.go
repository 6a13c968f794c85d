package viewer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/skywatch/skywatch/ingest"
)

// connectTimeout bounds how long a session waits for its viewer to complete
// ICE and DTLS after the answer was sent.
const connectTimeout = 30 * time.Second

// negotiationError is an offer that pion could not accept: the viewer's
// fault, answered with 400.
type negotiationError struct{ err error }

func (e *negotiationError) Error() string { return "negotiation: " + e.err.Error() }
func (e *negotiationError) Unwrap() error { return e.err }

// session is one WHEP viewer of one camera: a peer connection fed by one
// MediaReader. Its run goroutine owns the reader and the writers; it ends on
// DELETE (cancel), when ICE fails or the connection closes, when the stream
// ends, and on server Close.
type session struct {
	id     string
	camera string
	// owner is who opened it: the login session that ends it and the
	// operator the audit log names.
	owner principal
	// release gives back the video slot the session holds; called once,
	// when it has ended.
	release func()
	logger  *slog.Logger
	m       *metrics

	pc      *webrtc.PeerConnection
	reader  MediaReader
	writers []*trackWriter // by track index; nil for tracks not sent
	senders []*webrtc.RTPSender

	connected chan struct{}
	once      sync.Once
	iceFailed atomic.Bool // set by pion's callback
	done      chan struct{}

	mu      sync.Mutex
	stopped bool
	cancel  context.CancelFunc // of run's context, once running

	// endReason is why run ended (a reason of
	// skywatch_viewer_session_errors_total, or "closed"); set by run
	// before its onEnd.
	endReason string
}

// newSession negotiates with the viewer's offer and returns the session
// (not yet running) and its answer. It takes ownership of reader: on error
// the reader is closed.
func newSession(ctx context.Context, settings webrtc.SettingEngine, id, camera string,
	offerSDP string, o offer, reader MediaReader, m *metrics, logger *slog.Logger,
) (_ *session, answer string, err error) {
	tracks := reader.Tracks()
	choices, err := chooseCodecs(tracks, o)
	if err != nil {
		reader.Close()
		return nil, "", err
	}
	api, err := newSessionAPI(settings, choices)
	if err != nil {
		reader.Close()
		return nil, "", fmt.Errorf("camera %s: webrtc api: %w", camera, err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		reader.Close()
		return nil, "", fmt.Errorf("camera %s: peer connection: %w", camera, err)
	}
	s := &session{
		id:        id,
		camera:    camera,
		logger:    logger.With("camera", camera, "session", id),
		m:         m,
		pc:        pc,
		reader:    reader,
		writers:   make([]*trackWriter, len(tracks)),
		connected: make(chan struct{}),
		done:      make(chan struct{}),
	}
	defer func() {
		if err != nil {
			_ = pc.Close()
			reader.Close()
		}
	}()

	for _, c := range choices {
		kind := "video"
		if c.kind == webrtc.RTPCodecTypeAudio {
			kind = "audio"
		}
		track, err := webrtc.NewTrackLocalStaticRTP(c.params.RTPCodecCapability, kind, "skywatch-"+camera)
		if err != nil {
			return nil, "", fmt.Errorf("camera %s: %s track: %w", camera, kind, err)
		}
		sender, err := pc.AddTrack(track)
		if err != nil {
			return nil, "", fmt.Errorf("camera %s: add %s track: %w", camera, kind, err)
		}
		s.senders = append(s.senders, sender)
		s.writers[c.track] = newTrackWriter(track, tracks[c.track].ClockRate)
	}

	pc.OnConnectionStateChange(s.onConnectionState)

	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		return nil, "", &negotiationError{err}
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return nil, "", &negotiationError{err}
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return nil, "", fmt.Errorf("camera %s: set local description: %w", camera, err)
	}
	// Non-trickle: the answer carries every candidate. Gathering is local
	// (no STUN), so it is quick.
	select {
	case <-gathered:
	case <-ctx.Done():
		return nil, "", fmt.Errorf("camera %s: gathering candidates: %w", camera, ctx.Err())
	}
	return s, pc.LocalDescription().SDP, nil
}

// newSessionAPI builds a pion API whose media engine holds exactly the
// codecs agreed for this session, on the server's shared settings (and so
// its shared ICE sockets).
func newSessionAPI(settings webrtc.SettingEngine, choices []codecChoice) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	for _, c := range choices {
		if err := me.RegisterCodec(c.params, c.kind); err != nil {
			return nil, fmt.Errorf("register %s: %w", c.params.MimeType, err)
		}
	}
	ir := &interceptor.Registry{}
	if err := configureSendInterceptors(me, ir); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(
		webrtc.WithSettingEngine(settings),
		webrtc.WithMediaEngine(me),
		webrtc.WithInterceptorRegistry(ir),
	), nil
}

func (s *session) onConnectionState(state webrtc.PeerConnectionState) {
	s.logger.Debug("connection state", "state", state.String())
	switch state {
	case webrtc.PeerConnectionStateConnected:
		s.once.Do(func() { close(s.connected) })
	case webrtc.PeerConnectionStateFailed:
		s.iceFailed.Store(true)
		s.stop()
	case webrtc.PeerConnectionStateClosed:
		s.stop()
	}
}

// stop asks the session to end; it may come before run started.
func (s *session) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.cancel != nil {
		s.cancel()
	}
}

// run sends the camera's units to the viewer until the session ends, then
// releases everything. onEnd is called last, before done closes; endReason
// is set by then.
func (s *session) run(ctx context.Context, onEnd func()) {
	defer close(s.done)
	defer onEnd()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.cancel = cancel
	if s.stopped {
		cancel()
	}
	s.mu.Unlock()

	var rtcpReaders sync.WaitGroup
	for _, sender := range s.senders {
		rtcpReaders.Add(1)
		go func() {
			defer rtcpReaders.Done()
			s.readRTCP(sender)
		}()
	}

	started := time.Now()
	reason, sent := s.stream(ctx)
	if s.iceFailed.Load() {
		reason = reasonICEFailed
	}
	s.reader.Close()
	if err := s.pc.Close(); err != nil {
		s.logger.Debug("close peer connection", "err", err)
	}
	rtcpReaders.Wait() // they end when the peer connection is closed

	s.endReason = reason
	attrs := []any{"reason", reason, "packets", sent, "duration", time.Since(started).Round(time.Millisecond)}
	switch reason {
	case "closed":
		s.logger.Info("viewer left", attrs...)
	case reasonCameraRemoved, reasonCameraChanged:
		// A reload did it, not a fault: the viewer is told why (whep.go).
		s.m.sessionErrors.WithLabelValues(reason).Inc()
		s.logger.Info("viewer session ended by a configuration change", attrs...)
	default:
		s.m.sessionErrors.WithLabelValues(reason).Inc()
		s.logger.Warn("viewer session ended", attrs...)
	}
}

// stream waits for the connection, then copies units until ctx ends or the
// reader fails. It returns why it stopped and how many packets it sent.
func (s *session) stream(ctx context.Context) (reason string, sent uint64) {
	timer := time.NewTimer(connectTimeout)
	defer timer.Stop()
	// Packets written before DTLS completes would be dropped by pion, so
	// the first unit sent is the keyframe group the reader starts with.
	select {
	case <-s.connected:
	case <-ctx.Done():
		return "closed", 0
	case <-timer.C:
		return reasonConnectTimeout, 0
	}
	s.logger.Info("viewer connected", "srtp", srtpCipher(s.pc))
	now := time.Now()
	live := newAudioStart(s.reader.Tracks(), now)
	if live.sends(s.writers) {
		for _, w := range s.writers {
			if w != nil {
				w.startLive(now)
			}
		}
	}

	var writeErrs uint64
	defer func() {
		if writeErrs > 0 {
			s.logger.Debug("rtp write errors", "count", writeErrs)
		}
	}()
	for {
		u, err := s.reader.Read(ctx)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return "closed", sent
			case errors.Is(err, ingest.ErrCameraRemoved):
				return reasonCameraRemoved, sent
			case errors.Is(err, ingest.ErrCameraChanged):
				return reasonCameraChanged, sent
			}
			if !errors.Is(err, ingest.ErrReaderClosed) {
				s.logger.Warn("read camera stream", "err", err)
			}
			return reasonStreamEnded, sent
		}
		if u.Track < 0 || u.Track >= len(s.writers) || s.writers[u.Track] == nil || live.stale(u) {
			continue
		}
		n, err := s.writers[u.Track].writeUnit(u, time.Now())
		sent += uint64(n)
		s.m.packetsSent.Add(float64(n))
		if err != nil {
			failed := len(u.Packets) - n
			writeErrs += uint64(failed)
			s.m.writeErrors.Add(float64(failed))
		}
	}
}

// readRTCP drains a sender's RTCP so that the NACK and report interceptors
// work, and counts the viewer's keyframe requests.
func (s *session) readRTCP(sender *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				s.m.keyframeReqs.Inc()
			}
		}
	}
}
