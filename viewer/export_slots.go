package viewer

import "sync"

// exportSlots counts the MP4 answers (exports, playback, clips) being
// written at once, per user and in all, and refuses one more past either
// limit: each one reads a span from disk for as long as its client takes
// it. A small locked API.
type exportSlots struct {
	perUser, total int

	mu    sync.Mutex
	users map[string]int
	all   int
}

func newExportSlots(perUser, total int) *exportSlots {
	return &exportSlots{perUser: perUser, total: total, users: map[string]int{}}
}

// take takes a slot of user; when the user's or the server's slots are
// full it takes nothing and says which ("user" or "server") and its limit.
func (e *exportSlots) take(user string) (full string, limit int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.users[user] >= e.perUser {
		return "user", e.perUser
	}
	if e.all >= e.total {
		return "server", e.total
	}
	e.users[user]++
	e.all++
	return "", 0
}

// give gives back a slot that take took.
func (e *exportSlots) give(user string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.users[user]--; e.users[user] <= 0 {
		delete(e.users, user)
	}
	e.all--
}

// inUse is the number of slots taken, for tests and metrics.
func (e *exportSlots) inUse() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.all
}
