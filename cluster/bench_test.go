package cluster

import (
	"context"
	"fmt"
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
