package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
)

// TestChromiumPlayerFailover plays a camera in Chromium with the console's
// own player, through a node that does not pull it (node b proxies to the
// owner a), then a dies: the player reconnects by itself and plays again,
// from b, within the failover time and a margin.
func TestChromiumPlayerFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	chromium := chromiumPath(t)
	if os.Getenv(inNetnsEnv) == "" {
		runInNetns(t, chromium, "TestChromiumPlayerFailover")
		return
	}
	loopbackOnly(t)
	redisURL := startNetnsRedis(t)
	prefix := "skywatch-test-player:"
	nodes := []string{"a", "b"}
	camID := cameraFor(t, "a", nodes, "door-")

	cam := hardware.NewCamera(hardware.CameraConfig{Address: "127.0.0.1:0", Username: "admin", Password: "cam-secret-1",
		Paths: []hardware.CameraPath{{Path: "/door", Clip: hardware.ClipGOP1s}}})
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	cams := []ingest.CameraConfig{{ID: camID, URL: cam.URL("/door"), Username: "admin", Password: "cam-secret-1"}}
	var logs syncBuffer
	defer func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	}()
	a := startVideoNode(t, "a", redisURL, prefix, cams, &logs)
	b := startVideoNode(t, "b", redisURL, prefix, cams, &logs)

	br := startBrowser(t, chromium, &demoRig{base: b.base}, os.Getenv("SKYWATCH_TEST_SCREENSHOTS"))
	br.waitJS(t, "the console's core", `typeof window.Skywatch === 'object' && typeof window.Skywatch.Player === 'function'`, 20*time.Second)
	br.eval(t, fmt.Sprintf(`(() => {
		const v = document.createElement('video');
		v.id = 'failover-video';
		document.body.append(v);
		window.failoverStates = [];
		const p = window.Skywatch.Player(v, %q, { stream: 'main', onState: (s, d) => window.failoverStates.push([performance.now(), s, d]) });
		window.failoverPlayer = p;
		p.start();
		return true;
	})()`, camID), nil)
	const playing = `(() => {
		const v = document.getElementById('failover-video');
		const q = v.getVideoPlaybackQuality();
		return window.failoverPlayer.state === 'playing' && v.videoWidth > 0 && q.totalVideoFrames > (window.failoverFrames || 0);
	})()`
	br.waitJS(t, "playing through b", playing, 30*time.Second)
	// The player's session, and the wall's tile of the same camera.
	if st, _ := a.mgr.Camera(camID); st.Status != ingest.StatusOnline || st.Viewers == 0 {
		t.Fatalf("a: %s with %d viewers, want online with the browser's sessions", st.Status, st.Viewers)
	}

	br.eval(t, `(() => { window.failoverFrames = document.getElementById('failover-video').getVideoPlaybackQuality().totalVideoFrames + 25; window.failoverStates = []; window.failoverDied = performance.now(); return true; })()`, nil)
	a.die(t)
	// Playing again: the player's state went away from playing and back,
	// and a second's worth of new frames were decoded.
	br.waitJS(t, "playing again after a died", `window.failoverStates.some((s) => s[1] !== 'playing') && `+playing, 30*time.Second)
	// Timed in the page: a's server takes a while to close (its ICE-TCP
	// listener waits for the browser's connections to time out), which a
	// crash would not.
	var ms float64
	br.eval(t, `(() => { const p = window.failoverStates.filter((s) => s[1] === 'playing'); return p[p.length - 1][0] - window.failoverDied; })()`, &ms)
	took := time.Duration(ms * float64(time.Millisecond))
	var states [][]any
	br.eval(t, `window.failoverStates.map((s) => [Math.round(s[0] - window.failoverDied), s[1], s[2]])`, &states)
	t.Logf("playing again %v after a died (failover %v); states (ms after): %v", took.Round(time.Millisecond), videoFailover, states)
	if st, _ := b.mgr.Camera(camID); st.Status != ingest.StatusOnline || st.Viewers == 0 {
		t.Fatalf("b: %s with %d viewers, want online with the browser's sessions", st.Status, st.Viewers)
	}
	if limit := videoFailover + 10*time.Second; took > limit {
		t.Errorf("playing again took %v, more than the failover time and a margin (%v)", took, limit)
	}
}

// startNetnsRedis starts a private redis-server on loopback (the network
// namespace has no other) and returns its URL; it stops with the test.
func startNetnsRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not found")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	deadline := time.Now().Add(20 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server does not answer")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "redis://" + addr + "/0"
}
