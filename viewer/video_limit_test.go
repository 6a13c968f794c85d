package viewer

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/skywatch/skywatch/ingest"
)

// playingCameras is a camera source whose every camera plays H.264.
func playingCameras() *fakeSource {
	return &fakeSource{states: testStates, open: func(context.Context, string) (MediaReader, error) {
		cam := &camera{epoch: 1, received: time.Unix(1000, 0)}
		return newFakeReader([]ingest.Track{h264Track()}, cam.nextAU(true)), nil
	}}
}

// watch offers to play camera as o with a real pion viewer; on 201 the
// viewer takes the answer and connects.
func (o *operator) watch(camera string) (*whepClient, int, string) {
	o.t.Helper()
	c, offer := newWHEPClient(o.t)
	req, err := http.NewRequest(http.MethodPost, o.base+"/whep/"+camera+"?stream=sub", strings.NewReader(offer))
	if err != nil {
		o.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set(csrfHeader, o.csrf)
	resp, err := o.c.Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusCreated {
		c.location = resp.Header.Get("Location")
		if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(b)}); err != nil {
			o.t.Fatal(err)
		}
	}
	return c, resp.StatusCode, string(b)
}

// videoOf counts the open video sessions of user.
func videoOf(s *Server, user string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, se := range s.sessions {
		if se.owner.User.Username == user {
			n++
		}
	}
	return n
}

// Video sessions are capped per user and per address; past the cap an
// offer gets 429 with a clear message, and a slot is free again when a
// session ends by DELETE, by the viewer going away, or by logout.
func TestVideoSessionLimits(t *testing.T) {
	s := startAuthServerOpts(t, authOpts{cameras: playingCameras(), config: func(c *Config) {
		c.VideoSessionsPerUser, c.VideoSessionsPerAddr = 2, 3
	}})
	op := mustLogin(t, s.base, "op1")
	var open []*whepClient
	for range 2 {
		c, code, body := op.watch("yard")
		if code != http.StatusCreated {
			t.Fatalf("offer: %d %s", code, body)
		}
		receive(t, c, 1)
		open = append(open, c)
	}
	_, code, body := op.watch("yard")
	var refused tooManyVideoJSON
	if err := json.Unmarshal([]byte(body), &refused); code != http.StatusTooManyRequests || err != nil ||
		refused.Scope != "user" || refused.Limit != 2 || !strings.Contains(refused.Error, "too many video sessions") {
		t.Fatalf("third offer: %d %s", code, body)
	}

	// DELETE frees a slot.
	if code, body := op.do(http.MethodDelete, open[0].location, "", true); code != http.StatusOK {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	c, code, body := op.watch("yard")
	if code != http.StatusCreated {
		t.Fatalf("offer after DELETE: %d %s", code, body)
	}
	receive(t, c, 1)
	open[0] = c

	// The address's cap counts every user at it.
	sup := mustLogin(t, s.base, "sup")
	if c, code, body := sup.watch("yard"); code != http.StatusCreated {
		t.Fatalf("another user's offer: %d %s", code, body)
	} else {
		receive(t, c, 1)
	}
	if _, code, body := sup.watch("yard"); code != http.StatusTooManyRequests || !strings.Contains(body, `"scope": "address"`) {
		t.Fatalf("offer past the address's cap: %d %s", code, body)
	}

	// A viewer that goes away without DELETE frees its slot when the
	// server notices (the connection closes or ICE fails).
	open[1].close()
	waitForLong(t, "a closed viewer's session to end", func() bool { return videoOf(s.Server, "op1") == 1 })
	if c, code, body := op.watch("yard"); code != http.StatusCreated {
		t.Fatalf("offer after a viewer went away: %d %s", code, body)
	} else {
		open[1] = c
	}

	// Logout ends the sessions and frees the slots at once.
	if code, _ := op.do(http.MethodPost, "/api/logout", "", true); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	waitFor(t, "op1's sessions to end", func() bool { return videoOf(s.Server, "op1") == 0 })
	op2 := mustLogin(t, s.base, "op1")
	for range 2 {
		if _, code, body := op2.watch("yard"); code != http.StatusCreated {
			t.Fatalf("offer after logout: %d %s", code, body)
		}
	}
}

// waitForLong is waitFor with room for pion to declare a vanished viewer
// failed (its ICE timeouts add up to about 30 s).
func waitForLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
