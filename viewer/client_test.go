package viewer

import (
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
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// testTimeout bounds waits in tests; it is a failure bound, not a speed
// requirement.
const testTimeout = 20 * time.Second

// startServer starts a viewer server on loopback with OS-chosen ports and
// closes it when the test ends.
func startServer(t *testing.T, src CameraSource, ready func() bool) *Server {
	t.Helper()
	return startServerWith(t, loopbackConfig(), src, ready)
}

func loopbackConfig() Config {
	return Config{HTTPAddress: "127.0.0.1:0", UDPAddress: "127.0.0.1:0", TCPAddress: "127.0.0.1:0"}
}

func startServerWith(t *testing.T, cfg Config, src CameraSource, ready func() bool) *Server {
	t.Helper()
	s, err := New(cfg, Deps{Cameras: src, Registry: prometheus.NewRegistry(), Ready: ready}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testWriter sends log lines to the test's log while the test runs. pion
// may still log from its own goroutines just after a peer connection closed;
// lines that come after the test's cleanups ran are dropped, because
// testing panics on a Log after the test completed.
type testWriter struct {
	t    *testing.T
	mu   *sync.Mutex
	done *bool
}

func newTestWriter(t *testing.T) testWriter {
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

func baseURL(s *Server) string { return "http://" + s.Addr().String() }

// whepClient is a pion viewer that talks to the server on loopback only.
type whepClient struct {
	pc       *webrtc.PeerConnection
	location string
	video    chan *rtp.Packet
	wg       sync.WaitGroup
}

func loopbackSettings() webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	return se
}

// newWHEPClient builds a receive-only peer with pion's default codecs and
// makes its offer (with candidates, no trickle).
func newWHEPClient(t *testing.T) (*whepClient, string) {
	t.Helper()
	return newWHEPClientOn(t, webrtc.NetworkTypeUDP4)
}

// newWHEPClientOn is newWHEPClient restricted to one network type.
func newWHEPClientOn(t *testing.T, network webrtc.NetworkType) (*whepClient, string) {
	t.Helper()
	settings := loopbackSettings()
	settings.SetNetworkTypes([]webrtc.NetworkType{network})
	return newWHEPClientWith(t, settings, nil)
}

// newWHEPClientWith is newWHEPClient with the given pion settings and
// interceptors (nil: none).
func newWHEPClientWith(t *testing.T, settings webrtc.SettingEngine, ir *interceptor.Registry) (*whepClient, string) {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	if ir == nil {
		ir = &interceptor.Registry{}
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(settings),
		webrtc.WithInterceptorRegistry(ir))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c := &whepClient{pc: pc, video: make(chan *rtp.Packet, 4096)}
	t.Cleanup(c.close)
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{
			Direction: webrtc.RTPTransceiverDirectionRecvonly,
		}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				p, _, err := track.ReadRTP()
				if err != nil {
					return
				}
				if track.Kind() == webrtc.RTPCodecTypeVideo {
					select {
					case c.video <- p:
					default: // the test stopped listening
					}
				}
			}
		}()
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(testTimeout):
		t.Fatal("client gathering timed out")
	}
	return c, pc.LocalDescription().SDP
}

func (c *whepClient) close() {
	_ = c.pc.Close()
	c.wg.Wait()
}

// post sends the offer; on 201 it applies the answer.
func (c *whepClient) post(t *testing.T, url, offer string) (*http.Response, string) {
	t.Helper()
	resp, body := doRequest(t, http.MethodPost, url, "application/sdp", offer)
	if resp.StatusCode == http.StatusCreated {
		c.location = resp.Header.Get("Location")
		if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
			t.Fatalf("set answer: %v\n%s", err, body)
		}
	}
	return resp, body
}

func doRequest(t *testing.T, method, url, contentType, body string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true // no idle connections left behind for goleak
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
