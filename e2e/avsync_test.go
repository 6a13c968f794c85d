package e2e

import (
	"cmp"
	"context"
	"math"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
)

// TestSenderReportsMatchSoundAndPicture: a browser keeps sound and picture
// in sync by the RTCP sender reports, which map each track's RTP time to
// the sender's wall clock, and times its pictures by their timestamps. The
// simulated camera sends each frame and its sound at the same instant, so
// on loopback a live frame and a live sound packet that arrive together
// must map to the same instant: the two tracks' transit (arrival minus the
// mapped time) must agree. The viewer joins a second into a GOP: the cached
// group's pictures, sent at once, must map to when they were sent, not to
// when the camera took them (or the browser cannot delay the picture to
// match the sound).
func TestSenderReportsMatchSoundAndPicture(t *testing.T) {
	r := newRig(t, rigOptions{clip: hardware.ClipGOP4s, mode: ingest.ModeAlways})
	waitFor(t, "camera online", func() bool { return r.state(t).Status == ingest.StatusOnline })
	waitIntoGOP(t, r, 25) // a second of cached pictures to burst

	type arrival struct {
		ts uint32
		at time.Time
	}
	var mu sync.Mutex
	arrivals := map[webrtc.RTPCodecType][]arrival{}
	reports := map[webrtc.RTPCodecType][]*rtcp.SenderReport{}
	rates := map[webrtc.RTPCodecType]float64{}
	peer := newViewerPeer(t)
	peer.pc.OnTrack(func(track *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		kind := track.Kind()
		mu.Lock()
		rates[kind] = float64(track.Codec().ClockRate)
		mu.Unlock()
		peer.wg.Add(2)
		go func() {
			defer peer.wg.Done()
			var last uint32
			for first := true; ; first = false {
				p, _, err := track.ReadRTP()
				if err != nil {
					return
				}
				if !first && p.Timestamp == last {
					continue // a frame's later packets
				}
				last = p.Timestamp
				mu.Lock()
				arrivals[kind] = append(arrivals[kind], arrival{p.Timestamp, time.Now()})
				mu.Unlock()
			}
		}()
		go func() {
			defer peer.wg.Done()
			for {
				pkts, _, err := recv.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					if sr, ok := p.(*rtcp.SenderReport); ok {
						mu.Lock()
						reports[kind] = append(reports[kind], sr)
						mu.Unlock()
					}
				}
			}
		}()
	})
	if code, answer := peer.join(t, r.url("/whep/"+camID)); code != http.StatusCreated {
		t.Fatalf("POST /whep: %d %s", code, answer)
	}
	waitFor(t, "two sender reports of each track", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(reports[webrtc.RTPCodecTypeVideo]) >= 2 && len(reports[webrtc.RTPCodecTypeAudio]) >= 2
	})
	time.Sleep(time.Second)

	mu.Lock()
	defer mu.Unlock()
	// transit is each arrival's time minus the instant the latest sender
	// report maps its RTP time to, in ms: of the first 100 ms of pictures
	// (the burst) or of the live ones, from a second on.
	transit := func(kind webrtc.RTPCodecType, burst bool) []float64 {
		sr := reports[kind][len(reports[kind])-1]
		srAt := ntpTime(sr.NTPTime)
		var out []float64
		first := arrivals[webrtc.RTPCodecTypeVideo][0].at
		for _, a := range arrivals[kind] {
			if since := a.at.Sub(first); burst != (since < 100*time.Millisecond) || !burst && since < time.Second {
				continue
			}
			mapped := srAt.Add(time.Duration(float64(int32(a.ts-sr.RTPTime)) / rates[kind] * float64(time.Second)))
			out = append(out, float64(a.at.Sub(mapped))/float64(time.Millisecond))
		}
		return out
	}
	v, a := transit(webrtc.RTPCodecTypeVideo, false), transit(webrtc.RTPCodecTypeAudio, false)
	if len(v) < 10 || len(a) < 10 {
		t.Fatalf("%d live frames and %d live sound packets", len(v), len(a))
	}
	mv, ma := medianOf(v), medianOf(a)
	t.Logf("transit by the sender reports: picture %.1f ms, sound %.1f ms (medians of %d and %d)", mv, ma, len(v), len(a))
	if d := math.Abs(mv - ma); d > 20 {
		t.Errorf("the sender reports put picture and sound captured together %.0f ms apart", d)
	}
	burst := transit(webrtc.RTPCodecTypeVideo, true)
	if len(burst) < 20 {
		t.Fatalf("%d pictures in the first 100 ms: no cached group went out", len(burst))
	}
	worst := slices.MaxFunc(burst, func(x, y float64) int { return cmp.Compare(math.Abs(x-ma), math.Abs(y-ma)) })
	t.Logf("the cached group's %d pictures: transit up to %.1f ms", len(burst), worst)
	if math.Abs(worst-ma) > 100 {
		t.Errorf("a picture of the cached group maps %.0f ms from when it was sent", worst-ma)
	}
}

// waitIntoGOP follows the camera's stream with a reader of its own until n
// pictures past a keyframe.
func waitIntoGOP(t *testing.T, r *rig, n int) {
	t.Helper()
	probe, err := r.mgr.AddReader(context.Background(), camID)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	sawKey, after := false, 0
	for after < n {
		ctx, cancel := context.WithTimeout(context.Background(), failAfter)
		u, err := probe.Read(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if probe.Tracks()[u.Track].Kind != ingest.KindVideo {
			continue
		}
		switch {
		case u.Keyframe:
			sawKey, after = true, 0
		case sawKey:
			after++
		}
	}
}

// ntpTime converts a 64-bit NTP timestamp to a time.
func ntpTime(ntp uint64) time.Time {
	const ntpEpochOffset = 2208988800
	secs := int64(ntp>>32) - ntpEpochOffset
	frac := float64(ntp&0xffffffff) / (1 << 32)
	return time.Unix(secs, int64(frac*1e9))
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
