package viewer

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/skywatch/skywatch/accounts"
)

// SharedLogins keeps what the nodes of a cluster must agree on about
// logins (accounts.RedisStore): the sessions, looked up by key when a
// cookie made on another node comes here, and the login rate limits, so
// that a guesser gets no more attempts by spreading them over the nodes
// and an admin's unlock acts on every node.
type SharedLogins interface {
	// Session returns the stored session under key; false when there is
	// none.
	Session(ctx context.Context, key string) (accounts.Session, bool, error)
	// TakeLogin takes a token of every bucket when each holds one and
	// returns -1; else it takes none and returns the index of the first
	// empty bucket and how long until it holds a token.
	TakeLogin(ctx context.Context, buckets []accounts.LoginBucket, now time.Time) (refused int, wait time.Duration, err error)
	// LoginLocks lists the buckets that refuse attempts at now, at most max.
	LoginLocks(ctx context.Context, now time.Time, max int) ([]accounts.LoginLock, error)
	// ResetLogin fills buckets again: those named and the locked ones
	// that match says so of (match may be nil). It returns how many.
	ResetLogin(ctx context.Context, names []string, match func(name string) bool) (int, error)
	// KnowLoginAddr remembers addr as one account logs in from, keeping
	// the newest max; KnownLoginAddr says whether it is one.
	KnowLoginAddr(ctx context.Context, account, addr string, max int, now time.Time) error
	KnownLoginAddr(ctx context.Context, account, addr string) (bool, error)
}

// sharedTimeout bounds each call to the shared store from a login or an
// admin's request.
const sharedTimeout = 2 * time.Second

// opLimits is what the console's login and the admin's lockout pages ask
// of a login limiter: operatorLimiter on one node, sharedLimiter in a
// cluster.
type opLimits interface {
	allow(account, addr string, now time.Time) (limitedBy, time.Duration)
	succeeded(account, addr string)
	know(account, addr string)
	lockouts(now time.Time) []lockout
	unlock(account, addr string) int
}

var (
	_ opLimits = (*operatorLimiter)(nil)
	_ opLimits = (*sharedLimiter)(nil)
)

// unitLimits is what the patrol page's login asks of a limiter:
// loginLimiter on one node, sharedUnits in a cluster.
type unitLimits interface {
	allow(user, addr string, now time.Time) (limitedBy, time.Duration)
}

var (
	_ unitLimits = (*loginLimiter)(nil)
	_ unitLimits = sharedUnits{}
)

// Kinds of shared bucket, the first part of a bucket's name. A name is
// kind|account|address, account and address query-escaped (a login's
// user name is the client's: it may hold '|').
const (
	bucketPair     = "pair"  // an operator account from an address
	bucketAddr     = "addr"  // an address, every operator account
	bucketWide     = "wide"  // an operator account from addresses that have not logged in to it
	bucketUnit     = "unit"  // a patrol page user name
	bucketUnitAddr = "paddr" // an address on the patrol page
)

func bucketName(kind, account, addr string) string {
	return kind + "|" + url.QueryEscape(account) + "|" + url.QueryEscape(addr)
}

// parseBucketName undoes bucketName.
func parseBucketName(name string) (kind, account, addr string, ok bool) {
	parts := strings.Split(name, "|")
	if len(parts) != 3 {
		return "", "", "", false
	}
	a, err1 := url.QueryUnescape(parts[1])
	d, err2 := url.QueryUnescape(parts[2])
	return parts[0], a, d, err1 == nil && err2 == nil
}

// sharedLimiter keeps the login limits in the shared store, with the
// rules and answers of operatorLimiter (and loginLimiter for the patrol
// page). When the store fails it falls back to this node's own limiter,
// so that logins go on while Redis is away, limited per node.
type sharedLimiter struct {
	st                           SharedLogins
	pairRule, addrRule, wideRule bucketRule
	unitRule, unitAddrRule       bucketRule
	local                        *operatorLimiter
	localUnits                   *loginLimiter
	failed                       func(op string, err error)
}

func (l *sharedLimiter) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), sharedTimeout)
}

func lb(name string, r bucketRule) accounts.LoginBucket {
	return accounts.LoginBucket{Name: name, Burst: r.Burst, Every: r.Every}
}

func (l *sharedLimiter) allow(account, addr string, now time.Time) (limitedBy, time.Duration) {
	ctx, cancel := l.ctx()
	defer cancel()
	known, err := l.st.KnownLoginAddr(ctx, account, addr)
	if err != nil {
		l.failed("login limit", err)
		return l.local.allow(account, addr, now)
	}
	buckets := []accounts.LoginBucket{lb(bucketName(bucketAddr, "", addr), l.addrRule),
		lb(bucketName(bucketPair, account, addr), l.pairRule)}
	by := []limitedBy{limitedAddr, limitedPair, limitedWide}
	if !known {
		buckets = append(buckets, lb(bucketName(bucketWide, account, ""), l.wideRule))
	}
	refused, wait, err := l.st.TakeLogin(ctx, buckets, now)
	if err != nil {
		l.failed("login limit", err)
		return l.local.allow(account, addr, now)
	}
	if refused < 0 {
		return limitedNone, 0
	}
	return by[refused], wait
}

func (l *sharedLimiter) succeeded(account, addr string) {
	l.local.succeeded(account, addr)
	ctx, cancel := l.ctx()
	defer cancel()
	if _, err := l.st.ResetLogin(ctx, []string{bucketName(bucketPair, account, addr)}, nil); err != nil {
		l.failed("login limit", err)
	}
	if err := l.st.KnowLoginAddr(ctx, account, addr, maxKnownAddrs, time.Now()); err != nil {
		l.failed("login limit", err)
	}
}

// know is for sessions restored at start: the shared store already knows
// their addresses.
func (l *sharedLimiter) know(account, addr string) { l.local.know(account, addr) }

func (l *sharedLimiter) lockouts(now time.Time) []lockout {
	ctx, cancel := l.ctx()
	defer cancel()
	locks, err := l.st.LoginLocks(ctx, now, accounts.MaxLoginLocks)
	if err != nil {
		l.failed("login lockouts", err)
		return l.local.lockouts(now)
	}
	var out []lockout
	for _, k := range locks {
		kind, account, addr, ok := parseBucketName(k.Name)
		if !ok || !slices.Contains([]string{bucketPair, bucketAddr, bucketWide}, kind) || len(out) >= maxLockoutsListed {
			continue
		}
		out = append(out, lockout{User: account, Addr: addr, RetryAfter: retrySeconds(k.Until.Sub(now))})
	}
	slices.SortFunc(out, func(a, b lockout) int {
		if c := strings.Compare(a.User, b.User); c != 0 {
			return c
		}
		return strings.Compare(a.Addr, b.Addr)
	})
	return out
}

// unlock lifts, on every node, what operatorLimiter.unlock lifts on one:
// the named buckets whatever their state, and the locked ones that the
// wildcards ("" account or address) match.
func (l *sharedLimiter) unlock(account, addr string) int {
	local := l.local.unlock(account, addr)
	var names []string
	switch {
	case account != "" && addr != "":
		names = append(names, bucketName(bucketPair, account, addr))
	case addr == "":
		names = append(names, bucketName(bucketWide, account, ""))
	case account == "":
		names = append(names, bucketName(bucketAddr, "", addr))
	}
	match := func(name string) bool {
		kind, a, d, ok := parseBucketName(name)
		return ok && kind == bucketPair && (account == "" || a == account) && (addr == "" || d == addr)
	}
	ctx, cancel := l.ctx()
	defer cancel()
	n, err := l.st.ResetLogin(ctx, names, match)
	if err != nil {
		l.failed("login unlock", err)
		return local
	}
	return n
}

// sharedUnits is the patrol page's login limiter in the shared store.
type sharedUnits struct{ *sharedLimiter }

func (u sharedUnits) allow(user, addr string, now time.Time) (limitedBy, time.Duration) {
	ctx, cancel := u.ctx()
	defer cancel()
	refused, wait, err := u.st.TakeLogin(ctx, []accounts.LoginBucket{
		lb(bucketName(bucketUnitAddr, "", addr), u.unitAddrRule), lb(bucketName(bucketUnit, user, ""), u.unitRule)}, now)
	if err != nil {
		u.failed("patrol login limit", err)
		return u.localUnits.allow(user, addr, now)
	}
	switch refused {
	case -1:
		return limitedNone, 0
	case 0:
		return limitedAddr, wait
	}
	return limitedUnit, wait
}
