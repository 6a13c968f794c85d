package viewer

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/skywatch/skywatch/ingest"
)

// TestWHEPRelaysCameraAcrossEpochs plays a camera whose reader starts with a
// keyframe group, then reconnects (a new epoch with new sequence numbers and
// an earlier timestamp). The viewer must get the keyframe first, every
// payload untouched, one continuous sequence, and timestamps that continue by
// the wall-clock time between the epochs.
func TestWHEPRelaysCameraAcrossEpochs(t *testing.T) {
	// Received after the viewer connects: live units, which keep the
	// camera's timing (TestWHEPStampsCachedGroupAsSent has the cached ones).
	cam := &camera{epoch: 1, seq: 60000, ts: 4_000_000_000, received: time.Now().Add(time.Hour)}
	var sent []*ingest.Unit
	for i := range 5 {
		sent = append(sent, cam.nextAU(i == 0))
	}
	lastEpoch1 := cam.received.Add(-33 * time.Millisecond)
	// The camera comes back 2 s later, numbering from scratch.
	cam.epoch, cam.seq, cam.ts = 2, 7, 50
	cam.received = lastEpoch1.Add(2 * time.Second)
	for i := range 5 {
		sent = append(sent, cam.nextAU(i == 0))
	}
	reader := newFakeReader([]ingest.Track{h264Track(), pcmuTrack()}, sent...)
	src := &fakeSource{open: func(context.Context, string) (MediaReader, error) { return reader, nil }}
	srv := startServer(t, src, nil)

	client, offer := newWHEPClient(t)
	resp, body := client.post(t, baseURL(srv)+"/whep/gate", offer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		t.Errorf("Content-Type = %q", ct)
	}
	if !strings.HasPrefix(client.location, "/whep/gate/") || len(client.location) < len("/whep/gate/")+16 {
		t.Errorf("Location = %q", client.location)
	}
	if !strings.Contains(body, "profile-level-id=42e01f") || !strings.Contains(body, "PCMU/8000") {
		t.Errorf("answer lacks the camera's codecs:\n%s", body)
	}

	var want []*rtp.Packet
	for _, u := range sent {
		want = append(want, u.Packets...)
	}
	got := receive(t, client, len(want))

	// Payloads are untouched, in order, with the camera's markers.
	for i := range want {
		if !bytes.Equal(got[i].Payload, want[i].Payload) || got[i].Marker != want[i].Marker {
			t.Fatalf("packet %d differs from the camera's", i)
		}
	}
	// One continuous sequence across the reconnect.
	for i := 1; i < len(got); i++ {
		if got[i].SequenceNumber != got[i-1].SequenceNumber+1 {
			t.Fatalf("sequence gap at packet %d: %d after %d", i, got[i].SequenceNumber, got[i-1].SequenceNumber)
		}
	}
	// Timestamps: the camera's steps within an epoch, wall-clock time across.
	firstOf2 := len(want) - countPackets(sent[5:])
	for i := 1; i < len(got); i++ {
		step := got[i].Timestamp - got[i-1].Timestamp
		wantStep := want[i].Timestamp - want[i-1].Timestamp
		if i == firstOf2 {
			wantStep = 2 * 90000
		}
		if step != wantStep {
			t.Fatalf("packet %d: timestamp step %d, want %d", i, step, wantStep)
		}
	}
	// The first access unit is decodable: SPS, PPS, IDR.
	types := nalTypes(t, got[:countPackets(sent[:1])])
	if !(containsAll(types, 7, 8, 5)) {
		t.Fatalf("first access unit has NAL types %v, want SPS, PPS and IDR", types)
	}

	// DELETE ends the session and releases the reader.
	resp, body = doRequest(t, http.MethodDelete, baseURL(srv)+client.location, "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
	}
	if !reader.isClosed() {
		t.Error("reader not closed after DELETE")
	}
	if n := srv.sessionCount(); n != 0 {
		t.Errorf("%v sessions after DELETE", n)
	}
	resp, _ = doRequest(t, http.MethodDelete, baseURL(srv)+client.location, "", "")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("second DELETE: %d, want 404", resp.StatusCode)
	}
}

// TestWHEPStreamEndClosesSession: when the camera's stream ends for good,
// the session ends and the viewer's connection closes.
func TestWHEPStreamEndClosesSession(t *testing.T) {
	cam := &camera{epoch: 1, received: time.Unix(1000, 0)}
	reader := newFakeReader([]ingest.Track{h264Track()}, cam.nextAU(true))
	src := &fakeSource{open: func(context.Context, string) (MediaReader, error) { return reader, nil }}
	srv := startServer(t, src, nil)

	client, offer := newWHEPClient(t)
	if resp, body := client.post(t, baseURL(srv)+"/whep/gate", offer); resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	receive(t, client, 1)
	close(reader.units)
	waitFor(t, "session to end", func() bool { return srv.sessionCount() == 0 })
	if !reader.isClosed() {
		t.Error("reader not closed")
	}
}

// TestCloseEndsSessions: closing the server ends running sessions and
// releases their readers.
func TestCloseEndsSessions(t *testing.T) {
	cam := &camera{epoch: 1, received: time.Unix(1000, 0)}
	reader := newFakeReader([]ingest.Track{h264Track()}, cam.nextAU(true))
	src := &fakeSource{open: func(context.Context, string) (MediaReader, error) { return reader, nil }}
	srv := startServer(t, src, nil)
	client, offer := newWHEPClient(t)
	if resp, body := client.post(t, baseURL(srv)+"/whep/gate", offer); resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	receive(t, client, 1)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if !reader.isClosed() {
		t.Error("reader not closed by Close")
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func receive(t *testing.T, c *whepClient, n int) []*rtp.Packet {
	t.Helper()
	var got []*rtp.Packet
	deadline := time.After(testTimeout)
	for len(got) < n {
		select {
		case p := <-c.video:
			got = append(got, p)
		case <-deadline:
			t.Fatalf("received %d of %d video packets", len(got), n)
		}
	}
	return got
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func countPackets(units []*ingest.Unit) int {
	n := 0
	for _, u := range units {
		n += len(u.Packets)
	}
	return n
}

// nalTypes depacketizes packets as a browser would and lists the NAL unit
// types found.
func nalTypes(t *testing.T, pkts []*rtp.Packet) []byte {
	t.Helper()
	var depack codecs.H264Packet
	var annexB []byte
	for _, p := range pkts {
		b, err := depack.Unmarshal(p.Payload)
		if err != nil {
			t.Fatalf("depacketize: %v", err)
		}
		annexB = append(annexB, b...)
	}
	var types []byte
	for _, nalu := range bytes.Split(annexB, []byte{0, 0, 0, 1}) {
		if len(nalu) > 0 {
			types = append(types, nalu[0]&0x1f)
		}
	}
	return types
}

func containsAll(have []byte, want ...byte) bool {
	for _, w := range want {
		if !bytes.Contains(have, []byte{w}) {
			return false
		}
	}
	return true
}
