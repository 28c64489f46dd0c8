package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mps-dev/mps/transcoder"
)

// The thumbnail route answers only /{valid name}/thumbnail.jpg; path tricks
// get 404 and every other path goes on to the packager.
func TestServeThumbnails(t *testing.T) {
	tc := &transcoding{thumbs: &transcoder.Thumbnails{}}
	jpeg := []byte{0xff, 0xd8, 0xff, 0xd9}
	tc.thumbs.Put("live/cam1", jpeg)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := tc.serveThumbnails(next)

	for _, c := range []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, "/live/cam1/thumbnail.jpg", http.StatusOK},
		{http.MethodHead, "/live/cam1/thumbnail.jpg", http.StatusOK},
		{http.MethodGet, "/live/cam2/thumbnail.jpg", http.StatusNotFound},
		{http.MethodGet, "/live/../etc/thumbnail.jpg", http.StatusNotFound},
		{http.MethodGet, "/live//cam1/thumbnail.jpg", http.StatusNotFound},
		{http.MethodGet, "/thumbnail.jpg", http.StatusTeapot}, // no stream name: the packager's 404
		{http.MethodGet, "/live/cam1/index.m3u8", http.StatusTeapot},
		{http.MethodPost, "/live/cam1/thumbnail.jpg", http.StatusTeapot},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, "http://x"+c.path, nil))
		if rec.Code != c.code {
			t.Errorf("%s %s = %d, want %d", c.method, c.path, rec.Code, c.code)
		}
		if rec.Code == http.StatusOK {
			if ct := rec.Header().Get("Content-Type"); ct != "image/jpeg" {
				t.Errorf("%s %s: Content-Type %q", c.method, c.path, ct)
			}
			if c.method == http.MethodGet && rec.Body.String() != string(jpeg) {
				t.Errorf("GET %s: body %x", c.path, rec.Body.Bytes())
			}
		}
	}

	// With thumbnails off, the packager gets every path.
	rec := httptest.NewRecorder()
	(&transcoding{}).serveThumbnails(next).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://x/live/cam1/thumbnail.jpg", nil))
	if rec.Code != http.StatusTeapot {
		t.Errorf("thumbnails off: %d, want the next handler", rec.Code)
	}
}
