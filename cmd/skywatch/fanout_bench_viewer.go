package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// newViewerAPI builds a viewer's pion API: pion's default codecs (several
// H.264 profiles, PCMU and PCMA among them) and interceptors (NACK, RTCP
// reports, TWCC), as a browser offers, loopback candidates only, and the
// viewer's tap on its sockets (see tapNet).
func newViewerAPI(v *benchViewer) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	tn, err := newTapNet(v)
	if err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	se.SetNet(tn)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// whepTarget is where viewers post their offers and what they send with
// them (a session cookie and a CSRF token for Skywatch).
type whepTarget struct {
	url    string
	header http.Header
	client *http.Client
}

// benchViewer is one receive-only WHEP viewer. Its track goroutines count
// what arrives; the bench reads the counts through snapshot.
type benchViewer struct {
	pc       *webrtc.PeerConnection
	target   whepTarget
	location string
	posted   time.Time
	wg       sync.WaitGroup

	// counting is set once the viewer has its first keyframe: from then
	// on its sockets count the RTP packets (tap).
	counting atomic.Bool

	mu        sync.Mutex
	videoSSRC uint32
	video     seqCounter
	audio     seqCounter
	firstTS   uint32
	firstSeen bool
	// firstKey is the time from the POST to the first packet of the first
	// access unit with an IDR; keyFirst tells whether that unit was the
	// first one received. Zero until it arrives.
	firstKey time.Duration
	keyFirst bool
	firstAU  bool // still in the first access unit received
}

// seqCounter counts one track's packets and the sequence numbers they
// span, to tell losses.
type seqCounter struct {
	packets, bytes int64
	started        bool
	base, highest  int64 // extended sequence numbers
}

func (c *seqCounter) add(seq uint16, size int) {
	c.packets++
	c.bytes += int64(size)
	if !c.started {
		c.started, c.base, c.highest = true, int64(seq), int64(seq)
		return
	}
	// Extend to 64 bits around the highest seen.
	ext := c.highest&^0xffff | int64(seq)
	switch {
	case ext < c.highest-0x8000:
		ext += 0x10000
	case ext > c.highest+0x8000:
		ext -= 0x10000
	}
	c.highest = max(c.highest, ext)
}

// expected is how many packets the sequence numbers seen so far span.
func (c *seqCounter) expected() int64 {
	if !c.started {
		return 0
	}
	return c.highest - c.base + 1
}

// viewerCounts is a viewer's counts at one time.
type viewerCounts struct {
	videoPackets, audioPackets int64
	bytes                      int64
	expected                   int64 // packets the sequence numbers span, both tracks
}

func (v *benchViewer) snapshot() viewerCounts {
	v.mu.Lock()
	defer v.mu.Unlock()
	return viewerCounts{videoPackets: v.video.packets, audioPackets: v.audio.packets,
		bytes: v.video.bytes + v.audio.bytes, expected: v.video.expected() + v.audio.expected()}
}

// keyframe is the viewer's first-keyframe time and whether its first
// access unit was a keyframe; ok false before any keyframe.
func (v *benchViewer) keyframe() (d time.Duration, keyFirst, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.firstKey, v.keyFirst, v.firstKey > 0
}

// startViewer makes a viewer, posts its offer and applies the answer. It
// returns once the answer is applied; connected then tells when media can
// flow.
func startViewer(ctx context.Context, target whepTarget) (*benchViewer, error) {
	v := &benchViewer{target: target}
	api, err := newViewerAPI(v)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	v.pc = pc
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			v.close(ctx)
			return nil, err
		}
	}
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		v.wg.Add(1)
		go v.read(track)
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		v.close(ctx)
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		v.close(ctx)
		return nil, err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		v.close(ctx)
		return nil, ctx.Err()
	}
	v.posted = time.Now()
	answer, location, err := postOffer(ctx, target, pc.LocalDescription().SDP)
	if err != nil {
		v.close(ctx)
		return nil, err
	}
	v.location = location
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		v.close(ctx)
		return nil, fmt.Errorf("answer: %w", err)
	}
	return v, nil
}

// postOffer sends a WHEP offer and returns the answer and its Location.
func postOffer(ctx context.Context, target whepTarget, offer string) (answer, location string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.url, strings.NewReader(offer))
	if err != nil {
		return "", "", err
	}
	for k, vs := range target.header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := target.client.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("POST %s: status %d: %.200s", target.url, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return string(b), resp.Header.Get("Location"), nil
}

// waitConnected waits until the viewer's peer connection is connected.
func (v *benchViewer) waitConnected(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		switch v.pc.ConnectionState() {
		case webrtc.PeerConnectionStateConnected:
			return nil
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			return errors.New("peer connection failed")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not connected: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// read counts a track's packets until the peer connection closes. It
// reads into one buffer and parses only the header, so that the bench
// process spends little on each packet.
func (v *benchViewer) read(track *webrtc.TrackRemote) {
	defer v.wg.Done()
	video := track.Kind() == webrtc.RTPCodecTypeVideo
	if video {
		v.mu.Lock()
		v.videoSSRC = uint32(track.SSRC())
		v.mu.Unlock()
	}
	buf := make([]byte, 1600)
	var h rtp.Header
	for {
		n, _, err := track.Read(buf)
		if err != nil {
			return
		}
		hl, err := h.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		v.mu.Lock()
		if video {
			v.video.add(h.SequenceNumber, n)
			v.noteVideo(h.Timestamp, buf[hl:n])
		} else {
			v.audio.add(h.SequenceNumber, n)
		}
		v.mu.Unlock()
	}
}

// noteVideo follows access units (by timestamp) until the first keyframe.
// The caller holds mu.
func (v *benchViewer) noteVideo(ts uint32, payload []byte) {
	if v.firstKey > 0 {
		return
	}
	if !v.firstSeen {
		v.firstSeen, v.firstTS, v.firstAU = true, ts, true
	} else if v.firstAU && ts != v.firstTS {
		v.firstAU = false
	}
	if h264HasIDR(payload) {
		v.firstKey = max(time.Since(v.posted), time.Nanosecond)
		v.keyFirst = v.firstAU
		v.counting.Store(true)
	}
}

// tap counts an RTP packet that arrived on the viewer's socket, once the
// viewer counts them itself, and reports whether it did (then pion does
// not get the packet).
func (v *benchViewer) tap(b []byte) bool {
	if !v.counting.Load() || !isRTP(b) {
		return false
	}
	seq := uint16(b[2])<<8 | uint16(b[3])
	ssrc := uint32(b[8])<<24 | uint32(b[9])<<16 | uint32(b[10])<<8 | uint32(b[11])
	v.mu.Lock()
	if ssrc == v.videoSSRC {
		v.video.add(seq, len(b))
	} else {
		v.audio.add(seq, len(b))
	}
	v.mu.Unlock()
	return true
}

// h264HasIDR tells whether an H.264 RTP payload (RFC 6184) carries an IDR
// slice or the start of one.
func h264HasIDR(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	switch p[0] & 0x1f {
	case 5:
		return true
	case 24: // STAP-A: 16-bit sizes, then units
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			if size == 0 || i+2+size > len(p) {
				return false
			}
			if p[i+2]&0x1f == 5 {
				return true
			}
			i += 2 + size
		}
	case 28: // FU-A: the start fragment of an IDR
		return len(p) > 1 && p[1]&0x80 != 0 && p[1]&0x1f == 5
	}
	return false
}

// close ends the WHEP session (DELETE, best effort) and the peer
// connection, and waits for the track goroutines.
func (v *benchViewer) close(ctx context.Context) {
	if v.location != "" {
		loc, err := resolveLocation(v.target.url, v.location)
		if err == nil {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			req, err := http.NewRequestWithContext(ctx, http.MethodDelete, loc, nil)
			if err == nil {
				for k, vs := range v.target.header {
					req.Header[k] = vs
				}
				if resp, err := v.target.client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
			}
			cancel()
		}
	}
	_ = v.pc.Close()
	v.wg.Wait()
}

// resolveLocation makes a WHEP Location absolute against the POST's URL.
func resolveLocation(postURL, location string) (string, error) {
	base, err := url.Parse(postURL)
	if err != nil {
		return "", err
	}
	u, err := base.Parse(location)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}
