package alarms

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/netip"
	"sync"
	"time"
)

// authLimiter counts wrong passwords and puts keys in back-off: a user
// name at one address, an address, and a user name everywhere. It is a
// small locked API.
//
// Why three keys: the pair stops one address guessing one user name early
// (5 free) and for long (up to 15 minutes). The address stops one address
// spraying many user names. The user name stops many addresses guessing
// one; its delay is capped short (30 s), and the address from which the
// user name last logged in is exempt from it, so that an attacker who
// hammers a device's user name cannot keep the real device out. Refusals
// during a back-off are not counted: a device that retries during the
// back-off does not lengthen it.
type authLimiter struct {
	cfg AuthConfig
	now func() time.Time

	mu    sync.Mutex
	pairs map[string]*backoff
	addrs map[string]*backoff
	users map[string]*backoff
	good  map[string]string // user name -> the address it last logged in from
	// pending counts each address's checks in progress; an address is in
	// it only while it has some, so it holds at most one entry per
	// check in progress.
	pending map[string]int
}

type backoff struct {
	failures int
	last     time.Time // the last failure
	until    time.Time // refused until then
}

func newAuthLimiter(cfg AuthConfig) *authLimiter {
	return &authLimiter{cfg: cfg, now: time.Now,
		pairs: map[string]*backoff{}, addrs: map[string]*backoff{},
		users: map[string]*backoff{}, good: map[string]string{}, pending: map[string]int{}}
}

// begin counts a check from addr in progress, unless addr already has
// address_pending of them; end ends it.
func (l *authLimiter) begin(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending[addr] >= l.cfg.AddressPending {
		return false
	}
	l.pending[addr]++
	return true
}

func (l *authLimiter) end(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending[addr]--; l.pending[addr] <= 0 {
		delete(l.pending, addr)
	}
}

// Limits that refuse an attempt, as metric labels.
const (
	limitPair    = "user_address"
	limitAddress = "address"
	limitUser    = "user"
)

// blocked returns the limit that refuses an attempt to log in as user
// from addr now, or "".
func (l *authLimiter) blocked(user, addr string) string {
	user = userKey(user)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case now.Before(until(l.pairs[pairKey(user, addr)])):
		return limitPair
	case now.Before(until(l.addrs[addr])):
		return limitAddress
	case now.Before(until(l.users[user])) && l.good[user] != addr:
		return limitUser
	}
	return ""
}

func until(b *backoff) time.Time {
	if b == nil {
		return time.Time{}
	}
	return b.until
}

// failed counts a wrong password for user from addr.
func (l *authLimiter) failed(user, addr string) {
	user = userKey(user)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count(l.pairs, pairKey(user, addr), l.cfg.PairFailures, l.cfg.MaxDelay, now)
	l.count(l.addrs, addr, l.cfg.AddressFailures, l.cfg.MaxDelay, now)
	l.count(l.users, user, l.cfg.UserFailures, l.cfg.UserMaxDelay, now)
}

// succeeded forgets the pair's failures and remembers addr as user's
// address. The address's and the user name's failures stay until they
// are forgotten: a login between guesses must not reset the count.
func (l *authLimiter) succeeded(user, addr string) {
	user = userKey(user)
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pairs, pairKey(user, addr))
	l.good[user] = addr // only configured user names log in: bounded
}

func (l *authLimiter) count(m map[string]*backoff, key string, free int, maxDelay time.Duration, now time.Time) {
	b := m[key]
	if b == nil {
		if len(m) >= l.cfg.MaxTracked && !l.evict(m, now) {
			// Every tracked key is in back-off: this one goes uncounted,
			// and the bcrypt workers still bound what it costs.
			return
		}
		b = &backoff{}
		m[key] = b
	} else if l.forgotten(b, now) {
		*b = backoff{}
	}
	b.failures++
	b.last = now
	if b.failures >= free {
		d := l.cfg.BaseDelay
		for i := free; i < b.failures && d < maxDelay; i++ {
			d *= 2
		}
		b.until = now.Add(min(d, maxDelay))
	}
}

func (l *authLimiter) forgotten(b *backoff, now time.Time) bool {
	return now.After(b.last.Add(l.cfg.ForgetAfter)) && now.After(b.until.Add(l.cfg.ForgetAfter))
}

// evict drops the keys of m not in back-off, and tells whether that made
// room.
func (l *authLimiter) evict(m map[string]*backoff, now time.Time) bool {
	for k, b := range m {
		if !now.Before(b.until) {
			delete(m, k)
		}
	}
	return len(m) < l.cfg.MaxTracked
}

// maxUserKey bounds a user name kept as a key; a longer one (MQTT allows
// 64 KiB) is kept as its SHA-256.
const maxUserKey = 64

func userKey(user string) string {
	if len(user) <= maxUserKey {
		return user
	}
	sum := sha256.Sum256([]byte(user))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func pairKey(user, addr string) string { return user + "\x00" + addr }

// addrKey is the host of a remote address; an IPv6 host counts as its /64,
// which one client usually holds whole.
func addrKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
