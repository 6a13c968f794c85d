package viewer

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/skywatch/skywatch/ingest"
)

// TestWHEPSoundStartsLive: a reader starts with the cached keyframe group,
// sound and picture of the past seconds. The viewer gets the group's picture
// at once, but none of its sound: the first sound it gets is what the camera
// sent after the viewer connected.
func TestWHEPSoundStartsLive(t *testing.T) {
	past := time.Now().Add(-3 * time.Second)
	cam := &camera{epoch: 1, seq: 100, ts: 1000, received: past}
	stale := bytes.Repeat([]byte{0xaa}, 160)
	live := bytes.Repeat([]byte{0xbb}, 160)
	audio := func(n int, payload []byte, received time.Time) *ingest.Unit {
		return &ingest.Unit{Track: 1, Epoch: 1, Received: received, Packets: []*rtp.Packet{{
			Header:  rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(n), Timestamp: uint32(n * 160), SSRC: 0xbeef},
			Payload: payload,
		}}}
	}
	group := []*ingest.Unit{cam.nextAU(true)}
	for i := range 5 {
		group = append(group, audio(i, stale, past.Add(time.Duration(i)*20*time.Millisecond)), cam.nextAU(false))
	}
	reader := newFakeReader([]ingest.Track{h264Track(), pcmuTrack()}, group...)
	src := &fakeSource{open: func(context.Context, string) (MediaReader, error) { return reader, nil }}
	srv := startServer(t, src, nil)

	client, offer := newWHEPClient(t)
	sound := make(chan *rtp.Packet, 256)
	// Replaces the client's handler: video as before, and the sound too.
	client.pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		client.wg.Add(1)
		go func() {
			defer client.wg.Done()
			out := client.video
			if track.Kind() == webrtc.RTPCodecTypeAudio {
				out = sound
			}
			for {
				p, _, err := track.ReadRTP()
				if err != nil {
					return
				}
				select {
				case out <- p:
				default:
				}
			}
		}()
	})
	if resp, body := client.post(t, baseURL(srv)+"/whep/gate", offer); resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	// The group's picture comes whole, keyframe first.
	got := receive(t, client, countPackets(group[:1])+5)
	if types := nalTypes(t, got[:countPackets(group[:1])]); !containsAll(types, 7, 8, 5) {
		t.Fatalf("first access unit has NAL types %v, want SPS, PPS and IDR", types)
	}
	// The viewer is connected: what the camera sends now is live.
	for i := range 5 {
		reader.units <- audio(100+i, live, time.Now())
	}
	deadline := time.After(testTimeout)
	for n := 0; n < 5; {
		select {
		case p := <-sound:
			if bytes.Equal(p.Payload, stale) {
				t.Fatal("the viewer got the cached group's sound")
			}
			if !bytes.Equal(p.Payload, live) {
				t.Fatalf("sound packet %d differs from the camera's", n)
			}
			n++
		case <-deadline:
			t.Fatalf("received %d of 5 live sound packets", n)
		}
	}
}
