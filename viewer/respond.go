package viewer

import (
	"encoding/json"
	"net/http"
	"strings"
)

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error string `json:"error"`
	// Code is why a camera's stream is unavailable (its last error's
	// code, see cameraJSON.LastErrorCode), for the console to say.
	Code   string      `json:"code,omitempty"`
	Camera *cameraJSON `json:"camera,omitempty"`
}

// writeError answers with {"error": msg} and returns the status code.
func writeError(w http.ResponseWriter, code int, msg string) int {
	return writeJSON(w, code, errorBody{Error: redactURLs(msg)})
}

func writeJSON(w http.ResponseWriter, code int, v any) int {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
	return code
}

// redactURLs removes credentials (user:password@) from URLs in text that
// reaches a browser or a log. ingest already keeps them out; this is a
// second lock.
func redactURLs(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+3])
		s = s[i+3:]
		// The authority ends at the first '/', whitespace or quote; a '@'
		// before that ends the userinfo.
		end := strings.IndexAny(s, "/ \t\n\"'")
		if end < 0 {
			end = len(s)
		}
		if at := strings.LastIndex(s[:end], "@"); at >= 0 {
			s = s[at+1:]
		}
	}
}

// needDep stands in for h with a 503 "<what> not configured" when the
// dependency h needs is missing. Deps are fixed by New, so the choice is
// made once, when the routes are registered.
func needDep(present bool, what string, h http.HandlerFunc) http.HandlerFunc {
	if present {
		return h
	}
	return func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusServiceUnavailable, what+" not configured")
	}
}
