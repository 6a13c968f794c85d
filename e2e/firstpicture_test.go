package e2e

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
)

// BenchmarkFirstPicture measures how long a viewer waits for its first
// decodable picture: from the WHEP POST to the first complete access unit
// (which must be a keyframe with SPS and PPS) at a pion viewer, on a camera
// that is already pulled, with a 4 s keyframe interval. Without the keyframe
// cache the viewer would wait for the camera's next keyframe: 2 s on average
// and up to 4 s.
//
//	go test -run '^$' -bench FirstPicture -benchtime 30x ./e2e/
//
// SKYWATCH_BENCH_WHEP_URL points the same viewer at another WHEP endpoint
// (another server pulling a simulated camera), for a side-by-side
// measurement; the first access unit must then still be a keyframe, and the
// wait is what that server makes a viewer wait.
func BenchmarkFirstPicture(b *testing.B) {
	target := os.Getenv("SKYWATCH_BENCH_WHEP_URL")
	if target == "" {
		r := newRig(b, rigOptions{clip: hardware.ClipGOP4s, mode: ingest.ModeAlways})
		waitFor(b, "camera online", func() bool { return r.state(b).Status == ingest.StatusOnline })
		// A camera that has just connected has no keyframe to give until
		// its first one arrives; measure the steady state.
		probe, err := r.mgr.AddReader(context.Background(), camID)
		if err != nil {
			b.Fatal(err)
		}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), failAfter)
			u, err := probe.Read(ctx)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			if u.Keyframe {
				break
			}
		}
		probe.Close()
		target = r.url("/whep/" + camID)
	}

	var waits []time.Duration
	for b.Loop() {
		if os.Getenv("SKYWATCH_BENCH_WHEP_URL") != "" {
			// Join at a random point of the camera's 4 s GOP: back to back,
			// every join would land just after a keyframe.
			b.StopTimer()
			time.Sleep(rand.N(4 * time.Second))
			b.StartTimer()
		}
		peer := newViewerPeer(b)
		start := time.Now()
		code, body := peer.join(b, target)
		if code != http.StatusCreated {
			b.Fatalf("POST %s: %d %s", target, code, body)
		}
		aus := &auReader{t: b, peer: peer}
		first := aus.next()
		for !first.has(nalIDR) && os.Getenv("SKYWATCH_BENCH_WHEP_URL") != "" {
			// Another server may forward pictures that cannot be decoded
			// before the next keyframe; the viewer sees nothing until then.
			first = aus.next()
		}
		waits = append(waits, time.Since(start))
		if !first.has(nalSPS, nalPPS, nalIDR) {
			b.Fatalf("first access unit has NAL types %v, want SPS, PPS and IDR", first.types)
		}
		if loc, err := url.Parse(peer.location); err == nil && peer.location != "" {
			base, _ := url.Parse(target)
			resp, _ := do(b, http.MethodDelete, base.ResolveReference(loc).String(), "", "")
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("DELETE: %d", resp.StatusCode)
			}
		}
		peer.close()
	}
	slices.Sort(waits)
	b.ReportMetric(float64(waits[len(waits)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(waits[len(waits)*9/10].Microseconds())/1000, "ms-p90")
	b.ReportMetric(float64(waits[len(waits)-1].Microseconds())/1000, "ms-max")
}
