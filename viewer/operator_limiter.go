package viewer

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// maxKnownAddrs bounds the addresses remembered per account as having
// logged in to it.
const maxKnownAddrs = 16

// Operator login limits besides the per account and address one, which
// the config sets (http.login_failures, http.login_lockout).
var (
	// One address may try many accounts a little faster, since a command
	// centre shares one.
	defaultOperatorAddrRule = bucketRule{Burst: 20, Every: 15 * time.Second}
	// Guessing one account's password from many addresses is slowed by
	// this, which refuses only addresses that have never logged in to the
	// account: the duty officer's own workstation is never locked out by it.
	defaultAccountWideRule = bucketRule{Burst: 50, Every: time.Minute}
)

// operatorLimiter rate-limits the console's logins. A wrong password is
// counted against the pair of account and address: an attacker who keeps
// failing locks only their own address out of the account, never the
// duty officer at another workstation, and never a session already
// logged in (the limiter is asked only at login). Every attempt also
// takes a token of its address; one from an address that has not logged
// in to the account before takes one of the account's wide bucket too.
// It is a small locked API.
type operatorLimiter struct {
	pairRule, addrRule, wideRule bucketRule

	mu    sync.Mutex
	pairs map[pairKey]*tokenBucket
	addrs map[string]*tokenBucket
	wide  map[string]*tokenBucket
	// known are the addresses each account logged in from, newest last.
	known map[string][]string
}

type pairKey struct{ account, addr string }

func newOperatorLimiter(pair, addr, wide bucketRule) *operatorLimiter {
	return &operatorLimiter{pairRule: pair, addrRule: addr, wideRule: wide,
		pairs: map[pairKey]*tokenBucket{}, addrs: map[string]*tokenBucket{},
		wide: map[string]*tokenBucket{}, known: map[string][]string{}}
}

// Which limit refused a login.
const (
	limitedPair limitedBy = "account from this address"
	limitedWide limitedBy = "account from new addresses"
)

// allow takes the tokens of an attempt to log in to account (lower case)
// from addr; when a bucket is empty it takes none and says which limit
// refused and when to try again.
func (l *operatorLimiter) allow(account, addr string, now time.Time) (limitedBy, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ab := takeBucket(l.addrs, l.addrRule, addr, now)
	pb := takeBucket(l.pairs, l.pairRule, pairKey{account, addr}, now)
	var wb *tokenBucket
	if !slices.Contains(l.known[account], addr) {
		wb = takeBucket(l.wide, l.wideRule, account, now)
	}
	switch {
	case ab.tokens < 1:
		return limitedAddr, wait(ab, l.addrRule)
	case pb.tokens < 1:
		return limitedPair, wait(pb, l.pairRule)
	case wb != nil && wb.tokens < 1:
		return limitedWide, wait(wb, l.wideRule)
	}
	ab.tokens--
	pb.tokens--
	if wb != nil {
		wb.tokens--
	}
	return limitedNone, 0
}

// succeeded forgets the pair's failures and remembers addr as one the
// account logs in from.
func (l *operatorLimiter) succeeded(account, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pairs, pairKey{account, addr})
	l.knowLocked(account, addr)
}

// know remembers addr as one the account logs in from (a session restored
// after a restart).
func (l *operatorLimiter) know(account, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.knowLocked(account, addr)
}

func (l *operatorLimiter) knowLocked(account, addr string) {
	k := slices.DeleteFunc(l.known[account], func(a string) bool { return a == addr })
	k = append(k, addr)
	if len(k) > maxKnownAddrs {
		k = k[len(k)-maxKnownAddrs:]
	}
	l.known[account] = k
}

// lockout is a limit that refuses logins now.
type lockout struct {
	// User is the account (lower case), "" for an address's limit over
	// all accounts.
	User string `json:"user"`
	// Addr is the address, "" for the account's limit over new addresses.
	Addr       string `json:"addr"`
	RetryAfter int    `json:"retry_after_s"`
}

// maxLockoutsListed bounds the lockouts one listing returns.
const maxLockoutsListed = 500

// lockouts lists the limits that refuse logins at now, at most
// maxLockoutsListed, by user and address.
func (l *operatorLimiter) lockouts(now time.Time) []lockout {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []lockout
	add := func(user, addr string, b *tokenBucket, rule bucketRule) {
		if refill(b, rule, now); b.tokens < 1 && len(out) < maxLockoutsListed {
			out = append(out, lockout{User: user, Addr: addr, RetryAfter: retrySeconds(wait(b, rule))})
		}
	}
	for k, b := range l.pairs {
		add(k.account, k.addr, b, l.pairRule)
	}
	for a, b := range l.addrs {
		add("", a, b, l.addrRule)
	}
	for u, b := range l.wide {
		add(u, "", b, l.wideRule)
	}
	slices.SortFunc(out, func(a, b lockout) int {
		if c := strings.Compare(a.User, b.User); c != 0 {
			return c
		}
		return strings.Compare(a.Addr, b.Addr)
	})
	return out
}

// unlock lifts lockouts: of account from addr when both are given, of
// account everywhere (its pairs and its wide limit) when addr is "", of
// addr for every account (its own limit and its pairs) when account is
// "". It returns how many limits it lifted.
func (l *operatorLimiter) unlock(account, addr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for k := range l.pairs {
		if (account == "" || k.account == account) && (addr == "" || k.addr == addr) {
			delete(l.pairs, k)
			n++
		}
	}
	if addr == "" {
		if _, ok := l.wide[account]; ok {
			delete(l.wide, account)
			n++
		}
	}
	if account == "" {
		if _, ok := l.addrs[addr]; ok {
			delete(l.addrs, addr)
			n++
		}
	}
	return n
}

// takeBucket returns key's bucket in m, refilled up to now. A full map
// first drops buckets that have refilled (they say nothing a missing
// bucket does not), then, if still full, any one: a peer would need
// maxLoginBuckets fresh attempts, which the address limit slows, to free
// one of its own buckets that way.
func takeBucket[K comparable](m map[K]*tokenBucket, rule bucketRule, key K, now time.Time) *tokenBucket {
	if b := m[key]; b != nil {
		refill(b, rule, now)
		return b
	}
	if len(m) >= maxLoginBuckets {
		for k, old := range m {
			if refill(old, rule, now); old.tokens >= rule.Burst {
				delete(m, k)
			}
		}
		for k := range m {
			if len(m) < maxLoginBuckets {
				break
			}
			delete(m, k)
		}
	}
	b := &tokenBucket{tokens: rule.Burst, last: now}
	m[key] = b
	return b
}

// retrySeconds is a wait in whole seconds, at least 1.
func retrySeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}
