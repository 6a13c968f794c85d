package viewer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// SharedPatrolSessions keeps the patrol page's sessions where every node
// of a cluster sees them (accounts.RedisStore), so that an officer's page
// behind a load balancer stays logged in whichever node answers, and a
// logout on one node ends the session on all. Keys are hashes of the
// cookie's token.
type SharedPatrolSessions interface {
	SavePatrolSession(ctx context.Context, key string, data []byte, ttl time.Duration) error
	PatrolSession(ctx context.Context, key string) ([]byte, bool, error)
	DeletePatrolSession(ctx context.Context, key string) error
}

// patrolStore is what the patrol page asks of its sessions: patrolSessions
// on one node, sharedPatrol in a cluster.
type patrolStore interface {
	create(unit string, now time.Time) (string, patrolSession)
	get(token string, now time.Time) (patrolSession, bool)
	remove(token string)
}

var (
	_ patrolStore = (*patrolSessions)(nil)
	_ patrolStore = (*sharedPatrol)(nil)
)

// patrolKey is what a patrol session is stored under: a hash of its
// cookie's token, so that the store holds nothing a browser could present.
func patrolKey(token string) string {
	h := sha256.Sum256([]byte("patrol\x00" + token))
	return hex.EncodeToString(h[:])
}

// sharedPatrol keeps the patrol sessions in the shared store, and in this
// node's memory too: when the store fails, the sessions made here still
// work here.
type sharedPatrol struct {
	st     SharedPatrolSessions
	local  *patrolSessions
	failed func(op string, err error)
}

func (p *sharedPatrol) create(unit string, now time.Time) (string, patrolSession) {
	token, sess := p.local.create(unit, now)
	data, err := json.Marshal(sess)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		err = p.st.SavePatrolSession(ctx, patrolKey(token), data, sess.Expires.Sub(now))
		cancel()
	}
	if err != nil {
		p.failed("patrol session", err)
	}
	return token, sess
}

// get asks the store every time, so that a logout on another node counts
// at once.
func (p *sharedPatrol) get(token string, now time.Time) (patrolSession, bool) {
	if token == "" {
		return patrolSession{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	data, found, err := p.st.PatrolSession(ctx, patrolKey(token))
	if err != nil {
		p.failed("patrol session", err)
		return p.local.get(token, now)
	}
	var sess patrolSession
	if !found || json.Unmarshal(data, &sess) != nil || !now.Before(sess.Expires) {
		p.local.remove(token)
		return patrolSession{}, false
	}
	return sess, true
}

func (p *sharedPatrol) remove(token string) {
	p.local.remove(token)
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	if err := p.st.DeletePatrolSession(ctx, patrolKey(token)); err != nil {
		p.failed("patrol session", err)
	}
}
