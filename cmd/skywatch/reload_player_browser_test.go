package main

import (
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
	"github.com/skywatch/skywatch/viewer"
)

// TestChromiumPlayerCameraRemovedOrChanged plays two cameras in Chromium
// with the console's own player, then the camera manager applies a
// configuration without the first and with another URL for the second:
// the first player stops for good and says the camera was removed; the
// second says the camera's settings changed and plays again by itself,
// from the new URL.
func TestChromiumPlayerCameraRemovedOrChanged(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	chromium := chromiumPath(t)
	if os.Getenv(inNetnsEnv) == "" {
		runInNetns(t, chromium, "TestChromiumPlayerCameraRemovedOrChanged")
		return
	}
	loopbackOnly(t)
	cam := hardware.NewCamera(hardware.CameraConfig{Address: "127.0.0.1:0", Paths: []hardware.CameraPath{
		{Path: "/gone", Clip: hardware.ClipGOP1s}, {Path: "/moved", Clip: hardware.ClipGOP1s}, {Path: "/moved2", Clip: hardware.ClipGOP1s}}})
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	var logs syncBuffer
	defer func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	}()
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	gone := ingest.CameraConfig{ID: "gone", URL: cam.URL("/gone")}
	moved := ingest.CameraConfig{ID: "moved", URL: cam.URL("/moved")}
	mgr := ingest.NewManager(ingest.Config{Cameras: []ingest.CameraConfig{gone, moved}}, logger.With("component", "ingest"))
	defer mgr.Close()
	mgr.Start()
	srv, err := viewer.New(viewer.Config{HTTPAddress: "127.0.0.1:0", UDPAddress: "127.0.0.1:0", TCPAddress: "127.0.0.1:0"},
		viewer.Deps{Cameras: viewer.Adapt[*ingest.Reader](mgr), Registry: prometheus.NewRegistry()}, logger.With("component", "viewer"))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Close() }()

	br := startBrowser(t, chromium, &demoRig{base: "http://" + srv.Addr().String()}, os.Getenv("SKYWATCH_TEST_SCREENSHOTS"))
	br.waitJS(t, "the console's core", `typeof window.Skywatch === 'object' && typeof window.Skywatch.Player === 'function'`, 20*time.Second)
	br.eval(t, `(() => {
		window.players = {};
		window.states = {};
		for (const id of ['gone', 'moved']) {
			const v = document.createElement('video');
			v.id = 'video-' + id;
			document.body.append(v);
			window.states[id] = [];
			const p = window.Skywatch.Player(v, id, { stream: 'main', onState: (s, d) => window.states[id].push([performance.now(), s, d]) });
			window.players[id] = p;
			p.start();
		}
		return true;
	})()`, nil)
	playing := func(id string) string {
		return fmt.Sprintf(`(() => {
			const v = document.getElementById('video-%[1]s');
			return window.players['%[1]s'].state === 'playing' && v.videoWidth > 0 &&
				v.getVideoPlaybackQuality().totalVideoFrames > (window.frames_%[1]s || 0);
		})()`, id)
	}
	br.waitJS(t, "both cameras playing", playing("gone")+" && "+playing("moved"), 30*time.Second)

	br.eval(t, `(() => {
		window.frames_moved = document.getElementById('video-moved').getVideoPlaybackQuality().totalVideoFrames + 25;
		window.applied = performance.now();
		return true;
	})()`, nil)
	moved.URL = cam.URL("/moved2")
	ch, err := mgr.Apply(ingest.Config{Cameras: []ingest.CameraConfig{moved}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("applied: %+v", ch)

	br.waitJS(t, "the removed camera's player to stop and say why", `window.players.gone.state === 'removed' &&
		window.players.gone.detail === Skywatch.t('player.removed')`, 30*time.Second)
	br.waitJS(t, "the changed camera's player to play again", `window.states.moved.some((s) => s[2].startsWith(Skywatch.t('player.changed'))) && `+
		playing("moved"), 30*time.Second)
	br.shot(t, "player-camera-removed-or-changed")
	var took struct{ Removed, Changed float64 }
	br.eval(t, `(() => {
		const at = (id, st) => { const s = window.states[id].filter((x) => x[1] === st); return s[s.length - 1][0] - window.applied; };
		return { Removed: at('gone', 'removed'), Changed: at('moved', 'playing') };
	})()`, &took)
	var states [][]any
	br.eval(t, `Object.entries(window.states).map(([id, l]) => [id, l.filter((s) => s[0] > window.applied).map((s) => [Math.round(s[0] - window.applied), s[1], s[2]])])`, &states)
	t.Logf("after Apply: removed shown in %.0f ms, the changed camera playing again in %.0f ms; states (ms after): %v",
		took.Removed, took.Changed, states)

	// The removed camera's player asks no more: no offer for 3 s.
	var before, after int
	count := `performance.getEntriesByType('resource').filter((e) => e.name.includes('/whep/gone')).length`
	br.eval(t, count, &before)
	time.Sleep(3 * time.Second)
	br.eval(t, count, &after)
	if after != before || !func() bool {
		var st string
		br.eval(t, `window.players.gone.state`, &st)
		return st == "removed"
	}() {
		t.Errorf("the removed camera's player went on: %d requests to /whep/gone in 3 s", after-before)
	}
	if n := cam.Sessions("/moved2"); n != 1 {
		t.Errorf("%d sessions on the new URL, want 1", n)
	}
	if n := cam.Sessions("/gone") + cam.Sessions("/moved"); n != 0 {
		t.Errorf("%d sessions left on the removed camera and the old URL", n)
	}
}
