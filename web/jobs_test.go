package web

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/events"
	"github.com/mps-dev/mps/test/testutil"
	"github.com/mps-dev/mps/vod"
)

// The engine is what cmd/mps plugs in.
var _ JobControl = (*vod.Engine)(nil)

// testOutput is what the test runner writes.
const testOutput = "0123456789abcdef"

// testParams are the params of the test runner.
type testParams struct {
	// Block makes the task run until it is cancelled.
	Block bool `json:"block"`
	// Name is the output file's name.
	Name string `json:"name"`
}

// testRunner is a real runner that needs no ffmpeg: it writes testOutput
// to a file, or blocks until cancelled.
type testRunner struct{}

func (testRunner) Run(ctx context.Context, env vod.Env, in vod.Media, params json.RawMessage) ([]vod.Output, error) {
	p := testParams{Name: "out.txt"}
	if err := vod.DecodeParams(params, &p); err != nil {
		return nil, err
	}
	if p.Block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err := os.WriteFile(filepath.Join(env.OutDir, p.Name), []byte(testOutput), 0o644); err != nil {
		return nil, err
	}
	env.Progress(0.5)
	return []vod.Output{{Kind: "report", Path: p.Name, MIME: "text/plain", Size: int64(len(testOutput))}}, nil
}

// CheckParams lets the template store refuse unknown fields.
func (testRunner) CheckParams(params json.RawMessage) error {
	var p testParams
	return vod.DecodeParams(params, &p)
}

// jobEnv is a server over a real job engine.
type jobEnv struct {
	*fixture
	engine *vod.Engine
	dir    string // the jobs folder
	media  string // the media root
}

// writeWAV writes half a second of silence as a WAV file ffprobe reads.
func writeWAV(t *testing.T, path string) {
	t.Helper()
	const rate, samples = 8000, 4000
	b := make([]byte, 44+2*samples)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+2*samples))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], rate)
	binary.LittleEndian.PutUint32(b[28:], 2*rate)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], 2*samples)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// newJobEnv starts a real engine (SQLite in a temporary folder, the test
// runner as the transcode and snapshot task types, one preset and one
// configured workflow) and a server over it.
func newJobEnv(t *testing.T, token string) *jobEnv {
	t.Helper()
	testutil.RequireTools(t, "ffprobe")
	dir := t.TempDir()
	media := filepath.Join(dir, "media")
	if err := os.MkdirAll(media, 0o755); err != nil {
		t.Fatal(err)
	}
	writeWAV(t, filepath.Join(media, "in.wav"))
	if err := os.WriteFile(filepath.Join(media, "notes.txt"), []byte("not media\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	jobsDir := filepath.Join(dir, "jobs")
	e, err := vod.NewEngine(context.Background(), vod.Config{
		DBPath:  filepath.Join(dir, "mps.db"),
		Dir:     jobsDir,
		Inputs:  &vod.Inputs{MediaRoots: []string{media}},
		Runners: map[string]vod.Runner{vod.TaskTranscode: testRunner{}, vod.TaskSnapshot: testRunner{}},
		Presets: map[string]map[string]json.RawMessage{
			vod.TaskTranscode: {"mp4-720p": json.RawMessage(`{"name": "720p.txt"}`)},
		},
		Workflows: []vod.Workflow{{Name: "from-config", On: vod.OnRecordingFinished, Match: "live/*",
			Tasks: []vod.TaskSpec{{Type: vod.TaskTranscode, Template: "mp4-720p"}}}},
		Bus:    events.NewBus(0),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	f := newFixtureConfig(t, Config{Token: token, Jobs: e, JobsDir: jobsDir}, nil)
	return &jobEnv{fixture: f, engine: e, dir: jobsDir, media: media}
}

// submit posts a job and returns it, checking the status.
func (je *jobEnv) submit(t *testing.T, body string, status int) vod.Job {
	t.Helper()
	var j vod.Job
	decode(t, je.do(t, request{method: http.MethodPost, path: "/api/v1/jobs", body: body}), status, &j)
	return j
}

// wait polls GET /api/v1/jobs/{id} until the job is in one of states.
func (je *jobEnv) wait(t *testing.T, id string, states ...string) vod.Job {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var j vod.Job
		decode(t, je.do(t, request{path: "/api/v1/jobs/" + id}), http.StatusOK, &j)
		for _, s := range states {
			if j.State == s {
				return j
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s (%s), want %v", id, j.State, j.Error, states)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const wavJob = `{"input": {"path": "in.wav"}, "tasks": [{"type": "transcode", "template": "mp4-720p"}, {"type": "snapshot"}]}`

func TestJobRoutesWithoutEngine(t *testing.T) {
	f := newFixture(t, "", nil)
	for _, r := range []request{
		{path: "/api/v1/jobs"},
		{method: http.MethodPost, path: "/api/v1/jobs", body: wavJob},
		{path: "/api/v1/jobs/job_1"},
		{method: http.MethodPost, path: "/api/v1/jobs/job_1/cancel"},
		{method: http.MethodPost, path: "/api/v1/jobs/job_1/retry"},
		{path: "/api/v1/templates"},
		{method: http.MethodPost, path: "/api/v1/templates", body: `{}`},
		{path: "/api/v1/templates/transcode/mp4-720p"},
		{method: http.MethodPut, path: "/api/v1/templates/transcode/x", body: `{}`},
		{method: http.MethodDelete, path: "/api/v1/templates/transcode/x"},
		{path: "/api/v1/workflows"},
		{method: http.MethodPost, path: "/api/v1/workflows", body: `{}`},
		{path: "/api/v1/workflows/w"},
		{method: http.MethodPut, path: "/api/v1/workflows/w", body: `{}`},
		{method: http.MethodDelete, path: "/api/v1/workflows/w"},
		{path: "/outputs/job_1/01-transcode/out.txt"},
	} {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			wantError(t, f.do(t, r), http.StatusNotImplemented, "this server runs no jobs")
		})
	}
}

func TestJobRoutesNeedTheToken(t *testing.T) {
	je := newJobEnv(t, "secret-token")
	for _, path := range []string{"/api/v1/jobs", "/api/v1/templates", "/api/v1/workflows", "/api/v1/jobs/job_1"} {
		wantError(t, je.do(t, request{path: path, remote: remoteAddr}), http.StatusUnauthorized, "missing bearer token")
		wantError(t, je.do(t, request{path: path, remote: remoteAddr, token: "wrong"}), http.StatusUnauthorized, "wrong bearer token")
	}
	wantError(t, je.do(t, request{method: http.MethodPost, path: "/api/v1/jobs", body: wavJob, remote: remoteAddr}),
		http.StatusUnauthorized, "missing bearer token")
	resp := je.do(t, request{path: "/api/v1/jobs", remote: remoteAddr, token: "secret-token"})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("with the token: status %d", resp.StatusCode)
	}

	// Outputs need no token, like playback.
	var j vod.Job
	decode(t, je.do(t, request{method: http.MethodPost, path: "/api/v1/jobs", body: wavJob, token: "secret-token"}), http.StatusCreated, &j)
	deadline := time.Now().Add(20 * time.Second)
	for j.State != vod.StateSucceeded {
		if time.Now().After(deadline) || j.State == vod.StateFailed {
			t.Fatalf("job: %+v", j)
		}
		time.Sleep(20 * time.Millisecond)
		decode(t, je.do(t, request{path: "/api/v1/jobs/" + j.ID, token: "secret-token"}), http.StatusOK, &j)
	}
	resp = je.do(t, request{path: "/outputs/" + j.Tasks[0].Outputs[0].Path, remote: remoteAddr})
	if b := body(t, resp); resp.StatusCode != http.StatusOK || b != testOutput {
		t.Errorf("output without a token: %d %q", resp.StatusCode, b)
	}
}

func TestSubmitAndGetJob(t *testing.T) {
	je := newJobEnv(t, "")
	spec := `{"input": {"path": "in.wav"}, "tasks": [{"type": "transcode", "template": "mp4-720p"}, {"type": "snapshot", "params": {"name": "snap.txt"}}],
		"priority": 1, "session_id": "upload-42", "session_context": {"user": "ann"}}`
	j := je.submit(t, spec, http.StatusCreated)
	if !strings.HasPrefix(j.ID, "job_") || j.OutputDir != j.ID || len(j.Tasks) != 2 || j.Spec.SessionID != "upload-42" ||
		string(j.Spec.SessionContext) != `{"user":"ann"}` || j.Spec.Priority != 1 {
		t.Fatalf("job = %+v", j)
	}
	again := je.submit(t, spec, http.StatusOK)
	if again.ID != j.ID {
		t.Fatalf("same session_id gave job %s, want %s", again.ID, j.ID)
	}
	if !strings.Contains(je.logs.String(), "job submitted through the API") {
		t.Errorf("the submission is not logged:\n%s", je.logs.String())
	}

	done := je.wait(t, j.ID, vod.StateSucceeded, vod.StateFailed)
	if done.State != vod.StateSucceeded || done.Progress != 1 || done.StartedAt == nil || done.FinishedAt == nil || done.Input == nil {
		t.Fatalf("finished job = %+v", done)
	}
	want := []string{j.ID + "/01-transcode/720p.txt", j.ID + "/02-snapshot/snap.txt"}
	for i, ts := range done.Tasks {
		if ts.State != vod.StateSucceeded || len(ts.Outputs) != 1 || ts.Outputs[0].Path != want[i] {
			t.Fatalf("task %d = %+v, want output %s", i, ts, want[i])
		}
	}

	// The raw body keeps the contract's field names.
	var raw map[string]any
	decode(t, je.do(t, request{path: "/api/v1/jobs/" + j.ID}), http.StatusOK, &raw)
	for _, k := range []string{"id", "spec", "state", "progress", "tasks", "attempts", "output_dir", "input_media", "created_at", "started_at", "finished_at"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("job JSON lacks %q: %v", k, raw)
		}
	}

	wantError(t, je.do(t, request{path: "/api/v1/jobs/job_nope"}), http.StatusNotFound, `job "job_nope": no such job`)
	wantError(t, je.do(t, request{path: "/api/v1/jobs/.."}), http.StatusBadRequest, "invalid job id")
	wantError(t, je.do(t, request{path: "/api/v1/jobs/a%2Fb"}), http.StatusBadRequest, "invalid job id")
}

func TestSubmitJobErrors(t *testing.T) {
	je := newJobEnv(t, "")
	for _, c := range []struct {
		body, want string
	}{
		{`{"input": {"path": "in.wav"}, "tasks": [{"type": "juggle"}]}`, `tasks[0].type "juggle": unknown task type`},
		{`{"input": {"path": "in.wav"}, "tasks": [{"type": "transcode", "template": "nope"}]}`, `tasks[0].template "nope"`},
		{`{"input": {"path": "in.wav", "url": "http://x/y.mp4"}, "tasks": [{"type": "transcode"}]}`, "input: set exactly one of path, recording and url"},
		{`{"input": {"path": "in.wav"}, "tasks": []}`, "tasks: at least one task"},
		{`{"input": {"path": "in.wav"}, "tasks": [{"type": "transcode"}], "priority": 9}`, "priority 9"},
		{`{"input": {"path": "in.wav"}, "tasks": [{"type": "transcode"}], "output": "../x"}`, `output "../x"`},
		{`{"input": {"path": "in.wav"}, "tasks": [{"type": "transcode"}], "prority": 1}`, `unknown field "prority"`},
		{`{"input": {"file": "in.wav"}, "tasks": [{"type": "transcode"}]}`, `unknown field "file"`},
		{`{"input": {"path": "in.wav"}, "tasks": [{"type": "transcode", "paramz": {}}]}`, `unknown field "paramz"`},
		{`{"input": {"path": 7}}`, "cannot unmarshal number"},
		{``, "empty body"},
		{`{"input": {"path": "in.wav"}} {}`, "data after the JSON object"},
		{`[`, "invalid body"},
		{`{"session_context": "` + strings.Repeat("x", maxJobBody) + `"}`, "body larger than"},
	} {
		e := wantError(t, je.do(t, request{method: http.MethodPost, path: "/api/v1/jobs", body: c.body}), http.StatusBadRequest, c.want)
		if t.Failed() {
			t.Fatalf("body %.100s: %+v", c.body, e)
		}
	}
	var list JobList
	decode(t, je.do(t, request{path: "/api/v1/jobs"}), http.StatusOK, &list)
	if list.Total != 0 {
		t.Errorf("bad submissions made %d jobs", list.Total)
	}
}

func TestListJobs(t *testing.T) {
	je := newJobEnv(t, "")
	var ids []string
	for i := range 5 {
		input := "in.wav"
		if i%2 == 1 {
			input = "notes.txt" // fails at once: not a media file
		}
		j := je.submit(t, fmt.Sprintf(`{"input": {"path": %q}, "tasks": [{"type": "transcode"}]}`, input), http.StatusCreated)
		ids = append(ids, j.ID)
		time.Sleep(2 * time.Millisecond) // distinct creation times
	}
	for i, id := range ids {
		want := vod.StateSucceeded
		if i%2 == 1 {
			want = vod.StateFailed
		}
		if got := je.wait(t, id, vod.StateSucceeded, vod.StateFailed); got.State != want {
			t.Fatalf("job %d: %s (%s), want %s", i, got.State, got.Error, want)
		}
	}

	var list JobList
	decode(t, je.do(t, request{path: "/api/v1/jobs"}), http.StatusOK, &list)
	if list.Total != 5 || len(list.Jobs) != 5 || list.NextOffset != 0 || list.Jobs[0].ID != ids[4] || list.Jobs[4].ID != ids[0] {
		t.Fatalf("list = %+v, want all 5 newest first", list)
	}
	decode(t, je.do(t, request{path: "/api/v1/jobs?state=failed"}), http.StatusOK, &list)
	if list.Total != 2 || len(list.Jobs) != 2 || list.Jobs[0].ID != ids[3] || list.Jobs[1].ID != ids[1] {
		t.Fatalf("failed jobs = %+v", list)
	}
	if !strings.Contains(list.Jobs[0].Error, "not a media file") {
		t.Errorf("failed job error %q", list.Jobs[0].Error)
	}

	// Paging.
	var got []string
	offset := 0
	for page := 0; ; page++ {
		list = JobList{}
		decode(t, je.do(t, request{path: fmt.Sprintf("/api/v1/jobs?limit=2&offset=%d", offset)}), http.StatusOK, &list)
		if list.Total != 5 || len(list.Jobs) > 2 {
			t.Fatalf("page %d = %+v", page, list)
		}
		for _, j := range list.Jobs {
			got = append(got, j.ID)
		}
		if list.NextOffset == 0 {
			break
		}
		if list.NextOffset != offset+2 || page > 3 {
			t.Fatalf("page %d: next_offset %d after offset %d", page, list.NextOffset, offset)
		}
		offset = list.NextOffset
	}
	if len(got) != 5 || got[0] != ids[4] || got[4] != ids[0] {
		t.Errorf("pages gave %v", got)
	}
	resp := je.do(t, request{path: "/api/v1/jobs?state=running"})
	if b := body(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(b, `"jobs":[]`) || !strings.Contains(b, `"total":0`) ||
		strings.Contains(b, "next_offset") {
		t.Errorf("empty list: %d %s", resp.StatusCode, b)
	}

	for query, want := range map[string]string{
		"state=done":  `state "done": want one of queued, running, succeeded, failed, cancelled`,
		"limit=0":     `limit "0": want a whole number from 1 to 1000`,
		"limit=1001":  "from 1 to 1000",
		"offset=-1":   `offset "-1": want a whole number of at least 0`,
		"offset=many": `offset "many"`,
	} {
		wantError(t, je.do(t, request{path: "/api/v1/jobs?" + query}), http.StatusBadRequest, want)
	}
}

func TestCancelAndRetryJob(t *testing.T) {
	je := newJobEnv(t, "")
	j := je.submit(t, `{"input": {"path": "in.wav"}, "tasks": [{"type": "transcode", "params": {"block": true}}]}`, http.StatusCreated)
	je.wait(t, j.ID, vod.StateRunning)

	wantError(t, je.do(t, request{method: http.MethodPost, path: "/api/v1/jobs/" + j.ID + "/retry"}), http.StatusConflict,
		"only failed or cancelled jobs can be retried")

	var cancelled vod.Job
	decode(t, je.do(t, request{method: http.MethodPost, path: "/api/v1/jobs/" + j.ID + "/cancel"}), http.StatusOK, &cancelled)
	if cancelled.ID != j.ID || cancelled.State != vod.StateCancelled || cancelled.Tasks[0].State != vod.StateCancelled {
		t.Fatalf("cancelled = %+v", cancelled)
	}
	wantError(t, je.do(t, request{method: http.MethodPost, path: "/api/v1/jobs/" + j.ID + "/cancel"}), http.StatusConflict, "is cancelled")
	if got := je.wait(t, j.ID, vod.StateCancelled); got.FinishedAt == nil {
		t.Errorf("cancelled job = %+v", got)
	}

	var retried vod.Job
	decode(t, je.do(t, request{method: http.MethodPost, path: "/api/v1/jobs/" + j.ID + "/retry"}), http.StatusOK, &retried)
	if retried.ID != j.ID || retried.State != vod.StateQueued || retried.Error != "" {
		t.Fatalf("retried = %+v", retried)
	}
	je.wait(t, j.ID, vod.StateRunning)
	decode(t, je.do(t, request{method: http.MethodPost, path: "/api/v1/jobs/" + j.ID + "/cancel"}), http.StatusOK, &cancelled)

	for _, op := range []string{"cancel", "retry"} {
		wantError(t, je.do(t, request{method: http.MethodPost, path: "/api/v1/jobs/job_nope/" + op}), http.StatusNotFound, "no such job")
		wantError(t, je.do(t, request{path: "/api/v1/jobs/" + j.ID + "/" + op}), http.StatusMethodNotAllowed, "method GET is not allowed")
	}
	logs := je.logs.String()
	for _, want := range []string{"job cancelled through the API", "job retried through the API"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestJobOutputs(t *testing.T) {
	je := newJobEnv(t, "api-token")
	var j vod.Job
	decode(t, je.do(t, request{method: http.MethodPost, path: "/api/v1/jobs", token: "api-token",
		body: `{"input": {"path": "in.wav"}, "output": "talks/2025", "tasks": [{"type": "transcode", "params": {"name": "clip.mp4"}}]}`}), http.StatusCreated, &j)
	for j.State != vod.StateSucceeded {
		if j.State == vod.StateFailed {
			t.Fatalf("job failed: %s", j.Error)
		}
		time.Sleep(20 * time.Millisecond)
		decode(t, je.do(t, request{path: "/api/v1/jobs/" + j.ID, token: "api-token"}), http.StatusOK, &j)
	}
	out := j.Tasks[0].Outputs[0].Path
	if out != "talks/2025/01-transcode/clip.mp4" {
		t.Fatalf("output path %q", out)
	}

	resp := je.do(t, request{path: "/outputs/" + out, remote: remoteAddr, header: http.Header{"Origin": {"https://player.example"}}})
	if b := body(t, resp); resp.StatusCode != http.StatusOK || b != testOutput {
		t.Fatalf("output: %d %q", resp.StatusCode, b)
	}
	h := resp.Header
	if h.Get("Content-Type") != "video/mp4" || h.Get("Accept-Ranges") != "bytes" || h.Get("Content-Length") != "16" ||
		h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Cache-Control") != "no-cache" {
		t.Errorf("headers %v", h)
	}

	resp = je.do(t, request{path: "/outputs/" + out, header: http.Header{"Range": {"bytes=4-7"}}})
	if b := body(t, resp); resp.StatusCode != http.StatusPartialContent || b != "4567" || resp.Header.Get("Content-Range") != "bytes 4-7/16" {
		t.Errorf("range: %d %q %v, want 206 4567", resp.StatusCode, b, resp.Header)
	}
	resp = je.do(t, request{path: "/outputs/" + out, header: http.Header{"Range": {"bytes=100-"}}})
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("range past the end: status %d, want 416", resp.StatusCode)
	}
	resp = je.do(t, request{method: http.MethodHead, path: "/outputs/" + out})
	if b := body(t, resp); resp.StatusCode != http.StatusOK || b != "" || resp.Header.Get("Content-Length") != "16" {
		t.Errorf("HEAD: %d %q %v", resp.StatusCode, b, resp.Header)
	}
	resp = je.do(t, request{method: http.MethodOptions, path: "/outputs/" + out})
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Methods") == "" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	wantError(t, je.do(t, request{method: http.MethodPost, path: "/outputs/" + out}), http.StatusMethodNotAllowed, "allowed: GET, HEAD, OPTIONS")

	// Nothing outside the jobs folder, and no folder listings.
	secret := filepath.Join(filepath.Dir(je.dir), "secret.txt")
	if err := os.WriteFile(secret, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(je.dir, "talks", "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(je.dir), filepath.Join(je.dir, "up")); err != nil {
		t.Fatal(err)
	}
	for path, status := range map[string]int{
		"/outputs/../secret.txt":                      http.StatusBadRequest,
		"/outputs/talks/../../secret.txt":             http.StatusBadRequest,
		"/outputs/talks/%2e%2e/%2e%2e/secret.txt":     http.StatusBadRequest,
		"/outputs/talks/..%2F..%2Fsecret.txt":         http.StatusBadRequest,
		"/outputs//etc/passwd":                        http.StatusBadRequest,
		"/outputs/talks/./2025/01-transcode/clip.mp4": http.StatusBadRequest,
		"/outputs/talks\\..\\..\\secret.txt":          http.StatusBadRequest,
		"/outputs/":                                   http.StatusBadRequest,
		"/outputs":                                    http.StatusBadRequest,
		"/outputs/talks/link.txt":                     http.StatusNotFound,
		"/outputs/up/secret.txt":                      http.StatusNotFound,
		"/outputs/talks":                              http.StatusNotFound,
		"/outputs/talks/2025/01-transcode":            http.StatusNotFound,
		"/outputs/talks/2025/01-transcode/nope.mp4":   http.StatusNotFound,
		"/outputs/job_nope/out.txt":                   http.StatusNotFound,
	} {
		resp := je.do(t, request{path: path})
		b := body(t, resp)
		if resp.StatusCode != status || strings.Contains(b, "secret") && !strings.Contains(b, "secret.txt") {
			t.Errorf("%s: %d %s, want %d", path, resp.StatusCode, b, status)
		}
	}
}

// TestOutputsAreNotPlayback checks that /outputs/ paths never reach the
// live playback handler.
func TestOutputsAreNotPlayback(t *testing.T) {
	reached := false
	playback := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true })
	f := newFixture(t, "", playback)
	wantError(t, f.do(t, request{path: "/outputs/job_1/x.mp4"}), http.StatusNotImplemented, "this server runs no jobs")
	if reached {
		t.Error("an /outputs/ path reached playback")
	}
}
