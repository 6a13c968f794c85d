package viewer

import (
	"crypto/rand"
	"sync"
	"time"
)

// Limits of the patrol page's sessions.
const (
	// patrolSessionTTL is how long a login lasts: a shift, with margin.
	patrolSessionTTL = 12 * time.Hour
	// maxPatrolSessions bounds the sessions kept; past it the session
	// that expires first is dropped.
	maxPatrolSessions = 10000
)

// patrolSession is a logged-in unit. The session's token is the key it is
// kept under (and the cookie's value); CSRF is the token the page must
// send in the X-CSRF-Token header of every POST.
type patrolSession struct {
	Unit    string
	CSRF    string
	Expires time.Time
}

// patrolSessions keeps the patrol page's sessions in memory: a restart
// logs every officer out, which is acceptable for a page that logs in
// again in seconds. It is a small locked API; expired sessions are swept
// when a session is created.
type patrolSessions struct {
	ttl time.Duration

	mu      sync.Mutex
	byToken map[string]patrolSession
}

func newPatrolSessions(ttl time.Duration) *patrolSessions {
	return &patrolSessions{ttl: ttl, byToken: map[string]patrolSession{}}
}

// create starts a session for unit and returns its token.
func (p *patrolSessions) create(unit string, now time.Time) (string, patrolSession) {
	token := rand.Text()
	sess := patrolSession{Unit: unit, CSRF: rand.Text(), Expires: now.Add(p.ttl)}
	p.mu.Lock()
	defer p.mu.Unlock()
	for t, s := range p.byToken {
		if !now.Before(s.Expires) {
			delete(p.byToken, t)
		}
	}
	if len(p.byToken) >= maxPatrolSessions {
		first := ""
		for t, s := range p.byToken {
			if first == "" || s.Expires.Before(p.byToken[first].Expires) {
				first = t
			}
		}
		delete(p.byToken, first)
	}
	p.byToken[token] = sess
	return token, sess
}

// get returns the live session of a token.
func (p *patrolSessions) get(token string, now time.Time) (patrolSession, bool) {
	if token == "" {
		return patrolSession{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.byToken[token]
	if ok && !now.Before(s.Expires) {
		delete(p.byToken, token)
		return patrolSession{}, false
	}
	return s, ok
}

// remove ends a session (logout); an unknown token is ignored.
func (p *patrolSessions) remove(token string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.byToken, token)
}
