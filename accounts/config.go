package accounts

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// UserConfig is one user in the config file.
type UserConfig struct {
	// Username is what the user logs in with: 1 to 64 characters of
	// A-Z a-z 0-9 . _ @ -, unique regardless of case.
	Username string `yaml:"username"`
	// Name is shown in the console. It defaults to Username.
	Name string `yaml:"name"`
	// Role is viewer, operator, supervisor or admin.
	Role Role `yaml:"role"`
	// Area is the area ID the user sees and acts in, with the areas below
	// it; "" is everywhere.
	Area string `yaml:"area"`
	// PasswordHash is a bcrypt or argon2id hash (`skywatch passwd`).
	PasswordHash string `yaml:"password_hash"`
	// Language is the console's language: "zh-CN" or "en". "" leaves the
	// choice to the console (zh-CN by default).
	Language string `yaml:"language"`
	// TimeZone is an IANA zone name such as Asia/Shanghai, for the times
	// the console shows. "" uses the browser's.
	TimeZone string `yaml:"time_zone"`
	// SessionIdle overrides the server's http.session_idle for this user:
	// an account that must stay logged in through a quiet night shift (a
	// duty console, a video wall) gets a longer one. 0 keeps the server's.
	SessionIdle time.Duration `yaml:"session_idle"`
}

// Limits of the user fields.
const (
	maxUsernameLen = 64
	maxNameLen     = 100 // characters
)

// Languages the console has.
var languages = []string{"zh-CN", "en"}

// ValidateUsers checks the users. areaKnown tells whether an area ID
// exists; nil means no areas are configured, and then every area must be
// "". Every message names its key, as in
// `users[2].password_hash: not a bcrypt or argon2id hash`.
func ValidateUsers(users []UserConfig, areaKnown func(string) bool) error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	seen := map[string]int{}
	for i, u := range users {
		key := fmt.Sprintf("users[%d]", i)
		switch {
		case u.Username == "":
			add(key+".username", "required")
		case !validUsername(u.Username):
			add(key+".username", "%q: must be 1 to %d characters of A-Z a-z 0-9 . _ @ -", u.Username, maxUsernameLen)
		default:
			lower := strings.ToLower(u.Username)
			if j, dup := seen[lower]; dup {
				add(key+".username", "duplicate user name %q (also users[%d], names are compared regardless of case)", u.Username, j)
			} else {
				seen[lower] = i
			}
		}
		if utf8.RuneCountInString(u.Name) > maxNameLen {
			add(key+".name", "longer than %d characters", maxNameLen)
		} else if !utf8.ValidString(u.Name) || strings.ContainsFunc(u.Name, unicode.IsControl) {
			add(key+".name", "must not contain control characters")
		}
		if !u.Role.Valid() {
			add(key+".role", "%q: must be viewer, operator, supervisor or admin", string(u.Role))
		}
		switch {
		case u.Area == "":
		case areaKnown == nil:
			add(key+".area", "unknown area %q: no areas are configured", u.Area)
		case !areaKnown(u.Area):
			add(key+".area", "unknown area %q", u.Area)
		}
		if u.PasswordHash == "" {
			add(key+".password_hash", "required (make one with `skywatch passwd`)")
		} else if _, err := parseHash(u.PasswordHash); err != nil {
			add(key+".password_hash", "%v", err)
		}
		if u.Language != "" && !slices.Contains(languages, u.Language) {
			add(key+".language", "%q: must be zh-CN or en", u.Language)
		}
		if err := checkTimeZone(u.TimeZone); err != nil {
			add(key+".time_zone", "%q: %v", u.TimeZone, err)
		}
		if u.SessionIdle != 0 && u.SessionIdle < time.Minute {
			add(key+".session_idle", "%s: must be at least a minute (or 0 for the server's)", u.SessionIdle)
		}
	}
	return errors.Join(errs...)
}

func validUsername(s string) bool {
	if len(s) < 1 || len(s) > maxUsernameLen {
		return false
	}
	for _, c := range []byte(s) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == '@' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// checkTimeZone accepts "" and IANA zone names. "Local" is refused: it
// would mean the server's zone, which the browser cannot know.
func checkTimeZone(tz string) error {
	if tz == "" {
		return nil
	}
	if tz == "Local" {
		return errors.New("not an IANA time zone name (such as Asia/Shanghai)")
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return errors.New("not a known IANA time zone name (such as Asia/Shanghai)")
	}
	return nil
}
