package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestConsoleIsServed checks the console's routes: / is its page and
// /ui/ its files, without a token (the data comes from the API, which
// needs one), and nothing outside the embedded folder.
func TestConsoleIsServed(t *testing.T) {
	f := newFixture(t, "s3cret", nil)
	get := func(path string) (int, string, string) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = remoteAddr
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, req)
		b, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, rec.Header().Get("Content-Type"), string(b)
	}
	if code, ct, body := get("/"); code != 200 || !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, "/ui/app.js") {
		t.Errorf("GET /: %d %s %.200s", code, ct, body)
	}
	if code, ct, _ := get("/ui/app.js"); code != 200 || !strings.Contains(ct, "javascript") {
		t.Errorf("GET /ui/app.js: %d %s", code, ct)
	}
	for _, p := range []string{"/ui/", "/ui/nothing.js", "/ui/vendor/.gitkeep", "/ui/../web.go"} {
		if code, _, _ := get(p); code != 404 {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
	}
	// The API behind it still wants the token.
	if code, _, _ := get("/api/v1/server"); code != 401 {
		t.Errorf("GET /api/v1/server without a token: %d, want 401", code)
	}
	req := httptest.NewRequest(http.MethodPost, "/ui/app.js", nil)
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/app.js: %d", rec.Code)
	}
}
