package alarms

import "sync"

// maxUncertain bounds the keys remembered by uncertainKeys.
const maxUncertain = 10000

// uncertainKeys remembers the events whose append failed. A failed write
// may still have been stored (Redis applied it but its reply was lost), so
// when the retry finds the event already stored, it is this intake's own
// event, not a device's duplicate: it must be counted and announced once.
// The oldest keys are forgotten past maxUncertain.
type uncertainKeys struct {
	mu    sync.Mutex
	keys  map[string]struct{}
	order []string
}

func (u *uncertainKeys) add(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.keys == nil {
		u.keys = map[string]struct{}{}
	}
	if _, ok := u.keys[key]; ok {
		return
	}
	u.keys[key] = struct{}{}
	u.order = append(u.order, key)
	if len(u.order) > maxUncertain {
		delete(u.keys, u.order[0])
		u.order = u.order[1:]
	}
}

// take reports whether key was remembered, and forgets it.
func (u *uncertainKeys) take(key string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.keys[key]; !ok {
		return false
	}
	delete(u.keys, key)
	return true
}
