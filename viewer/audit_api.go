package viewer

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/skywatch/skywatch/accounts"
)

// maxAuditExport bounds the records one CSV export holds; narrow the
// dates for more.
const maxAuditExport = 200000

// auditRoutes registers the audit log's API, for admins.
func (s *Server) auditRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/audit", needDep(s.deps.Records != nil, "audit log", s.handleAudit))
	mux.HandleFunc("GET /api/audit.csv", needDep(s.deps.Records != nil, "audit log", s.handleAuditCSV))
}

// auditJSON is a page of audit records, newest first.
type auditJSON struct {
	Records []accounts.AuditRecord `json:"records"`
	Next    string                 `json:"next"`
}

// handleAudit lists audit records, newest first, filtered by from, to
// (RFC 3339), user, action and target, and paged by cursor and limit.
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	if !s.mayAudit(w, r) {
		return
	}
	q, err := parseAuditQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	page, err := s.deps.Records.QueryAudit(r.Context(), q)
	if errors.Is(err, accounts.ErrBadCursor) {
		writeError(w, http.StatusBadRequest, "cursor: malformed or unknown")
		return
	}
	if err != nil {
		s.logger.Warn("audit query", "err", err)
		writeError(w, http.StatusServiceUnavailable, "audit log: "+err.Error())
		return
	}
	if page.Records == nil {
		page.Records = []accounts.AuditRecord{}
	}
	writeJSON(w, http.StatusOK, auditJSON{Records: page.Records, Next: page.Next})
}

// handleAuditCSV exports the records the same filters select as CSV,
// newest first.
func (s *Server) handleAuditCSV(w http.ResponseWriter, r *http.Request) {
	if !s.mayAudit(w, r) {
		return
	}
	q, err := parseAuditQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q.Cursor, q.Limit = "", 1000
	first, err := s.deps.Records.QueryAudit(r.Context(), q)
	if err != nil {
		s.logger.Warn("audit export", "err", err)
		writeError(w, http.StatusServiceUnavailable, "audit log: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition",
		fmt.Sprintf(`attachment; filename="skywatch-audit-%s.csv"`, time.Now().UTC().Format("20060102-150405")))
	w.Header().Set("Cache-Control", "no-store")
	// A byte order mark, so that spreadsheet programs read the Chinese
	// names as UTF-8.
	_, _ = w.Write([]byte("\ufeff"))
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"time", "user", "role", "address", "action", "target", "outcome", "start", "end", "detail"})
	page, n := first, 0
	for {
		for _, rec := range page.Records {
			_ = cw.Write([]string{csvTime(rec.Time), csvCell(rec.User), csvCell(rec.Role), csvCell(rec.Addr),
				csvCell(rec.Action), csvCell(rec.Target), csvCell(rec.Outcome), csvTime(rec.Start), csvTime(rec.End),
				csvCell(rec.Detail)})
			n++
		}
		if page.Next == "" || n >= maxAuditExport || r.Context().Err() != nil {
			break
		}
		q.Cursor = page.Next
		if page, err = s.deps.Records.QueryAudit(r.Context(), q); err != nil {
			// The status is sent; say so in the file itself.
			_ = cw.Write([]string{"", "", "", "", "export_error", "", "failed", "", "", err.Error()})
			break
		}
	}
	cw.Flush()
	p := principalOf(r.Context())
	s.audit(p, "audit_export", "", "ok", fmt.Sprintf("%d records", n))
}

func (s *Server) mayAudit(w http.ResponseWriter, r *http.Request) bool {
	if !principalOf(r.Context()).User.Role.CanAudit() {
		s.deny(w, r, "audit", "only an admin may read the audit log")
		return false
	}
	return true
}

func parseAuditQuery(v url.Values) (accounts.AuditQuery, error) {
	q := accounts.AuditQuery{User: v.Get("user"), Action: v.Get("action"), Target: v.Get("target"), Cursor: v.Get("cursor")}
	for _, f := range []struct {
		key string
		dst *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := v.Get(f.key); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return q, fmt.Errorf("%s: want an RFC 3339 time such as 2026-11-27T08:00:00+08:00", f.key)
			}
			*f.dst = t
		}
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxPageLimit {
			return q, fmt.Errorf("limit: want 1 to %d", maxPageLimit)
		}
		q.Limit = n
	}
	return q, nil
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// csvCell defuses a cell a spreadsheet would run as a formula.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
