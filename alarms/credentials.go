package alarms

import (
	"crypto/sha256"
	"crypto/subtle"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Kinds of identity at the embedded broker.
const (
	identityDevice = "device"
	identityUnit   = "unit"
)

// identity is a device or unit that may connect to the embedded broker.
type identity struct {
	kind  string // identityDevice or identityUnit
	id    string
	hash  []byte // bcrypt hash, or nil
	plain []byte // plain password (demo only), or nil
}

// authCacheTTL is how long a successful password check is remembered, so
// that a reconnect storm of thousands of devices does not cost a bcrypt
// comparison each (tens of milliseconds of CPU).
const authCacheTTL = 30 * time.Minute

type authEntry struct {
	sum     [sha256.Size]byte
	expires time.Time
}

// dummyHash is the bcrypt hash (cost 10) of a password nobody has: an
// unknown user name is checked against it, so that a refusal takes as long
// whether the user exists or not.
const dummyHash = "$2a$10$T80HCw9e4s3OtfgG.e1rKOFmue5UH32h3tO2OWexywXzn/Xh99KiG"

// credentials checks device and unit passwords.
type credentials struct {
	byUser map[string]*identity

	mu    sync.Mutex
	cache map[string]authEntry // by user name
}

func newCredentials(devices []DeviceConfig, units []UnitConfig) *credentials {
	c := &credentials{byUser: map[string]*identity{}, cache: map[string]authEntry{}}
	add := func(kind, id, user, hash, plain string) {
		idn := &identity{kind: kind, id: id}
		if hash != "" {
			idn.hash = []byte(hash)
		} else {
			idn.plain = []byte(plain)
		}
		c.byUser[user] = idn
	}
	for _, d := range devices {
		add(identityDevice, d.ID, d.Username, d.PasswordHash, d.Password)
	}
	for _, u := range units {
		add(identityUnit, u.ID, u.Username, u.PasswordHash, u.Password)
	}
	return c
}

// user returns the identity of a user name, or nil.
func (c *credentials) user(name string) *identity { return c.byUser[name] }

// check returns the identity whose user name and password these are, or
// nil.
func (c *credentials) check(user string, password []byte) *identity {
	idn := c.byUser[user]
	if idn == nil {
		return nil
	}
	if idn.hash == nil {
		if len(idn.plain) == 0 || subtle.ConstantTimeCompare(idn.plain, password) != 1 {
			return nil
		}
		return idn
	}
	sum := sha256.Sum256(password)
	now := time.Now()
	c.mu.Lock()
	e, ok := c.cache[user]
	c.mu.Unlock()
	if ok && now.Before(e.expires) && subtle.ConstantTimeCompare(e.sum[:], sum[:]) == 1 {
		return idn
	}
	if bcrypt.CompareHashAndPassword(idn.hash, password) != nil {
		return nil
	}
	c.mu.Lock()
	c.cache[user] = authEntry{sum: sum, expires: now.Add(authCacheTTL)}
	c.mu.Unlock()
	return idn
}

// checkUnit returns the ID of the unit whose user name and password these
// are. Anything else (an unknown name, a device, a unit without a password)
// costs a bcrypt comparison all the same.
func (c *credentials) checkUnit(user, password string) (string, bool) {
	if idn := c.user(user); idn == nil || idn.kind != identityUnit || idn.hash == nil && len(idn.plain) == 0 {
		_ = bcrypt.CompareHashAndPassword([]byte(dummyHash), []byte(password))
		return "", false
	}
	idn := c.check(user, []byte(password))
	if idn == nil {
		return "", false
	}
	return idn.id, true
}
