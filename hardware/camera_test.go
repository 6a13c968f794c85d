package hardware

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
	"go.uber.org/goleak"
)

// verifyNoLeaks checks for leaked goroutines after the test's other
// cleanups (cleanups run last-registered first), so call it first.
func verifyNoLeaks(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// failAfter bounds every wait; it is a failure bound, not a speed check.
const failAfter = 20 * time.Second

func startCamera(t *testing.T, cfg CameraConfig, frameInterval time.Duration) *Camera {
	t.Helper()
	cam := NewCamera(cfg)
	if frameInterval != 0 {
		cam.frameInterval = frameInterval
	}
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	return cam
}

// player is a gortsplib client playing one camera path.
type player struct {
	client *gortsplib.Client
	desc   *description.Session
}

func dial(camURL, user, pass string, transport *gortsplib.Transport) (*player, error) {
	u0, err := url.Parse(camURL)
	if err != nil {
		return nil, err
	}
	if user != "" {
		u0.User = url.UserPassword(user, pass)
	}
	u, err := base.ParseURL(u0.String())
	if err != nil {
		return nil, err
	}
	p := &player{client: &gortsplib.Client{
		Scheme:    u.Scheme,
		Host:      u.Host,
		Transport: transport,
	}}
	if err := p.client.Start2(); err != nil {
		return nil, err
	}
	p.desc, _, err = p.client.Describe(u)
	if err != nil {
		p.client.Close()
		return nil, err
	}
	if err := p.client.SetupAll(p.desc.BaseURL, p.desc.Medias); err != nil {
		p.client.Close()
		return nil, err
	}
	return p, nil
}

func (p *player) play(t *testing.T) {
	t.Helper()
	if _, err := p.client.Play(nil); err != nil {
		t.Fatal(err)
	}
}

func transportPtr(tr gortsplib.Transport) *gortsplib.Transport { return &tr }

// waitFor polls cond until it holds or failAfter passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// videoCheck verifies the H.264 packets of one path: continuous sequence
// numbers, one timestamp step per access unit, an IDR every GOP.
type videoCheck struct {
	gop int
	dec *rtph264.Decoder

	mu       sync.Mutex
	err      error
	packets  int
	aus      int
	idrs     int
	lastSeq  uint16
	lastTS   uint32
	lastIDR  int // access unit index of the last IDR, -1 before the first
	auDone   chan struct{}
	wantAUs  int
	signaled bool
}

func newVideoCheck(t *testing.T, forma *format.H264, gop, wantAUs int) *videoCheck {
	dec, err := forma.CreateDecoder()
	if err != nil {
		t.Fatal(err)
	}
	return &videoCheck{gop: gop, dec: dec, lastIDR: -1, auDone: make(chan struct{}), wantAUs: wantAUs}
}

func (v *videoCheck) fail(msg string, args ...any) {
	if v.err == nil {
		v.err = fmt.Errorf(msg, args...)
	}
}

func (v *videoCheck) onPacket(pkt *rtp.Packet) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.packets > 0 && pkt.SequenceNumber != v.lastSeq+1 {
		v.fail("packet %d: sequence number %d after %d", v.packets, pkt.SequenceNumber, v.lastSeq)
	}
	v.lastSeq = pkt.SequenceNumber
	v.packets++

	au, err := v.dec.Decode(pkt)
	if err != nil {
		if !errors.Is(err, rtph264.ErrMorePacketsNeeded) && !errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) {
			v.fail("decode: %v", err)
		}
		return
	}
	if v.aus > 0 && pkt.Timestamp-v.lastTS != clipFrameTicks {
		v.fail("access unit %d: timestamp step %d, want %d", v.aus, pkt.Timestamp-v.lastTS, clipFrameTicks)
	}
	v.lastTS = pkt.Timestamp
	if h264.IsRandomAccess(au) {
		if v.lastIDR >= 0 && v.aus-v.lastIDR != v.gop {
			v.fail("IDR at access unit %d, %d after the previous one, want %d", v.aus, v.aus-v.lastIDR, v.gop)
		}
		v.lastIDR = v.aus
		v.idrs++
	}
	v.aus++
	if v.aus >= v.wantAUs && !v.signaled {
		v.signaled = true
		close(v.auDone)
	}
}

func (v *videoCheck) wait(t *testing.T) {
	t.Helper()
	select {
	case <-v.auDone:
	case <-time.After(failAfter):
		v.mu.Lock()
		defer v.mu.Unlock()
		t.Fatalf("received %d access units, want %d", v.aus, v.wantAUs)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.err != nil {
		t.Fatal(v.err)
	}
}

func TestCameraPlayLoopsContinuously(t *testing.T) {
	verifyNoLeaks(t)

	cam := startCamera(t, CameraConfig{
		Paths: []CameraPath{{Path: "/cam1", Clip: ClipGOP1s, Audio: true}},
	}, 4*time.Millisecond)

	p, err := dial(cam.URL("/cam1"), "", "", transportPtr(gortsplib.TransportTCP))
	if err != nil {
		t.Fatal(err)
	}
	defer p.client.Close()

	var forma *format.H264
	videoMedia := p.desc.FindFormat(&forma)
	if videoMedia == nil {
		t.Fatal("no H.264 in the SDP")
	}
	if len(forma.SPS) == 0 || len(forma.PPS) == 0 {
		t.Fatal("SPS/PPS missing from the SDP")
	}
	var g711 *format.G711
	audioMedia := p.desc.FindFormat(&g711)
	if audioMedia == nil || !g711.MULaw || g711.SampleRate != 8000 || g711.ChannelCount != 1 {
		t.Fatalf("want a PCMU 8 kHz mono track, got %+v", g711)
	}

	// More than one 300-frame loop, so the loop boundary is crossed.
	video := newVideoCheck(t, forma, 25, 2*300+10)
	p.client.OnPacketRTP(videoMedia, forma, video.onPacket)

	var audioMu sync.Mutex
	var audioErr error
	audioPackets, beeps := 0, 0
	var lastAudioTS uint32
	p.client.OnPacketRTP(audioMedia, g711, func(pkt *rtp.Packet) {
		audioMu.Lock()
		defer audioMu.Unlock()
		if len(pkt.Payload) != toneSamplesPerFrame && audioErr == nil {
			audioErr = errors.New("audio packet of unexpected size")
		}
		if audioPackets > 0 && pkt.Timestamp-lastAudioTS != toneSamplesPerFrame && audioErr == nil {
			audioErr = errors.New("audio timestamps not continuous")
		}
		if !bytes.Equal(pkt.Payload, bytes.Repeat([]byte{0xff}, len(pkt.Payload))) { // 0xff is µ-law silence
			beeps++
		}
		lastAudioTS = pkt.Timestamp
		audioPackets++
	})

	p.play(t)
	video.wait(t)
	if cam.Sessions("/cam1") != 1 {
		t.Fatalf("Sessions(/cam1) = %d, want 1", cam.Sessions("/cam1"))
	}

	p.client.Close()
	audioMu.Lock()
	defer audioMu.Unlock()
	if audioErr != nil {
		t.Fatal(audioErr)
	}
	if audioPackets < 100 || beeps == 0 || beeps == audioPackets {
		t.Fatalf("audio: %d packets, %d with tone; want beeps and silence", audioPackets, beeps)
	}
}

func TestCameraGOP4s(t *testing.T) {
	verifyNoLeaks(t)

	cam := startCamera(t, CameraConfig{
		Paths: []CameraPath{{Path: "/Streaming/Channels/101", Clip: ClipGOP4s}},
	}, 4*time.Millisecond)

	p, err := dial(cam.URL("/Streaming/Channels/101"), "", "", transportPtr(gortsplib.TransportTCP))
	if err != nil {
		t.Fatal(err)
	}
	defer p.client.Close()
	var forma *format.H264
	medi := p.desc.FindFormat(&forma)
	if medi == nil || len(p.desc.Medias) != 1 {
		t.Fatalf("want one H.264 track, got %d medias", len(p.desc.Medias))
	}
	video := newVideoCheck(t, forma, 100, 350)
	p.client.OnPacketRTP(medi, forma, video.onPacket)
	p.play(t)
	video.wait(t)
	if video.idrs < 3 {
		t.Fatalf("saw %d IDRs in %d access units", video.idrs, video.aus)
	}
}

func TestCameraUDP(t *testing.T) {
	verifyNoLeaks(t)

	cam := startCamera(t, CameraConfig{
		UDP:   true,
		Paths: []CameraPath{{Path: "/cam1", Clip: ClipGOP1s}},
	}, 0)

	p, err := dial(cam.URL("/cam1"), "", "", transportPtr(gortsplib.TransportUDP))
	if err != nil {
		t.Fatal(err)
	}
	defer p.client.Close()
	var forma *format.H264
	medi := p.desc.FindFormat(&forma)
	got := make(chan struct{})
	var once sync.Once
	n := 0
	p.client.OnPacketRTP(medi, forma, func(*rtp.Packet) {
		n++ // only the client's UDP reader goroutine calls this
		if n == 20 {
			once.Do(func() { close(got) })
		}
	})
	p.play(t)
	select {
	case <-got:
	case <-time.After(failAfter):
		t.Fatal("no RTP over UDP")
	}
}

func TestCameraTCPOnlyFallback(t *testing.T) {
	verifyNoLeaks(t)

	cam := startCamera(t, CameraConfig{
		Paths: []CameraPath{{Path: "/cam1", Clip: ClipGOP1s}},
	}, 0)

	// No transport forced: the client tries UDP, gets 461 and uses TCP.
	p, err := dial(cam.URL("/cam1"), "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.client.Close()
	var forma *format.H264
	medi := p.desc.FindFormat(&forma)
	video := newVideoCheck(t, forma, 25, 5)
	p.client.OnPacketRTP(medi, forma, video.onPacket)
	p.play(t)
	video.wait(t)
}

func TestCameraDigestAuth(t *testing.T) {
	verifyNoLeaks(t)

	cam := startCamera(t, CameraConfig{
		Username: "admin",
		Password: "Cam-pass1",
		Paths:    []CameraPath{{Path: "/cam/realmonitor?channel=1&subtype=0", Clip: ClipGOP1s}},
	}, 0)
	camURL := cam.URL("/cam/realmonitor?channel=1&subtype=0")
	if !strings.HasSuffix(camURL, "/cam/realmonitor?channel=1&subtype=0") {
		t.Fatalf("URL = %s", camURL)
	}

	for _, tc := range []struct {
		name, user, pass string
	}{
		{"wrong password", "admin", "wrong"},
		{"wrong user", "root", "Cam-pass1"},
		{"no credentials", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dial(camURL, tc.user, tc.pass, transportPtr(gortsplib.TransportTCP))
			var bad liberrors.ErrClientBadStatusCode
			if !errors.As(err, &bad) || bad.Code != base.StatusUnauthorized {
				t.Fatalf("error = %v, want 401", err)
			}
		})
	}

	p, err := dial(camURL, "admin", "Cam-pass1", transportPtr(gortsplib.TransportTCP))
	if err != nil {
		t.Fatal(err)
	}
	defer p.client.Close()
	var forma *format.H264
	medi := p.desc.FindFormat(&forma)
	video := newVideoCheck(t, forma, 25, 3)
	p.client.OnPacketRTP(medi, forma, video.onPacket)
	p.play(t)
	video.wait(t)
}

func TestCameraSessionsAndPaths(t *testing.T) {
	verifyNoLeaks(t)

	cam := startCamera(t, CameraConfig{
		Paths: []CameraPath{
			{Path: "/cam1", Clip: ClipGOP1s},
			{Path: "/cam2", Clip: ClipGOP4s, Audio: true},
		},
	}, 0)

	if _, err := dial(cam.URL("/nope"), "", "", transportPtr(gortsplib.TransportTCP)); err == nil {
		t.Fatal("unknown path: want an error")
	} else {
		var bad liberrors.ErrClientBadStatusCode
		if !errors.As(err, &bad) || bad.Code != base.StatusNotFound {
			t.Fatalf("unknown path: error = %v, want 404", err)
		}
	}

	var players []*player
	played := map[string]int{}
	for _, path := range []string{"/cam1", "/cam1", "/cam2"} {
		p, err := dial(cam.URL(path), "", "", transportPtr(gortsplib.TransportTCP))
		if err != nil {
			t.Fatal(err)
		}
		defer p.client.Close()
		if got := cam.Sessions(path); got != played[path] {
			t.Fatalf("Sessions(%s) = %d before PLAY, want %d", path, got, played[path])
		}
		p.play(t)
		played[path]++
		players = append(players, p)
	}
	if got := cam.Sessions("/cam1"); got != 2 {
		t.Fatalf("Sessions(/cam1) = %d, want 2", got)
	}
	if got := cam.Sessions("/cam2"); got != 1 {
		t.Fatalf("Sessions(/cam2) = %d, want 1", got)
	}
	if got := cam.TotalSessions(); got != 3 {
		t.Fatalf("TotalSessions() = %d, want 3", got)
	}

	players[0].client.Close()
	waitFor(t, "Sessions(/cam1) to drop to 1", func() bool { return cam.Sessions("/cam1") == 1 })
	if got := cam.TotalSessions(); got != 2 {
		t.Fatalf("TotalSessions() = %d, want 2", got)
	}
}

// TestCameraServesProfilePaths: a camera built from vendor profiles serves
// each profile's main and sub stream on the paths Skywatch derives, each
// path its own stream.
func TestCameraServesProfilePaths(t *testing.T) {
	verifyNoLeaks(t)
	profiles := []CameraProfile{
		{Vendor: VendorHikvision, Channel: 2},
		{Vendor: VendorDahua, Channel: 3},
		{Vendor: VendorUniview},
	}
	var paths []CameraPath
	for _, p := range profiles {
		pp, err := ProfilePaths(p, ClipGOP1s, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(pp) != 2 {
			t.Fatalf("%s: %d paths, want main and sub", p.Vendor, len(pp))
		}
		paths = append(paths, pp...)
	}
	if _, err := ProfilePaths(CameraProfile{Vendor: VendorGeneric}, ClipGOP1s, false); err == nil {
		t.Error("generic profile without a path: want an error")
	}
	cam := startCamera(t, CameraConfig{Paths: paths}, 0)
	_, portText, _ := strings.Cut(cam.Addr(), ":")
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatal(err)
	}

	for _, p := range profiles {
		p.Host = "127.0.0.1"
		p.Port = port
		main, sub, err := p.Endpoints()
		if err != nil {
			t.Fatal(err)
		}
		for _, ep := range []RTSPEndpoint{main, *sub} {
			pl, err := dial(ep.String(), "", "", transportPtr(gortsplib.TransportTCP))
			if err != nil {
				t.Fatalf("%s: %v", ep, err)
			}
			defer pl.client.Close()
			pl.play(t)
		}
		if m, s := cam.Sessions(main.PathQuery()), cam.Sessions(sub.PathQuery()); m != 1 || s != 1 {
			t.Errorf("%s: sessions main %d sub %d, want 1 and 1", p.Vendor, m, s)
		}
	}
	if got := cam.TotalSessions(); got != 2*len(profiles) {
		t.Errorf("TotalSessions() = %d, want %d", got, 2*len(profiles))
	}
}

func TestCameraRestartSameAddress(t *testing.T) {
	verifyNoLeaks(t)

	cam := startCamera(t, CameraConfig{
		UDP:   true,
		Paths: []CameraPath{{Path: "/cam1", Clip: ClipGOP1s}},
	}, 0)
	addr := cam.Addr()
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addr() = %q, want 127.0.0.1 and a chosen port", addr)
	}
	if err := cam.Start(); err == nil {
		t.Fatal("second Start while running: want an error")
	}

	p, err := dial(cam.URL("/cam1"), "", "", transportPtr(gortsplib.TransportTCP))
	if err != nil {
		t.Fatal(err)
	}
	defer p.client.Close()
	p.play(t)

	cam.Close()
	cam.Close() // idempotent
	waitErr := make(chan error, 1)
	go func() { waitErr <- p.client.Wait() }()
	select {
	case err := <-waitErr:
		if err == nil {
			t.Fatal("client ended without an error")
		}
	case <-time.After(failAfter):
		t.Fatal("client not disconnected by Close")
	}
	if cam.TotalSessions() != 0 {
		t.Fatal("sessions counted after Close")
	}
	if _, err := dial(cam.URL("/cam1"), "", "", transportPtr(gortsplib.TransportTCP)); err == nil {
		t.Fatal("dial after Close: want an error")
	}

	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	if cam.Addr() != addr {
		t.Fatalf("restarted on %s, want %s", cam.Addr(), addr)
	}
	for _, tr := range []gortsplib.Transport{gortsplib.TransportTCP, gortsplib.TransportUDP} {
		p2, err := dial(cam.URL("/cam1"), "", "", transportPtr(tr))
		if err != nil {
			t.Fatalf("%v after restart: %v", tr, err)
		}
		defer p2.client.Close()
		var forma *format.H264
		medi := p2.desc.FindFormat(&forma)
		video := newVideoCheck(t, forma, 25, 3)
		p2.client.OnPacketRTP(medi, forma, video.onPacket)
		p2.play(t)
		video.wait(t)
	}
}

func TestCameraConfigValidate(t *testing.T) {
	ok := []CameraPath{{Path: "/cam1"}}
	for _, tc := range []struct {
		name string
		cfg  CameraConfig
		want string
	}{
		{"valid", CameraConfig{Paths: ok}, ""},
		{"no paths", CameraConfig{}, "paths:"},
		{"relative path", CameraConfig{Paths: []CameraPath{{Path: "cam1"}}}, "paths[0].path"},
		{"duplicate", CameraConfig{Paths: []CameraPath{{Path: "/a"}, {Path: "/a"}}}, "paths[1].path"},
		{"bad clip", CameraConfig{Paths: []CameraPath{{Path: "/a", Clip: 9}}}, "paths[0].clip"},
		{"password only", CameraConfig{Password: "x", Paths: ok}, "username"},
		{"bad address", CameraConfig{Address: "nope", Paths: ok}, "address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one naming %q", err, tc.want)
			}
		})
	}

	cam := NewCamera(CameraConfig{})
	if err := cam.Start(); err == nil {
		cam.Close()
		t.Fatal("Start with no paths: want an error")
	}
	cam.Close()
}
