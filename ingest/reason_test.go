package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"go.uber.org/goleak"

	"github.com/skywatch/skywatch/hardware"
)

// startSilentCamera serves one track of forma at /silent, without ever
// sending a packet, and returns its URL.
func startSilentCamera(t *testing.T, forma format.Format) string {
	t.Helper()
	var mu sync.Mutex
	var addr string
	cam := &silentCamera{}
	cam.server = &gortsplib.Server{
		Handler:     cam,
		RTSPAddress: "127.0.0.1:0",
		Listen: func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			if err == nil {
				mu.Lock()
				addr = l.Addr().String()
				mu.Unlock()
			}
			return l, err
		},
	}
	if err := cam.server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.server.Close)
	cam.stream = &gortsplib.ServerStream{Server: cam.server, Desc: &description.Session{
		Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}},
	}}
	if err := cam.stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.stream.Close)
	mu.Lock()
	defer mu.Unlock()
	return "rtsp://" + addr + "/silent"
}

// closedPort returns a loopback address on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// TestFailureReasons: real cameras that fail each in their own way give
// each its Reason, while LastError keeps the detail for the log; a camera
// that plays has none.
func TestFailureReasons(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the cameras' cleanups
	const user, pass = "admin", "right-Pa55"
	cam := hardware.NewCamera(hardware.CameraConfig{Username: user, Password: pass,
		Paths: []hardware.CameraPath{{Path: "/cam1", Clip: hardware.ClipGOP1s}}})
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	closed := closedPort(t)
	vp8 := startSilentCamera(t, &format.VP8{PayloadTyp: 96})
	silent := startSilentCamera(t, &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: testSPS352, PPS: testPPS})

	cases := []struct {
		cc     CameraConfig
		want   Reason
		detail string // in LastError, for the log
	}{
		{CameraConfig{ID: "ok", URL: cam.URL("/cam1"), Username: user, Password: pass}, "", ""},
		{CameraConfig{ID: "auth", URL: cam.URL("/cam1"), Username: user, Password: "wrong"}, ReasonAuth, "authentication failed"},
		{CameraConfig{ID: "missing", URL: cam.URL("/nope"), Username: user, Password: pass}, ReasonNotFound, "404"},
		{CameraConfig{ID: "closed", URL: "rtsp://" + closed + "/cam1"}, ReasonUnreachable, closed},
		{CameraConfig{ID: "vp8", URL: vp8, Transport: TransportTCP}, ReasonUnsupported, "no supported track"},
		{CameraConfig{ID: "silent", URL: silent, Transport: TransportTCP}, ReasonTimeout, "timeout"},
	}
	cfg := Config{ReadTimeout: 1500 * time.Millisecond, minBackoff: 100 * time.Millisecond}
	for i := range cases {
		cases[i].cc.Mode = ModeAlways
		cfg.Cameras = append(cfg.Cameras, cases[i].cc)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := NewManager(cfg, slog.New(slog.DiscardHandler))
	defer m.Close()
	m.Start()
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range cases {
		for {
			st, err := m.Camera(c.cc.ID)
			if err != nil {
				t.Fatal(err)
			}
			done := st.Reason == c.want && (c.want != "" || st.Status == StatusOnline)
			if done {
				if !strings.Contains(st.LastError, c.detail) {
					t.Errorf("%s: LastError %q, want it to hold %q", c.cc.ID, st.LastError, c.detail)
				}
				if strings.Contains(st.LastError, pass) || strings.Contains(st.LastError, "wrong") {
					t.Errorf("%s: LastError %q holds the password", c.cc.ID, st.LastError)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: status %s, reason %q (%s), want reason %q", c.cc.ID, st.Status, st.Reason, st.LastError, c.want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestClassify covers the errors a test camera cannot easily make.
func TestClassify(t *testing.T) {
	dialErr := func(err error) error {
		return fmt.Errorf("describe: %w", &net.OpError{Op: "dial", Net: "tcp", Err: err})
	}
	for _, tc := range []struct {
		err  error
		want Reason
	}{
		{nil, ""},
		{dialErr(syscall.EHOSTUNREACH), ReasonUnreachable},
		{dialErr(syscall.ENETUNREACH), ReasonUnreachable},
		{dialErr(&net.DNSError{Err: "no such host", Name: "cam.example", IsNotFound: true}), ReasonUnreachable},
		{dialErr(context.DeadlineExceeded), ReasonTimeout},
		{fmt.Errorf("describe: %w", liberrors.ErrClientRequestTimedOut{}), ReasonTimeout},
		{fmt.Errorf("read: %w", liberrors.ErrClientTCPTimeout{}), ReasonTimeout},
		{fmt.Errorf("describe: %w", liberrors.ErrClientBadStatusCode{Code: base.StatusForbidden}), ReasonAuth},
		{fmt.Errorf("setup: %w", liberrors.ErrClientAuthSetup{Err: errors.New("bad nonce")}), ReasonAuth},
		{fmt.Errorf("setup: %w", liberrors.ErrClientBadStatusCode{Code: base.StatusUnsupportedTransport}), ReasonOther},
		{errors.New("EOF"), ReasonOther},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	for _, r := range Reasons() {
		if txt := r.Text(); txt == "" || strings.ContainsAny(txt, "0123456789:/") {
			t.Errorf("%s: Text %q", r, txt)
		}
	}
}
