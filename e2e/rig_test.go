package e2e

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
	"github.com/skywatch/skywatch/viewer"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// failAfter bounds every wait: a failure bound, not a speed requirement.
const failAfter = 30 * time.Second

const (
	camUser     = "operator"
	camPassword = "C4mera-Pa55word"
	camPath     = "/live"
	camID       = "gate"
)

// rig is the whole video path on loopback.
type rig struct {
	cam  *hardware.Camera
	mgr  *ingest.Manager
	srv  *viewer.Server
	logs *syncBuffer // everything ingest and viewer logged
}

type rigOptions struct {
	clip      hardware.Clip
	password  string // what Skywatch is configured with; defaults to the right one
	mode      string
	queue     int
	transport string // ingest's camera transport; default auto (UDP first)
	// packetSize is the camera's largest RTP packet; 0 for its default.
	packetSize int
	// cameraURL, when set, is what Skywatch pulls instead of the simulated
	// camera (which still runs).
	cameraURL string
}

func newRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	if o.password == "" {
		o.password = camPassword
	}
	r := &rig{logs: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(r.logs, newTestWriter(t)),
		&slog.HandlerOptions{Level: slog.LevelDebug}))

	r.cam = hardware.NewCamera(hardware.CameraConfig{
		Username: camUser, Password: camPassword, UDP: true, PacketSize: o.packetSize,
		Paths: []hardware.CameraPath{{Path: camPath, Clip: o.clip, Audio: true}},
	})
	if err := r.cam.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.cam.Close)

	camURL := r.cam.URL(camPath)
	if o.cameraURL != "" {
		camURL = o.cameraURL
	}
	cfg := ingest.Config{
		QueueSize: o.queue,
		Cameras: []ingest.CameraConfig{{
			ID: camID, Name: "North gate", URL: camURL,
			Username: camUser, Password: o.password, Mode: o.mode, Transport: o.transport,
		}},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r.mgr = ingest.NewManager(cfg, logger.With("component", "ingest"))
	r.mgr.Start()
	t.Cleanup(r.mgr.Close)

	srv, err := viewer.New(viewer.Config{
		HTTPAddress: "127.0.0.1:0", UDPAddress: "127.0.0.1:0", TCPAddress: "127.0.0.1:0",
	}, viewer.Deps{
		Cameras:  viewer.Adapt[*ingest.Reader](r.mgr),
		Registry: prometheus.NewRegistry(),
	}, logger.With("component", "viewer"))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

func (r *rig) url(path string) string { return "http://" + r.srv.Addr().String() + path }

func (r *rig) state(t testing.TB) ingest.CameraState {
	t.Helper()
	st, err := r.mgr.Camera(camID)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testWriter sends log lines to the test's log while the test runs. pion
// may still log from its own goroutines just after a peer connection closed;
// lines that come after the test's cleanups ran are dropped, because
// testing panics on a Log after the test completed.
type testWriter struct {
	t    testing.TB
	mu   *sync.Mutex
	done *bool
}

func newTestWriter(t testing.TB) testWriter {
	w := testWriter{t: t, mu: new(sync.Mutex), done: new(bool)}
	t.Cleanup(func() {
		w.mu.Lock()
		*w.done = true
		w.mu.Unlock()
	})
	return w
}

func (w testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !*w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// viewerPeer is a pion WebRTC viewer restricted to loopback.
type viewerPeer struct {
	pc       *webrtc.PeerConnection
	location string
	// answer, when set, changes the server's answer before it is applied.
	answer func(sdp string) string
	// header, when set, is sent with the offer (a session cookie and its
	// CSRF token, say).
	header http.Header
	video  chan *rtp.Packet
	audio  chan *rtp.Packet
	wg     sync.WaitGroup
}

func newViewerPeer(t testing.TB) *viewerPeer {
	t.Helper()
	return newViewerPeerOn(t, webrtc.NetworkTypeUDP4)
}

// newViewerPeerOn is a viewer that uses only network (UDP or TCP).
func newViewerPeerOn(t testing.TB, network webrtc.NetworkType) *viewerPeer {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{network})
	se.SetIncludeLoopbackCandidate(true)
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).
		NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &viewerPeer{pc: pc, video: make(chan *rtp.Packet, 1<<14), audio: make(chan *rtp.Packet, 1<<14)}
	t.Cleanup(p.close)
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{
			Direction: webrtc.RTPTransceiverDirectionRecvonly,
		}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		out := p.audio
		if track.Kind() == webrtc.RTPCodecTypeVideo {
			out = p.video
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for {
				pkt, _, err := track.ReadRTP()
				if err != nil {
					return
				}
				select {
				case out <- pkt:
				default: // the test stopped listening
				}
			}
		}()
	})
	return p
}

func (p *viewerPeer) close() {
	_ = p.pc.Close()
	p.wg.Wait()
}

// join makes an offer, POSTs it and applies the answer; it returns the
// response status and body.
func (p *viewerPeer) join(t testing.TB, url string) (int, string) {
	t.Helper()
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(failAfter):
		t.Fatal("gathering timed out")
	}
	resp, body := doWith(t, http.MethodPost, url, "application/sdp", p.pc.LocalDescription().SDP, p.header)
	if resp.StatusCode == http.StatusCreated {
		p.location = resp.Header.Get("Location")
		sdp := body
		if p.answer != nil {
			sdp = p.answer(sdp)
		}
		if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
			t.Fatalf("answer: %v", err)
		}
	}
	return resp.StatusCode, body
}

func do(t testing.TB, method, url, contentType, body string) (*http.Response, string) {
	t.Helper()
	return doWith(t, method, url, contentType, body, nil)
}

// doWith is do with more request headers.
func doWith(t testing.TB, method, url, contentType, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true
	for k, vs := range header {
		req.Header[k] = vs
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// accessUnit is one picture as received: its packets, NAL unit types and
// bytes (Annex-B, 4-byte start codes).
type accessUnit struct {
	pkts   []*rtp.Packet
	types  []byte
	annexB []byte
}

func (a accessUnit) has(types ...byte) bool {
	for _, typ := range types {
		if !bytes.Contains(a.types, []byte{typ}) {
			return false
		}
	}
	return true
}

func (a accessUnit) timestamp() uint32 { return a.pkts[0].Timestamp }

// auReader assembles received H.264 packets into access units and checks
// that the sequence numbers it sees are continuous.
type auReader struct {
	t       testing.TB
	peer    *viewerPeer
	depack  codecs.H264Packet
	lastSeq *uint16
	gaps    int
}

func (r *auReader) next() accessUnit {
	r.t.Helper()
	var au accessUnit
	var annexB []byte
	deadline := time.After(failAfter)
	for {
		var p *rtp.Packet
		select {
		case p = <-r.peer.video:
		case <-deadline:
			r.t.Fatalf("no complete access unit within %v", failAfter)
		}
		if r.lastSeq != nil && p.SequenceNumber != *r.lastSeq+1 {
			r.gaps++
			r.t.Errorf("sequence gap: %d after %d", p.SequenceNumber, *r.lastSeq)
		}
		seq := p.SequenceNumber
		r.lastSeq = &seq
		b, err := r.depack.Unmarshal(p.Payload)
		if err != nil {
			r.t.Fatalf("depacketize: %v", err)
		}
		annexB = append(annexB, b...)
		au.pkts = append(au.pkts, p)
		if p.Marker {
			break
		}
	}
	au.annexB = annexB
	for _, nalu := range bytes.Split(annexB, []byte{0, 0, 0, 1}) {
		if len(nalu) > 0 {
			au.types = append(au.types, nalu[0]&0x1f)
		}
	}
	return au
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
