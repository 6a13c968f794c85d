package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
)

// NAL unit types.
const (
	nalIDR = 5
	nalSPS = 7
	nalPPS = 8
)

// TestJoinMidGOPStartsWithKeyframe: a viewer joining a second into a 4 s
// GOP gets a decodable picture first (SPS, PPS, IDR) instead of waiting for
// the next keyframe, and G.711 audio besides.
func TestJoinMidGOPStartsWithKeyframe(t *testing.T) {
	r := newRig(t, rigOptions{clip: hardware.ClipGOP4s, mode: ingest.ModeAlways})

	// Follow the stream with a reader of our own until we are a second past
	// a keyframe.
	waitFor(t, "camera online", func() bool { return r.state(t).Status == ingest.StatusOnline })
	waitIntoGOP(t, r, 25)

	peer := newViewerPeer(t)
	code, answer := peer.join(t, r.url("/whep/"+camID))
	if code != http.StatusCreated {
		t.Fatalf("POST /whep: %d %s", code, answer)
	}
	if !strings.Contains(answer, "PCMU/8000") {
		t.Errorf("answer has no PCMU audio:\n%s", answer)
	}
	aus := &auReader{t: t, peer: peer}
	first := aus.next()
	if !first.has(nalSPS, nalPPS, nalIDR) {
		t.Fatalf("first access unit has NAL types %v, want SPS, PPS and IDR", first.types)
	}
	// Then the rest of the group, in order.
	prev := first
	for range 30 {
		au := aus.next()
		if d := int32(au.timestamp() - prev.timestamp()); d <= 0 {
			t.Fatalf("timestamp went from %d to %d", prev.timestamp(), au.timestamp())
		}
		prev = au
	}
	waitAudio(t, peer)
}

func waitAudio(t *testing.T, peer *viewerPeer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	select {
	case <-peer.audio:
	case <-ctx.Done():
		t.Fatal("no audio packet")
	}
}

// TestCameraRestartKeepsSession: the camera goes away and comes back; the
// same WHEP session plays again with no renegotiation and no gap in the
// viewer's sequence numbers.
func TestCameraRestartKeepsSession(t *testing.T) {
	r := newRig(t, rigOptions{clip: hardware.ClipGOP1s})
	peer := newViewerPeer(t)
	if code, body := peer.join(t, r.url("/whep/"+camID)); code != http.StatusCreated {
		t.Fatalf("POST /whep: %d %s", code, body)
	}
	aus := &auReader{t: t, peer: peer}
	var last accessUnit
	for range 10 {
		last = aus.next()
	}

	r.cam.Close()
	waitFor(t, "camera retrying", func() bool { return r.state(t).Status == ingest.StatusRetrying })
	if err := r.cam.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "camera back online", func() bool {
		st := r.state(t)
		return st.Status == ingest.StatusOnline && st.Reconnects > 0
	})

	// Frames flow again on the same session: a keyframe, then more.
	sawKey := false
	for n := 0; n < 50; n++ {
		au := aus.next()
		if d := int32(au.timestamp() - last.timestamp()); d <= 0 {
			t.Fatalf("timestamp went from %d to %d", last.timestamp(), au.timestamp())
		}
		last = au
		if au.has(nalIDR) {
			sawKey = true
		}
	}
	if !sawKey {
		t.Error("no keyframe in 2 s after the camera came back")
	}
	if aus.gaps != 0 {
		t.Errorf("%d sequence gaps", aus.gaps)
	}
	if st := r.state(t); st.Viewers != 1 {
		t.Errorf("viewers = %d, want the one session", st.Viewers)
	}
}

// TestStalledReaderDoesNotDelayViewer: a reader that never reads fills its
// queue and drops; a WHEP viewer of the same camera keeps getting every
// frame, and the drops are counted.
func TestStalledReaderDoesNotDelayViewer(t *testing.T) {
	// TCP from the camera, so that the frame-by-frame check below cannot
	// trip on a UDP packet lost before Skywatch.
	r := newRig(t, rigOptions{clip: hardware.ClipGOP1s, queue: 32, transport: ingest.TransportTCP})
	stalled, err := r.mgr.AddReader(context.Background(), camID)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()

	peer := newViewerPeer(t)
	if code, body := peer.join(t, r.url("/whep/"+camID)); code != http.StatusCreated {
		t.Fatalf("POST /whep: %d %s", code, body)
	}
	aus := &auReader{t: t, peer: peer}
	prev := aus.next()
	for range 100 { // 4 s, well past the stalled reader's queue
		au := aus.next()
		if step := au.timestamp() - prev.timestamp(); step != 3600 {
			t.Fatalf("viewer lost frames: timestamp step %d, want 3600", step)
		}
		prev = au
	}
	if stalled.Dropped() == 0 {
		t.Error("the stalled reader dropped nothing")
	}
	st := r.state(t)
	if st.Dropped < stalled.Dropped() {
		t.Errorf("camera state counts %d drops, the stalled reader %d", st.Dropped, stalled.Dropped())
	}
	var api struct {
		Dropped uint64 `json:"dropped"`
		Viewers int    `json:"viewers"`
	}
	resp, body := do(t, http.MethodGet, r.url("/api/cameras/"+camID), "", "")
	if err := json.Unmarshal([]byte(body), &api); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET camera: %d %s", resp.StatusCode, body)
	}
	if api.Dropped == 0 || api.Viewers != 2 {
		t.Errorf("API shows dropped=%d viewers=%d, want drops and 2 viewers", api.Dropped, api.Viewers)
	}
}

// TestTwoViewersOneCameraSession: two browsers watching one camera cost one
// RTSP session at the camera.
func TestTwoViewersOneCameraSession(t *testing.T) {
	r := newRig(t, rigOptions{clip: hardware.ClipGOP1s})
	var peers []*viewerPeer
	for range 2 {
		p := newViewerPeer(t)
		if code, body := p.join(t, r.url("/whep/"+camID)); code != http.StatusCreated {
			t.Fatalf("POST /whep: %d %s", code, body)
		}
		peers = append(peers, p)
	}
	for i, p := range peers {
		aus := &auReader{t: t, peer: p}
		if first := aus.next(); !first.has(nalSPS, nalPPS, nalIDR) {
			t.Errorf("viewer %d: first access unit has NAL types %v", i, first.types)
		}
	}
	if n := r.cam.Sessions(camPath); n != 1 {
		t.Errorf("camera has %d RTSP sessions, want 1", n)
	}
	if st := r.state(t); st.Viewers != 2 {
		t.Errorf("viewers = %d, want 2", st.Viewers)
	}
	// One leaves; the other's session is untouched.
	resp, _ := do(t, http.MethodDelete, r.url(peers[0].location), "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	waitFor(t, "one viewer left", func() bool { return r.state(t).Viewers == 1 })
	aus := &auReader{t: t, peer: peers[1]}
	aus.next()
	aus.next()
}

// TestWrongPasswordStaysSecret: with a wrong camera password the camera's
// state says authentication failed (the API and WHEP say it as the code
// "auth"), and neither password appears in any log line or API answer.
func TestWrongPasswordStaysSecret(t *testing.T) {
	const wrong = "Wr0ng-S3cret-77"
	r := newRig(t, rigOptions{clip: hardware.ClipGOP1s, password: wrong, mode: ingest.ModeAlways})
	waitFor(t, "authentication failure", func() bool {
		return strings.HasPrefix(r.state(t).LastError, "authentication failed")
	})

	var answers []string
	resp, list := do(t, http.MethodGet, r.url("/api/cameras"), "", "")
	const authCode = `"last_error_code": "auth"`
	if resp.StatusCode != 200 || !strings.Contains(list, authCode) {
		t.Errorf("GET /api/cameras: %d %s", resp.StatusCode, list)
	}
	answers = append(answers, list)
	resp, one := do(t, http.MethodGet, r.url("/api/cameras/"+camID), "", "")
	if resp.StatusCode != 200 || !strings.Contains(one, authCode) {
		t.Errorf("GET /api/cameras/%s: %d %s", camID, resp.StatusCode, one)
	}
	answers = append(answers, one)

	peer := newViewerPeer(t)
	code, body := peer.join(t, r.url("/whep/"+camID))
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"code": "auth"`) {
		t.Errorf("POST /whep: %d %s, want 503 with the authentication failure", code, body)
	}
	answers = append(answers, body)

	for _, text := range append(answers, r.logs.String()) {
		for _, secret := range []string{wrong, camPassword, camUser + ":"} {
			if strings.Contains(text, secret) {
				t.Errorf("%q leaks in %q", secret, text)
			}
		}
	}
	if !strings.Contains(r.logs.String(), "authentication failed") {
		t.Error("the failure is not logged at all")
	}
}
