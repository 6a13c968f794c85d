package alarms

import (
	"sync"
	"sync/atomic"
)

// subscriberQueue is the length of each live subscriber's queue.
const subscriberQueue = 256

// hub fans stored events out to live subscribers. A subscriber that cannot
// keep up misses events (counted); it never blocks the intake, and a viewer
// that reconnects reads what it missed from the store.
type hub struct {
	mu      sync.Mutex
	subs    map[chan Event]struct{}
	closed  bool
	dropped atomic.Uint64
}

func newHub() *hub {
	return &hub{subs: map[chan Event]struct{}{}}
}

// add registers a subscriber; it returns nil after close.
func (h *hub) add() chan Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	ch := make(chan Event, subscriberQueue)
	h.subs[ch] = struct{}{}
	return ch
}

// remove unregisters and closes ch; it is safe to call twice.
func (h *hub) remove(ch chan Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

// publish offers e to every subscriber without waiting.
func (h *hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- e:
		default:
			h.dropped.Add(1)
		}
	}
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// close closes every subscriber's channel and refuses new ones.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}
