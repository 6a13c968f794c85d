package alarms

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Kinds of identity at the embedded broker.
const (
	identityDevice = "device"
	identityUnit   = "unit"
)

// Errors of a device's or unit's login, for the patrol page to tell apart.
var (
	// ErrBadCredentials: the user name or the password is wrong.
	ErrBadCredentials = errors.New("wrong user name or password")
	// ErrLoginThrottled: too many wrong passwords for this user name or
	// from this address; the attempt was not checked.
	ErrLoginThrottled = errors.New("too many wrong passwords: try again later")
	// ErrLoginBusy: too many password checks are waiting; try again.
	ErrLoginBusy = errors.New("too many logins at once: try again")
)

// Where a login came from, as a metric label.
const (
	viaMQTT   = "mqtt"
	viaPatrol = "patrol"
)

// identity is a device or unit that may connect to the embedded broker.
type identity struct {
	kind  string // identityDevice or identityUnit
	id    string
	hash  []byte // bcrypt hash, or nil
	token []byte // SHA-256 of a random token, or nil
	plain []byte // plain password (demo only), or nil
}

func (idn *identity) secretless() bool {
	return idn.hash == nil && idn.token == nil && len(idn.plain) == 0
}

// dummyHash is the bcrypt hash (cost 10) of a password nobody has: an
// unknown user name is checked against a hash of the configured cost, so
// that a refusal takes as long whether the user exists or not.
const dummyHash = "$2a$10$T80HCw9e4s3OtfgG.e1rKOFmue5UH32h3tO2OWexywXzn/Xh99KiG"

// credentials checks device and unit passwords: limits wrong passwords
// (authLimiter), bounds the bcrypt work, and remembers verified passwords
// as keyed hashes (verifiedCache).
type credentials struct {
	// ids is the configured identities; replace swaps it whole (reload).
	ids      atomic.Pointer[identitySet]
	limits   *authLimiter
	verified *verifiedCache
	metrics  *authMetrics

	workers  chan struct{} // one per bcrypt check running
	waiting  atomic.Int64
	queueMax int64
	maxWait  time.Duration
	stop     chan struct{} // closed by close: waiting checks give up
	stopOnce sync.Once

	running, peak atomic.Int64 // bcrypt checks running, and the most at once
}

func newCredentials(devices []DeviceConfig, units []UnitConfig, cfg AuthConfig) *credentials {
	c := &credentials{
		limits:   newAuthLimiter(cfg),
		verified: newVerifiedCache(),
		metrics:  newAuthMetrics(),
		workers:  make(chan struct{}, cfg.BcryptWorkers),
		queueMax: int64(cfg.BcryptQueue),
		maxWait:  cfg.BcryptWait,
		stop:     make(chan struct{}),
	}
	c.ids.Store(newIdentitySet(devices, units, nil))
	return c
}

// identitySet is the identities of one configuration: never modified once
// built.
type identitySet struct {
	byUser map[string]*identity
	// unknown is what an unknown user name is checked against: a secret
	// of the kind most identities have (a bcrypt hash of the most common
	// cost, a token, or a plain password), so that a refusal takes as long
	// whether the name exists or not.
	unknown *identity
	// gone holds the identities that the last replace removed: a message
	// that such a client published as it was being disconnected passes
	// the access list and is kept as rejected (an unknown device), not
	// dropped by the broker unseen. Nothing else is allowed to them.
	gone map[string]*identity
}

// newIdentitySet builds the identities of devices and units, reusing
// those of prev (when not nil) that did not change: an unchanged identity
// keeps its pointer, which is how a connection knows it is still valid.
func newIdentitySet(devices []DeviceConfig, units []UnitConfig, prev *identitySet) *identitySet {
	set := &identitySet{byUser: map[string]*identity{}}
	costs := map[int]int{}
	tokens, plains := 0, 0
	add := func(kind, id, user, hash, token, plain string) {
		idn := &identity{kind: kind, id: id}
		switch {
		case hash != "":
			idn.hash = []byte(hash)
			if cost, err := bcrypt.Cost(idn.hash); err == nil {
				costs[cost]++
			}
		case token != "":
			idn.token, _ = hex.DecodeString(token) // validated
			tokens++
		default:
			idn.plain = []byte(plain)
			plains++
		}
		if prev != nil {
			if old := prev.byUser[user]; old != nil && old.same(idn) {
				idn = old
			}
		}
		set.byUser[user] = idn
	}
	for _, d := range devices {
		add(identityDevice, d.ID, d.Username, d.PasswordHash, d.TokenSHA256, d.Password)
	}
	for _, u := range units {
		add(identityUnit, u.ID, u.Username, u.PasswordHash, u.TokenSHA256, u.Password)
	}
	cost, n := bcrypt.DefaultCost, 0
	for k, v := range costs {
		if v > n || v == n && k > cost {
			cost, n = k, v
		}
	}
	set.unknown = &identity{hash: []byte(dummyHash)}
	switch {
	case plains > n && plains >= tokens:
		set.unknown = &identity{plain: []byte(dummyHash)}
	case tokens > n:
		sum := sha256.Sum256([]byte(dummyHash))
		set.unknown = &identity{token: sum[:]}
	case cost != bcrypt.DefaultCost:
		if prev != nil && prev.unknown.hash != nil {
			if c, err := bcrypt.Cost(prev.unknown.hash); err == nil && c == cost {
				set.unknown = prev.unknown // spares a bcrypt hash per reload
				break
			}
		}
		if h, err := bcrypt.GenerateFromPassword([]byte(dummyHash), cost); err == nil {
			set.unknown.hash = h
		}
	}
	return set
}

// same reports whether two identities are one: same kind, id and secret.
func (idn *identity) same(o *identity) bool {
	return idn.kind == o.kind && idn.id == o.id && bytes.Equal(idn.hash, o.hash) &&
		bytes.Equal(idn.token, o.token) && bytes.Equal(idn.plain, o.plain)
}

// replace makes devices and units the identities, and returns the user
// names whose identity changed or went away (their connections must end),
// each with the identity it had. The verified-credential cache
// forgets those users: their entries could not match anyway (the
// configured hash is part of each), but they would take room in the file.
func (c *credentials) replace(devices []DeviceConfig, units []UnitConfig) map[string]*identity {
	prev := c.ids.Load()
	set := newIdentitySet(devices, units, prev)
	set.gone = map[string]*identity{}
	changed := map[string]*identity{}
	var users []string
	for user, old := range prev.byUser {
		if cur := set.byUser[user]; cur != old {
			changed[user] = old
			users = append(users, user)
			if cur == nil {
				set.gone[user] = old
			}
		}
	}
	c.ids.Store(set)
	c.verified.forget(users)
	return changed
}

// close makes checks waiting for a bcrypt worker give up; it is
// idempotent.
func (c *credentials) close() { c.stopOnce.Do(func() { close(c.stop) }) }

// user returns the identity of a user name, or nil.
func (c *credentials) user(name string) *identity { return c.ids.Load().byUser[name] }

// removed returns the identity that the last replace removed for a user
// name, or nil.
func (c *credentials) removed(name string) *identity { return c.ids.Load().gone[name] }

// login returns the identity whose user name and password these are,
// seen from remote (host:port), or an error: ErrLoginThrottled while the
// user name or the address is in back-off (refused at once, without a
// bcrypt check), ErrLoginBusy when too many checks wait (in all, or from
// this address), else
// ErrBadCredentials. An unknown user name, or one of another kind than
// kind (when kind is not ""), costs a check all the same and counts as a
// wrong password.
func (c *credentials) login(user string, password []byte, remote, kind, via string) (*identity, error) {
	addr := addrKey(remote)
	if by := c.limits.blocked(user, addr); by != "" {
		c.metrics.refused.WithLabelValues(via, "backoff_"+by).Inc()
		return nil, ErrLoginThrottled
	}
	set := c.ids.Load()
	idn := set.byUser[user]
	if idn != nil && (kind != "" && idn.kind != kind || idn.secretless()) {
		idn = nil
	}
	ok, err := c.verify(set, idn, user, password, addr)
	if err != nil {
		reason := "busy"
		if errors.Is(err, errAddressBusy) {
			reason = "busy_address"
		}
		c.metrics.refused.WithLabelValues(via, reason).Inc()
		return nil, ErrLoginBusy
	}
	if !ok {
		c.limits.failed(user, addr)
		c.metrics.refused.WithLabelValues(via, "wrong").Inc()
		return nil, ErrBadCredentials
	}
	c.limits.succeeded(user, addr)
	return idn, nil
}

// errAddressBusy: the address has address_pending bcrypt checks in
// progress.
var errAddressBusy = errors.New("too many checks from this address")

// verify checks password against idn's secret, or against the dummy when
// idn is nil. A bcrypt check counts against addr's pending checks (a cache
// hit or a token costs too little to need it).
func (c *credentials) verify(set *identitySet, idn *identity, user string, password []byte, addr string) (bool, error) {
	if idn == nil {
		_, err := c.compare(set.unknown, password, addr)
		return false, err
	}
	if idn.hash == nil {
		return c.compare(idn, password, addr)
	}
	sum := c.verified.sum(user, password, idn.hash)
	if c.verified.has(user, sum) {
		c.metrics.cacheHits.Inc()
		return true, nil
	}
	ok, err := c.bcryptFrom(addr, idn.hash, password)
	if ok {
		c.verified.put(user, sum)
	}
	return ok, err
}

// compare checks password against idn's secret, whatever its kind.
func (c *credentials) compare(idn *identity, password []byte, addr string) (bool, error) {
	switch {
	case idn.token != nil:
		return tokenMatch(idn.token, password), nil
	case idn.hash != nil:
		return c.bcryptFrom(addr, idn.hash, password)
	}
	return subtle.ConstantTimeCompare(idn.plain, password) == 1, nil
}

// bcryptFrom is bcrypt as one of addr's pending checks.
func (c *credentials) bcryptFrom(addr string, hash, password []byte) (bool, error) {
	if !c.limits.begin(addr) {
		return false, errAddressBusy
	}
	defer c.limits.end(addr)
	return c.bcrypt(hash, password)
}

// bcrypt compares with at most cap(workers) comparisons running at once,
// and at most queueMax waiting, each for at most maxWait.
func (c *credentials) bcrypt(hash, password []byte) (bool, error) {
	if c.waiting.Add(1) > c.queueMax {
		c.waiting.Add(-1)
		return false, ErrLoginBusy
	}
	wait := time.NewTimer(c.maxWait)
	defer wait.Stop()
	select {
	case c.workers <- struct{}{}:
		c.waiting.Add(-1)
	case <-wait.C:
		c.waiting.Add(-1)
		return false, ErrLoginBusy
	case <-c.stop:
		c.waiting.Add(-1)
		return false, ErrLoginBusy
	}
	defer func() { <-c.workers }()
	n := c.running.Add(1)
	defer c.running.Add(-1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	c.metrics.bcrypts.Inc()
	return bcrypt.CompareHashAndPassword(hash, password) == nil, nil
}

// tokenMatch compares a token's SHA-256 with sum in constant time.
func tokenMatch(sum, token []byte) bool {
	got := sha256.Sum256(token)
	return subtle.ConstantTimeCompare(got[:], sum) == 1
}

// checkUnit returns the ID of the unit whose user name and password these
// are, for the patrol page, under the same limits as the broker's logins.
func (c *credentials) checkUnit(user, password, remote string) (string, error) {
	idn, err := c.login(user, []byte(password), remote, identityUnit, viaPatrol)
	if err != nil {
		return "", err
	}
	return idn.id, nil
}
