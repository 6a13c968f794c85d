package viewer

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/skywatch/skywatch/accounts"
)

// maxOperatorSessions bounds the operator sessions kept; past it the
// session idle the longest is dropped.
const maxOperatorSessions = 10000

// opSession is a logged-in operator. Token is the cookie's value; CSRF is
// what the page must send in X-CSRF-Token with every change.
type opSession struct {
	Token    string
	CSRF     string
	User     accounts.User
	Addr     string
	Created  time.Time
	LastSeen time.Time
	// Idle is this session's idle timeout: the user's own, or the
	// server's.
	Idle time.Duration
}

// opSessions keeps operator sessions in memory, with an idle and an
// absolute timeout. A restart logs every operator out; the page asks them
// to log in again. It is a small locked API.
type opSessions struct {
	idle, max time.Duration

	mu      sync.Mutex
	byToken map[string]*opSession
}

func newOpSessions(idle, max time.Duration) *opSessions {
	return &opSessions{idle: idle, max: max, byToken: map[string]*opSession{}}
}

// idleOf is u's idle timeout: its own when it has one, else the
// server's, and never past the absolute timeout.
func (o *opSessions) idleOf(u accounts.User) time.Duration {
	if u.SessionIdle > 0 {
		return min(u.SessionIdle, o.max)
	}
	return o.idle
}

// expired says whether s has ended at now.
func (o *opSessions) expired(s *opSession, now time.Time) bool {
	return now.Sub(s.LastSeen) >= s.Idle || now.Sub(s.Created) >= o.max
}

// create starts a session for u.
func (o *opSessions) create(u accounts.User, addr string, now time.Time) opSession {
	s := &opSession{Token: rand.Text(), CSRF: rand.Text(), User: u, Addr: addr, Created: now, LastSeen: now,
		Idle: o.idleOf(u)}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.byToken) >= maxOperatorSessions {
		var oldest *opSession
		for _, x := range o.byToken {
			if oldest == nil || x.LastSeen.Before(oldest.LastSeen) {
				oldest = x
			}
		}
		delete(o.byToken, oldest.Token)
	}
	o.byToken[s.Token] = s
	return *s
}

// touch returns the live session of token and marks it used at now. An
// expired session is removed and returned with expired set, so that the
// caller can record its end.
func (o *opSessions) touch(token string, now time.Time) (s opSession, ok, expired bool) {
	if token == "" {
		return opSession{}, false, false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.byToken[token]
	if p == nil {
		return opSession{}, false, false
	}
	if o.expired(p, now) {
		delete(o.byToken, token)
		return *p, false, true
	}
	p.LastSeen = now
	return *p, true, false
}

// alive says whether token's session is live at now, without using it.
func (o *opSessions) alive(token string, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.byToken[token]
	return p != nil && !o.expired(p, now)
}

// remove ends a session (logout).
func (o *opSessions) remove(token string) (opSession, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.byToken[token]
	if p == nil {
		return opSession{}, false
	}
	delete(o.byToken, token)
	return *p, true
}

// sweep removes and returns the sessions expired at now.
func (o *opSessions) sweep(now time.Time) []opSession {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []opSession
	for t, p := range o.byToken {
		if o.expired(p, now) {
			delete(o.byToken, t)
			out = append(out, *p)
		}
	}
	return out
}
