package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mps-dev/mps/stream"
)

// FuzzStreamPath sends arbitrary names to the stream endpoints, and to the
// ladder sub-resource: the answer is 200 only for a valid name of an
// existing stream (or its ladder), and never a 5xx.
func FuzzStreamPath(f *testing.F) {
	for _, s := range []string{"live/cam1", "live/../cam1", "live/cam%201", "", "live//x", "%2e%2e/x", "live/cam1/",
		"live/cam1/ladder", "live/ladder", "ladder", "live/cam1/ladder/ladder", "live%2Fcam1%2Fladder"} {
		f.Add(s)
	}
	fx := newFixtureConfig(f, Config{Ladders: newFakeLadders(), TemplateList: testTemplates}, nil)
	if _, err := fx.hub.Publish("live/cam1", []*stream.Track{h264Track()}, stream.PublishOptions{}); err != nil {
		f.Fatal(err)
	}
	ok := map[string]bool{"/api/v1/streams/live/cam1": true, "/api/v1/streams/live/cam1/ladder": true}
	f.Fuzz(func(t *testing.T, name string) {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			req, err := http.NewRequest(method, "http://mps/api/v1/streams/"+name, strings.NewReader(`{"template": "default"}`))
			if err != nil || !strings.HasPrefix(req.URL.Path, "/api/v1/streams/") {
				return
			}
			req.RemoteAddr = loopbackAddr
			rec := httptest.NewRecorder()
			fx.srv.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s %q: %d %s", method, name, rec.Code, rec.Body)
			}
			if method == http.MethodGet && rec.Code == http.StatusOK && !ok[req.URL.Path] {
				t.Fatalf("GET %q (path %q) found a stream", name, req.URL.Path)
			}
		}
	})
}
