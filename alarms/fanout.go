package alarms

import (
	"sync"
	"sync/atomic"
)

// fanout delivers values to subscribers without ever blocking the sender:
// a subscriber whose queue is full misses the value (counted). A
// subscriber with a key receives only the values published with that key.
type fanout[T any] struct {
	mu      sync.Mutex
	subs    map[chan T]string
	closed  bool
	dropped atomic.Uint64
}

func newFanout[T any]() *fanout[T] { return &fanout[T]{subs: map[chan T]string{}} }

// add registers a subscriber for key ("" for every value); it returns a
// closed channel after close.
func (f *fanout[T]) add(key string) chan T {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan T, subscriberQueue)
	if f.closed {
		close(ch)
		return ch
	}
	f.subs[ch] = key
	return ch
}

// remove unregisters and closes ch; it is safe to call twice.
func (f *fanout[T]) remove(ch chan T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[ch]; ok {
		delete(f.subs, ch)
		close(ch)
	}
}

func (f *fanout[T]) publish(key string, v T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch, k := range f.subs {
		if k != "" && k != key {
			continue
		}
		select {
		case ch <- v:
		default:
			f.dropped.Add(1)
		}
	}
}

// close closes every subscriber's channel and refuses new ones.
func (f *fanout[T]) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for ch := range f.subs {
		delete(f.subs, ch)
		close(ch)
	}
}
