package viewer

import (
	"math"
	"sync"
	"time"
)

// bucketRule is a token bucket's shape: Burst attempts at once, then one
// more every Every.
type bucketRule struct {
	Burst float64
	Every time.Duration
}

// Login rate limits of the patrol page. Per user name, to slow guessing
// one unit's password from many addresses; per address, to slow one
// client guessing many units' passwords (a patrol station behind one NAT
// still gets room for several officers).
var (
	defaultUnitLoginRule = bucketRule{Burst: 5, Every: time.Minute}
	defaultAddrLoginRule = bucketRule{Burst: 20, Every: 15 * time.Second}
)

// maxLoginBuckets bounds each map of buckets; past it, buckets that have
// refilled (which say nothing a missing bucket does not) are dropped.
const maxLoginBuckets = 10000

type tokenBucket struct {
	tokens float64
	last   time.Time
}

// loginLimiter rate-limits login attempts with token buckets per user
// name and per client address. Every attempt takes a token from both,
// whether it succeeds or not. It is a small locked API.
type loginLimiter struct {
	unitRule, addrRule bucketRule

	mu    sync.Mutex
	units map[string]*tokenBucket
	addrs map[string]*tokenBucket
}

func newLoginLimiter() *loginLimiter {
	return newLoginLimiterRules(defaultUnitLoginRule, defaultAddrLoginRule)
}

// newLoginLimiterRules limits per user name by user and per address by
// addr.
func newLoginLimiterRules(user, addr bucketRule) *loginLimiter {
	return &loginLimiter{unitRule: user, addrRule: addr,
		units: map[string]*tokenBucket{}, addrs: map[string]*tokenBucket{}}
}

// forget refills user's bucket: after a successful login, earlier wrong
// passwords no longer count against the account.
func (l *loginLimiter) forget(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.units, user)
}

// limitedBy says which limit refused an attempt.
type limitedBy string

const (
	limitedNone limitedBy = ""
	limitedUnit limitedBy = "user name"
	limitedAddr limitedBy = "address"
)

// allow takes a token for an attempt to log in as user from addr. When a
// bucket is empty it takes nothing and says which limit refused it and
// when to try again.
func (l *loginLimiter) allow(user, addr string, now time.Time) (limitedBy, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ub := l.bucket(l.units, l.unitRule, user, now)
	ab := l.bucket(l.addrs, l.addrRule, addr, now)
	if ab.tokens < 1 {
		return limitedAddr, wait(ab, l.addrRule)
	}
	if ub.tokens < 1 {
		return limitedUnit, wait(ub, l.unitRule)
	}
	ub.tokens--
	ab.tokens--
	return limitedNone, 0
}

// bucket returns key's bucket in m, refilled up to now.
func (l *loginLimiter) bucket(m map[string]*tokenBucket, rule bucketRule, key string, now time.Time) *tokenBucket {
	b := m[key]
	if b == nil {
		if len(m) >= maxLoginBuckets {
			for k, old := range m {
				if refill(old, rule, now); old.tokens >= rule.Burst {
					delete(m, k)
				}
			}
		}
		b = &tokenBucket{tokens: rule.Burst, last: now}
		m[key] = b
		return b
	}
	refill(b, rule, now)
	return b
}

func refill(b *tokenBucket, rule bucketRule, now time.Time) {
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = math.Min(rule.Burst, b.tokens+float64(elapsed)/float64(rule.Every))
		b.last = now
	}
}

// wait is how long until the bucket holds a whole token.
func wait(b *tokenBucket, rule bucketRule) time.Duration {
	return time.Duration((1 - b.tokens) * float64(rule.Every))
}
