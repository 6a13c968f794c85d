package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/hardware"
)

// skywatch token prints a token of the right shape and config lines that
// hold only its SHA-256; bad flags are refused.
func TestTokenCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runToken([]string{"-name", "wall-1", "-role", "viewer", "-area", "t1", "-cameras", "gate,yard"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	tok, lines := parseTokenOutput(t, out.String())
	if !strings.Contains(lines, "token_sha256: "+accounts.TokenSum(tok)) || strings.Contains(lines, tok) ||
		!strings.Contains(lines, "cameras: [gate, yard]") || !strings.Contains(lines, "area: t1") {
		t.Errorf("config lines:\n%s", lines)
	}
	errb.Reset()
	if code := runToken([]string{"-role", "root"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "role:") {
		t.Errorf("bad role: exit %d %s", code, errb.String())
	}
}

// parseTokenOutput returns the token and the lines to paste under tokens:.
func parseTokenOutput(t *testing.T, out string) (token, lines string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "token: "); ok {
			token = v
		}
		if strings.HasPrefix(l, "  ") {
			lines += l + "\n"
		}
	}
	if !accounts.LooksLikeToken(token) || lines == "" {
		t.Fatalf("no token or no config lines in:\n%s", out)
	}
	return token, lines
}

// A WHEP player that has only a token (a pion peer, no cookie, no CSRF)
// plays a simulated camera through skywatch serve and gets a keyframe;
// the same token cannot change anything, and its session is audited
// under its name.
func TestServeTokenPlaysWHEP(t *testing.T) {
	paths, err := hardware.ProfilePaths(hardware.CameraProfile{Vendor: hardware.VendorHikvision}, hardware.ClipGOP1s, false)
	if err != nil {
		t.Fatal(err)
	}
	cam := hardware.NewCamera(hardware.CameraConfig{Address: "127.0.0.1:0", Username: "admin", Password: "cam-secret-1", Paths: paths})
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	host, port, _ := strings.Cut(cam.Addr(), ":")

	var out, errb bytes.Buffer
	if code := runToken([]string{"-name", "wall-1", "-cameras", "gate"}, &out, &errb); code != 0 {
		t.Fatalf("skywatch token: %d %s", code, errb.String())
	}
	token, lines := parseTokenOutput(t, out.String())
	dir := t.TempDir()
	path := writeServeConfig(t, dir, fmt.Sprintf(`
cameras:
  - id: gate
    vendor: hikvision
    host: %s
    port: %s
    username: admin
    password: cam-secret-1
tokens:
%s`, host, port, lines))

	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "-config", path}, &logs, &logs) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	base := waitForServeAddr(t, &logs)

	peer := newTokenPeer(t)
	code, answer := peer.offer(t, base+"/whep/gate", token)
	if code != http.StatusCreated {
		t.Fatalf("POST /whep/gate with the token: %d %s\nlogs:\n%s", code, answer, logs.String())
	}
	if !peer.keyframe(t) {
		t.Fatal("no keyframe")
	}
	// The token cannot change anything, and a wrong one is 401.
	status := func(method, path, tok string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := status(http.MethodPut, "/api/me/prefs", token); c != http.StatusForbidden {
		t.Errorf("PUT prefs with the token: %d", c)
	}
	// Change a middle character to one it is not: the last one may carry
	// only padding bits, and may already be the letter put in.
	mid, letter := len(token)/2, "A"
	if token[mid] == 'A' {
		letter = "B"
	}
	wrong := token[:mid] + letter + token[mid+1:]
	if c := status(http.MethodGet, "/api/cameras", wrong); c != http.StatusUnauthorized {
		t.Errorf("a wrong token: %d", c)
	}
	get := loginGet(t, base, "admin", "serve-secret")
	body, err := get(base + "/api/audit?user=token:wall-1&action=watch_start")
	if err != nil || !strings.Contains(body, `"target": "camera:gate"`) {
		t.Errorf("audit: %v %s", err, body)
	}
	if strings.Contains(logs.String(), token) {
		t.Error("the logs contain the token")
	}
}

// tokenPeer is a receive-only pion peer on loopback, as a hardware decoder
// or GStreamer's whepsrc would be.
type tokenPeer struct {
	pc    *webrtc.PeerConnection
	video chan *rtp.Packet
	wg    sync.WaitGroup
}

func newTokenPeer(t *testing.T) *tokenPeer {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &tokenPeer{pc: pc, video: make(chan *rtp.Packet, 4096)}
	t.Cleanup(func() { _ = pc.Close(); p.wg.Wait() })
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for {
				pkt, _, err := track.ReadRTP()
				if err != nil {
					return
				}
				select {
				case p.video <- pkt:
				default:
				}
			}
		}()
	})
	return p
}

// offer posts the peer's offer with only the token and applies the answer.
func (p *tokenPeer) offer(t *testing.T, url, token string) (int, string) {
	t.Helper()
	return p.offerWith(t, url, token, nil)
}

// offerWith is offer, without a token when token is "", showing the
// response to onResp when not nil.
func (p *tokenPeer) offerWith(t *testing.T, url, token string, onResp func(*http.Response)) (int, string) {
	t.Helper()
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(p.pc.LocalDescription().SDP))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if onResp != nil {
		onResp(resp)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusCreated {
		if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(b)}); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, string(b)
}

// keyframe reads video until an IDR picture arrives.
func (p *tokenPeer) keyframe(t *testing.T) bool {
	t.Helper()
	var depack codecs.H264Packet
	deadline := time.After(30 * time.Second)
	start := time.Now()
	for {
		select {
		case pkt := <-p.video:
			b, err := depack.Unmarshal(pkt.Payload)
			if err != nil {
				continue
			}
			for _, nalu := range bytes.Split(b, []byte{0, 0, 0, 1}) {
				if len(nalu) > 0 && nalu[0]&0x1f == 5 {
					t.Logf("first keyframe %v after the answer", time.Since(start))
					return true
				}
			}
		case <-deadline:
			return false
		}
	}
}
