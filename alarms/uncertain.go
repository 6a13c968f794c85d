package alarms

import "sync"

// maxUncertain bounds the keys remembered by uncertainKeys.
const maxUncertain = 10000

// uncertainKeys remembers the events whose append failed, and those lately
// announced. A failed write may still have been stored (Redis applied it
// but its reply was lost), so when the retry finds the event already
// stored, it is this intake's own event, not a device's duplicate: it must
// be counted and announced once. Once announced, a key stays settled, so
// that a later failed attempt of the same message (its event stored, a
// later write failed) does not make the next one announce it again. The
// oldest keys are forgotten past maxUncertain.
type uncertainKeys struct {
	mu    sync.Mutex
	keys  map[string]bool // true: uncertain; false: announced
	order []string
}

// failed notes that an append of key failed; a key announced lately stays
// announced.
func (u *uncertainKeys) failed(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.keys[key]; ok {
		return
	}
	u.remember(key, true)
}

// uncertain reports whether an append of key failed and it was not
// announced since.
func (u *uncertainKeys) uncertain(key string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.keys[key]
}

// announced notes that key was counted and announced.
func (u *uncertainKeys) announced(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.keys[key]; ok {
		u.keys[key] = false
		return
	}
	u.remember(key, false)
}

// remember adds a key, forgetting the oldest past maxUncertain. u.mu is
// held.
func (u *uncertainKeys) remember(key string, uncertain bool) {
	if u.keys == nil {
		u.keys = map[string]bool{}
	}
	u.keys[key] = uncertain
	u.order = append(u.order, key)
	if len(u.order) > maxUncertain {
		delete(u.keys, u.order[0])
		u.order = u.order[1:]
	}
}
