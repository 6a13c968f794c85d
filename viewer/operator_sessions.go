package viewer

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skywatch/skywatch/accounts"
)

// maxOperatorSessions bounds the operator sessions kept; past it the
// session idle the longest is dropped.
const maxOperatorSessions = 10000

// persistEvery is how stale a session's stored last use may get: a
// restart may then end a session up to this much before its time.
const persistEvery = time.Minute

// sharedPersistEvery is persistEvery when several nodes share the
// sessions: each node learns of the use on the others from the store, so
// its copy must be fresher. A session then lives up to this much past its
// idle timeout (sharedSlack), so that no node ends it while another has
// seen it used and not yet written so.
const sharedPersistEvery = 10 * time.Second

// sessionKey is what a session is kept under: a hash of its cookie's
// token, so that neither memory dumps of the map's keys nor the session
// store hold anything a browser could present.
func sessionKey(token string) string {
	h := sha256.Sum256([]byte("session\x00" + token))
	return hex.EncodeToString(h[:])
}

// csrfOf is the CSRF token of the session whose cookie holds token: a
// hash of it, so that it needs no storing and survives a restart with
// the session.
func csrfOf(token string) string {
	h := sha256.Sum256([]byte("csrf\x00" + token))
	return hex.EncodeToString(h[:16])
}

// opSession is a logged-in operator, kept under its key.
type opSession struct {
	Key      string
	User     accounts.User
	Addr     string
	Created  time.Time
	LastSeen time.Time
	// Idle is this session's idle timeout: the user's own, or the
	// server's.
	Idle time.Duration
	// Persisted is the LastSeen the session store has.
	Persisted time.Time
}

// record is the session as the session store keeps it.
func (s opSession) record() accounts.Session {
	return accounts.Session{Key: s.Key, Username: s.User.Username, Addr: s.Addr, Created: s.Created, LastSeen: s.LastSeen,
		Fingerprint: s.User.Fingerprint}
}

// opSessions keeps operator sessions in memory, with an idle and an
// absolute timeout; the server copies them to its session store so that a
// restart keeps them. It is a small locked API.
type opSessions struct {
	idle, max time.Duration
	// persistEvery is how often a used session's last use is written to
	// the store; slack is added to the idle timeout (sharedSlack in a
	// cluster, else 0).
	persistEvery, slack time.Duration

	mu    sync.Mutex
	byKey map[string]*opSession
}

func newOpSessions(idle, max time.Duration) *opSessions {
	return &opSessions{idle: idle, max: max, persistEvery: persistEvery, byKey: map[string]*opSession{}}
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
	return now.Sub(s.LastSeen) >= s.Idle+o.slack || now.Sub(s.Created) >= o.max
}

// create starts a session for u and returns it with its cookie's token.
func (o *opSessions) create(u accounts.User, addr string, now time.Time) (token string, s opSession) {
	token = rand.Text()
	p := &opSession{Key: sessionKey(token), User: u, Addr: addr, Created: now, LastSeen: now, Idle: o.idleOf(u)}
	o.add(p)
	return token, *p
}

// add keeps p, dropping the session idle the longest when full.
func (o *opSessions) add(p *opSession) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.byKey) >= maxOperatorSessions {
		var oldest *opSession
		for _, x := range o.byKey {
			if oldest == nil || x.LastSeen.Before(oldest.LastSeen) {
				oldest = x
			}
		}
		delete(o.byKey, oldest.Key)
	}
	o.byKey[p.Key] = p
}

// restore puts back a stored session of u; false when it has ended, or
// when u's password, role or area has changed since it started (a session
// stored without a fingerprint is taken as changed).
func (o *opSessions) restore(rec accounts.Session, u accounts.User, now time.Time) bool {
	p := &opSession{Key: rec.Key, User: u, Addr: rec.Addr, Created: rec.Created, LastSeen: rec.LastSeen,
		Idle: o.idleOf(u), Persisted: rec.LastSeen}
	if o.expired(p, now) || rec.Fingerprint != u.Fingerprint {
		return false
	}
	o.add(p)
	return true
}

// has says whether a session is kept under key, live or not.
func (o *opSessions) has(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.byKey[key] != nil
}

// seen takes a later last use of the session under key from the store
// (another node's use); false when no session is kept under key.
func (o *opSessions) seen(key string, lastSeen time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.byKey[key]
	if p == nil {
		return false
	}
	if lastSeen.After(p.LastSeen) {
		p.LastSeen = lastSeen
	}
	if lastSeen.After(p.Persisted) {
		p.Persisted = lastSeen
	}
	return true
}

// keysBefore returns the keys of the sessions kept that were created
// before t.
func (o *opSessions) keysBefore(t time.Time) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]string, 0, len(o.byKey))
	for k, p := range o.byKey {
		if p.Created.Before(t) {
			out = append(out, k)
		}
	}
	return out
}

// touch returns the live session of token and marks it used at now;
// stale says the store's copy should be refreshed. An expired session is
// removed and returned with expired set, so that the caller can record
// its end.
func (o *opSessions) touch(token string, now time.Time) (s opSession, ok, expired, stale bool) {
	if token == "" {
		return opSession{}, false, false, false
	}
	key := sessionKey(token)
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.byKey[key]
	if p == nil {
		return opSession{}, false, false, false
	}
	if o.expired(p, now) {
		delete(o.byKey, key)
		return *p, false, true, false
	}
	p.LastSeen = now
	if now.Sub(p.Persisted) >= o.persistEvery {
		p.Persisted = now
		stale = true
	}
	return *p, true, false, stale
}

// alive says whether the session under key is live at now, without using
// it.
func (o *opSessions) alive(key string, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.byKey[key]
	return p != nil && !o.expired(p, now)
}

// remove ends the session under key (logout).
func (o *opSessions) remove(key string) (opSession, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.byKey[key]
	if p == nil {
		return opSession{}, false
	}
	delete(o.byKey, key)
	return *p, true
}

// sweep removes and returns the sessions expired at now.
func (o *opSessions) sweep(now time.Time) []opSession {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []opSession
	for k, p := range o.byKey {
		if o.expired(p, now) {
			delete(o.byKey, k)
			out = append(out, *p)
		}
	}
	return out
}

// removeUser ends every session of username (regardless of case) and
// returns them.
func (o *opSessions) removeUser(username string) []opSession {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []opSession
	for k, p := range o.byKey {
		if strings.EqualFold(p.User.Username, username) {
			delete(o.byKey, k)
			out = append(out, *p)
		}
	}
	return out
}

// list returns the live sessions at now, oldest first.
func (o *opSessions) list(now time.Time) []opSession {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]opSession, 0, len(o.byKey))
	for _, p := range o.byKey {
		if !o.expired(p, now) {
			out = append(out, *p)
		}
	}
	slices.SortFunc(out, func(a, b opSession) int { return a.Created.Compare(b.Created) })
	return out
}
