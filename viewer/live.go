package viewer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skywatch/skywatch/accounts"
)

// Live is what a reload of the config changes in a running server: the
// operator accounts, the configured API tokens, where the cameras are,
// and the map's tile server. Everything else of Config is read once, at
// New.
type Live struct {
	// Accounts are the operators. Required when the server was built
	// with accounts; ignored without.
	Accounts Accounts
	// Tokens are the configured API tokens (the console's own are kept).
	Tokens []accounts.Token
	// CameraPlaces say where the cameras are, as Deps.CameraPlaces.
	CameraPlaces []CameraPlace
	// MapTileURL is Config.MapTileURL, validated by the caller.
	MapTileURL string
	// EndUnits are patrol units removed or whose credentials changed:
	// their patrol page's sessions made before now end.
	EndUnits []string
}

// LiveResult is what Apply ended.
type LiveResult struct {
	// Users are the operators whose sessions ended: removed, or their
	// password, role or area changed. Sorted.
	Users []string `json:"users_logged_out,omitempty"`
	// Sessions is how many login sessions ended (on this node and in
	// the session store).
	Sessions int `json:"sessions_ended"`
	// VideoSessions is how many WHEP sessions ended: those of ended
	// logins and tokens, and those whose owner may no longer see the
	// camera.
	VideoSessions int `json:"video_sessions_ended"`
	// Tokens are the configured tokens removed or changed, whose
	// streams and video ended. Sorted.
	Tokens []string `json:"tokens_ended,omitempty"`
}

// Apply makes l the server's accounts, tokens, camera places and tile
// server, in place: requests already past the guard finish under what
// they started with, the next ones see l. Sessions of operators removed
// or whose password hash, role or area changed end with their event
// streams and video (audited as session_revoked); other operators keep
// theirs and see their new name, language or idle timeout at once.
// Configured tokens removed or changed stop at once with what they had
// open. Video sessions whose owner may no longer see their camera (its
// area changed) end. Reloads apply one at a time.
func (s *Server) Apply(l Live) (LiveResult, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	var res LiveResult
	if s.accounts != nil && l.Accounts == nil {
		return res, errors.New("viewer: reload without operator accounts")
	}
	s.mapTile.Store(&l.MapTileURL)
	s.setPlaces(l.CameraPlaces)
	if s.accounts != nil {
		s.accounts.swap(l.Accounts)
		res.Users, res.Sessions = s.endChangedUsers()
		for _, t := range s.tokens.replaceConfigured(l.Tokens) {
			res.Tokens = append(res.Tokens, t.Name)
			res.VideoSessions += s.tokenEnded(t, accounts.AuditTokenRevoked, nil, "removed or changed by a reload of the config")
		}
		slices.Sort(res.Tokens)
	}
	s.patrolRevoked.revoke(l.EndUnits, time.Now())
	res.VideoSessions += s.endUnseenVideo()
	return res, nil
}

// endChangedUsers ends the sessions of operators the new accounts do not
// have, or have with another password hash, role or area, here and in
// the session store (other nodes sharing it end theirs at their next
// sweep); the others' sessions take the user's new details. It returns
// the users logged out and how many sessions ended. The video sessions of
// the ended logins stop; endUnseenVideo does not count them again since
// they are gone by then.
func (s *Server) endChangedUsers() (users []string, n int) {
	changed := map[string]bool{}
	ended := s.opSessions.refresh(func(u accounts.User) (accounts.User, bool) {
		now, ok := s.deps.Accounts.User(u.Username)
		if !ok || now.Fingerprint != u.Fingerprint {
			changed[u.Username] = true
			return u, false
		}
		return now, true
	})
	for _, se := range ended {
		s.sessionEnded(se, accounts.AuditSessionRevoked)
	}
	n = len(ended)
	if s.deps.Records != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stored, err := s.deps.Records.Sessions(ctx)
		if err != nil {
			s.logger.Warn("reload: read the session store", "err", err)
		}
		for _, rec := range stored {
			u, ok := s.deps.Accounts.User(rec.Username)
			if ok && u.Fingerprint == rec.Fingerprint {
				continue
			}
			if err := s.deps.Records.DeleteSession(ctx, rec.Key); err != nil {
				s.logger.Warn("reload: forget session", "user", rec.Username, "err", err)
				continue
			}
			changed[rec.Username] = true
			n++
		}
	}
	for u := range changed {
		users = append(users, u)
	}
	slices.Sort(users)
	return users, n
}

// endUnseenVideo stops the video sessions whose owner may no longer see
// the camera, and returns how many.
func (s *Server) endUnseenVideo() int {
	s.mu.Lock()
	var unseen []*session
	for _, se := range s.sessions {
		if !s.cameraVisible(&se.owner, se.camera) {
			unseen = append(unseen, se)
		}
	}
	s.mu.Unlock()
	for _, se := range unseen {
		s.logger.Info("video session ended: its camera is no longer in the viewer's scope", "camera", se.camera,
			"user", se.owner.User.Username)
		se.stop()
	}
	return len(unseen)
}

// setPlaces makes places the cameras' places.
func (s *Server) setPlaces(places []CameraPlace) {
	m := make(map[string]CameraPlace, len(places))
	for _, p := range places {
		m[p.ID] = p
	}
	s.places.Store(&m)
}

// place is a camera's configured place; zero for an unknown camera.
func (s *Server) place(camera string) CameraPlace {
	return (*s.places.Load())[camera]
}

// accountsSwitch is the server's Accounts, which a reload swaps whole.
type accountsSwitch struct {
	cur atomic.Pointer[accountsBox]
}

type accountsBox struct{ a Accounts }

var _ Accounts = (*accountsSwitch)(nil)

func newAccountsSwitch(a Accounts) *accountsSwitch {
	sw := &accountsSwitch{}
	sw.swap(a)
	return sw
}

func (sw *accountsSwitch) swap(a Accounts) { sw.cur.Store(&accountsBox{a}) }

// Authenticate implements Accounts.
func (sw *accountsSwitch) Authenticate(username, password string) (accounts.User, error) {
	return sw.cur.Load().a.Authenticate(username, password)
}

// User implements Accounts.
func (sw *accountsSwitch) User(username string) (accounts.User, bool) {
	return sw.cur.Load().a.User(username)
}

// refresh passes every kept session's user through f: a session whose
// user f refuses is removed and returned, the others take f's user (and
// the idle timeout that goes with it).
func (o *opSessions) refresh(f func(accounts.User) (accounts.User, bool)) []opSession {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []opSession
	for k, p := range o.byKey {
		u, keep := f(p.User)
		if !keep {
			delete(o.byKey, k)
			out = append(out, *p)
			continue
		}
		p.User, p.Idle = u, o.idleOf(u)
	}
	return out
}

// replaceConfigured makes the configured tokens those of list and returns
// the ones that stop working: removed from the config, changed in any
// way, or console tokens whose name or hash a configured one now takes.
// A token unchanged keeps its counts.
func (a *apiTokens) replaceConfigured(list []accounts.Token) (gone []accounts.Token) {
	a.mu.Lock()
	defer a.mu.Unlock()
	want := make(map[string]accounts.Token, len(list))
	for _, t := range list {
		t.Configured = true
		want[strings.ToLower(t.Name)] = t
	}
	for k, x := range a.byName {
		if !x.Configured {
			continue
		}
		if t, ok := want[k]; ok && sameToken(t, x.Token) {
			x.Description = t.Description // shown only
			delete(want, k)
			continue
		}
		delete(a.byName, k)
		delete(a.bySum, x.SHA256)
		gone = append(gone, x.Token)
	}
	for k, t := range want {
		// A configured token wins over a console one of its name or hash,
		// as at start (syncStored skips the stored one from now on).
		for _, x := range []*apiToken{a.byName[k], a.bySum[t.SHA256]} {
			if x != nil && a.byName[strings.ToLower(x.Name)] == x {
				delete(a.byName, strings.ToLower(x.Name))
				delete(a.bySum, x.SHA256)
				gone = append(gone, x.Token)
			}
		}
		// Configured tokens are counted against http.max_tokens by the
		// config's validation; console ones never push them out.
		x := newAPIToken(t)
		a.byName[k] = x
		a.bySum[t.SHA256] = x
	}
	return gone
}

// sameToken says whether a configured token grants what it did.
func sameToken(a, b accounts.Token) bool {
	return a.Name == b.Name && a.SHA256 == b.SHA256 && a.Role == b.Role && a.Area == b.Area &&
		slices.Equal(a.Cameras, b.Cameras) && a.Expires.Equal(b.Expires)
}

// patrolRevocations are the patrol units a reload changed and when: a
// patrol session of such a unit made before then has ended, whether it
// is kept here or in the shared store.
type patrolRevocations struct {
	ttl time.Duration

	mu sync.Mutex
	at map[string]time.Time
}

func newPatrolRevocations(ttl time.Duration) *patrolRevocations {
	return &patrolRevocations{ttl: ttl, at: map[string]time.Time{}}
}

// revoke ends the sessions of units made before now; revocations older
// than any session can be are forgotten.
func (p *patrolRevocations) revoke(units []string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for u, t := range p.at {
		if now.Sub(t) > p.ttl {
			delete(p.at, u)
		}
	}
	for _, u := range units {
		p.at[u] = now
	}
}

// ended says whether sess was made before its unit was revoked.
func (p *patrolRevocations) ended(sess patrolSession) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.at[sess.Unit]
	return ok && !sess.Expires.Add(-p.ttl).After(t)
}

// revokingPatrol is a patrolStore that refuses sessions of revoked units.
type revokingPatrol struct {
	patrolStore
	revoked *patrolRevocations
}

func (p revokingPatrol) get(token string, now time.Time) (patrolSession, bool) {
	sess, ok := p.patrolStore.get(token, now)
	if ok && p.revoked.ended(sess) {
		p.patrolStore.remove(token)
		return patrolSession{}, false
	}
	return sess, ok
}

// ReloadCertificate reads http.tls_cert and http.tls_key again, so that a
// renewed certificate is served to new connections without a restart;
// connections open keep theirs. It says whether the certificate changed.
// On error the certificate served stays. Without TLS it does nothing.
func (s *Server) ReloadCertificate() (changed bool, err error) {
	if s.cfg.TLSCertFile == "" {
		return false, nil
	}
	cert, err := tls.LoadX509KeyPair(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
	if err != nil {
		return false, fmt.Errorf("http.tls_cert: %w", err)
	}
	old := s.cert.Swap(&cert)
	return old == nil || !slices.EqualFunc(old.Certificate, cert.Certificate, bytes.Equal), nil
}
