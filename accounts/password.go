package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2id parameters of HashPasswordArgon2id: the second recommended
// option of RFC 9106 (section 4), for servers without gigabytes to spare.
const (
	argon2Time    = 3
	argon2Memory  = 64 * 1024 // KiB
	argon2Threads = 4
	argon2SaltLen = 16
	argon2KeyLen  = 32
)

// Bounds on the argon2id parameters of a configured hash: every login pays
// for them in memory and time, so a typo must not cost gigabytes.
const (
	maxArgon2Memory  = 1 << 20 // KiB, 1 GiB
	maxArgon2Time    = 32
	minArgon2SaltLen = 8
	minArgon2KeyLen  = 16
	maxArgon2KeyLen  = 128
)

// errNotAHash is the message for a string that is neither kind of hash.
var errNotAHash = errors.New("not a bcrypt or argon2id hash")

// passwordHash is a parsed password hash from the config.
type passwordHash struct {
	bcrypt []byte // the whole hash, when it is a bcrypt one

	// argon2id, when bcrypt is nil
	time    uint32
	memory  uint32
	threads uint8
	salt    []byte
	key     []byte
}

// parseHash reads a bcrypt hash ($2a$, $2b$ or $2y$) or an argon2id hash in
// the PHC string form $argon2id$v=19$m=65536,t=3,p=4$salt$hash (salt and
// hash in base64 without padding).
func parseHash(s string) (*passwordHash, error) {
	switch {
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		if _, err := bcrypt.Cost([]byte(s)); err != nil {
			return nil, errNotAHash
		}
		return &passwordHash{bcrypt: []byte(s)}, nil
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	}
	return nil, errNotAHash
}

func parseArgon2id(s string) (*passwordHash, error) {
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, errNotAHash
	}
	if parts[2] != "v=19" {
		return nil, errors.New("argon2id: only version 19 (v=19) is supported")
	}
	h := &passwordHash{}
	seen := map[string]bool{}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || seen[k] {
			return nil, errNotAHash
		}
		seen[k] = true
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, errNotAHash
		}
		switch k {
		case "m":
			h.memory = uint32(n)
		case "t":
			h.time = uint32(n)
		case "p":
			if n > 255 {
				return nil, errors.New("argon2id: p must be 1 to 255")
			}
			h.threads = uint8(n)
		default:
			return nil, errNotAHash
		}
	}
	if len(seen) != 3 {
		return nil, errNotAHash
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil {
		return nil, errNotAHash
	}
	if h.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil {
		return nil, errNotAHash
	}
	switch {
	case h.time < 1 || h.time > maxArgon2Time:
		return nil, fmt.Errorf("argon2id: t must be 1 to %d", maxArgon2Time)
	case h.threads < 1:
		return nil, errors.New("argon2id: p must be 1 to 255")
	case h.memory < 8*uint32(h.threads) || h.memory > maxArgon2Memory:
		return nil, fmt.Errorf("argon2id: m must be 8*p to %d (KiB)", maxArgon2Memory)
	case len(h.salt) < minArgon2SaltLen:
		return nil, fmt.Errorf("argon2id: salt must be at least %d bytes", minArgon2SaltLen)
	case len(h.key) < minArgon2KeyLen || len(h.key) > maxArgon2KeyLen:
		return nil, fmt.Errorf("argon2id: hash must be %d to %d bytes", minArgon2KeyLen, maxArgon2KeyLen)
	}
	return h, nil
}

// matches tells whether password is the one hashed.
func (h *passwordHash) matches(password []byte) bool {
	if h.bcrypt != nil {
		return bcrypt.CompareHashAndPassword(h.bcrypt, password) == nil
	}
	key := argon2.IDKey(password, h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

// dummy returns a hash of a random password with the same kind and cost as
// h, for checking a password of an unknown user in the time a known one
// takes.
func (h *passwordHash) dummy() (*passwordHash, error) {
	password := make([]byte, 16)
	_, _ = rand.Read(password)
	if h.bcrypt != nil {
		cost, err := bcrypt.Cost(h.bcrypt)
		if err != nil {
			return nil, err
		}
		b, err := bcrypt.GenerateFromPassword(password, cost)
		if err != nil {
			return nil, err
		}
		return &passwordHash{bcrypt: b}, nil
	}
	d := *h
	d.salt = make([]byte, len(h.salt))
	_, _ = rand.Read(d.salt)
	d.key = argon2.IDKey(password, d.salt, d.time, d.memory, d.threads, uint32(len(h.key)))
	return &d, nil
}

// HashPassword returns the bcrypt hash (default cost) of a password, for
// password_hash in the config.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("hash password: empty password")
	}
	b, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(b), nil
}

// HashPasswordArgon2id returns the argon2id hash of a password in the PHC
// string form, with t=3, m=64 MiB, p=4 (RFC 9106's second recommendation),
// for password_hash in the config. Unlike bcrypt it takes passwords longer
// than 72 bytes whole.
func HashPasswordArgon2id(password string) (string, error) {
	if password == "" {
		return "", errors.New("hash password: empty password")
	}
	salt := make([]byte, argon2SaltLen)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argon2Time, argon2Memory, argon2Threads, argon2KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argon2Memory, argon2Time, argon2Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}
