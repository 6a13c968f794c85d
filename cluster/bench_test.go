package cluster

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// BenchmarkHeartbeat is one heartbeat (the node's record, its camera
// claims renewed in one script, the live list read) of a node holding n
// cameras, with three nodes live.
func BenchmarkHeartbeat(b *testing.B) {
	for _, n := range []int{0, 100, 2000} {
		b.Run(fmt.Sprint("cameras=", n), func(b *testing.B) {
			r := newRig(b)
			a := r.node("sky-a")
			r.node("sky-b")
			r.node("sky-c")
			ctx := context.Background()
			for i := range n {
				if ok, err := a.ClaimCamera(ctx, fmt.Sprintf("cam-%04d", i)); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				a.beat(bctx)
				cancel()
			}
			b.StopTimer()
			if len(a.Cameras()) != n || a.metrics.heartbeatErrors.Load() != 0 {
				b.Fatalf("%d cameras held, %d heartbeat errors", len(a.Cameras()), a.metrics.heartbeatErrors.Load())
			}
		})
	}
}

// BenchmarkClaimCamera is one claim of a camera (already held: extended).
func BenchmarkClaimCamera(b *testing.B) {
	r := newRig(b)
	a := r.node("sky-a")
	ctx := context.Background()
	for b.Loop() {
		if ok, err := a.ClaimCamera(ctx, "cam1"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkCameraStates is what GET /api/cameras adds in a cluster: the
// holders and published states of n cameras (half held and published by
// another node, 400-byte states), read in one MGET.
func BenchmarkCameraStates(b *testing.B) {
	for _, n := range []int{10, 200} {
		b.Run(fmt.Sprint("cameras=", n), func(b *testing.B) {
			r := newRig(b)
			a := r.newNode("sky-a", io.Discard)
			state := []byte(strings.Repeat("s", 400))
			a.PublishCameraStates(func(cams []string) map[string][]byte {
				out := make(map[string][]byte, len(cams))
				for _, c := range cams {
					out[c] = state
				}
				return out
			})
			if err := a.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			reader := r.node("sky-b")
			ctx := context.Background()
			cams := make([]string, n)
			for i := range n {
				cams[i] = fmt.Sprintf("cam-%04d", i)
				if i%2 == 0 {
					if ok, err := a.ClaimCamera(ctx, cams[i]); !ok || err != nil {
						b.Fatal(ok, err)
					}
				}
			}
			a.beat(ctx)
			b.ResetTimer()
			for b.Loop() {
				if _, err := reader.CameraStates(ctx, cams); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
