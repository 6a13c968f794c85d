package viewer

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skywatch/skywatch/accounts"
)

// TokenStore keeps the API tokens that admins make in the console, hashed,
// across restarts and for every node sharing the store (accounts.FileStore,
// accounts.RedisStore).
type TokenStore interface {
	// SaveToken fails with accounts.ErrTokenExists for a name taken.
	SaveToken(ctx context.Context, t accounts.Token) error
	DeleteToken(ctx context.Context, name string) (bool, error)
	Tokens(ctx context.Context) ([]accounts.Token, error)
	TouchToken(ctx context.Context, name string, at time.Time, uses uint64) error
}

// tokenUserPrefix starts the user name of a token's principal: the audit
// log names a token as token:NAME. ':' is not allowed in user names, so
// that a token never passes for a user.
const tokenUserPrefix = "token:"

// bearerAccount is the limiter's account of wrong tokens: not a possible
// user name, so that it shares no bucket with a user's logins.
const bearerAccount = "token:*"

// tokenKeyOf is the key of a token's principal (its streams and video
// sessions): "token:" and its lower-case name, never a session's key (those
// are hex).
func tokenKeyOf(name string) string { return tokenUserPrefix + strings.ToLower(name) }

// apiToken is a token the server accepts, with what it counts of its use.
type apiToken struct {
	accounts.Token
	// cameras are Token.Cameras as a set; nil: every camera of its area.
	cameras map[string]bool
	// uses and lastUsed include the store's count at load; pending are
	// the uses not yet written to the store.
	uses     uint64
	lastUsed time.Time
	pending  uint64
	// expiredEnded says the token's expiry has ended what it had open.
	expiredEnded bool
	// audits are the audit records of this token held back per action:
	// when the last was written and how many since.
	audits map[string]*heldAudit
}

type heldAudit struct {
	last time.Time
	held int
}

func newAPIToken(t accounts.Token) *apiToken {
	a := &apiToken{Token: t, uses: t.Uses, lastUsed: t.LastUsed, audits: map[string]*heldAudit{}}
	if len(t.Cameras) > 0 {
		a.cameras = make(map[string]bool, len(t.Cameras))
		for _, c := range t.Cameras {
			a.cameras[c] = true
		}
	}
	return a
}

// apiTokens are the tokens the server accepts: the configured ones, which
// never change while it runs, and the console's, from the token store. It
// is a small locked API.
type apiTokens struct {
	max int

	mu     sync.Mutex
	bySum  map[string]*apiToken
	byName map[string]*apiToken // by lower-case name
}

func newAPITokens(max int) *apiTokens {
	return &apiTokens{max: max, bySum: map[string]*apiToken{}, byName: map[string]*apiToken{}}
}

// Errors of apiTokens.add.
var (
	errTokenNameTaken = errors.New("a token of that name exists")
	errTooManyTokens  = errors.New("too many tokens")
)

// add accepts a token. A name or a hash already known, or one token past
// max, is refused.
func (a *apiTokens) add(t accounts.Token) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.addLocked(t)
}

func (a *apiTokens) addLocked(t accounts.Token) error {
	if _, ok := a.byName[strings.ToLower(t.Name)]; ok {
		return errTokenNameTaken
	}
	if _, ok := a.bySum[t.SHA256]; ok {
		return errTokenNameTaken
	}
	if len(a.byName) >= a.max {
		return errTooManyTokens
	}
	x := newAPIToken(t)
	a.byName[strings.ToLower(t.Name)] = x
	a.bySum[t.SHA256] = x
	return nil
}

// remove forgets a console token (a configured one stays) and returns it.
func (a *apiTokens) remove(name string) (accounts.Token, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	x, ok := a.byName[strings.ToLower(name)]
	if !ok || x.Configured {
		return accounts.Token{}, false
	}
	delete(a.byName, strings.ToLower(name))
	delete(a.bySum, x.SHA256)
	return x.Token, true
}

// get returns a token by name.
func (a *apiTokens) get(name string) (accounts.Token, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	x, ok := a.byName[strings.ToLower(name)]
	if !ok {
		return accounts.Token{}, false
	}
	return x.Token, true
}

// tokenState is what a lookup found.
type tokenState int

const (
	tokenUnknown tokenState = iota // no such token (or revoked)
	tokenExpired
	tokenValid
)

// grant is what a valid token may do, as the guard puts it in its
// principal.
type grant struct {
	Token   accounts.Token
	Cameras map[string]bool // nil: every camera of its area
}

// lookup finds the token whose SHA-256 is sum and counts its use at now.
// The hash is compared in constant time once found: the map's lookup on a
// hash of a random secret tells a timing observer nothing of the secret.
func (a *apiTokens) lookup(sum string, now time.Time) (grant, tokenState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	x, ok := a.bySum[sum]
	if !ok || subtle.ConstantTimeCompare([]byte(x.SHA256), []byte(sum)) != 1 {
		return grant{}, tokenUnknown
	}
	if x.Expired(now) {
		return grant{Token: x.Token}, tokenExpired
	}
	x.uses++
	x.pending++
	x.lastUsed = now
	return grant{Token: x.Token, Cameras: x.cameras}, tokenValid
}

// valid says whether the token name is accepted at now.
func (a *apiTokens) valid(name string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	x, ok := a.byName[strings.ToLower(name)]
	return ok && !x.Expired(now)
}

// tokenUse is a console token's use not yet written to the token store.
type tokenUse struct {
	name     string
	uses     uint64
	lastUsed time.Time
}

// takePending returns the uses of console tokens not yet written to the
// store and counts them as written.
func (a *apiTokens) takePending() []tokenUse {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []tokenUse
	for _, x := range a.byName {
		if x.Configured || x.pending == 0 {
			continue
		}
		out = append(out, tokenUse{name: x.Name, uses: x.pending, lastUsed: x.lastUsed})
		x.pending = 0
	}
	return out
}

// admitAudit says whether an audit record of action by the token may be
// written at now: at most one per action and interval; when it is, it
// also returns how many were held back since the last one.
func (a *apiTokens) admitAudit(name, action string, now time.Time, every time.Duration) (write bool, held int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	x, ok := a.byName[strings.ToLower(name)]
	if !ok {
		return true, 0
	}
	h := x.audits[action]
	if h == nil {
		h = &heldAudit{}
		x.audits[action] = h
	}
	if !h.last.IsZero() && now.Sub(h.last) < every {
		h.held++
		return false, 0
	}
	held, h.held, h.last = h.held, 0, now
	return true, held
}

// newlyExpired returns the tokens that have expired at now and whose
// expiry has not yet ended what they had open.
func (a *apiTokens) newlyExpired(now time.Time) []accounts.Token {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []accounts.Token
	for _, x := range a.byName {
		if !x.expiredEnded && x.Expired(now) {
			x.expiredEnded = true
			out = append(out, x.Token)
		}
	}
	return out
}

// syncStored makes the console tokens those of the store's list (another
// node may have made or revoked some) and returns the ones no longer
// there. Configured tokens are kept; a stored token of a configured
// token's name is skipped.
func (a *apiTokens) syncStored(stored []accounts.Token) (gone []accounts.Token, skipped []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	keep := map[string]bool{}
	for _, t := range stored {
		k := strings.ToLower(t.Name)
		x, ok := a.byName[k]
		switch {
		case ok && x.Configured:
			skipped = append(skipped, t.Name)
			continue
		case ok && x.SHA256 == t.SHA256:
			// Known: the store's count may have moved on other nodes.
			keep[k] = true
			x.uses = max(x.uses, t.Uses+x.pending)
			if t.LastUsed.After(x.lastUsed) {
				x.lastUsed = t.LastUsed
			}
			continue
		case ok:
			// Revoked and made again elsewhere: the old one is gone.
			delete(a.byName, k)
			delete(a.bySum, x.SHA256)
			gone = append(gone, x.Token)
		}
		t.Configured = false
		if err := a.addLocked(t); err != nil {
			skipped = append(skipped, t.Name)
			continue
		}
		keep[k] = true
	}
	for k, x := range a.byName {
		if !x.Configured && !keep[k] {
			delete(a.byName, k)
			delete(a.bySum, x.SHA256)
			gone = append(gone, x.Token)
		}
	}
	return gone, skipped
}

// tokenView is a token with its use, as the admin's list shows it.
type tokenView struct {
	accounts.Token
	Uses     uint64
	LastUsed time.Time
}

// list returns every token with its use, by name.
func (a *apiTokens) list() []tokenView {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]tokenView, 0, len(a.byName))
	for _, x := range a.byName {
		out = append(out, tokenView{Token: x.Token, Uses: x.uses, LastUsed: x.lastUsed})
	}
	slices.SortFunc(out, func(a, b tokenView) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return out
}

// count is how many tokens there are.
func (a *apiTokens) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.byName)
}

// describeToken says what a token may see, for the audit log.
func describeToken(t accounts.Token) string {
	area := t.Area
	if area == "" {
		area = "everywhere"
	}
	d := fmt.Sprintf("role %s, area %s", t.Role, area)
	if len(t.Cameras) > 0 {
		d += ", cameras " + strings.Join(t.Cameras, " ")
	}
	if !t.Expires.IsZero() {
		d += ", expires " + t.Expires.UTC().Format(time.RFC3339)
	}
	return d
}
