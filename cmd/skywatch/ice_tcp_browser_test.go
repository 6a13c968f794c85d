package main

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// recordPeerConnections keeps every RTCPeerConnection the page makes in
// window.__pcs, so that the test can read their getStats.
const recordPeerConnections = `(() => {
	const Orig = window.RTCPeerConnection;
	window.__pcs = [];
	window.RTCPeerConnection = function (...args) {
		const pc = new Orig(...args);
		window.__pcs.push(pc);
		return pc;
	};
	window.RTCPeerConnection.prototype = Orig.prototype;
	Object.setPrototypeOf(window.RTCPeerConnection, Orig);
	// Which WHEP URL each offer went to, to name the peer connections.
	window.__whep = new Map();
	const origFetch = window.fetch;
	window.fetch = function (url, opts) {
		if (typeof url === 'string' && url.startsWith('/whep/') && opts && typeof opts.body === 'string') window.__whep.set(opts.body, url);
		return origFetch.apply(this, arguments);
	};
})()`

// pcStats samples the video of every connected peer connection: what a
// viewer would see of stalls, and which path ICE chose.
const pcStatsJS = `(async () => {
	const out = [];
	for (const pc of window.__pcs || []) {
		if (pc.connectionState !== 'connected') continue;
		const s = {proto: '', type: '', w: 0, h: 0, frames: 0, freezes: 0, freezeSec: 0, at: performance.now()};
		const stats = await pc.getStats();
		let pair = '';
		stats.forEach((r) => { if (r.type === 'transport' && r.selectedCandidatePairId) pair = r.selectedCandidatePairId; });
		stats.forEach((r) => {
			if (r.type === 'inbound-rtp' && r.kind === 'video') {
				s.w = r.frameWidth || 0; s.h = r.frameHeight || 0; s.frames = r.framesDecoded || 0;
				s.freezes = r.freezeCount || 0; s.freezeSec = r.totalFreezesDuration || 0;
			}
		});
		const p = pair && stats.get(pair);
		const local = p && stats.get(p.localCandidateId);
		if (local) { s.proto = local.protocol; s.type = local.candidateType; }
		s.id = window.__pcs.indexOf(pc);
		s.url = (pc.localDescription && window.__whep.get(pc.localDescription.sdp)) || '';
		out.push(s);
	}
	return out;
})()`

type pcSample struct {
	ID           int
	URL          string
	Proto, Type  string
	W, H, Frames int
	Freezes      int
	FreezeSec    float64
	At           float64
}

// iceViewing is what one phase of TestChromiumICETCP measured.
type iceViewing struct {
	wall, full time.Duration // first picture on all 4 tiles after login; full screen after the click
	stats      []pcStats
}

type pcStats struct {
	url            string
	proto, typ     string
	w, h           int
	fps            float64
	freezes        int     // since the connection started
	freezeSec      float64 // since the connection started
	watchFreezes   int     // during the 10 s watched
	decodedInWatch int
}

var udpPortLog = regexp.MustCompile(`webrtc_udp="?\[127\.0\.0\.1:(\d+)\]`)

// TestChromiumICETCP: a viewer whose network drops UDP still gets the wall
// and a full-screen camera, over ICE-TCP. The demo and Chromium run in a
// network namespace where an nftables rule drops every UDP datagram to and
// from Skywatch's ICE UDP port (the cameras' RTSP, on other ports, keeps
// working). The test logs the time to first picture, freezes and frame
// rate over 10 s with UDP open, then with UDP dropped; it fails when there
// is no picture, or when the path chosen with UDP dropped is not TCP.
func TestChromiumICETCP(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	chromium := chromiumPath(t)
	if os.Getenv(inNetnsEnv) == "" {
		runInNetns(t, chromium, "TestChromiumICETCP")
		return
	}
	loopbackOnly(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatalf("nft (nftables) is required to drop UDP in the namespace: %v", err)
	}
	demo := startDemo(t, "-dispatch", "manual", "-alarm-every", "0")
	m := udpPortLog.FindStringSubmatch(demo.out.String())
	if m == nil {
		t.Fatalf("the demo logged no ICE UDP port:\n%s", demo.out.String())
	}
	udpPort := m[1]
	b := startBrowser(t, chromium, demo, os.Getenv("SKYWATCH_TEST_SCREENSHOTS"))
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := b.page.call(ctx, "Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": recordPeerConnections}, nil); err != nil {
		t.Fatal(err)
	}
	b.rec.expectFailure("/api/me", 401)
	if err := b.page.navigate(ctx, demo.base+"/"); err != nil {
		t.Fatal(err)
	}

	// The first viewing pulls the cameras (on demand): not measured.
	viewOverICE(t, b, "udp", false)
	udp := viewOverICE(t, b, "udp", true)
	dropUDP(t, udpPort)
	tcp := viewOverICE(t, b, "tcp", true)

	t.Logf("%-14s %10s %10s", "", "UDP open", "UDP dropped")
	t.Logf("%-14s %10v %10v", "wall, 4 tiles", udp.wall.Round(time.Millisecond), tcp.wall.Round(time.Millisecond))
	t.Logf("%-14s %10v %10v", "full screen", udp.full.Round(time.Millisecond), tcp.full.Round(time.Millisecond))
	for _, v := range []struct {
		name string
		v    iceViewing
	}{{"UDP open", udp}, {"UDP dropped", tcp}} {
		for _, s := range v.v.stats {
			t.Logf("%s: %s over %s (%s) %dx%d: %.1f frames/s over 10 s, %d freezes in them; %d freezes (%.2f s) since connected",
				v.name, s.url, s.proto, s.typ, s.w, s.h, s.fps, s.watchFreezes, s.freezes, s.freezeSec)
		}
	}
}

// dropUDP drops UDP to and from port on loopback: the viewer's network
// blocks UDP.
func dropUDP(t *testing.T, port string) {
	t.Helper()
	for _, args := range [][]string{
		{"add", "table", "inet", "icetcp"},
		{"add", "chain", "inet", "icetcp", "in", "{ type filter hook input priority 0; }"},
		{"add", "rule", "inet", "icetcp", "in", "udp", "dport", port, "drop"},
		{"add", "rule", "inet", "icetcp", "in", "udp", "sport", port, "drop"},
	} {
		if out, err := exec.Command("nft", args...).CombinedOutput(); err != nil {
			t.Fatalf("nft %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	t.Logf("UDP to and from port %s dropped", port)
}

// viewOverICE logs in as the duty officer, waits for the wall's four tiles,
// shows the first tile full screen (its main stream), samples the peer
// connections over 10 s (when measuring), and logs out. Every connected peer connection must
// have chosen proto and decoded pictures.
func viewOverICE(t *testing.T, b *browserRig, proto string, measure bool) iceViewing {
	t.Helper()
	var v iceViewing
	start := time.Now()
	b.loginAs(t, "duty")
	b.waitJS(t, "4 wall tiles playing over "+proto, `(() => {
		const tiles = [...document.querySelectorAll('[data-testid=wall-grid] [data-testid=tile]')];
		return tiles.length === 4 && tiles.every((t) => { const v = t.querySelector('video');
			return t.dataset.state === 'playing' && v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 0; });
	})()`, 30*time.Second)
	v.wall = time.Since(start)

	start = time.Now()
	b.click(t, `[data-testid=wall-grid] [data-testid=tile] [data-testid=tile-fullscreen]`)
	b.waitJS(t, "the full-screen tile playing over "+proto, `(() => {
		const t = document.querySelector('[data-testid=tile].expanded'); const v = t && t.querySelector('video');
		return !!v && t.dataset.state === 'playing' && v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 0;
	})()`, 30*time.Second)
	v.full = time.Since(start)
	if !measure {
		b.logout(t)
		return v
	}
	b.shot(t, "icetcp-"+proto)

	var first, last []pcSample
	b.eval(t, pcStatsJS, &first)
	time.Sleep(10 * time.Second)
	b.eval(t, pcStatsJS, &last)
	if len(last) == 0 {
		t.Fatalf("over %s: no connected peer connection", proto)
	}
	before := map[int]pcSample{}
	for _, s := range first {
		before[s.ID] = s
	}
	for _, s := range last {
		f, ok := before[s.ID]
		if !ok {
			continue // connected during the sample
		}
		st := pcStats{url: s.URL, proto: s.Proto, typ: s.Type, w: s.W, h: s.H, freezes: s.Freezes, freezeSec: s.FreezeSec,
			watchFreezes: s.Freezes - f.Freezes, decodedInWatch: s.Frames - f.Frames}
		if d := (s.At - f.At) / 1000; d > 0 {
			st.fps = float64(st.decodedInWatch) / d
		}
		v.stats = append(v.stats, st)
		if proto == "tcp" && s.Proto != "tcp" {
			t.Errorf("a peer connection (%dx%d) chose %q with UDP dropped, want tcp", s.W, s.H, s.Proto)
		}
		if st.decodedInWatch == 0 {
			t.Errorf("a peer connection (%dx%d) over %s decoded no picture in 10 s", s.W, s.H, proto)
		}
	}
	if len(v.stats) == 0 {
		t.Fatalf("over %s: no peer connection lasted the 10 s", proto)
	}
	b.logout(t)
	return v
}
