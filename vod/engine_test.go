package vod

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/events"
	"github.com/mps-dev/mps/test/testutil"
)

// makeInput encodes seconds of 320x240 video with audio into dir.
func makeInput(t *testing.T, dir string, seconds int) string {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	p := filepath.Join(dir, "in.mp4")
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine", "-t", (time.Duration(seconds) * time.Second).String(),
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-y", p).CombinedOutput()
	if err != nil {
		t.Fatalf("make input: %v\n%s", err, out)
	}
	return p
}

// remuxParams is the test runner's template.
type remuxParams struct {
	Realtime bool `json:"realtime"`
}

// remux is a real runner for the engine tests: it copies the input into
// an MP4, in real time when asked (so that it can be cancelled midway).
var remux = RunnerFunc(func(ctx context.Context, env Env, in Media, params json.RawMessage) ([]Output, error) {
	var p remuxParams
	if err := DecodeParams(params, &p); err != nil {
		return nil, err
	}
	args := []string{}
	if p.Realtime {
		args = append(args, "-re")
	}
	out := filepath.Join(env.OutDir, "out.mp4")
	args = append(args, "-i", in.Path, "-c", "copy", out)
	if err := RunFFmpeg(ctx, env, in.Duration, args...); err != nil {
		return nil, err
	}
	fi, err := os.Stat(out)
	if err != nil {
		return nil, err
	}
	return []Output{{Kind: "video", Path: "out.mp4", MIME: "video/mp4", Size: fi.Size()}}, nil
})

type engineEnv struct {
	e     *Engine
	bus   *events.Bus
	media string
	cfg   Config
}

func newEngine(t *testing.T, seconds int) *engineEnv {
	t.Helper()
	dir := t.TempDir()
	media := filepath.Join(dir, "media")
	if err := os.MkdirAll(media, 0o755); err != nil {
		t.Fatal(err)
	}
	makeInput(t, media, seconds)
	if err := os.WriteFile(filepath.Join(media, "notes.txt"), []byte("not a video\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bus := events.NewBus(0)
	cfg := Config{
		DBPath:  filepath.Join(dir, "mps.db"),
		Dir:     filepath.Join(dir, "jobs"),
		Inputs:  &Inputs{MediaRoots: []string{media}},
		Runners: map[string]Runner{TaskTranscode: remux},
		Presets: map[string]map[string]json.RawMessage{
			TaskTranscode: {"copy": json.RawMessage(`{"realtime": false}`)},
		},
		Bus:    bus,
		Logger: slog.New(slog.DiscardHandler),
	}
	ee := &engineEnv{bus: bus, media: media, cfg: cfg}
	ee.start(t)
	return ee
}

func (ee *engineEnv) start(t *testing.T) {
	t.Helper()
	e, err := NewEngine(context.Background(), ee.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ee.e = e
	t.Cleanup(e.Close)
}

func (ee *engineEnv) wait(t *testing.T, id string, states ...string) *Job {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		j, err := ee.e.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range states {
			if j.State == s {
				return j
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s (%s), want %v", id, j.State, j.Error, states)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestJobRunsAndIsIdempotent(t *testing.T) {
	ee := newEngine(t, 2)
	ctx := context.Background()
	spec := JobSpec{
		Input:          JobInput{Path: "in.mp4"},
		Tasks:          []TaskSpec{{Type: TaskTranscode, Template: "copy"}},
		SessionID:      "upload-42",
		SessionContext: json.RawMessage(`{"user":"ann"}`),
	}
	j, created, err := ee.e.Submit(ctx, spec)
	if err != nil || !created {
		t.Fatalf("submit: %v %v", created, err)
	}
	again, created, err := ee.e.Submit(ctx, spec)
	if err != nil || created || again.ID != j.ID {
		t.Fatalf("same session id gave job %s (created %v, %v), want %s", again.ID, created, err, j.ID)
	}
	done := ee.wait(t, j.ID, StateSucceeded, StateFailed)
	if done.State != StateSucceeded || done.Progress != 1 || done.Input == nil || done.Input.Video == nil {
		t.Fatalf("job: %+v", done)
	}
	out := done.Tasks[0].Outputs[0]
	m, err := Probe(ctx, Env{}, filepath.Join(ee.cfg.Dir, out.Path))
	if err != nil || m.Duration < 1900*time.Millisecond {
		t.Fatalf("output %s: %+v %v", out.Path, m, err)
	}
	evs := ee.bus.Recent(0, nil)
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
		if string(ev.Data["session_context"].(json.RawMessage)) != `{"user":"ann"}` {
			t.Fatalf("event without the session context: %+v", ev)
		}
	}
	if types[0] != EventJobCreated || types[len(types)-1] != EventJobFinished {
		t.Fatalf("events %v", types)
	}
}

func TestBadInputFailsFastWithoutRetry(t *testing.T) {
	ee := newEngine(t, 1)
	ctx := context.Background()
	for _, tc := range []struct {
		input JobInput
		want  string
	}{
		{JobInput{Path: "notes.txt"}, "not a media file"},
		{JobInput{Path: "../../etc/passwd"}, "no such file inside the media roots"},
		{JobInput{URL: "http://127.0.0.1:1/x.mp4"}, "not in the allowed hosts"},
	} {
		j, _, err := ee.e.Submit(ctx, JobSpec{Input: tc.input, Tasks: []TaskSpec{{Type: TaskTranscode}}})
		if err != nil {
			t.Fatal(err)
		}
		done := ee.wait(t, j.ID, StateFailed, StateSucceeded)
		if done.State != StateFailed || done.Attempts != 1 || !strings.Contains(done.Error, tc.want) {
			t.Fatalf("%+v: state %s after %d attempts: %q, want failed at once with %q", tc.input, done.State, done.Attempts, done.Error, tc.want)
		}
	}
	j, _, _ := ee.e.Submit(ctx, JobSpec{Input: JobInput{Path: "in.mp4"}, Tasks: []TaskSpec{{Type: TaskTranscode, Params: json.RawMessage(`{"realtme": true}`)}}})
	if done := ee.wait(t, j.ID, StateFailed, StateSucceeded); !strings.Contains(done.Error, `unknown field "realtme"`) || done.Attempts != 1 {
		t.Fatalf("unknown field: %+v", done)
	}
	for _, spec := range []JobSpec{
		{Input: JobInput{Path: "in.mp4"}, Tasks: []TaskSpec{{Type: "juggle"}}},
		{Input: JobInput{Path: "in.mp4"}, Tasks: []TaskSpec{{Type: TaskTranscode, Template: "nope"}}},
		{Input: JobInput{Path: "in.mp4", URL: "http://x"}, Tasks: []TaskSpec{{Type: TaskTranscode}}},
		{Input: JobInput{Path: "in.mp4"}},
		{Input: JobInput{Path: "in.mp4"}, Output: "../x", Tasks: []TaskSpec{{Type: TaskTranscode}}},
	} {
		if _, _, err := ee.e.Submit(ctx, spec); !errors.Is(err, ErrInvalidJob) {
			t.Fatalf("%+v: %v, want ErrInvalidJob", spec, err)
		}
	}
}

// ffmpegChildren counts ffmpeg processes whose command line mentions dir.
func ffmpegChildren(dir string) int {
	out, _ := exec.Command("pgrep", "-f", "ffmpeg.*"+dir).Output()
	return len(strings.Fields(string(out)))
}

func TestCancelKillsTheChild(t *testing.T) {
	ee := newEngine(t, 6)
	ctx := context.Background()
	j, _, err := ee.e.Submit(ctx, JobSpec{Input: JobInput{Path: "in.mp4"}, Tasks: []TaskSpec{{Type: TaskTranscode, Params: json.RawMessage(`{"realtime": true}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	ee.wait(t, j.ID, StateRunning)
	deadline := time.Now().Add(10 * time.Second)
	for ffmpegChildren(ee.cfg.Dir) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("ffmpeg never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancelled, err := ee.e.Cancel(ctx, j.ID)
	if err != nil || cancelled.State != StateCancelled {
		t.Fatalf("cancel: %+v %v", cancelled, err)
	}
	at := time.Now()
	for ffmpegChildren(ee.cfg.Dir) > 0 {
		if time.Since(at) > time.Second {
			t.Fatal("ffmpeg still runs 1 s after the cancel")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := ee.e.Cancel(ctx, j.ID); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("second cancel: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	if got := ee.wait(t, j.ID, StateCancelled); got.Tasks[0].State != StateCancelled {
		t.Fatalf("task state %s", got.Tasks[0].State)
	}
	retried, err := ee.e.Retry(ctx, j.ID)
	if err != nil || retried.State != StateQueued {
		t.Fatalf("retry: %+v %v", retried, err)
	}
	ee.wait(t, j.ID, StateSucceeded)
}

// TestInterruptedJobRunsAgain leaves a job as a killed process would (its
// queue row running) and starts a new engine on the database.
func TestInterruptedJobRunsAgain(t *testing.T) {
	ee := newEngine(t, 2)
	ctx := context.Background()
	ee.e.Close()
	// Queue a job without a worker, then mark it running, as if the
	// process died in the middle.
	db, err := openDB(ee.cfg.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	ee.cfg.Workers = 1
	ee.start(t)
	j, _, err := ee.e.Submit(ctx, JobSpec{Input: JobInput{Path: "in.mp4"}, Tasks: []TaskSpec{{Type: TaskTranscode, Params: json.RawMessage(`{"realtime": true}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	ee.wait(t, j.ID, StateRunning)
	ee.e.Close() // stops the worker mid-job
	if _, err := db.ExecContext(ctx, `UPDATE river_job SET state = 'running'`); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	ee.start(t)
	done := ee.wait(t, j.ID, StateSucceeded, StateFailed)
	if done.State != StateSucceeded {
		t.Fatalf("after restart: %+v", done)
	}
}

func TestMain(m *testing.M) {
	os.Exit(testutil.RunWithLeakCheck(m, "github.com/mps-dev/mps/vod.", "github.com/riverqueue/"))
}

// TestQualityComparesAnEarlierOutput runs a copy and then a quality task
// that compares the copy with the job's input.
func TestQualityComparesAnEarlierOutput(t *testing.T) {
	ee := newEngine(t, 2)
	ee.e.cfg.Runners[TaskQuality] = Quality()
	ctx := context.Background()
	j, _, err := ee.e.Submit(ctx, JobSpec{Input: JobInput{Path: "in.mp4"}, Tasks: []TaskSpec{
		{Type: TaskTranscode, Template: "copy"},
		{Type: TaskQuality},
	}})
	if err != nil {
		t.Fatal(err)
	}
	done := ee.wait(t, j.ID, StateSucceeded, StateFailed)
	if done.State != StateSucceeded {
		t.Fatalf("job: %+v", done)
	}
	psnr, _ := done.Tasks[1].Outputs[0].Data["psnr"].(map[string]any)
	if mean, _ := psnr["mean"].(float64); mean < 60 {
		t.Fatalf("PSNR of a stream copy against its source: %+v", done.Tasks[1].Outputs[0].Data)
	}
	// A reference outside the media roots is refused.
	j, _, _ = ee.e.Submit(ctx, JobSpec{Input: JobInput{Path: "in.mp4"}, Tasks: []TaskSpec{
		{Type: TaskQuality, Params: json.RawMessage(`{"reference": "/etc/passwd"}`)},
	}})
	if done := ee.wait(t, j.ID, StateSucceeded, StateFailed); done.State != StateFailed || !strings.Contains(done.Error, "media roots") {
		t.Fatalf("reference outside the roots: %s %q", done.State, done.Error)
	}
}

// TestTruncatedInputFails cuts a faststart MP4 in half: ffmpeg decodes
// the half that is left and exits 0, but the job must fail, at once.
func TestTruncatedInputFails(t *testing.T) {
	ee := newEngine(t, 1)
	dir := t.TempDir()
	full := filepath.Join(dir, "full.mp4")
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "4",
		"-c:v", "libx264", "-preset", "ultrafast", "-movflags", "+faststart", "-y", full).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ee.media, "half.mp4"), b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	j, _, err := ee.e.Submit(context.Background(), JobSpec{Input: JobInput{Path: "half.mp4"}, Tasks: []TaskSpec{{Type: TaskTranscode, Template: "copy"}}})
	if err != nil {
		t.Fatal(err)
	}
	done := ee.wait(t, j.ID, StateSucceeded, StateFailed)
	if done.State != StateFailed || done.Attempts != 1 || !strings.Contains(done.Error, "truncated") {
		t.Fatalf("half a file: %s after %d attempts: %q", done.State, done.Attempts, done.Error)
	}
}
