package hardware

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"
)

// CameraConfig configures a simulated RTSP camera.
type CameraConfig struct {
	// Address is the RTSP listen address. It defaults to "127.0.0.1:0"
	// (loopback, a port chosen by the OS).
	Address string
	// Username and Password, when Username is set, make every DESCRIBE and
	// SETUP require RTSP digest authentication (MD5), as real cameras do.
	Username string
	Password string
	// UDP enables the UDP transport besides TCP (interleaved). The RTP/RTCP
	// port pair is chosen by the OS on the first Start and kept afterwards.
	// With UDP off, clients that try UDP get 461 and fall back to TCP.
	UDP bool
	// PacketSize is the largest RTP packet the camera sends, its 12-byte
	// header included; larger pictures are fragmented (FU-A). Cameras in
	// the field send packets of up to 1,460 bytes or so. It defaults to
	// 1,462 (gortsplib's 1,450-byte payload), and is at most 1,472.
	PacketSize int
	// Paths are the streams the camera serves; at least one.
	Paths []CameraPath
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// maxCameraPacket is the largest RTP packet the simulated camera can send.
const maxCameraPacket = 1472

// CameraPath is one stream of the simulated camera.
type CameraPath struct {
	// Path is the RTSP path, with an optional query, starting with "/":
	// "/cam1", "/Streaming/Channels/101", "/cam/realmonitor?channel=1&subtype=0".
	Path string
	// Clip is the embedded clip looped on this path.
	Clip Clip
	// Audio adds a G.711 µ-law (PCMU, 8 kHz, mono) track: a 1 kHz beep
	// during the first 200 ms of every clip second.
	Audio bool
	// StartFrame is the frame of the clip the path starts on (modulo the
	// clip's length), so that the paths of a camera that stands for many
	// do not all send their keyframes at the same moment. Default 0 (an
	// IDR).
	StartFrame int
}

// ProfilePaths returns the paths on which a simulated camera answers as the
// camera of a vendor profile does: its stream's path and, when the vendor
// has a sub stream (see CameraProfile.Endpoints), the sub stream's. Both
// loop clip; the embedded clips (640x360) are the size of a real camera's
// sub stream anyway. Only the profile's vendor, channel, stream and path
// matter here.
func ProfilePaths(p CameraProfile, clip Clip, audio bool) ([]CameraPath, error) {
	if p.Host == "" {
		p.Host = "127.0.0.1"
	}
	main, sub, err := p.Endpoints()
	if err != nil {
		return nil, err
	}
	paths := []CameraPath{{Path: main.PathQuery(), Clip: clip, Audio: audio}}
	if sub != nil {
		paths = append(paths, CameraPath{Path: sub.PathQuery(), Clip: clip, Audio: audio})
	}
	return paths, nil
}

// Validate checks the config; messages name the key.
func (cfg CameraConfig) Validate() error {
	if cfg.Address != "" {
		if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
			return fmt.Errorf("address %q: %w", cfg.Address, err)
		}
	}
	if cfg.Username == "" && cfg.Password != "" {
		return errors.New("username: required when a password is set")
	}
	// The RTSP server (gortsplib) marshals every packet into a buffer of
	// at most 1,472 bytes, a UDP payload, even over TCP: a larger size
	// would send no video at all.
	if cfg.PacketSize != 0 && (cfg.PacketSize < 100 || cfg.PacketSize > maxCameraPacket) {
		return fmt.Errorf("packet_size %d: out of range (100 to %d)", cfg.PacketSize, maxCameraPacket)
	}
	if len(cfg.Paths) == 0 {
		return errors.New("paths: at least one path is required")
	}
	seen := make(map[string]bool, len(cfg.Paths))
	for i, p := range cfg.Paths {
		if !strings.HasPrefix(p.Path, "/") {
			return fmt.Errorf("paths[%d].path %q: must start with /", i, p.Path)
		}
		if seen[p.Path] {
			return fmt.Errorf("paths[%d].path %q: duplicate", i, p.Path)
		}
		seen[p.Path] = true
		if err := p.Clip.valid(); err != nil {
			return fmt.Errorf("paths[%d].clip: %w", i, err)
		}
		if p.StartFrame < 0 {
			return fmt.Errorf("paths[%d].start_frame %d: must not be negative", i, p.StartFrame)
		}
	}
	return nil
}

// Camera is a simulated RTSP camera: it loops embedded H.264 clips on one
// or more paths in real time, with continuous RTP timestamps and sequence
// numbers across loops. It can be closed and started again on the same
// address, to test reconnection.
type Camera struct {
	cfg    CameraConfig
	logger *slog.Logger

	// frameInterval paces the clips; tests shorten it to cross loop
	// boundaries quickly. It defaults to 40 ms (25 fps).
	frameInterval time.Duration

	mu       sync.Mutex
	clips    map[Clip]*clipData
	addr     string // RTSP host:port, fixed by the first Start
	rtpPort  int    // UDP RTP port, fixed by the first Start; RTCP is rtpPort+1
	instance *cameraServer
}

// NewCamera returns a camera; nothing runs until Start.
func NewCamera(cfg CameraConfig) *Camera {
	cfg.Paths = append([]CameraPath(nil), cfg.Paths...)
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Camera{
		cfg:           cfg,
		logger:        logger,
		frameInterval: time.Second / clipFPS,
		clips:         make(map[Clip]*clipData),
	}
}

// Start binds the listeners and starts streaming. The first Start binds
// CameraConfig.Address; a Start after Close binds the address the first one
// got, so clients can reconnect to the same URL.
func (c *Camera) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()

	if c.instance != nil {
		return errors.New("camera: already started")
	}
	if err := c.cfg.Validate(); err != nil {
		return fmt.Errorf("camera: %w", err)
	}
	for _, p := range c.cfg.Paths {
		if c.clips[p.Clip] != nil {
			continue
		}
		d, err := loadClip(p.Clip)
		if err != nil {
			return fmt.Errorf("camera: %w", err)
		}
		c.clips[p.Clip] = d
	}

	addr := c.addr
	if addr == "" {
		addr = c.cfg.Address
	}
	s, err := startCameraServer(cameraServerConfig{
		address:       addr,
		udp:           c.cfg.UDP,
		packetSize:    c.cfg.PacketSize,
		rtpPort:       c.rtpPort,
		username:      c.cfg.Username,
		password:      c.cfg.Password,
		paths:         c.cfg.Paths,
		clips:         c.clips,
		frameInterval: c.frameInterval,
		logger:        c.logger,
	})
	if err != nil {
		return fmt.Errorf("camera: start: %w", err)
	}
	c.instance = s
	c.addr = s.addr
	c.rtpPort = s.rtpPort
	c.logger.Info("simulated camera started", "address", c.addr, "paths", len(c.cfg.Paths), "udp", c.cfg.UDP)
	return nil
}

// Addr returns the RTSP listener's host:port, or "" before the first Start.
func (c *Camera) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addr
}

// URL returns rtsp://host:port/path for one of the camera's paths, without
// credentials. An unspecified listen host is reported as 127.0.0.1.
func (c *Camera) URL(path string) string {
	host, port, err := net.SplitHostPort(c.Addr())
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	p, query, _ := strings.Cut(path, "?")
	u := url.URL{Scheme: "rtsp", Host: net.JoinHostPort(host, port), Path: p, RawQuery: query}
	return u.String()
}

// Sessions returns how many RTSP sessions are playing path now.
func (c *Camera) Sessions(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.instance == nil {
		return 0
	}
	return c.instance.sessions(path)
}

// PlayCount returns how many RTSP sessions have started playing path since
// the last Start: a client that kept its session adds nothing.
func (c *Camera) PlayCount(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.instance == nil {
		return 0
	}
	return c.instance.playCount(path)
}

// TotalSessions returns how many RTSP sessions are playing any path now.
func (c *Camera) TotalSessions() int {
	return c.Sessions("")
}

// Close disconnects every client, stops streaming and releases the ports.
// It is idempotent; Start may be called again afterwards.
func (c *Camera) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.instance == nil {
		return
	}
	c.instance.close()
	c.instance = nil
	c.logger.Info("simulated camera stopped", "address", c.addr)
}
