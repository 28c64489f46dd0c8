package web

import (
	"net/http"
)

// withCORS lets players on other origins (hls.js, dash.js on any web page)
// fetch playback routes. Headers the playback handler sets itself win: the
// defaults are filled in only when it set no Access-Control-Allow-Origin.
func withCORS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&hookWriter{ResponseWriter: w, beforeHeader: addCORS}, r)
	})
}

func addCORS(h http.Header) {
	if h.Get("Access-Control-Allow-Origin") != "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Range, Content-Type")
	h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, Date")
}
