package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// BenchmarkAppendEvent measures AppendEvent of new events, one caller at a
// time ("serial") and from GOMAXPROCS*4 callers ("parallel"), which is how
// the intake calls it with many devices. open returns a fresh store; the
// benchmark closes it.
func BenchmarkAppendEvent(b *testing.B, open func(b *testing.B) alarms.Store) {
	b.Run("serial", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		ctx := context.Background()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			e := newEvent(fmt.Sprintf("d%d", i%100), fmt.Sprintf("e%d", i), alarms.ClassAlarm, time.Now())
			if _, err := s.AppendEvent(ctx, e, time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		ctx := context.Background()
		var n atomic.Int64
		b.ReportAllocs()
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				e := newEvent(fmt.Sprintf("d%d", i%100), fmt.Sprintf("e%d", i), alarms.ClassAlarm, time.Now())
				if _, err := s.AppendEvent(ctx, e, time.Minute); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
