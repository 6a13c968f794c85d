package accounts

import (
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// AuditRecord is one entry of the audit log: who did what to what, from
// where, and how it ended.
type AuditRecord struct {
	// Time is when it happened. AppendAudit sets it to now when zero.
	Time time.Time `json:"time"`
	// User and Role are the user's, "" when nobody is logged in.
	User string `json:"user"`
	Role string `json:"role"`
	// Addr is the client's address.
	Addr string `json:"addr"`
	// Action is what was done, one of the Audit* constants.
	Action string `json:"action"`
	// Target is what it was done to, as "camera:ID" or "incident:ID".
	Target string `json:"target"`
	// Outcome is "ok" or what went wrong.
	Outcome string `json:"outcome"`
	// Start and End bound an action that lasted, such as watching a camera.
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
	// Detail says more, as "offer u3" or the route of a denied request.
	Detail string `json:"detail"`
}

// Audit actions.
const (
	AuditLogin          = "login"
	AuditLoginFailed    = "login_failed"
	AuditLoginLocked    = "login_locked"
	AuditLogout         = "logout"
	AuditSessionExpired = "session_expired"
	// AuditSessionRevoked is a session ended because its user's password,
	// role or area changed, or by an admin.
	AuditSessionRevoked = "session_revoked"
	// AuditSessionsEnded is an admin ending all of a user's sessions.
	AuditSessionsEnded = "sessions_ended"
	// AuditLoginUnlocked is an admin lifting a login lockout.
	AuditLoginUnlocked = "login_unlocked"
	// AuditSummary counts the failed and refused logins of one address
	// that were not written one by one, past the audit budget of
	// requests without a session.
	AuditSummary        = "login_refusals"
	AuditWatchStart     = "watch_start"
	AuditWatch          = "watch"
	AuditIncidentAction = "incident_action"
	AuditDenied         = "denied"
	AuditCSRFRefused    = "csrf_refused"
	// AuditTokenCreated and AuditTokenRevoked are an admin making and
	// revoking an API token.
	AuditTokenCreated = "token_created"
	AuditTokenRevoked = "token_revoked"
	// AuditTokenUsed is an API token's reads of the API: one record per
	// token and interval (http.token_audit_interval) with their count.
	AuditTokenUsed = "token_used"
	// AuditTokenRefused is a request with a wrong, unknown, expired or
	// revoked token, within the audit budget of requests without a
	// session.
	AuditTokenRefused = "token_refused"
	// AuditTokenExpired is a token's expiry ending what it had open.
	AuditTokenExpired = "token_expired"
	// AuditConfigReload is a reload of the config file: by an admin
	// (POST /api/admin/reload) or by SIGHUP (user "system"), with its
	// outcome (applied, invalid, failed) and what changed.
	AuditConfigReload = "config_reload"
)

// maxAuditField bounds each text field of a stored record, so that a long
// request path cannot make a record of megabytes. Longer text is cut.
const maxAuditField = 2048

// prepare returns the record as stored: Time set, long fields cut.
func (r AuditRecord) prepare(now time.Time) AuditRecord {
	if r.Time.IsZero() {
		r.Time = now
	}
	r.Time = r.Time.Round(0)
	r.Start = r.Start.Round(0)
	r.End = r.End.Round(0)
	for _, f := range []*string{&r.User, &r.Role, &r.Addr, &r.Action, &r.Target, &r.Outcome, &r.Detail} {
		*f = cut(*f, maxAuditField)
	}
	return r
}

// cut shortens s to at most n bytes, at a character boundary, marking the
// cut with "…".
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	i := n - len(mark)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + mark
}

// AuditQuery selects audit records, newest first.
type AuditQuery struct {
	// From and To bound the records' Time: From <= Time < To. Zero is no
	// bound.
	From, To time.Time
	// User (regardless of case), Action and Target select records whose
	// field is equal; "" selects all.
	User, Action, Target string
	// Cursor is the Next of the previous page; "" starts at the newest.
	Cursor string
	// Limit is the most records in a page. It defaults to 100; more than
	// 1000 is 1000.
	Limit int
}

// Page sizes.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// AuditPage is one page of records, newest first.
type AuditPage struct {
	Records []AuditRecord
	// Next is the cursor of the next page, "" when there is none. A page
	// that is full may have a Next whose page turns out empty.
	Next string
}

// ErrBadCursor is returned for a cursor that no page gave.
var ErrBadCursor = errors.New("bad audit cursor")

func (q AuditQuery) limit() int {
	switch {
	case q.Limit <= 0:
		return DefaultAuditLimit
	case q.Limit > MaxAuditLimit:
		return MaxAuditLimit
	}
	return q.Limit
}

// filtered tells whether the query selects on anything but position, so
// that a store reads ahead in bigger batches.
func (q AuditQuery) filtered() bool {
	return !q.From.IsZero() || !q.To.IsZero() || q.User != "" || q.Action != "" || q.Target != ""
}

func (q AuditQuery) match(r *AuditRecord) bool {
	return (q.From.IsZero() || !r.Time.Before(q.From)) &&
		(q.To.IsZero() || r.Time.Before(q.To)) &&
		(q.User == "" || strings.EqualFold(q.User, r.User)) &&
		(q.Action == "" || q.Action == r.Action) &&
		(q.Target == "" || q.Target == r.Target)
}
