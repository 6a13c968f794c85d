package viewer

import (
	"embed"
	"io/fs"
	"net/http"
	"net/url"
)

//go:embed web
var webFiles embed.FS

// pageHandler serves the operator page and its assets, embedded in the
// binary: command centres run on closed networks, so nothing comes from a
// CDN.
//
// tileOrigin gives the origin of the map's tile server ("" for none): the
// only other place the page may load images from. It is asked at each
// request, since a reload may change the tile server.
func pageHandler(tileOrigin func() string) http.Handler {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		img := "'self' data:"
		if o := tileOrigin(); o != "" {
			img += " " + o
		}
		csp := "default-src 'self'; media-src 'self' blob:; connect-src 'self'; img-src " + img +
			"; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", csp)
		files.ServeHTTP(w, r)
	})
}

// tileOrigin is the origin of the current map.tile_url.
func (s *Server) tileOrigin() string { return tileOrigin(*s.mapTile.Load()) }

// tileOrigin is scheme://host[:port] of a tile URL template, "" for none.
func tileOrigin(template string) string {
	u, err := url.Parse(template)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
