package hardware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/auth"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
)

type cameraServerConfig struct {
	address       string
	udp           bool
	packetSize    int // 0: gortsplib's default
	rtpPort       int // 0: let the OS choose a free even/odd pair
	username      string
	password      string
	paths         []CameraPath
	clips         map[Clip]*clipData
	frameInterval time.Duration
	logger        *slog.Logger
}

// cameraServer is one started run of a Camera: the gortsplib server, one
// stream and one feeder goroutine per path. Close and Start of a Camera
// replace it whole.
type cameraServer struct {
	cfg     cameraServerConfig
	addr    string
	rtpPort int
	server  *gortsplib.Server

	ctxCancel context.CancelFunc
	wg        sync.WaitGroup

	// mu guards streams and playing. It is held for writing until every
	// stream exists, so requests that arrive early wait instead of failing.
	mu      sync.RWMutex
	streams map[string]*gortsplib.ServerStream
	playing map[*gortsplib.ServerSession]string
	plays   map[string]int // sessions that started playing, by path
}

var (
	_ gortsplib.ServerHandlerOnDescribe     = (*cameraServer)(nil)
	_ gortsplib.ServerHandlerOnSetup        = (*cameraServer)(nil)
	_ gortsplib.ServerHandlerOnPlay         = (*cameraServer)(nil)
	_ gortsplib.ServerHandlerOnSessionClose = (*cameraServer)(nil)
)

func startCameraServer(cfg cameraServerConfig) (*cameraServer, error) {
	s := &cameraServer{
		cfg:     cfg,
		streams: make(map[string]*gortsplib.ServerStream),
		playing: make(map[*gortsplib.ServerSession]string),
		plays:   make(map[string]int),
	}

	ln, err := net.Listen("tcp", cfg.address)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.address, err)
	}
	s.addr = ln.Addr().String()
	if host, _, err := net.SplitHostPort(cfg.address); err == nil && host == "" {
		// Keep an unspecified host unspecified rather than "[::]".
		_, port, _ := net.SplitHostPort(s.addr)
		s.addr = net.JoinHostPort("", port)
	}

	var rtpConn, rtcpConn net.PacketConn
	if cfg.udp {
		host, _, _ := net.SplitHostPort(cfg.address)
		rtpConn, rtcpConn, err = listenUDPPair(host, cfg.rtpPort)
		if err != nil {
			ln.Close()
			return nil, err
		}
		s.rtpPort = rtpConn.LocalAddr().(*net.UDPAddr).Port
	}

	s.server = &gortsplib.Server{
		Handler:     s,
		RTSPAddress: s.addr,
		// Real cameras ask for digest; basic would send the password in clear.
		AuthMethods: []auth.VerifyMethod{auth.VerifyMethodDigestMD5},
		// Hand the sockets bound above to gortsplib, so that the ports are
		// known before Start and no other process can take them in between.
		Listen: func(string, string) (net.Listener, error) {
			return ln, nil
		},
	}
	if cfg.udp {
		rtpAddr := rtpConn.LocalAddr().String()
		rtcpAddr := rtcpConn.LocalAddr().String()
		s.server.UDPRTPAddress = rtpAddr
		s.server.UDPRTCPAddress = rtcpAddr
		s.server.ListenPacket = func(_, address string) (net.PacketConn, error) {
			switch address {
			case rtpAddr:
				return rtpConn, nil
			case rtcpAddr:
				return rtcpConn, nil
			}
			return nil, fmt.Errorf("unexpected udp listen on %s", address)
		}
	}

	// Hold the lock until the streams exist; see cameraServer.mu.
	s.mu.Lock()
	if err := s.server.Start(); err != nil {
		s.mu.Unlock()
		ln.Close()
		if rtpConn != nil {
			rtpConn.Close()
			rtcpConn.Close()
		}
		return nil, fmt.Errorf("rtsp server: %w", err)
	}

	feeders := make([]*pathFeeder, 0, len(cfg.paths))
	for _, p := range cfg.paths {
		f, err := newPathFeeder(s.server, p, cfg.clips[p.Clip], cfg.frameInterval, cfg.packetSize, cfg.logger)
		if err != nil {
			for _, st := range s.streams {
				st.Close()
			}
			s.mu.Unlock()
			s.server.Close()
			return nil, fmt.Errorf("path %s: %w", p.Path, err)
		}
		s.streams[p.Path] = f.stream
		feeders = append(feeders, f)
	}
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	s.ctxCancel = cancel
	for _, f := range feeders {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			f.run(ctx)
		}()
	}
	return s, nil
}

// listenUDPPair binds an RTP port and the RTCP port after it, as gortsplib
// requires (RTP even, RTCP = RTP+1). With rtpPort 0 it asks the OS for a
// free port until it gets an even one whose successor is free too.
func listenUDPPair(host string, rtpPort int) (net.PacketConn, net.PacketConn, error) {
	listen := func(port int) (net.PacketConn, error) {
		return net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
	}
	if rtpPort != 0 {
		rtp, err := listen(rtpPort)
		if err != nil {
			return nil, nil, fmt.Errorf("udp rtp: %w", err)
		}
		rtcp, err := listen(rtpPort + 1)
		if err != nil {
			rtp.Close()
			return nil, nil, fmt.Errorf("udp rtcp: %w", err)
		}
		return rtp, rtcp, nil
	}

	const attempts = 50
	for range attempts {
		rtp, err := listen(0)
		if err != nil {
			return nil, nil, fmt.Errorf("udp rtp: %w", err)
		}
		port := rtp.LocalAddr().(*net.UDPAddr).Port
		if port%2 != 0 || port == 65535 {
			rtp.Close()
			continue
		}
		rtcp, err := listen(port + 1)
		if err != nil {
			rtp.Close()
			continue
		}
		return rtp, rtcp, nil
	}
	return nil, nil, fmt.Errorf("udp: no free even/odd port pair after %d attempts", attempts)
}

func (s *cameraServer) close() {
	s.ctxCancel()
	s.wg.Wait()

	s.mu.RLock()
	streams := s.streams
	s.mu.RUnlock()
	// Closing a stream closes its readers' sessions; OnSessionClose takes
	// s.mu, so it must not be held here.
	for _, st := range streams {
		st.Close()
	}
	s.server.Close()
}

// sessions counts the sessions playing path, or all of them if path is "".
func (s *cameraServer) sessions(path string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if path == "" {
		return len(s.playing)
	}
	n := 0
	for _, p := range s.playing {
		if p == path {
			n++
		}
	}
	return n
}

// playCount counts the sessions that started playing path.
func (s *cameraServer) playCount(path string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.plays[path]
}

// authorize checks credentials on DESCRIBE and SETUP. A missing or wrong
// password gets 401; gortsplib adds the digest challenge.
func (s *cameraServer) authorize(conn *gortsplib.ServerConn, req *base.Request) error {
	if s.cfg.username == "" || conn.VerifyCredentials(req, s.cfg.username, s.cfg.password) {
		return nil
	}
	return liberrors.ErrServerAuth{}
}

// lookup finds the stream of a request's path and query.
func (s *cameraServer) lookup(path, query string) *gortsplib.ServerStream {
	key := path
	if query != "" {
		key += "?" + query
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.streams[key]
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (s *cameraServer) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if err := s.authorize(ctx.Conn, ctx.Request); err != nil {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, err
	}
	st := s.lookup(ctx.Path, ctx.Query)
	if st == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (s *cameraServer) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if err := s.authorize(ctx.Conn, ctx.Request); err != nil {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, err
	}
	st := s.lookup(ctx.Path, ctx.Query)
	if st == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (s *cameraServer) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	stream := ctx.Session.SetuppedStream()
	s.mu.Lock()
	defer s.mu.Unlock()
	for path, st := range s.streams {
		if st == stream {
			s.playing[ctx.Session] = path
			s.plays[path]++
			s.cfg.logger.Debug("camera session playing", "path", path, "remote", ctx.Conn.NetConn().RemoteAddr().String())
			return &base.Response{StatusCode: base.StatusOK}, nil
		}
	}
	return &base.Response{StatusCode: base.StatusBadRequest}, errors.New("play: no stream set up")
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose.
func (s *cameraServer) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if path, ok := s.playing[ctx.Session]; ok {
		delete(s.playing, ctx.Session)
		s.cfg.logger.Debug("camera session closed", "path", path)
	}
}

// newStreamDescription announces H.264 (with SPS/PPS in sprop-parameter-sets)
// and, if asked, G.711 µ-law audio.
func newStreamDescription(clip *clipData, audio bool) *description.Session {
	desc := &description.Session{
		Medias: []*description.Media{{
			Type: description.MediaTypeVideo,
			Formats: []format.Format{&format.H264{
				PayloadTyp:        96,
				PacketizationMode: 1,
				SPS:               clip.sps,
				PPS:               clip.pps,
			}},
		}},
	}
	if audio {
		desc.Medias = append(desc.Medias, &description.Media{
			Type: description.MediaTypeAudio,
			Formats: []format.Format{&format.G711{
				PayloadTyp:   0,
				MULaw:        true,
				SampleRate:   toneSampleRate,
				ChannelCount: 1,
			}},
		})
	}
	return desc
}
