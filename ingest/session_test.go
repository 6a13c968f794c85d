package ingest

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"go.uber.org/goleak"
)

func TestRedact(t *testing.T) {
	s := &source{cfg: CameraConfig{Password: "p@ss/w:rd"}}
	cases := []struct{ in, want string }{
		{"dial rtsp://admin:secret@10.0.0.1:554/x: refused", "dial rtsp://10.0.0.1:554/x: refused"},
		{`"rtsps://u@h/a" and rtsp://h2/b`, `"rtsps://h/a" and rtsp://h2/b`},
		{"bad password p@ss/w:rd", "bad password ***"},
		{"escaped p%40ss%2Fw%3Ard", "escaped ***"},
		{"path-escaped p@ss%2Fw:rd", "path-escaped ***"},
		{"no url here", "no url here"},
		{"rtsp://user:pw@host", "rtsp://host"},
	}
	for _, tc := range cases {
		if got := s.redact(tc.in); got != tc.want {
			t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// silentCamera serves a stream that never sends a packet.
type silentCamera struct {
	server *gortsplib.Server
	stream *gortsplib.ServerStream
}

func (c *silentCamera) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

func (c *silentCamera) OnSetup(*gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

func (c *silentCamera) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func TestReadTimeoutReconnects(t *testing.T) {
	// A cleanup, so that it runs after the camera's own cleanups.
	t.Cleanup(func() { goleak.VerifyNone(t) })
	u := startSilentCamera(t, &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: testSPS352, PPS: testPPS})
	cfg := Config{ReadTimeout: 1500 * time.Millisecond, minBackoff: 100 * time.Millisecond, Cameras: []CameraConfig{
		{ID: "c", URL: u, Transport: TransportTCP},
	}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := NewManager(cfg, slog.New(slog.DiscardHandler))
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := m.AddReader(ctx, "c")
	if err != nil {
		t.Fatalf("AddReader: %v", err)
	}
	defer r.Close()
	for {
		st, _ := m.Camera("c")
		if st.Status == StatusRetrying {
			if !strings.Contains(st.LastError, "timeout") {
				t.Errorf("LastError = %q, want a timeout", st.LastError)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("camera that sends nothing still %s", st.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The reader stays attached across the reconnect.
	if st, _ := m.Camera("c"); st.Viewers != 1 {
		t.Errorf("Viewers = %d after timeout, want 1", st.Viewers)
	}
}
