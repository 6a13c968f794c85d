package viewer

import (
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/skywatch/skywatch/accounts"
)

// pprofRoutes serves Go's profiles (net/http/pprof) under /debug/pprof/ to
// admins, when Config.Pprof is on: where a server's CPU time and memory go
// is often only visible under its real load. Every request is audited. A
// CPU profile or trace runs for at most its seconds parameter, one at a
// time (the runtime refuses a second), within the server's write timeout.
// The process's command line (/debug/pprof/cmdline) is not served.
func (s *Server) pprofRoutes(mux *http.ServeMux) {
	if !s.cfg.Pprof {
		return
	}
	mux.HandleFunc("GET /debug/pprof/", s.handlePprof)
}

func (s *Server) handlePprof(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r.Context())
	if !p.User.Role.AtLeast(accounts.RoleAdmin) {
		s.deny(w, r, "debug", "only an admin may read the server's profiles")
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/debug/pprof/")
	if name == "cmdline" {
		writeError(w, http.StatusNotFound, "not served")
		return
	}
	s.audit(p, "pprof", "debug:"+clipID(name), "ok", clipID(r.URL.RawQuery))
	switch name {
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Index(w, r)
	}
}
