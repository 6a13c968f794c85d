package viewer

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed patrol
var patrolFiles embed.FS

// patrolPageHandler serves the patrol officers' page under /patrol/,
// embedded in the binary like the operator page. It may not be framed, so
// that another page cannot trick an officer into pressing its buttons.
func patrolPageHandler() http.Handler {
	sub, err := fs.Sub(patrolFiles, "patrol")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/patrol/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy",
			"default-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
		files.ServeHTTP(w, r)
	})
}
