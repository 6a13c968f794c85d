package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// avCameras are the two demo cameras the live picture is measured on:
// both send a keyframe every 4 s and are pulled always (-always), one with
// G.711 sound and one without.
var avCameras = []avCamera{
	{"north-gate", "east-village", true},
	{"school-road", "west-village", false},
}

// avCamera is a measured demo camera: its ID, the village whose devices'
// incidents show it first, and whether it sends sound.
type avCamera struct {
	id, village string
	audio       bool
}

// avDemoArgs are the demo's flags for the live picture: three cameras (the
// two measured and one more), both measured ones pulled always, no random
// alarms and no dispatch, to keep the machine quiet.
var avDemoArgs = []string{"-cameras", "3", "-always", "north-gate,school-road", "-dispatch", "manual",
	"-alarm-every", "0", "-units", "0"}

// TestChromiumLiveAV measures the console's live picture in Chromium, for
// a camera with sound and one without: in a wall tile (sub stream) and in
// the incident view (main stream), one session of 10 s at a time. It logs,
// from the page's clock: the time from the WHEP POST to the connection and
// to the first picture, the hold of every presented frame
// (requestVideoFrameCallback: expectedDisplayTime - receiveTime) second by
// second and its median over 8-10 s, both jitter buffers' delay second by
// second, and how far the sound's playout is ahead of the picture's
// (getStats: estimatedPlayoutTimestamp). It asserts no timing: it fails when
// no picture comes, or when the camera's sound is not received and played.
func TestChromiumLiveAV(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	chromium := chromiumPath(t)
	if os.Getenv(inNetnsEnv) == "" {
		runInNetns(t, chromium, "TestChromiumLiveAV")
		return
	}
	loopbackOnly(t)
	demo := startDemo(t, avDemoArgs...)
	b := startBrowser(t, chromium, demo, os.Getenv("SKYWATCH_TEST_SCREENSHOTS"))
	b.installAVProbe(t)
	b.loginAs(t, "duty")
	for _, cam := range avCameras {
		t.Run("Wall/"+cam.id, func(t *testing.T) {
			r := b.avWallTile(t, cam.id)
			t.Logf("%s in a wall tile (sub stream, sound %v): %s", cam.id, cam.audio, r)
			checkAV(t, cam.id+" in a wall tile", r, cam.audio)
		})
		t.Run("Incident/"+cam.id, func(t *testing.T) {
			r := b.avIncident(t, cam.id, cam.village)
			t.Logf("%s in the incident view (main stream, sound %v): %s", cam.id, cam.audio, r)
			checkAV(t, cam.id+" in the incident view", r, cam.audio)
		})
	}
}

// installAVProbe installs avProbeJS in the console's document, once it has
// loaded.
func (b *browserRig) installAVProbe(t *testing.T) {
	t.Helper()
	b.waitJS(t, "the console page", fmt.Sprintf(`document.readyState === 'complete' && location.href.startsWith(%s)`,
		js(b.demo.base)), 20*time.Second)
	b.eval(t, avProbeJS, nil)
}

// avQuiet leaves whatever view plays video for the alarm queue, which
// plays none, and lets the sessions end.
func (b *browserRig) avQuiet(t *testing.T) {
	t.Helper()
	b.eval(t, `Skywatch.navigate('alarms')`, nil)
	b.waitJS(t, "no video in the page", `document.querySelectorAll('video').length === 0`, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // for the sessions' DELETE
}

// avWallTile shows camera alone on the wall for one session and returns
// its report.
func (b *browserRig) avWallTile(t *testing.T, camera string) avReport {
	t.Helper()
	b.avQuiet(t)
	return b.avConsoleSession(t, "/whep/"+camera+"?stream=sub", fmt.Sprintf(`Skywatch.navigate('wall', {cameras: %s, layout: '1'})`, js(camera)))
}

// avIncident raises a panic in village, whose devices are linked to camera,
// opens its incident, and returns the report of camera's session in the
// incident view.
func (b *browserRig) avIncident(t *testing.T, camera, village string) avReport {
	t.Helper()
	b.avQuiet(t)
	d := b.demo.device(t, village)
	publishEvent(t, b.demo.connectDevice(t, d), d, "panic", "120")
	inc := b.demo.waitIncident(t, d.ID)
	if len(inc.Cameras) == 0 || inc.Cameras[0].ID != camera {
		t.Fatalf("incident %s of %s: cameras %+v, want %s first", inc.ID, village, inc.Cameras, camera)
	}
	return b.avConsoleSession(t, "/whep/"+camera+"?stream=main", fmt.Sprintf(`Skywatch.navigate('alarms', {id: %s})`, js(inc.ID)))
}

// avConsoleSession runs open (JavaScript that makes the console play),
// waits for the session whose WHEP URL contains urlPart, lets it play
// avSessionLength, and returns its report.
func (b *browserRig) avConsoleSession(t *testing.T, urlPart, open string) avReport {
	t.Helper()
	var from int
	b.eval(t, `window.__av.probes.length`, &from)
	b.eval(t, open, nil)
	pick := fmt.Sprintf(`window.__av.probes.slice(%d).findIndex((p) => p.post > 0 && p.url.includes(%s))`, from, js(urlPart))
	b.waitJS(t, "the WHEP request for "+urlPart, pick+` >= 0`, 20*time.Second)
	time.Sleep(avSessionLength + 200*time.Millisecond)
	var i int
	b.eval(t, pick, &i)
	var probes []avProbe
	b.eval(t, fmt.Sprintf(`window.__av.summary(%d)`, from+i), &probes)
	if len(probes) == 0 {
		t.Fatalf("no session recorded for %s", urlPart)
	}
	return probes[0].report(int(avSessionLength / time.Second))
}

// avPageSession opens a tab on pageURL (a page without script of its own,
// of the WHEP server's origin), opens a WHEP session on whepURL from the
// tab's own code (avProbeJS's play: one video element, sound on) for
// avSessionLength, closes the tab and returns the session's report.
// headersJS is a JavaScript expression, awaited in the tab, of the headers
// that go with the POST and the DELETE.
func (b *browserRig) avPageSession(t *testing.T, pageURL, whepURL, headersJS string) avReport {
	t.Helper()
	page, err := openPage(b.ctx, b.port, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer page.close()
	p := &browserRig{ctx: b.ctx, demo: b.demo, port: b.port, page: page, rec: newSessionRecord(), shots: b.shots}
	if err := page.call(b.ctx, "Page.bringToFront", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := page.navigate(b.ctx, pageURL); err != nil {
		t.Fatal(err)
	}
	p.waitJS(t, "the page "+pageURL, fmt.Sprintf(`document.readyState === 'complete' && location.href === %s`, js(pageURL)), 20*time.Second)
	p.eval(t, avProbeJS, nil)
	p.eval(t, fmt.Sprintf(`(async () => window.__av.play(%s, await (%s), %d))()`, js(whepURL), headersJS,
		int(avSessionLength/time.Second)), nil)
	var probes []avProbe
	p.eval(t, `window.__av.summary(0)`, &probes)
	if err := b.page.call(b.ctx, "Page.bringToFront", nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, pr := range probes {
		if strings.HasSuffix(pr.URL, whepURL) {
			return pr.report(int(avSessionLength / time.Second))
		}
	}
	t.Fatalf("no session recorded for %s", whepURL)
	return avReport{}
}
