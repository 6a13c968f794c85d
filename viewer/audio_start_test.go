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

// TestWHEPStampsCachedGroupAsSent: with sound, the cached group's pictures
// are stamped with the moment they are sent, not with their capture times
// seconds ago, and the live pictures after them keep the camera's steps;
// without sound they all keep the camera's steps.
func TestWHEPStampsCachedGroupAsSent(t *testing.T) {
	for _, withSound := range []bool{true, false} {
		name := "no sound"
		if withSound {
			name = "sound"
		}
		t.Run(name, func(t *testing.T) {
			// A second of pictures, 3000 ticks apart, captured 3 s ago.
			cam := &camera{epoch: 1, seq: 100, ts: 1000, received: time.Now().Add(-3 * time.Second)}
			group := []*ingest.Unit{cam.nextAU(true)}
			for range 29 {
				group = append(group, cam.nextAU(false))
			}
			tracks := []ingest.Track{h264Track()}
			if withSound {
				tracks = append(tracks, pcmuTrack())
			}
			reader := newFakeReader(tracks, group...)
			src := &fakeSource{open: func(context.Context, string) (MediaReader, error) { return reader, nil }}
			srv := startServer(t, src, nil)
			client, offer := newWHEPClient(t)
			if resp, body := client.post(t, baseURL(srv)+"/whep/gate", offer); resp.StatusCode != http.StatusCreated {
				t.Fatalf("POST: %d %s", resp.StatusCode, body)
			}
			burst := receive(t, client, countPackets(group))
			cam.received = time.Now()
			live := []*ingest.Unit{cam.nextAU(false), cam.nextAU(false), cam.nextAU(false)}
			for _, u := range live {
				reader.units <- u
			}
			got := append(burst, receive(t, client, countPackets(live))...)

			span := burst[len(burst)-1].Timestamp - burst[0].Timestamp
			if withSound && span >= 29*3000 {
				t.Errorf("the cached group spans %d ticks, its capture times' span: want the moments it was sent", span)
			}
			if !withSound && span != 29*3000 {
				t.Errorf("without sound the cached group spans %d ticks, want the camera's %d", span, 29*3000)
			}
			for i := 1; i < len(got); i++ {
				if step := int32(got[i].Timestamp - got[i-1].Timestamp); step < 0 {
					t.Fatalf("packet %d: timestamp went back by %d", i, -step)
				}
			}
			// The live pictures after the first keep the camera's steps.
			n := len(got)
			second, third := got[n-countPackets(live[1:])], got[n-countPackets(live[2:])]
			if step := third.Timestamp - second.Timestamp; step != 3000 {
				t.Errorf("live step %d, want the camera's 3000", step)
			}
		})
	}
}
