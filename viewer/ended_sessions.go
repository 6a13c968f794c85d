package viewer

import (
	"sync"
	"time"
)

// Bounds of the ended sessions' memory: a viewer asks within seconds of
// its session's end, and only sessions that a configuration change ended
// are kept, so a reload that removes a camera watched on a hundred walls
// fits many times over.
const (
	endedSessionsMax = 4096
	endedSessionsTTL = 5 * time.Minute
)

// endedSession is why a WHEP session ended on the server's side, kept for
// its viewer to ask (GET or DELETE of the session's URL).
type endedSession struct {
	camera string
	owner  string // username, "" without accounts
	code   string // reasonCameraRemoved or reasonCameraChanged
	at     time.Time
}

// endedSessions remembers the sessions a configuration change ended, at
// most endedSessionsMax for endedSessionsTTL (the oldest go first). A
// small locked API.
type endedSessions struct {
	mu    sync.Mutex
	byID  map[string]endedSession
	order []string // ids, oldest first
}

func newEndedSessions() *endedSessions {
	return &endedSessions{byID: map[string]endedSession{}}
}

// add remembers a session's end.
func (e *endedSessions) add(id string, es endedSession) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.expireLocked(es.at)
	for len(e.order) >= endedSessionsMax {
		delete(e.byID, e.order[0])
		e.order = e.order[1:]
	}
	e.byID[id] = es
	e.order = append(e.order, id)
}

// get returns a session's end, if it is remembered.
func (e *endedSessions) get(id string, now time.Time) (endedSession, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.expireLocked(now)
	es, ok := e.byID[id]
	return es, ok
}

func (e *endedSessions) expireLocked(now time.Time) {
	n := 0
	for n < len(e.order) && now.Sub(e.byID[e.order[n]].at) > endedSessionsTTL {
		delete(e.byID, e.order[n])
		n++
	}
	if n > 0 {
		e.order = append(e.order[:0], e.order[n:]...)
	}
}
