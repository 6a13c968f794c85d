package accounts

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// API tokens let programs (video-wall decoders, WHEP players, integrations)
// watch video and read the API without a person's login: each is a
// service account with a role, an area, optionally a list of cameras and
// an expiry. Only the token's SHA-256 is kept: a token is 256 random bits,
// past any guessing, so that a fast hash is as safe as a slow password hash
// and a lookup costs one SHA-256.

// TokenPrefix starts every token, so that one found in a log, a script or a
// decoder's settings is recognised for what it is.
const TokenPrefix = "swt_"

// tokenBytes is a token's randomness: 256 bits.
const tokenBytes = 32

// Limits of a token's fields.
const (
	maxTokenNameLen    = 64
	maxTokenDescLen    = 200 // characters
	MaxTokenCameras    = 256
	tokenSumHexLen     = 2 * sha256.Size
	tokenEncodedLength = len(TokenPrefix) + (tokenBytes*8+5)/6
)

// NewToken returns a new random token and its SHA-256 (TokenSum).
func NewToken() (token, sum string) {
	b := make([]byte, tokenBytes)
	_, _ = rand.Read(b)
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, TokenSum(token)
}

// TokenSum is the hex SHA-256 of a token's text, as token_sha256 holds it.
func TokenSum(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// LooksLikeToken tells whether s has a token's shape: the prefix and 43
// characters of base64url. Anything else is refused without a lookup.
func LooksLikeToken(s string) bool {
	if len(s) != tokenEncodedLength || !strings.HasPrefix(s, TokenPrefix) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s[len(TokenPrefix):])
	return err == nil
}

// validTokenSum tells whether s is 64 lower-case hex digits.
func validTokenSum(s string) bool {
	if len(s) != tokenSumHexLen {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// TokenConfig is one API token in the config file (tokens:).
type TokenConfig struct {
	// Name identifies the token in the audit log (as token:NAME) and the
	// console: 1 to 64 characters of A-Z a-z 0-9 . _ @ -, unique
	// regardless of case.
	Name string `yaml:"name"`
	// Role bounds what the token may read, as a user's role does:
	// viewer, operator, supervisor or admin. A token never changes
	// anything, whatever its role.
	Role Role `yaml:"role"`
	// Area is the area the token sees, with the areas below it; "" is
	// everywhere.
	Area string `yaml:"area"`
	// Cameras, when given, are the only cameras the token sees (each must
	// also be in its area).
	Cameras []string `yaml:"cameras"`
	// Expires ends the token; zero never.
	Expires time.Time `yaml:"expires"`
	// Description says what the token is for ("video wall, hall 2").
	Description string `yaml:"description"`
	// TokenSHA256 is the hex SHA-256 of the token (`skywatch token`
	// prints both); the token itself is never in the config.
	TokenSHA256 string `yaml:"token_sha256"`
}

// Token is an API token as the server keeps it: from the config file or
// made by an admin in the console. It never holds the token itself.
type Token struct {
	Name        string    `json:"name"`
	Role        Role      `json:"role"`
	Area        string    `json:"area"`
	Cameras     []string  `json:"cameras,omitempty"`
	Expires     time.Time `json:"expires,omitzero"`
	Description string    `json:"description,omitempty"`
	// SHA256 is the hex SHA-256 of the token.
	SHA256 string `json:"sha256"`
	// Created and CreatedBy say when and by which admin a console token
	// was made; zero for a configured one.
	Created   time.Time `json:"created,omitzero"`
	CreatedBy string    `json:"created_by,omitempty"`
	// LastUsed and Uses count the token's use (a request that it
	// authenticated); a store keeps them for its own tokens, roughly:
	// they are written at most once a minute.
	LastUsed time.Time `json:"last_used,omitzero"`
	Uses     uint64    `json:"uses,omitempty"`
	// Configured tells a token from the config file, which the console
	// lists but cannot revoke.
	Configured bool `json:"-"`
}

// Expired tells whether t has expired at now.
func (t Token) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// Token returns the configured token as the server keeps it.
func (c TokenConfig) Token() Token {
	return Token{Name: c.Name, Role: c.Role, Area: c.Area, Cameras: c.Cameras, Expires: c.Expires,
		Description: c.Description, SHA256: strings.ToLower(c.TokenSHA256), Configured: true}
}

// ErrTokenExists is returned by SaveToken for a name already taken
// (regardless of case).
var ErrTokenExists = errors.New("a token of that name exists")

// tokenKey is what a token is stored under: names do not differ by case
// alone.
func tokenKey(name string) string { return strings.ToLower(name) }

// CheckToken checks a token's fields as the console makes it, except its
// area and cameras, which the caller checks against what it knows. Each
// message names the field, as in `name: required`.
func CheckToken(t Token) error {
	var errs []error
	for _, e := range tokenFieldErrors(t.Name, t.Role, t.Description, t.Cameras) {
		errs = append(errs, errors.New(e))
	}
	if !validTokenSum(t.SHA256) {
		errs = append(errs, errors.New("sha256: must be 64 hex digits"))
	}
	return errors.Join(errs...)
}

// tokenFieldErrors checks the fields a configured and a console token
// share; each message starts with the field's key.
func tokenFieldErrors(name string, role Role, desc string, cameras []string) []string {
	var out []string
	if name == "" {
		out = append(out, "name: required")
	} else if !validUsername(name) || len(name) > maxTokenNameLen {
		out = append(out, fmt.Sprintf("name: %q: must be 1 to %d characters of A-Z a-z 0-9 . _ @ -", cut(name, maxTokenNameLen+10), maxTokenNameLen))
	}
	if !role.Valid() {
		out = append(out, fmt.Sprintf("role: %q: must be viewer, operator, supervisor or admin", cut(string(role), 20)))
	}
	if utf8.RuneCountInString(desc) > maxTokenDescLen {
		out = append(out, fmt.Sprintf("description: longer than %d characters", maxTokenDescLen))
	} else if !utf8.ValidString(desc) || strings.ContainsFunc(desc, unicode.IsControl) {
		out = append(out, "description: must not contain control characters")
	}
	if len(cameras) > MaxTokenCameras {
		out = append(out, fmt.Sprintf("cameras: more than %d", MaxTokenCameras))
	}
	seen := map[string]bool{}
	for i, c := range cameras {
		if c == "" {
			out = append(out, fmt.Sprintf("cameras[%d]: empty", i))
		} else if seen[c] {
			out = append(out, fmt.Sprintf("cameras[%d]: %q listed twice", i, cut(c, 64)))
		}
		seen[c] = true
	}
	return out
}

// ValidateTokens checks the configured tokens. areaKnown tells whether an
// area ID exists (nil: no areas are configured, and every area must be
// ""); cameraKnown whether a camera ID does (nil: any). Every message names
// its key, as in `tokens[1].token_sha256: must be 64 hex digits`.
func ValidateTokens(tokens []TokenConfig, areaKnown, cameraKnown func(string) bool) error {
	var errs []error
	add := func(key, msg string) { errs = append(errs, fmt.Errorf("%s%s", key, msg)) }
	seen := map[string]int{}
	sums := map[string]int{}
	for i, tc := range tokens {
		key := fmt.Sprintf("tokens[%d].", i)
		for _, e := range tokenFieldErrors(tc.Name, tc.Role, tc.Description, tc.Cameras) {
			add(key, e)
		}
		if tc.Name != "" {
			if j, dup := seen[tokenKey(tc.Name)]; dup {
				add(key, fmt.Sprintf("name: duplicate token name %q (also tokens[%d], names are compared regardless of case)", tc.Name, j))
			} else {
				seen[tokenKey(tc.Name)] = i
			}
		}
		switch {
		case tc.Area == "":
		case areaKnown == nil:
			add(key, fmt.Sprintf("area: unknown area %q: no areas are configured", tc.Area))
		case !areaKnown(tc.Area):
			add(key, fmt.Sprintf("area: unknown area %q", tc.Area))
		}
		if cameraKnown != nil {
			for j, c := range tc.Cameras {
				if c != "" && !cameraKnown(c) {
					add(key, fmt.Sprintf("cameras[%d]: unknown camera %q", j, c))
				}
			}
		}
		sum := strings.ToLower(tc.TokenSHA256)
		switch {
		case tc.TokenSHA256 == "":
			add(key, "token_sha256: required (make one with `skywatch token`)")
		case LooksLikeToken(tc.TokenSHA256):
			add(key, "token_sha256: this is a token, not its SHA-256: never put the token in the config (`skywatch token` prints both)")
		case !validTokenSum(sum):
			add(key, "token_sha256: must be 64 hex digits (the SHA-256 that `skywatch token` prints)")
		default:
			if j, dup := sums[sum]; dup {
				add(key, fmt.Sprintf("token_sha256: the same token as tokens[%d]", j))
			}
			sums[sum] = i
		}
	}
	return errors.Join(errs...)
}
