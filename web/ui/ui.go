// Package ui is MPS's admin web console: plain ES modules and CSS in
// static/, embedded in the binary, with hls.js and dash.js copied into
// static/vendor/ by `make ui` from npm.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed all:static
var files embed.FS

// Prefix is the path the console's files are served under.
const Prefix = "/ui/"

// Handler serves the console: "/" answers index.html, Prefix+"FILE" the
// files of static/. Nothing else.
func Handler() http.Handler {
	static, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	fileServer := http.StripPrefix(strings.TrimSuffix(Prefix, "/"), http.FileServer(http.FS(static)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		// The files change with each build: browsers revalidate.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.URL.Path == "/" {
			b, err := fs.ReadFile(static, "index.html")
			if err != nil {
				http.Error(w, "the console is not built: run make ui", http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(b)
			return
		}
		if p := path.Clean(r.URL.Path); strings.HasSuffix(p, "/") || p+"/" == Prefix || strings.Contains(p, "/.") {
			http.NotFound(w, r)
			return
		}
		fileServer.ServeHTTP(w, r)
	})
}

// IsPath reports whether p is served by Handler.
func IsPath(p string) bool { return p == "/" || strings.HasPrefix(p, Prefix) }
