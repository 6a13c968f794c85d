package viewer

import (
	"context"
	"sync"
)

// sessionStreams keeps the cancel functions of the event streams each
// login session has open, so that a logout, an expiry or an admin's end
// of the session ends them at once rather than at their next heartbeat.
// It is a small locked API.
type sessionStreams struct {
	mu    sync.Mutex
	next  uint64
	byKey map[string]map[uint64]context.CancelFunc
}

func newSessionStreams() *sessionStreams {
	return &sessionStreams{byKey: map[string]map[uint64]context.CancelFunc{}}
}

// add keeps cancel under the session key and returns the function that
// forgets it again. An empty key (no accounts) is not kept.
func (ss *sessionStreams) add(key string, cancel context.CancelFunc) (remove func()) {
	if key == "" {
		return func() {}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.next++
	id := ss.next
	m := ss.byKey[key]
	if m == nil {
		m = map[uint64]context.CancelFunc{}
		ss.byKey[key] = m
	}
	m[id] = cancel
	return func() {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		if m := ss.byKey[key]; m != nil {
			delete(m, id)
			if len(m) == 0 {
				delete(ss.byKey, key)
			}
		}
	}
}

// end cancels every stream of the session key.
func (ss *sessionStreams) end(key string) {
	ss.mu.Lock()
	m := ss.byKey[key]
	delete(ss.byKey, key)
	ss.mu.Unlock()
	for _, cancel := range m {
		cancel()
	}
}
