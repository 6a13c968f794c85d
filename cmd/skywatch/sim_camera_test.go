package main

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
)

// TestSimCameraServesItsPrintedEntry runs `skywatch sim camera` as the
// README's deployment trial does: digest authentication refuses a wrong
// password, the main stream plays in packets of up to -packet-size bytes
// (and does reach that size: the camera's pictures are cut as a field
// camera's are), and the cameras: entry it prints, with the password from
// the environment, makes serve pull its main and sub stream.
func TestSimCameraServesItsPrintedEntry(t *testing.T) {
	t.Setenv(simCameraPasswordEnv, "sim-cam-pass-1")
	ctx, cancel := context.WithCancel(context.Background())
	var out, logs syncBuffer
	simDone := make(chan int, 1)
	go func() {
		simDone <- run(ctx, []string{"sim", "camera", "-listen", "127.0.0.1:0", "-channel", "2", "-id", "gate"}, &out, &logs)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-simDone; code != 0 {
			t.Errorf("sim camera exited %d\n%s", code, logs.String())
		}
	})

	var mainURL, entry string
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := out.String()
		if i := strings.Index(s, "cameras:\n"); i >= 0 && strings.Contains(s[i:], "SKYWATCH_CAMERA_GATE_PASSWORD\n") {
			entry = s[i:]
			for _, line := range strings.Split(s, "\n") {
				if f := strings.Fields(line); len(f) == 3 && f[0] == "main" {
					mainURL = f[2]
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sim camera printed no cameras: entry:\n%s\n%s", s, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.HasSuffix(mainURL, "/Streaming/Channels/201") {
		t.Fatalf("main stream URL %q, want Hikvision's channel 2 path", mainURL)
	}
	if strings.Contains(out.String()+logs.String(), "sim-cam-pass-1") {
		t.Fatal("sim camera printed its password")
	}

	if _, err := rtspPlay(mainURL, "admin", "wrong", nil); err == nil {
		t.Fatal("a wrong password played")
	} else if bad := (liberrors.ErrClientBadStatusCode{}); !errors.As(err, &bad) || bad.Code != base.StatusUnauthorized {
		t.Fatalf("wrong password: %v, want 401", err)
	}

	// Two seconds of the 4 s GOP clip hold an IDR picture, cut into
	// fragments of the largest size.
	var mu sync.Mutex
	packets, largest := 0, 0
	c, err := rtspPlay(mainURL, "admin", "sim-cam-pass-1", func(pkt *rtp.Packet) {
		mu.Lock()
		defer mu.Unlock()
		packets++
		largest = max(largest, pkt.MarshalSize())
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	c.Close()
	mu.Lock()
	t.Logf("sim camera: %d packets in 2 s, the largest %d bytes", packets, largest)
	if largest != 1460 {
		t.Errorf("largest RTP packet %d bytes, want 1460", largest)
	}
	mu.Unlock()

	// The printed entry, as an IT officer pastes it, pulls both streams.
	dir := t.TempDir()
	path := writeServeConfig(t, dir, strings.Replace(entry, "    username: admin\n", "    username: admin\n    mode: always\n", 1))
	t.Setenv("SKYWATCH_CAMERA_GATE_PASSWORD", "sim-cam-pass-1")
	serveCtx, stopServe := context.WithCancel(context.Background())
	var serveLogs syncBuffer
	serveDone := make(chan int, 1)
	go func() { serveDone <- run(serveCtx, []string{"serve", "-config", path}, &serveLogs, &serveLogs) }()
	defer func() {
		stopServe()
		<-serveDone
	}()
	base := waitForServeAddr(t, &serveLogs)
	get := loginGet(t, base, "admin", "serve-secret")
	deadline = time.Now().Add(20 * time.Second)
	for {
		body, err := get(base + "/api/cameras/gate")
		if err == nil && strings.Contains(body, `"status": "online"`) && strings.Contains(body, `"sub_status": "online"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("camera of the printed entry never came online: %v %s\nlogs:\n%s", err, body, serveLogs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rtspPlay plays every media of rawURL over TCP with the given credentials,
// handing each RTP packet of its H.264 track to onVideo (when not nil).
func rtspPlay(rawURL, user, password string, onVideo func(*rtp.Packet)) (*gortsplib.Client, error) {
	u0, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	u0.User = url.UserPassword(user, password)
	u, err := base.ParseURL(u0.String())
	if err != nil {
		return nil, err
	}
	tcp := gortsplib.TransportTCP
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp}
	if err := c.Start2(); err != nil {
		return nil, err
	}
	desc, _, err := c.Describe(u)
	if err != nil {
		c.Close()
		return nil, err
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		c.Close()
		return nil, err
	}
	var forma *format.H264
	if medi := desc.FindFormat(&forma); medi != nil && onVideo != nil {
		c.OnPacketRTP(medi, forma, onVideo)
	}
	if _, err := c.Play(nil); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
