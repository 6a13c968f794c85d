package alarms

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Unit messages wait for the engine's leader in cluster mode: they have a
// bound of their own, so that alarms are handled while the units' waits
// fill it, and units while alarms fill theirs.
func TestTakeUnitMessagesApart(t *testing.T) {
	in := &Intake{
		topics:  topics{prefix: "sky"},
		metrics: newMetrics(),
		sem:     make(chan struct{}, maxConcurrent),
		unitSem: make(chan struct{}, maxConcurrentUnits),
	}
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	for range maxConcurrent {
		in.sem <- struct{}{}
	}
	if err := in.take(short(), message{topic: "sky/unit/u1/reply"}); err != nil {
		t.Fatalf("unit message with every alarm slot taken: %v", err)
	}
	if err := in.take(short(), message{topic: "sky/dev/d1/event"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("alarm message with every alarm slot taken: %v, want it to wait", err)
	}
	for range maxConcurrent {
		<-in.sem
	}
	for range maxConcurrentUnits {
		in.unitSem <- struct{}{}
	}
	// An unknown device's message is rejected into the store: use a topic
	// outside the device tree, which is counted and dropped.
	if err := in.take(short(), message{topic: "sky/other"}); err != nil {
		t.Fatalf("message with every unit slot taken: %v", err)
	}
	if err := in.take(short(), message{topic: "sky/unit/u1/pos"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unit message with every unit slot taken: %v, want it to wait", err)
	}
}
