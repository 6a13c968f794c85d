package hardware

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
)

func TestSynthClip(t *testing.T) {
	d, err := loadClip(ClipSynth2M)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.aus) != ClipSynth2M.GOPFrames() || ClipSynth2M.GOPFrames() != 250 {
		t.Fatalf("%d access units, GOPFrames %d; want one GOP of 250", len(d.aus), ClipSynth2M.GOPFrames())
	}
	var sps h264.SPS
	if err := sps.Unmarshal(d.sps); err != nil {
		t.Fatalf("SPS: %v", err)
	}
	if sps.Width() != 1920 || sps.Height() != 1080 {
		t.Fatalf("size %dx%d, want 1920x1080", sps.Width(), sps.Height())
	}
	if h264.NALUType(d.pps[0]&0x1f) != h264.NALUTypePPS {
		t.Fatalf("PPS has NALU type %v", h264.NALUType(d.pps[0]&0x1f))
	}

	total := 0
	for i, au := range d.aus {
		if got := h264.IsRandomAccess(au); got != (i == 0) {
			t.Fatalf("access unit %d: IDR = %v", i, got)
		}
		for _, nalu := range au {
			total += len(nalu)
			// No start code or emulation-prevention pattern inside a NALU:
			// an Annex-B writer would cut the NALU there.
			for _, pat := range [][]byte{{0, 0, 0}, {0, 0, 1}, {0, 0, 2}, {0, 0, 3}} {
				if bytes.Contains(nalu, pat) {
					t.Fatalf("access unit %d holds %x", i, pat)
				}
			}
		}
	}
	// 10 s at 2 Mbit/s, exactly.
	if total != 2_500_000 {
		t.Fatalf("GOP of %d bytes, want 2,500,000", total)
	}
	if rate, err := ClipSynth2M.ByteRate(); err != nil || rate != 250_000 {
		t.Fatalf("ByteRate() = %v, %v; want 250,000 bytes/s", rate, err)
	}
	again, _ := loadClip(ClipSynth2M)
	if !bytes.Equal(again.aus[7][0], d.aus[7][0]) {
		t.Fatal("the stream differs between two loads")
	}
}

// The 2 s variant is the same stream with five times the keyframes: one
// GOP of 50 pictures, 2 s at 2 Mbit/s.
func TestSynthClipGOP2s(t *testing.T) {
	d, err := loadClip(ClipSynth2MGOP2s)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.aus) != 50 || ClipSynth2MGOP2s.GOPFrames() != 50 {
		t.Fatalf("%d access units, GOPFrames %d; want one GOP of 50", len(d.aus), ClipSynth2MGOP2s.GOPFrames())
	}
	for i, au := range d.aus {
		if got := h264.IsRandomAccess(au); got != (i == 0) {
			t.Fatalf("access unit %d: IDR = %v", i, got)
		}
	}
	if rate, err := ClipSynth2MGOP2s.ByteRate(); err != nil || rate != 250_000 {
		t.Fatalf("ByteRate() = %v, %v; want 250,000 bytes/s", rate, err)
	}
}

func TestCameraPacketSizeAndStartFrame(t *testing.T) {
	verifyNoLeaks(t)

	cam := startCamera(t, CameraConfig{
		PacketSize: 1460,
		Paths:      []CameraPath{{Path: "/cam1", Clip: ClipSynth2M, StartFrame: 245}},
	}, 4*time.Millisecond)

	p, err := dial(cam.URL("/cam1"), "", "", transportPtr(gortsplib.TransportTCP))
	if err != nil {
		t.Fatal(err)
	}
	defer p.client.Close()
	var forma *format.H264
	media := p.desc.FindFormat(&forma)
	if media == nil {
		t.Fatal("no H.264 in the SDP")
	}

	// Starting 5 frames before the end of the GOP, the IDR comes sixth at
	// most (the player may miss the first frames, sent before its PLAY).
	video := newVideoCheck(t, forma, 250, 200)
	var mu sync.Mutex
	largest, full := 0, 0
	p.client.OnPacketRTP(media, forma, func(pkt *rtp.Packet) {
		mu.Lock()
		size := pkt.MarshalSize()
		largest = max(largest, size)
		if size == 1460 {
			full++
		}
		mu.Unlock()
		video.onPacket(pkt)
	})
	p.play(t)
	video.wait(t)

	mu.Lock()
	defer mu.Unlock()
	if largest != 1460 || full < 100 {
		t.Fatalf("largest RTP packet %d bytes, %d of 1,460; want packets of 1,460 at most and many of them", largest, full)
	}
	video.mu.Lock()
	defer video.mu.Unlock()
	if video.lastIDR < 1 || video.lastIDR > 5 || video.idrs != 1 {
		t.Fatalf("%d IDRs, the last one access unit %d; want one within the first 6 but not the first", video.idrs, video.lastIDR)
	}
}
