package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mps-dev/mps/vod"
)

func TestWorkflowCRUD(t *testing.T) {
	je := newJobEnv(t, "")

	var list WorkflowList
	decode(t, je.do(t, request{path: "/api/v1/workflows"}), http.StatusOK, &list)
	if len(list.Workflows) != 1 || list.Workflows[0].Name != "from-config" || !list.Workflows[0].Builtin {
		t.Fatalf("workflows = %+v, want the configured one", list.Workflows)
	}

	var w vod.Workflow
	decode(t, je.do(t, request{method: http.MethodPost, path: "/api/v1/workflows",
		body: `{"name": "archive", "on": "recording.finished", "match": "live/*", "tasks": [{"type": "transcode", "template": "mp4-720p"}], "priority": 3}`}),
		http.StatusCreated, &w)
	if w.Name != "archive" || w.On != vod.OnRecordingFinished || w.Match != "live/*" || w.Builtin || w.Priority != 3 || len(w.Tasks) != 1 {
		t.Fatalf("created = %+v", w)
	}
	wantError(t, je.do(t, request{method: http.MethodPost, path: "/api/v1/workflows",
		body: `{"name": "archive", "on": "recording.finished", "match": "x/*", "tasks": [{"type": "transcode"}]}`}),
		http.StatusConflict, `workflow "archive" exists already`)

	decode(t, je.do(t, request{method: http.MethodPut, path: "/api/v1/workflows/archive",
		body: `{"on": "recording.finished", "match": "studio/*", "tasks": [{"type": "snapshot"}]}`}), http.StatusOK, &w)
	if w.Name != "archive" || w.Match != "studio/*" || w.Tasks[0].Type != vod.TaskSnapshot {
		t.Errorf("replaced = %+v", w)
	}
	decode(t, je.do(t, request{path: "/api/v1/workflows/archive"}), http.StatusOK, &w)
	if w.Match != "studio/*" {
		t.Errorf("GET after PUT = %+v", w)
	}
	decode(t, je.do(t, request{method: http.MethodPut, path: "/api/v1/workflows/drop-folder",
		body: `{"name": "drop-folder", "on": "file", "folder": "incoming", "tasks": [{"type": "transcode"}]}`}), http.StatusCreated, &w)
	if w.On != vod.OnFile || w.Folder != "incoming" {
		t.Errorf("PUT created = %+v", w)
	}

	decode(t, je.do(t, request{path: "/api/v1/workflows"}), http.StatusOK, &list)
	var names []string
	for _, w := range list.Workflows {
		names = append(names, w.Name)
	}
	if strings.Join(names, " ") != "from-config archive drop-folder" {
		t.Errorf("workflows %v", names)
	}

	if resp := je.do(t, request{method: http.MethodDelete, path: "/api/v1/workflows/archive"}); resp.StatusCode != http.StatusNoContent {
		t.Errorf("delete: status %d, want 204", resp.StatusCode)
	}
	wantError(t, je.do(t, request{path: "/api/v1/workflows/archive"}), http.StatusNotFound, `workflow "archive": no such workflow`)
	wantError(t, je.do(t, request{method: http.MethodDelete, path: "/api/v1/workflows/archive"}), http.StatusNotFound, "no such workflow")
	wantError(t, je.do(t, request{path: "/api/v1/workflows/.."}), http.StatusBadRequest, "invalid workflow name")
	logs := je.logs.String()
	for _, want := range []string{"workflow created through the API", "workflow replaced through the API", "workflow deleted through the API"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

func TestConfiguredWorkflowsAreReadOnly(t *testing.T) {
	je := newJobEnv(t, "")
	const path = "/api/v1/workflows/from-config"
	wantError(t, je.do(t, request{method: http.MethodPut, path: path,
		body: `{"on": "recording.finished", "match": "x/*", "tasks": [{"type": "transcode"}]}`}), http.StatusConflict, "jobs.workflows")
	wantError(t, je.do(t, request{method: http.MethodDelete, path: path}), http.StatusConflict, "read-only")
	wantError(t, je.do(t, request{method: http.MethodPost, path: "/api/v1/workflows",
		body: `{"name": "from-config", "on": "recording.finished", "match": "x/*", "tasks": [{"type": "transcode"}]}`}), http.StatusConflict, "exists already")
	var w vod.Workflow
	decode(t, je.do(t, request{path: path}), http.StatusOK, &w)
	if !w.Builtin || w.Match != "live/*" {
		t.Errorf("the configured workflow changed: %+v", w)
	}
}

func TestInvalidWorkflows(t *testing.T) {
	je := newJobEnv(t, "")
	for _, c := range []struct {
		method, path, body, want string
	}{
		{http.MethodPost, "/api/v1/workflows", `{"name": "w", "on": "never", "tasks": [{"type": "transcode"}]}`, `on "never"`},
		{http.MethodPost, "/api/v1/workflows", `{"name": "w", "on": "recording.finished", "tasks": [{"type": "transcode"}]}`, "need match"},
		{http.MethodPost, "/api/v1/workflows", `{"name": "w", "on": "recording.finished", "match": "live/[", "tasks": [{"type": "transcode"}]}`, `match "live/["`},
		{http.MethodPost, "/api/v1/workflows", `{"name": "w", "on": "file", "folder": "../../etc", "tasks": [{"type": "transcode"}]}`, `folder "../../etc"`},
		{http.MethodPost, "/api/v1/workflows", `{"name": "w", "on": "recording.finished", "match": "live/*", "tasks": [{"type": "juggle"}]}`, `tasks[0].type "juggle"`},
		{http.MethodPost, "/api/v1/workflows", `{"name": "w", "on": "recording.finished", "match": "live/*", "tasks": []}`, "tasks: at least one task"},
		{http.MethodPost, "/api/v1/workflows", `{"name": "", "on": "recording.finished", "match": "live/*", "tasks": [{"type": "transcode"}]}`, `name ""`},
		{http.MethodPost, "/api/v1/workflows", `{"name": "w", "on": "file", "folder": "in", "tasks": [{"type": "transcode"}], "matchh": "x"}`, `unknown field "matchh"`},
		{http.MethodPost, "/api/v1/workflows", ``, "empty body"},
		{http.MethodPut, "/api/v1/workflows/w", `{"name": "v", "on": "file", "folder": "in", "tasks": [{"type": "transcode"}]}`, `name "v": the path says "w"`},
		{http.MethodPut, "/api/v1/workflows/w", `{"on": "file", "folder": "in", "tasks": [{"type": "transcode", "templat": "x"}]}`, `unknown field "templat"`},
	} {
		wantError(t, je.do(t, request{method: c.method, path: c.path, body: c.body}), http.StatusBadRequest, c.want)
	}
	var list WorkflowList
	decode(t, je.do(t, request{path: "/api/v1/workflows"}), http.StatusOK, &list)
	if len(list.Workflows) != 1 {
		t.Errorf("invalid workflows were saved: %+v", list.Workflows)
	}
}
