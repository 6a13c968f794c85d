package viewer

import (
	"net/http"
	"strings"
	"testing"

	"github.com/skywatch/skywatch/accounts"
)

// TestPprofForAdminsOnly: an admin reads the profiles (and the read is
// audited), an operator is refused, a request without a session is 401,
// and with Pprof off there is nothing there.
func TestPprofForAdminsOnly(t *testing.T) {
	s := startAuthServer(t, func(c *Config) { c.Pprof = true })
	admin := mustLogin(t, s.base, "admin")
	code, body := admin.do(http.MethodGet, "/debug/pprof/goroutine?debug=1", "", false)
	if code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Fatalf("admin: %d %.200s", code, body)
	}
	if code, _ := admin.do(http.MethodGet, "/debug/pprof/cmdline", "", false); code != http.StatusNotFound {
		t.Errorf("cmdline: %d, want 404", code)
	}
	recs := auditActions(t, s, accounts.AuditQuery{Action: "pprof"})
	if len(recs) != 1 || recs[0].User != "admin" || recs[0].Target != "debug:goroutine" {
		t.Errorf("audit: %+v", recs)
	}

	op := mustLogin(t, s.base, "op1")
	if code, _ := op.do(http.MethodGet, "/debug/pprof/heap", "", false); code != http.StatusForbidden {
		t.Errorf("operator: %d, want 403", code)
	}
	if code, _ := newOperator(t, s.base).do(http.MethodGet, "/debug/pprof/", "", false); code != http.StatusUnauthorized {
		t.Errorf("no session: %d, want 401", code)
	}

	off := startAuthServer(t, func(c *Config) { c.Pprof = false })
	admin = mustLogin(t, off.base, "admin")
	if code, _ := admin.do(http.MethodGet, "/debug/pprof/", "", false); code != http.StatusNotFound {
		t.Errorf("pprof off: %d, want 404", code)
	}
}
