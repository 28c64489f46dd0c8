package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/vod"
)

func TestListAndGetTemplates(t *testing.T) {
	je := newJobEnv(t, "")
	var list TemplateList
	decode(t, je.do(t, request{path: "/api/v1/templates"}), http.StatusOK, &list)
	if len(list.Templates) != 1 {
		t.Fatalf("templates = %+v, want the one preset", list.Templates)
	}
	p := list.Templates[0]
	if p.Type != vod.TaskTranscode || p.Name != "mp4-720p" || !p.Builtin || string(p.Params) != `{"name":"720p.txt"}` {
		t.Errorf("preset = %+v", p)
	}
	decode(t, je.do(t, request{path: "/api/v1/templates?type=snapshot"}), http.StatusOK, &list)
	if list.Templates == nil || len(list.Templates) != 0 {
		t.Errorf("snapshot templates = %+v, want an empty list", list.Templates)
	}
	resp := je.do(t, request{path: "/api/v1/templates?type=snapshot"})
	if b := body(t, resp); !strings.Contains(b, `"templates":[]`) {
		t.Errorf("empty list: %s", b)
	}

	var tpl vod.Template
	decode(t, je.do(t, request{path: "/api/v1/templates/transcode/mp4-720p"}), http.StatusOK, &tpl)
	if !tpl.Builtin || tpl.Name != "mp4-720p" {
		t.Errorf("GET preset = %+v", tpl)
	}
	wantError(t, je.do(t, request{path: "/api/v1/templates/transcode/nope"}), http.StatusNotFound, `transcode template "nope": no such template`)
	wantError(t, je.do(t, request{path: "/api/v1/templates/transcode/.."}), http.StatusBadRequest, "invalid template name")
	wantError(t, je.do(t, request{path: "/api/v1/templates/a%2Fb/x"}), http.StatusBadRequest, "invalid template type")
}

func TestTemplateCRUD(t *testing.T) {
	je := newJobEnv(t, "")
	const path = "/api/v1/templates/snapshot/mine"

	var tpl vod.Template
	before := time.Now().Add(-time.Second)
	decode(t, je.do(t, request{method: http.MethodPost, path: "/api/v1/templates",
		body: `{"type": "snapshot", "name": "mine", "params": {"name": "a.txt"}}`}), http.StatusCreated, &tpl)
	if tpl.Type != "snapshot" || tpl.Name != "mine" || tpl.Builtin || string(tpl.Params) != `{"name":"a.txt"}` || tpl.UpdatedAt.Before(before) {
		t.Fatalf("created = %+v", tpl)
	}
	wantError(t, je.do(t, request{method: http.MethodPost, path: "/api/v1/templates",
		body: `{"type": "snapshot", "name": "mine", "params": {}}`}), http.StatusConflict, `snapshot template "mine" exists already`)

	decode(t, je.do(t, request{method: http.MethodPut, path: path, body: `{"params": {"name": "b.txt"}}`}), http.StatusOK, &tpl)
	if string(tpl.Params) != `{"name":"b.txt"}` {
		t.Errorf("replaced = %+v", tpl)
	}
	decode(t, je.do(t, request{path: path}), http.StatusOK, &tpl)
	if string(tpl.Params) != `{"name":"b.txt"}` {
		t.Errorf("GET after PUT = %+v", tpl)
	}
	decode(t, je.do(t, request{method: http.MethodPut, path: "/api/v1/templates/transcode/other",
		body: `{"type": "transcode", "name": "other", "params": {"block": false}}`}), http.StatusCreated, &tpl)
	if tpl.Type != "transcode" || tpl.Name != "other" {
		t.Errorf("PUT created = %+v", tpl)
	}

	var list TemplateList
	decode(t, je.do(t, request{path: "/api/v1/templates"}), http.StatusOK, &list)
	var names []string
	for _, tp := range list.Templates {
		names = append(names, tp.Type+"/"+tp.Name)
	}
	if strings.Join(names, " ") != "transcode/mp4-720p snapshot/mine transcode/other" {
		t.Errorf("templates %v", names)
	}

	// A job uses the user's template.
	j := je.submit(t, `{"input": {"path": "in.wav"}, "tasks": [{"type": "snapshot", "template": "mine"}]}`, http.StatusCreated)
	done := je.wait(t, j.ID, vod.StateSucceeded, vod.StateFailed)
	if done.State != vod.StateSucceeded || done.Tasks[0].Outputs[0].Path != j.ID+"/01-snapshot/b.txt" {
		t.Errorf("job with the template: %+v", done)
	}

	if resp := je.do(t, request{method: http.MethodDelete, path: path}); resp.StatusCode != http.StatusNoContent {
		t.Errorf("delete: status %d, want 204", resp.StatusCode)
	}
	wantError(t, je.do(t, request{path: path}), http.StatusNotFound, "no such template")
	wantError(t, je.do(t, request{method: http.MethodDelete, path: path}), http.StatusNotFound, "no such template")
	logs := je.logs.String()
	for _, want := range []string{"template created through the API", "template replaced through the API", "template deleted through the API"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

func TestBuiltinTemplatesAreReadOnly(t *testing.T) {
	je := newJobEnv(t, "")
	const path = "/api/v1/templates/transcode/mp4-720p"
	wantError(t, je.do(t, request{method: http.MethodPut, path: path, body: `{"params": {}}`}), http.StatusConflict, "built-in")
	wantError(t, je.do(t, request{method: http.MethodDelete, path: path}), http.StatusConflict, "built-in")
	wantError(t, je.do(t, request{method: http.MethodPost, path: "/api/v1/templates",
		body: `{"type": "transcode", "name": "mp4-720p", "params": {}}`}), http.StatusConflict, "is built in; choose another name")
	var tpl vod.Template
	decode(t, je.do(t, request{path: path}), http.StatusOK, &tpl)
	if string(tpl.Params) != `{"name":"720p.txt"}` {
		t.Errorf("the preset changed: %+v", tpl)
	}
}

func TestInvalidTemplates(t *testing.T) {
	je := newJobEnv(t, "")
	for _, c := range []struct {
		method, path, body, want string
	}{
		{http.MethodPost, "/api/v1/templates", `{"type": "juggle", "name": "x", "params": {}}`, `type "juggle": unknown task type`},
		{http.MethodPost, "/api/v1/templates", `{"type": "snapshot", "name": "a b", "params": {}}`, `name "a b"`},
		{http.MethodPost, "/api/v1/templates", `{"type": "snapshot", "name": "x", "params": [1]}`, "params: must be a JSON object"},
		{http.MethodPost, "/api/v1/templates", `{"type": "snapshot", "name": "x"}`, "params: must be a JSON object"},
		{http.MethodPost, "/api/v1/templates", `{"type": "snapshot", "name": "x", "params": {"nmae": "a"}}`, `unknown field "nmae"`},
		{http.MethodPost, "/api/v1/templates", `{"type": "snapshot", "name": "x", "params": {"block": "yes"}}`, "block"},
		{http.MethodPost, "/api/v1/templates", `{"type": "snapshot", "name": "x", "parms": {}}`, `unknown field "parms"`},
		{http.MethodPost, "/api/v1/templates", ``, "empty body"},
		{http.MethodPost, "/api/v1/templates", `{"type": "snapshot"} []`, "data after the JSON object"},
		{http.MethodPost, "/api/v1/templates", `{"params": "` + strings.Repeat("x", maxTemplateBody) + `"}`, "body larger than"},
		{http.MethodPut, "/api/v1/templates/snapshot/x", `{"type": "transcode", "params": {}}`, `type "transcode": the path says "snapshot"`},
		{http.MethodPut, "/api/v1/templates/snapshot/x", `{"name": "y", "params": {}}`, `name "y": the path says "x"`},
		{http.MethodPut, "/api/v1/templates/snapshot/x", `{"params": {"nmae": 1}}`, `unknown field "nmae"`},
		{http.MethodPut, "/api/v1/templates/juggle/x", `{"params": {}}`, "unknown task type"},
	} {
		wantError(t, je.do(t, request{method: c.method, path: c.path, body: c.body}), http.StatusBadRequest, c.want)
	}
	var list TemplateList
	decode(t, je.do(t, request{path: "/api/v1/templates"}), http.StatusOK, &list)
	if len(list.Templates) != 1 {
		t.Errorf("invalid templates were saved: %+v", list.Templates)
	}
}
