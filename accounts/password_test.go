package accounts

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Hashes made by other implementations.
const (
	// argon2-cffi's documentation, of "correct horse battery staple".
	cffiArgon2id = "$argon2id$v=19$m=65536,t=3,p=4$MIIRqgvgQbgj220jfp0MPA$YfwJSVjtjSU0zzV/P3S9nnQ/USre2wvJMjfCIjrTQbg"
	// crypt_blowfish's test vector, of "U*U".
	refBcrypt = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
)

// bcryptHash is a quick bcrypt hash for tests.
func bcryptHash(tb testing.TB, password string) string {
	tb.Helper()
	b, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// argon2Hash is a quick argon2id hash for tests (t=1, m=64 KiB, p=1).
func argon2Hash(password string) string {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(password), salt, 1, 64, 1, 32)
	return fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s",
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func TestHashesOfOtherImplementations(t *testing.T) {
	t.Parallel() // slow with the race detector
	tests := []struct{ hash, password string }{
		{cffiArgon2id, "correct horse battery staple"},
		{refBcrypt, "U*U"},
		{"$2b$" + refBcrypt[4:], "U*U"},
		{"$2y$" + refBcrypt[4:], "U*U"},
	}
	for _, tc := range tests {
		h, err := parseHash(tc.hash)
		if err != nil {
			t.Fatalf("%s: %v", tc.hash, err)
		}
		if !h.matches([]byte(tc.password)) {
			t.Errorf("%s: %q does not match", tc.hash, tc.password)
		}
		// Wrong passwords are tested with cheaper argon2id parameters.
		if h.bcrypt != nil && h.matches([]byte(tc.password+"x")) {
			t.Errorf("%s: a wrong password matches", tc.hash)
		}
	}
}

func TestHashPassword(t *testing.T) {
	t.Parallel() // slow with the race detector
	for name, hash := range map[string]func(string) (string, error){
		"bcrypt":   HashPassword,
		"argon2id": HashPasswordArgon2id,
	} {
		s, err := hash("pässwörd 1")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		h, err := parseHash(s)
		if err != nil {
			t.Fatalf("%s: %s: %v", name, s, err)
		}
		if !h.matches([]byte("pässwörd 1")) || h.bcrypt != nil && h.matches([]byte("pässwörd 2")) {
			t.Errorf("%s: %s does not check the password", name, s)
		}
		if _, err := hash(""); err == nil {
			t.Errorf("%s: an empty password was hashed", name)
		}
		if h.bcrypt != nil {
			if cost, _ := bcrypt.Cost(h.bcrypt); cost != bcrypt.DefaultCost {
				t.Errorf("bcrypt cost %d, want %d", cost, bcrypt.DefaultCost)
			}
		} else if !strings.HasPrefix(s, "$argon2id$v=19$m=65536,t=3,p=4$") || len(h.salt) != 16 || len(h.key) != 32 {
			t.Errorf("argon2id hash %s", s)
		}
	}
}

func TestParseHashRefuses(t *testing.T) {
	good := argon2Hash("x")
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	tests := []struct{ hash, want string }{
		{"", "not a bcrypt or argon2id hash"},
		{"secret", "not a bcrypt or argon2id hash"},
		{"$1$abc$def", "not a bcrypt or argon2id hash"},
		{"$2x$" + refBcrypt[4:], "not a bcrypt or argon2id hash"},
		{"$2a$05$short", "not a bcrypt or argon2id hash"},
		{"$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key, "not a bcrypt or argon2id hash"},
		{"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key, "only version 19"},
		{"$argon2id$v=19$m=64,t=1$" + salt + "$" + key, "not a bcrypt or argon2id hash"},
		{"$argon2id$v=19$m=64,t=1,p=1,x=1$" + salt + "$" + key, "not a bcrypt or argon2id hash"},
		{"$argon2id$v=19$m=64,t=1,t=1$" + salt + "$" + key, "not a bcrypt or argon2id hash"},
		{"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$", "not a bcrypt or argon2id hash"},
		{"$argon2id$v=19$m=64,t=1,p=1$" + salt + "=$" + key, "not a bcrypt or argon2id hash"},
		{"$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key, "t must be"},
		{"$argon2id$v=19$m=64,t=33,p=1$" + salt + "$" + key, "t must be"},
		{"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key, "p must be"},
		{"$argon2id$v=19$m=64,t=1,p=256$" + salt + "$" + key, "p must be"},
		{"$argon2id$v=19$m=4194304,t=1,p=1$" + salt + "$" + key, "m must be"},
		{"$argon2id$v=19$m=8,t=1,p=4$" + salt + "$" + key, "m must be"},
		{"$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key, "salt must be"},
		{"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$c2hvcnQ", "hash must be"},
	}
	for _, tc := range tests {
		_, err := parseHash(tc.hash)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.hash, err, tc.want)
		}
	}
	if _, err := parseHash(good); err != nil {
		t.Errorf("%s: %v", good, err)
	}
}

// FuzzParseHash feeds config strings to the hash parser: it must not panic,
// and what it accepts must be checkable.
func FuzzParseHash(f *testing.F) {
	f.Add(refBcrypt)
	f.Add(argon2Hash("x"))
	f.Add("$argon2id$v=19$m=64,t=1,p=1$$")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseHash(s)
		if err != nil {
			return
		}
		if h.bcrypt == nil && (h.memory > 1<<12 || h.time > 2) {
			return // accepted, but too slow to check in a fuzz loop
		}
		_ = h.matches([]byte("x"))
	})
}
