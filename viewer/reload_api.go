package viewer

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/skywatch/skywatch/accounts"
)

// Reloader reloads the config file of the running process (skywatch
// serve) and reports what it did. Reloads run one at a time, whoever asks
// (SIGHUP or an admin).
type Reloader interface {
	Reload(ctx context.Context) ReloadResult
}

// Reload results.
const (
	ReloadApplied = "applied" // the new config is in force
	ReloadInvalid = "invalid" // the file is not valid; the old config is kept
	ReloadFailed  = "failed"  // valid, but applying it failed part way
)

// ReloadResult is what a reload did, as POST /api/admin/reload answers it.
type ReloadResult struct {
	// Result is ReloadApplied, ReloadInvalid or ReloadFailed.
	Result  string `json:"result"`
	Applied bool   `json:"applied"`
	// Node is this node's name in a cluster ("" for one node): a reload
	// applies to the node that runs it only.
	Node string `json:"node,omitempty"`
	// Changes is what changed, by section (JSON-able).
	Changes any `json:"changes"`
	// NeedsRestart names each key that changed but takes effect only at
	// the next start ("http.address", "store.path").
	NeedsRestart []string `json:"needs_restart"`
	// Errors are the problems of an invalid file, each with its key
	// ("cameras[2].url: ..."), or what failed while applying.
	Errors []string `json:"errors"`
	// Summary is one line saying what changed, for the audit log.
	Summary string `json:"summary"`
}

func (s *Server) reloadRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/admin/reload", needDep(s.deps.Reloader != nil, "config file",
		s.handleReload))
}

// handleReload reloads the config file for an admin: 200 when applied,
// 422 when the file is not valid (the old config is kept), 500 when
// applying failed part way. Audited with the outcome and what changed.
func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r.Context())
	if !p.User.Role.CanManageSessions() || p.Token != "" {
		s.deny(w, r, "config", "only an admin may reload the configuration")
		return
	}
	// Not the request's context: a reload half done because the client
	// went away would leave the parts disagreeing.
	res := s.deps.Reloader.Reload(context.WithoutCancel(r.Context()))
	if res.NeedsRestart == nil {
		res.NeedsRestart = []string{}
	}
	if res.Errors == nil {
		res.Errors = []string{}
	}
	code := http.StatusOK
	switch res.Result {
	case ReloadInvalid:
		code = http.StatusUnprocessableEntity
	case ReloadFailed:
		code = http.StatusInternalServerError
	}
	s.audit(p, accounts.AuditConfigReload, "config", res.Result, ReloadDetail(res))
	writeJSON(w, code, res)
}

// ReloadDetail is a reload's audit detail: its summary, the keys that
// need a restart and its errors.
func ReloadDetail(res ReloadResult) string {
	d := res.Summary
	if len(res.NeedsRestart) > 0 {
		d += fmt.Sprintf("; needs restart: %s", strings.Join(res.NeedsRestart, ", "))
	}
	if len(res.Errors) > 0 {
		d += "; errors: " + strings.Join(res.Errors, "; ")
	}
	return strings.TrimPrefix(d, "; ")
}
