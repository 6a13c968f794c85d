package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/skywatch/skywatch/hardware"
)

// TestServeShutsDownCleanly runs serve against a simulated camera, watches
// it through the HTTP API, then cancels (as SIGINT/SIGTERM do) and checks
// that every goroutine stopped and the listener closed.
func TestServeShutsDownCleanly(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	// The camera serves Hikvision's main and sub stream paths.
	paths, err := hardware.ProfilePaths(hardware.CameraProfile{Vendor: hardware.VendorHikvision}, hardware.ClipGOP1s, false)
	if err != nil {
		t.Fatal(err)
	}
	cam := hardware.NewCamera(hardware.CameraConfig{
		Address:  "127.0.0.1:0",
		Username: "admin",
		Password: "cam-secret-1",
		Paths:    paths,
	})
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	host, port, _ := strings.Cut(cam.Addr(), ":")

	dir := t.TempDir()
	path := writeServeConfig(t, dir, fmt.Sprintf(`
cameras:
  - id: gate
    vendor: hikvision
    host: %s
    port: %s
    username: admin
    password: from-file-wrong
    mode: always
`, host, port))
	// The right password comes from the environment, overriding the file.
	t.Setenv("SKYWATCH_CAMERA_GATE_PASSWORD", "cam-secret-1")

	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "-config", path}, &logs, &logs) }()

	base := waitForServeAddr(t, &logs)
	get := loginGet(t, base, "admin", "serve-secret")
	deadline := time.Now().Add(20 * time.Second)
	for {
		body, err := get(base + "/api/cameras/gate")
		if err == nil && strings.Contains(body, `"status": "online"`) && strings.Contains(body, `"sub": true`) &&
			cam.Sessions("/Streaming/Channels/102") == 1 {
			// mode always pulls the derived sub stream too.
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("camera never came online: %v %s\nlogs:\n%s", err, body, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if body, err := get(base + "/readyz"); err != nil {
		t.Fatalf("readyz: %v %s", err, body)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d\n%s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop within 20 s")
	}
	if _, err := get(base + "/healthz"); err == nil {
		t.Fatal("HTTP listener still answers after shutdown")
	}
	for _, secret := range []string{"cam-secret-1", "from-file-wrong"} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("logs contain a camera password:\n%s", logs.String())
		}
	}
}

// serveInBackground runs `serve -config path` until the test ends and
// returns its logs; the test fails if serve does not stop within 20 s.
func serveInBackground(t *testing.T, path string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "-config", path}, logs, logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	})
	return logs
}

func waitForServeAddr(t *testing.T, logs *syncBuffer) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if i := strings.Index(logs.String(), "http=http://"); i >= 0 {
			rest := logs.String()[i+len("http="):]
			return strings.TrimSuffix(strings.Fields(rest)[0], "/")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("serve printed no address:\n%s", logs.String())
	return ""
}

func get(url string) (string, error) {
	return getWith(&http.Client{Timeout: 2 * time.Second}, url)
}

func getWith(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return b.String(), fmt.Errorf("%s: %s", url, resp.Status)
	}
	return b.String(), err
}

// testPasswordHash is a quick bcrypt hash of password for a test config.
func testPasswordHash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// loginGet logs in to the console API at base and returns a GET with the
// session's cookie.
func loginGet(t *testing.T, base, user, password string) func(url string) (string, error) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	body := strings.NewReader(`{"username":"` + user + `","password":"` + password + `"}`)
	resp, err := c.Post(base+"/api/login", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login as %s: %s", user, resp.Status)
	}
	return func(url string) (string, error) { return getWith(c, url) }
}

// writeServeConfig writes dir/skywatch.yaml for a serve on loopback ports
// the system picks, with its store in dir and the user admin (password
// serve-secret), followed by rest; it returns the file's path.
func writeServeConfig(t *testing.T, dir, rest string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
http:
  address: 127.0.0.1:0
webrtc:
  udp_address: 127.0.0.1:0
  tcp_address: 127.0.0.1:0
mqtt:
  address: 127.0.0.1:0
store:
  path: %s
users:
  - username: admin
    role: admin
    password_hash: "%s"
`, filepath.Join(dir, "alarms.db"), testPasswordHash(t, "serve-secret")) + rest
	path := filepath.Join(dir, "skywatch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
