package accounts

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"
)

// ErrBadCredentials is returned by Authenticate for an unknown user or a
// wrong password alike.
var ErrBadCredentials = errors.New("wrong user name or password")

// User is a configured user, without the password hash.
type User struct {
	Username string
	Name     string
	Role     Role
	Area     string
	Language string
	TimeZone string
	// SessionIdle is the user's own idle timeout; 0 means the server's.
	SessionIdle time.Duration
	// Fingerprint changes when the user's password hash, role or area
	// changes in the config: a session started under another fingerprint
	// is ended. It is a hash of them, never the password hash itself.
	Fingerprint string
}

// fingerprint is a User's Fingerprint.
func fingerprint(passwordHash string, role Role, area string) string {
	h := sha256.Sum256([]byte("skywatch account\x00" + passwordHash + "\x00" + string(role) + "\x00" + area))
	return hex.EncodeToString(h[:16])
}

// Directory is the configured users. It is safe for concurrent use and does
// not change after NewDirectory.
type Directory struct {
	users map[string]entry // by lower-case user name
	// dummy is checked for unknown users, so that they cost what a known
	// user costs.
	dummy *passwordHash
	// slots bounds the hash checks running at once: each argon2id check
	// holds its memory (64 MiB by default) until it ends.
	slots chan struct{}
	// verify checks a password against a hash; tests wrap it to see which
	// hash was checked.
	verify func(h *passwordHash, password []byte) bool
}

type entry struct {
	user User
	hash *passwordHash
}

// NewDirectory checks the users as ValidateUsers does, except their areas
// (the caller checks those with ValidateUsers against its areas), and
// returns them as a Directory.
//
// Unknown user names are checked against a dummy hash of the same kind and
// cost as the first user's, so that they take the time a known user takes
// when all users' hashes have the same cost, as hashes made by
// `skywatch passwd` do.
func NewDirectory(users []UserConfig) (*Directory, error) {
	if err := ValidateUsers(users, func(string) bool { return true }); err != nil {
		return nil, err
	}
	d := &Directory{
		users:  make(map[string]entry, len(users)),
		slots:  make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
		verify: (*passwordHash).matches,
	}
	for _, uc := range users {
		h, err := parseHash(uc.PasswordHash)
		if err != nil { // ValidateUsers has checked it
			return nil, fmt.Errorf("user %s: %w", uc.Username, err)
		}
		name := uc.Name
		if name == "" {
			name = uc.Username
		}
		d.users[strings.ToLower(uc.Username)] = entry{
			user: User{Username: uc.Username, Name: name, Role: uc.Role, Area: uc.Area, Language: uc.Language, TimeZone: uc.TimeZone, SessionIdle: uc.SessionIdle,
				Fingerprint: fingerprint(uc.PasswordHash, uc.Role, uc.Area)},
			hash: h,
		}
		if d.dummy == nil {
			if d.dummy, err = h.dummy(); err != nil {
				return nil, fmt.Errorf("user %s: dummy hash: %w", uc.Username, err)
			}
		}
	}
	if d.dummy == nil {
		h, err := HashPassword("no users")
		if err != nil {
			return nil, err
		}
		if d.dummy, err = parseHash(h); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Authenticate checks a user name (regardless of case) and password and
// returns the user. An unknown user and a wrong password both give
// ErrBadCredentials after a hash check of the same cost.
func (d *Directory) Authenticate(username, password string) (User, error) {
	e, known := d.users[strings.ToLower(username)]
	h := d.dummy
	if known {
		h = e.hash
	}
	d.slots <- struct{}{}
	ok := d.verify(h, []byte(password))
	<-d.slots
	if !known || !ok || password == "" {
		return User{}, ErrBadCredentials
	}
	return e.user, nil
}

// User returns a user by name, regardless of case.
func (d *Directory) User(username string) (User, bool) {
	e, ok := d.users[strings.ToLower(username)]
	return e.user, ok
}
