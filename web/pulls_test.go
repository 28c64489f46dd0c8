package web

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/ingest/pull"
)

// fakePulls is a PullControl that records what it is asked.
type fakePulls struct {
	mu    sync.Mutex
	pulls map[string]pull.State
}

func (f *fakePulls) List() []pull.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []pull.State{}
	for _, st := range f.pulls {
		out = append(out, st)
	}
	return out
}

func (f *fakePulls) Get(name string) (pull.State, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.pulls[name]
	return st, ok
}

func (f *fakePulls) Start(src pull.Source, origin string) (pull.State, error) {
	if err := pull.Check(src); err != nil {
		return pull.State{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.pulls[src.Name]; ok {
		return pull.State{}, pull.ErrExists
	}
	st := pull.State{Name: src.Name, URL: pull.Redact(src.URL), Protocol: "pull-rtsp", Origin: origin,
		State: pull.PhaseConnecting, Since: time.Now(), RTSPTransport: src.RTSPTransport}
	f.pulls[src.Name] = st
	return st, nil
}

func (f *fakePulls) Stop(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.pulls[name]; !ok {
		return fmt.Errorf("%w: %s", pull.ErrNotFound, name)
	}
	delete(f.pulls, name)
	return nil
}

func TestPullsAPI(t *testing.T) {
	fp := &fakePulls{pulls: map[string]pull.State{}}
	f := newFixtureConfig(t, Config{Pulls: fp}, nil)

	var list []pull.State
	decode(t, f.do(t, request{path: "/api/v1/pulls"}), http.StatusOK, &list)
	if len(list) != 0 {
		t.Fatalf("list %+v", list)
	}

	var st pull.State
	decode(t, f.do(t, request{method: http.MethodPost, path: "/api/v1/pulls",
		body: `{"name":"live/cam9","url":"rtsp://admin:secret@10.0.0.2/ch1","rtsp_transport":"tcp"}`}), http.StatusCreated, &st)
	if st.Name != "live/cam9" || st.Origin != pull.OriginAPI || st.State != pull.PhaseConnecting || strings.Contains(st.URL, "secret") {
		t.Fatalf("started %+v", st)
	}
	decode(t, f.do(t, request{path: "/api/v1/pulls/live/cam9"}), http.StatusOK, &st)
	if st.RTSPTransport != "tcp" {
		t.Errorf("got %+v", st)
	}
	decode(t, f.do(t, request{path: "/api/v1/pulls"}), http.StatusOK, &list)
	if len(list) != 1 {
		t.Fatalf("list %+v", list)
	}

	for _, c := range []struct {
		body   string
		status int
		want   string
	}{
		{`{"name":"live/cam9","url":"rtsp://10.0.0.2/ch1"}`, http.StatusConflict, "already runs"},
		{`{"name":"live/x","url":"ftp://h/x"}`, http.StatusBadRequest, "scheme"},
		{`{"name":"bad name","url":"rtsp://h/x"}`, http.StatusBadRequest, "name"},
		{`{"name":"live/x","url":"rtsp://h/x","on_demand":true}`, http.StatusBadRequest, "on_demand"},
		{`{"name":"live/x","url":"rtsp://h/x","extra":1}`, http.StatusBadRequest, "unknown field"},
		{``, http.StatusBadRequest, "empty body"},
	} {
		var eb ErrorBody
		decode(t, f.do(t, request{method: http.MethodPost, path: "/api/v1/pulls", body: c.body}), c.status, &eb)
		if !strings.Contains(eb.Error, c.want) {
			t.Errorf("%s: error %q, want %q", c.body, eb.Error, c.want)
		}
	}

	resp := f.do(t, request{method: http.MethodDelete, path: "/api/v1/pulls/live/cam9"})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d %s", resp.StatusCode, body(t, resp))
	}
	var eb ErrorBody
	decode(t, f.do(t, request{method: http.MethodDelete, path: "/api/v1/pulls/live/cam9"}), http.StatusNotFound, &eb)
	decode(t, f.do(t, request{path: "/api/v1/pulls/live/cam9"}), http.StatusNotFound, &eb)
	decode(t, f.do(t, request{path: "/api/v1/pulls/live/.."}), http.StatusBadRequest, &eb)

	// Remote clients need the token like every other API route.
	resp = f.do(t, request{method: http.MethodPost, path: "/api/v1/pulls", remote: remoteAddr, body: `{"name":"live/a","url":"rtsp://h/x"}`})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("remote POST without token: %d", resp.StatusCode)
	}
}

func TestPullsAPIWithoutManager(t *testing.T) {
	f := newFixture(t, "", nil)
	var list []pull.State
	decode(t, f.do(t, request{path: "/api/v1/pulls"}), http.StatusOK, &list)
	var eb ErrorBody
	decode(t, f.do(t, request{method: http.MethodPost, path: "/api/v1/pulls", body: `{"name":"live/a","url":"rtsp://h/x"}`}), http.StatusNotImplemented, &eb)
	decode(t, f.do(t, request{method: http.MethodDelete, path: "/api/v1/pulls/live/a"}), http.StatusNotFound, &eb)
}

// TestOpenAPIPullSchemas checks the pull schemas against their JSON, like
// TestOpenAPISchemasMatchJSON.
func TestOpenAPIPullSchemas(t *testing.T) {
	doc := loadOpenAPI(t)
	types := map[string]reflect.Type{
		"Pull":        reflect.TypeFor[pull.State](),
		"PullRequest": reflect.TypeFor[PullRequest](),
	}
	schemaOf := map[reflect.Type]string{}
	for name, typ := range types {
		schemaOf[typ] = name
	}
	for name, typ := range types {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s is missing", name)
			continue
		}
		checkSchema(t, name, schema, typ, schemaOf)
	}
}
