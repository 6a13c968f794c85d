package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// avProbeJS installs, once per document, a record of every WebRTC session
// the page opens, whoever opens it (the console's own player or avPlay):
// when its WHEP POST went out, when it connected, every video frame the
// browser presented (requestVideoFrameCallback: the frame's hold,
// expectedDisplayTime - receiveTime) and the inbound streams' getStats
// twice a second (jitter buffers, estimated playout timestamps, audio
// samples and energy). It wraps RTCPeerConnection and fetch; a POST to a
// WHEP URL is matched to its peer connection by the offer it carries.
// window.__av.summary() returns the record.
const avProbeJS = `(() => {
	if (window.__av) return true;
	const av = window.__av = { probes: [] };
	const maxFrames = 5000, maxStats = 400;
	const Orig = window.RTCPeerConnection;
	const stats = async (p) => {
		if (p.pc.signalingState === 'closed') { clearInterval(p.timer); return; }
		let r;
		try { r = await p.pc.getStats(); } catch (_) { return; }
		const s = { t: performance.now() };
		r.forEach((x) => {
			if (x.type === 'inbound-rtp' && (x.kind === 'video' || x.kind === 'audio')) {
				s[x.kind] = { jbd: x.jitterBufferDelay, jbe: x.jitterBufferEmittedCount, jbt: x.jitterBufferTargetDelay,
					ept: x.estimatedPlayoutTimestamp, packets: x.packetsReceived, frames: x.framesDecoded,
					samples: x.totalSamplesReceived, concealed: x.concealedSamples, energy: x.totalAudioEnergy };
			}
			if (x.type === 'media-playout') s.playout = { delay: x.totalPlayoutDelay, count: x.totalSamplesCount };
		});
		if (p.stats.length < maxStats) p.stats.push(s);
	};
	const watch = (p, track) => {
		// The page sets the video's srcObject in its own track handler,
		// which runs after this one.
		let tries = 0;
		const find = () => {
			const v = [...document.querySelectorAll('video')].find((v) => v.srcObject && v.srcObject.getTracks().includes(track));
			if (!v) { if (++tries < 400) setTimeout(find, 5); return; }
			const onFrame = (now, md) => {
				if (p.pc.signalingState === 'closed') return;
				if (!p.first) p.first = now;
				if (p.frames.length < maxFrames) {
					p.frames.push([now, md.expectedDisplayTime - md.receiveTime,
						md.captureTime ? md.expectedDisplayTime - md.captureTime : 0]);
				}
				v.requestVideoFrameCallback(onFrame);
			};
			v.requestVideoFrameCallback(onFrame);
		};
		setTimeout(find, 0);
	};
	window.RTCPeerConnection = class extends Orig {
		constructor(...args) {
			super(...args);
			const p = { pc: this, created: performance.now(), post: 0, url: '', connected: 0, first: 0, frames: [], stats: [] };
			av.probes.push(p);
			this.addEventListener('connectionstatechange', () => {
				if (this.connectionState === 'connected' && !p.connected) p.connected = performance.now();
			});
			this.addEventListener('track', (ev) => { if (ev.track.kind === 'video') watch(p, ev.track); });
			p.timer = setInterval(() => stats(p), 500);
		}
	};
	const origFetch = window.fetch;
	window.fetch = function (input, init) {
		const url = typeof input === 'string' ? input : input.url;
		if (init && init.method === 'POST' && /whep/.test(url)) {
			const p = av.probes.find((p) => !p.post && p.pc.localDescription && p.pc.localDescription.sdp === init.body);
			if (p) { p.post = performance.now(); p.url = url; }
		}
		return origFetch.apply(this, arguments);
	};
	// play opens a WHEP session on url as a plain page would (one video
	// element, audio not muted), for seconds, and then ends it.
	av.play = async (url, headers, seconds) => {
		const video = document.createElement('video');
		Object.assign(video, { autoplay: true, playsInline: true, width: 640, height: 360 });
		video.style.cssText = 'position:fixed;right:0;bottom:0;z-index:9999';
		document.body.append(video);
		const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
		pc.addTransceiver('video', { direction: 'recvonly' });
		pc.addTransceiver('audio', { direction: 'recvonly' });
		pc.ontrack = (ev) => {
			const ms = ev.streams[0] || new MediaStream([ev.track]);
			if (video.srcObject !== ms) video.srcObject = ms;
			video.play().catch(() => {});
		};
		await pc.setLocalDescription(await pc.createOffer());
		await new Promise((resolve) => {
			if (pc.iceGatheringState === 'complete') return resolve();
			pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
		});
		const resp = await fetch(url, { method: 'POST', headers: Object.assign({ 'Content-Type': 'application/sdp' }, headers || {}),
			body: pc.localDescription.sdp, credentials: 'same-origin', cache: 'no-store' });
		const text = await resp.text();
		if (resp.status !== 201) { pc.close(); video.remove(); throw new Error('WHEP ' + resp.status + ': ' + text); }
		await pc.setRemoteDescription({ type: 'answer', sdp: text });
		await new Promise((r) => setTimeout(r, seconds * 1000));
		const loc = resp.headers.get('Location');
		if (loc) await fetch(new URL(loc, new URL(url, location.href)), { method: 'DELETE', headers: headers || {}, credentials: 'same-origin' }).catch(() => {});
		await stats(av.probes.find((p) => p.pc === pc));
		pc.close();
		video.remove();
		return true;
	};
	av.summary = (from) => av.probes.slice(from || 0).map((p) => ({ url: p.url, created: p.created, post: p.post,
		connected: p.connected, first: p.first, frames: p.frames, stats: p.stats }));
	return true;
})()`

// avProbe is one WebRTC session as avProbeJS recorded it; times are the
// page's clock (performance.now, ms).
type avProbe struct {
	URL       string
	Created   float64
	Post      float64
	Connected float64
	First     float64
	// Frames: [page time, hold (expectedDisplayTime - receiveTime), expectedDisplayTime - captureTime (0: unknown)].
	Frames [][3]float64
	Stats  []avStatsSample
}

type avStatsSample struct {
	T            float64
	Video, Audio *avTrackStats
	Playout      *struct{ Delay, Count float64 }
}

type avTrackStats struct {
	JBD, JBE, JBT, EPT float64
	Packets, Frames    float64
	Samples, Concealed float64
	Energy             float64
}

// avReport is what a test logs of one session.
type avReport struct {
	connected, first float64 // ms after the POST; 0: never
	holdBySecond     []float64
	frameBySecond    []int
	hold810          float64 // median hold over 8-10 s
	frames           int
	// per second: the jitter buffers' mean delay over that second, ms
	videoJB, audioJB []float64
	// per second: audio's estimated playout timestamp minus video's, ms
	// (positive: the sound plays ahead of the picture)
	avOffset []float64
	// audio, at the end
	audioPackets, audioSamples, audioConcealed, audioEnergy float64
	playoutDelay                                            float64 // mean audio playout delay, ms (media-playout)
}

// report summarises the first seconds of p after its POST.
func (p avProbe) report(seconds int) avReport {
	var r avReport
	if p.Post == 0 {
		return r
	}
	if p.Connected > 0 {
		r.connected = p.Connected - p.Post
	}
	if p.First > 0 {
		r.first = p.First - p.Post
	}
	r.frames = len(p.Frames)
	bySec := make([][]float64, seconds)
	var late []float64
	for _, f := range p.Frames {
		s := int((f[0] - p.Post) / 1000)
		if s < 0 || s >= seconds {
			continue
		}
		bySec[s] = append(bySec[s], f[1])
		if s >= seconds-2 {
			late = append(late, f[1])
		}
	}
	for _, hs := range bySec {
		r.holdBySecond = append(r.holdBySecond, avMedian(hs))
		r.frameBySecond = append(r.frameBySecond, len(hs))
	}
	r.hold810 = avMedian(late)
	// Stats: the sample closest to each second's end against the one
	// closest to its start.
	at := func(ms float64) *avStatsSample {
		var best *avStatsSample
		for i := range p.Stats {
			s := &p.Stats[i]
			if best == nil || math.Abs(s.T-ms) < math.Abs(best.T-ms) {
				best = s
			}
		}
		return best
	}
	jb := func(a, b *avTrackStats) float64 {
		if a == nil || b == nil || b.JBE <= a.JBE {
			return math.NaN()
		}
		return (b.JBD - a.JBD) / (b.JBE - a.JBE) * 1000
	}
	for s := range seconds {
		a, b := at(p.Post+float64(s)*1000), at(p.Post+float64(s+1)*1000)
		if a == nil || b == nil {
			break
		}
		r.videoJB = append(r.videoJB, jb(a.Video, b.Video))
		r.audioJB = append(r.audioJB, jb(a.Audio, b.Audio))
		off := math.NaN()
		if b.Video != nil && b.Audio != nil && b.Video.EPT > 0 && b.Audio.EPT > 0 {
			off = b.Audio.EPT - b.Video.EPT
		}
		r.avOffset = append(r.avOffset, off)
	}
	if n := len(p.Stats); n > 0 {
		last := p.Stats[n-1]
		if last.Audio != nil {
			r.audioPackets, r.audioSamples = last.Audio.Packets, last.Audio.Samples
			r.audioConcealed, r.audioEnergy = last.Audio.Concealed, last.Audio.Energy
		}
		if last.Playout != nil && last.Playout.Count > 0 {
			r.playoutDelay = last.Playout.Delay / last.Playout.Count * 1000
		}
	}
	return r
}

func avMedian(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// String is the report as one block of log lines.
func (r avReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "connected %s, first picture %s after the POST; hold at 8-10 s %s (median of %d frames in all)\n",
		avMS(r.connected), avMS(r.first), avMS(r.hold810), r.frames)
	fmt.Fprintf(&b, "  hold by second (ms):         %s\n", avRow(r.holdBySecond))
	fmt.Fprintf(&b, "  frames by second:            %s\n", avIntRow(r.frameBySecond))
	fmt.Fprintf(&b, "  video jitter buffer (ms):    %s\n", avRow(r.videoJB))
	fmt.Fprintf(&b, "  audio jitter buffer (ms):    %s\n", avRow(r.audioJB))
	fmt.Fprintf(&b, "  audio minus video playout (ms): %s\n", avRow(r.avOffset))
	if r.audioPackets > 0 {
		fmt.Fprintf(&b, "  audio: %.0f packets, %.0f samples (%.1f%% concealed), energy %.3g, playout delay %.0f ms",
			r.audioPackets, r.audioSamples, 100*r.audioConcealed/max(r.audioSamples, 1), r.audioEnergy, r.playoutDelay)
	} else {
		b.WriteString("  audio: none received")
	}
	return b.String()
}

func avMS(v float64) string {
	if v == 0 || math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.0f ms", v)
}

func avRow(vs []float64) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		if math.IsNaN(v) {
			parts[i] = "-"
		} else {
			parts[i] = fmt.Sprintf("%.0f", v)
		}
	}
	return strings.Join(parts, " ")
}

func avIntRow(vs []int) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, " ")
}

// checkAV fails t when the session showed no picture, or, on a camera with
// sound, when no sound was received and played.
func checkAV(t *testing.T, what string, r avReport, audio bool) {
	t.Helper()
	if r.first == 0 || r.frames < 10 {
		t.Errorf("%s: no moving picture (%d frames presented)", what, r.frames)
	}
	if audio && (r.audioPackets == 0 || r.audioSamples == 0 || r.audioConcealed >= r.audioSamples) {
		t.Errorf("%s: the camera's sound was not received and played: %.0f packets, %.0f samples (%.0f concealed), energy %g",
			what, r.audioPackets, r.audioSamples, r.audioConcealed, r.audioEnergy)
	}
}

// avSessionLength is how long every measured session lasts.
const avSessionLength = 10 * time.Second
