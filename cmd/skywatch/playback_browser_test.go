package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// pbVideo is what the test reads of the single view's recording player.
type pbVideo struct {
	Mode, Asked, RecStart, Playhead string
	T                               float64
	Frames, W                       int
	Rate                            float64
}

const pbProbe = `(() => {
	const pb = document.querySelector('[data-testid=tile].expanded [data-testid=playback]');
	const v = pb && pb.parentElement.querySelector('[data-testid=pb-video]');
	if (!v) return null;
	return {mode: pb.dataset.mode, asked: pb.dataset.asked || '', recStart: pb.dataset.recStart || '', playhead: pb.dataset.playhead || '',
		t: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames, w: v.videoWidth, rate: v.playbackRate};
})()`

// jsList quotes a list of strings as a JavaScript array.
func jsList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = js(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// front brings the console's tab to the front: the patrol page's test
// opened a tab of its own, and Chromium pauses a video without sound in a
// tab in the background ("video-only background media was paused to save
// power"), as it would for an operator who looks at another tab.
func (b *browserRig) front(t *testing.T) {
	t.Helper()
	if err := b.page.call(b.ctx, "Page.bringToFront", nil, nil); err != nil {
		t.Fatalf("bring the console to the front: %v", err)
	}
}

// mouse sends a real mouse event (pressed, moved, released) at x, y.
func (b *browserRig) mouse(t *testing.T, kind string, x, y float64) {
	t.Helper()
	params := map[string]any{"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}
	if kind == "mouseMoved" {
		params["buttons"] = 1
	}
	if err := b.page.call(b.ctx, "Input.dispatchMouseEvent", params, nil); err != nil {
		t.Fatalf("mouse %s: %v", kind, err)
	}
}

// trackX is where on the expanded tile's timeline the wall-clock time at
// (ms) is, and the timeline's middle height.
func (c *consoleCase) trackX(t *testing.T, at time.Time) (x, y float64) {
	t.Helper()
	var p struct{ X, Y float64 }
	c.b.eval(t, fmt.Sprintf(`(() => {
		const tile = document.querySelector('[data-testid=tile].expanded');
		const r = tile.querySelector('[data-testid=pb-track]').getBoundingClientRect();
		const minutes = Number(tile.querySelector('[data-testid^=pb-range-][aria-pressed=true]').dataset.minutes);
		const to = Date.now(), from = to - minutes * 60e3;
		return {x: r.left + (%d - from) / (to - from) * r.width, y: r.top + r.height / 2};
	})()`, at.UnixMilli()), &p)
	return p.X, p.Y
}

// recordedSpans reads the spans the expanded tile's timeline shows.
func (c *consoleCase) recordedSpans(t *testing.T) [][2]time.Time {
	t.Helper()
	var raw [][2]string
	c.b.eval(t, `[...document.querySelectorAll('[data-testid=tile].expanded [data-testid=pb-span]')].map((s) => [s.dataset.start, s.dataset.end])`, &raw)
	var out [][2]time.Time
	for _, r := range raw {
		a, err1 := time.Parse(time.RFC3339Nano, r[0])
		b, err2 := time.Parse(time.RFC3339Nano, r[1])
		if err1 != nil || err2 != nil {
			t.Fatalf("span %v: %v %v", r, err1, err2)
		}
		out = append(out, [2]time.Time{a, b})
	}
	return out
}

// waitPlaying waits for the single view's recording to play (and cond,
// over p, the probe); it says what the player shows when it does not.
func (c *consoleCase) waitPlaying(t *testing.T, what, cond string) {
	t.Helper()
	expr := `(() => { const p = ` + pbProbe + `; return !!p && p.mode === 'playback' && p.frames > 0 && p.w > 0 && (` + cond + `); })()`
	deadline := time.Now().Add(20 * time.Second)
	for {
		var ok bool
		if err := c.b.page.eval(c.b.ctx, expr, &ok); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			var state any
			c.b.eval(t, `(() => { const t = document.querySelector('[data-testid=tile].expanded'); const v = t && t.querySelector('[data-testid=pb-video]');
				return {probe: `+pbProbe+`, msg: t && t.querySelector('[data-testid=pb-msg]').textContent, src: v && v.src,
					error: v && v.error && (v.error.code + ' ' + v.error.message), paused: v && v.paused, playError: t.querySelector('[data-testid=playback]').dataset.playError,
					buffered: v && [...Array(v.buffered.length).keys()].map((i) => [v.buffered.start(i), v.buffered.end(i)]), dur: v && v.duration, ready: v && v.readyState, network: v && v.networkState}; })()`, &state)
			c.b.shot(t, t.Name()+"-failed")
			t.Fatalf("%s did not happen within 20 s: %+v", what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// playback: in the single view of a wall camera, the timeline shows its
// recorded spans; a click on it plays the recording from there (time
// advances, frames are decoded, and the file starts at the keyframe at or
// before the clicked time), 2x plays faster, Live goes back to WebRTC,
// and a dragged span exported shows the SHA-256 of the bytes downloaded.
func (c *consoleCase) playback(t *testing.T) {
	b, demo := c.b, c.b.demo
	b.front(t)
	b.loginAs(t, "duty")
	b.eval(t, `Skywatch.navigate('wall')`, nil)
	// A camera on the wall with G.711 audio if there is one: the recorder
	// keeps it as LPCM (ipcm), which Chromium plays too.
	var cams []struct {
		ID     string
		Tracks []struct{ Kind string }
	}
	demo.admin.getJSON(t, "/api/cameras", &cams)
	var withAudio []string
	for _, c := range cams {
		for _, tr := range c.Tracks {
			if tr.Kind == "audio" {
				withAudio = append(withAudio, c.ID)
				break
			}
		}
	}
	b.waitJS(t, "a wall tile playing", `!!document.querySelector('[data-testid=wall-grid] [data-testid=tile][data-state=playing]')`, 30*time.Second)
	var camera string
	b.eval(t, fmt.Sprintf(`(() => { const tiles = [...document.querySelectorAll('[data-testid=wall-grid] [data-testid=tile][data-state=playing]')];
		return (tiles.find((t) => %s.includes(t.dataset.camera)) || tiles[0]).dataset.camera; })()`, jsList(withAudio)), &camera)
	tileSel := fmt.Sprintf(`[data-testid=wall-grid] [data-testid=tile][data-camera=%s]`, js(camera))
	b.click(t, tileSel+` [data-testid=tile-fullscreen]`)
	// The recording started with the demo: wait until 40 s of it show.
	b.waitJS(t, "the timeline with 40 s recorded", `[...document.querySelectorAll('[data-testid=tile].expanded [data-testid=pb-span]')]
		.some((s) => Date.parse(s.dataset.end) - Date.parse(s.dataset.start) > 40000)`, 90*time.Second)
	// The last 10 minutes: half a second a pixel.
	b.click(t, `[data-testid=tile].expanded [data-testid=pb-range-10]`)
	b.waitJS(t, "the 10-minute range", `!!document.querySelector('[data-testid=tile].expanded [data-testid=pb-range-10][aria-pressed=true]')`, 5*time.Second)
	spans := c.recordedSpans(t)
	last := spans[len(spans)-1]
	t.Logf("camera %s: %d spans on the timeline, the last %s to %s", camera, len(spans), last[0].Format(time.TimeOnly), last[1].Format(time.TimeOnly))
	b.shot(t, "playback-timeline")

	// A click on the timeline, 25 s before the end of the recording.
	x, y := c.trackX(t, last[1].Add(-25*time.Second))
	b.mouse(t, "mousePressed", x, y)
	b.mouse(t, "mouseReleased", x, y)
	c.waitPlaying(t, "the recording playing", `p.t > 0.3`)
	var first, later pbVideo
	b.eval(t, pbProbe, &first)
	time.Sleep(1500 * time.Millisecond)
	b.eval(t, pbProbe, &later)
	if later.T <= first.T || later.Frames <= first.Frames || later.Mode != "playback" {
		t.Errorf("the recording does not advance: %+v then %+v", first, later)
	}
	asked, err1 := time.Parse(time.RFC3339Nano, later.Asked)
	recStart, err2 := time.Parse(time.RFC3339Nano, later.RecStart)
	playhead, err3 := time.Parse(time.RFC3339Nano, later.Playhead)
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatalf("player times: %+v", later)
	}
	// The file starts at the keyframe at or before the asked time (the
	// demo's GOPs are at most 4 s), and plays the asked span.
	if recStart.After(asked.Add(time.Millisecond)) || asked.Sub(recStart) > 4500*time.Millisecond {
		t.Errorf("asked to play from %s, the recording starts at %s", asked.Format(time.StampMilli), recStart.Format(time.StampMilli))
	}
	if playhead.Before(recStart) || playhead.After(last[1].Add(10*time.Second)) || playhead.Sub(recStart) > time.Duration(later.T*float64(time.Second))+time.Second {
		t.Errorf("the playhead %s is not the recording's start %s + the video's time %.2f s", playhead.Format(time.StampMilli), recStart.Format(time.StampMilli), later.T)
	}
	t.Logf("clicked %s (%.1f s before the last span's end), playing from the keyframe at %s: %.2f s played, %d frames",
		asked.Format(time.StampMilli), last[1].Sub(asked).Seconds(), recStart.Format(time.StampMilli), later.T, later.Frames)
	var tileState string
	b.eval(t, `document.querySelector('[data-testid=tile].expanded').dataset.state`, &tileState)
	if tileState != "playback" {
		t.Errorf("the tile says %q during playback", tileState)
	}
	b.shot(t, "playback-playing")

	// 2x, then back to live.
	b.click(t, `[data-testid=tile].expanded [data-testid=pb-speed-2]`)
	b.waitJS(t, "playback at 2x", `(() => { const p = `+pbProbe+`; return p.rate === 2; })()`, 5*time.Second)
	b.click(t, `[data-testid=tile].expanded [data-testid=pb-live]`)
	b.waitJS(t, "live again", `(() => { const t = document.querySelector('[data-testid=tile].expanded'); const v = t.querySelector('video');
		return t.dataset.state === 'playing' && t.querySelector('[data-testid=playback]').dataset.mode === 'live' && v.videoWidth > 0; })()`, 20*time.Second)

	// Drag a span of about 20 s, well before the end (its segments are
	// flushed), and export it: the SHA-256 shown is that of the bytes.
	// Within the longest span (a camera's recording may have gaps); its
	// end is flushed, so the same span exported again has the same bytes.
	spans = c.recordedSpans(t)
	longest := spans[0]
	for _, sp := range spans {
		if sp[1].Sub(sp[0]) > longest[1].Sub(longest[0]) {
			longest = sp
		}
	}
	to := longest[1].Add(-2 * time.Second)
	from := to.Add(-18 * time.Second)
	if from.Before(longest[0].Add(time.Second)) {
		from = longest[0].Add(time.Second)
	}
	x1, y := c.trackX(t, from)
	x2, _ := c.trackX(t, to)
	b.mouse(t, "mousePressed", x1, y)
	for i := 1; i <= 4; i++ {
		b.mouse(t, "mouseMoved", x1+(x2-x1)*float64(i)/4, y)
	}
	b.mouse(t, "mouseReleased", x2, y)
	c.waitPlaying(t, "the dragged span playing", `true`)
	b.click(t, `[data-testid=tile].expanded [data-testid=pb-export]`)
	b.waitJS(t, "the export's SHA-256", `!!document.querySelector('[data-testid=tile].expanded [data-testid=pb-sha256]').dataset.sha256`, 30*time.Second)
	var shown, text string
	b.eval(t, `document.querySelector('[data-testid=tile].expanded [data-testid=pb-sha256]').dataset.sha256`, &shown)
	b.eval(t, `document.querySelector('[data-testid=tile].expanded [data-testid=pb-sha256]').textContent`, &text)
	b.shot(t, "playback-exported")
	var exportURL string
	for _, r := range b.rec.snapshot().requests {
		if strings.Contains(r.url, "/video.mp4?") && strings.Contains(r.url, "download=1") {
			exportURL = r.url
		}
	}
	if exportURL == "" {
		t.Fatal("the page made no export request")
	}
	u, err := url.Parse(exportURL)
	if err != nil {
		t.Fatal(err)
	}
	duty := demo.login(t, "duty")
	status, body := duty.do(t, http.MethodGet, u.RequestURI(), "")
	sum := sha256.Sum256(body)
	if status != http.StatusOK || hex.EncodeToString(sum[:]) != shown || !strings.Contains(text, shown) {
		t.Errorf("export %s: the page shows %q (%s); the same span downloaded again: %d, %d bytes, sha256 %x", u.RequestURI(), shown, text, status, len(body), sum)
	}
	start, _ := time.Parse(time.RFC3339Nano, u.Query().Get("start"))
	end, _ := time.Parse(time.RFC3339Nano, u.Query().Get("end"))
	t.Logf("exported %.1f s (%s): %d bytes, SHA-256 %s", end.Sub(start).Seconds(), u.RawQuery, len(body), shown)
	// The export is in the audit log with its hash.
	var page struct {
		Records []auditRecord `json:"records"`
	}
	demo.admin.getJSON(t, "/api/audit?user=duty&action=export", &page)
	found := false
	for _, r := range page.Records {
		found = found || strings.Contains(r.Detail, "sha256 "+shown) && r.Target == "camera:"+camera
	}
	if !found {
		t.Errorf("no export record with sha256 %s in the audit log: %+v", shown, page.Records)
	}
	// Leave the wall as it was.
	b.click(t, `[data-testid=tile].expanded [data-testid=tile-fullscreen]`)
	b.waitJS(t, "the wall again", `!document.querySelector('[data-testid=tile].expanded')`, 5*time.Second)
}

// incidentClip: the Dongcheng panic's incident view opens with its alarm
// clip beside the live picture; the clip starts before the alarm, plays,
// and its download shows the SHA-256 that the incident lists and that the
// bytes have.
func (c *consoleCase) incidentClip(t *testing.T) {
	b, demo := c.b, c.b.demo
	b.front(t)
	b.loginAs(t, "duty")
	inc := c.eastInc.ID
	b.eval(t, fmt.Sprintf(`Skywatch.navigate('alarms', {id: %s})`, js(inc)), nil)
	clipSel := fmt.Sprintf(`document.querySelector('[data-testid=incident-view][data-incident=%s] [data-testid=incident-clip]')`, js(inc))
	b.waitJS(t, "the alarm clip, complete", clipSel+`.dataset.status === 'complete'`, 60*time.Second)
	b.waitJS(t, "the alarm clip playing", `(() => { const v = `+clipSel+`.querySelector('video');
		return v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 0 && v.currentTime > 0.2; })()`, 20*time.Second)
	var got struct {
		Camera, Start, Alarm, URL string
		Live                      string
		Frames                    int
		T                         float64
	}
	b.eval(t, `(() => { const c = `+clipSel+`; const v = c.querySelector('video');
		const live = document.querySelector('[data-testid=incident-view] [data-testid=incident-camera]');
		return {camera: c.dataset.camera, start: c.dataset.start, alarm: c.dataset.alarm, url: c.dataset.url,
			live: live ? live.dataset.camera : '', frames: v.getVideoPlaybackQuality().totalVideoFrames, t: v.currentTime}; })()`, &got)
	start, err1 := time.Parse(time.RFC3339Nano, got.Start)
	alarm, err2 := time.Parse(time.RFC3339Nano, got.Alarm)
	if err1 != nil || err2 != nil || !start.Before(alarm) {
		t.Errorf("the clip starts at %q, the alarm was at %q: want the clip to start before it", got.Start, got.Alarm)
	}
	if got.Live != got.Camera {
		t.Errorf("the clip is of camera %s, beside the live picture of %s", got.Camera, got.Live)
	}
	// It goes on playing (or has played to its end).
	var later struct {
		T      float64
		Frames int
		Ended  bool
	}
	time.Sleep(1500 * time.Millisecond)
	b.eval(t, `(() => { const v = `+clipSel+`.querySelector('video');
		return {t: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames, ended: v.ended}; })()`, &later)
	if !later.Ended && (later.T <= got.T+0.5 || later.Frames <= got.Frames) {
		t.Errorf("the alarm clip of %s stalled: %.2f s and %d frames, then %.2f s and %d frames 1.5 s later", got.Camera, got.T, got.Frames, later.T, later.Frames)
	}
	t.Logf("alarm clip of %s: starts %.1f s before the alarm; %d frames, %.2f s played (ended %v)", got.Camera, alarm.Sub(start).Seconds(), later.Frames, later.T, later.Ended)
	b.shot(t, "incident-clip")

	// The clip's hash: the incident's, the download's, the bytes'.
	var detail struct {
		Clips []struct {
			Camera, URL, SHA256, Status string
		} `json:"clips"`
	}
	duty := demo.login(t, "duty")
	duty.getJSON(t, "/api/incidents/"+url.PathEscape(inc), &detail)
	want := ""
	for _, cl := range detail.Clips {
		if cl.URL == got.URL {
			want = cl.SHA256
		}
	}
	status, body := duty.do(t, http.MethodGet, got.URL, "")
	sum := sha256.Sum256(body)
	if want == "" || status != http.StatusOK || hex.EncodeToString(sum[:]) != want {
		t.Errorf("clip %s: listed sha256 %q; served %d, %d bytes with sha256 %x", got.URL, want, status, len(body), sum)
	}
	b.click(t, `[data-testid=incident-view] [data-testid=incident-clip-download]`)
	b.waitJS(t, "the downloaded clip's SHA-256", fmt.Sprintf(`(() => { const s = `+clipSel+`.querySelector('[data-testid=incident-clip-sha256]');
		return s.dataset.sha256 === %s && s.textContent.includes(%s) && s.textContent.includes('.mp4'); })()`, js(want), js(want)), 20*time.Second)
}
