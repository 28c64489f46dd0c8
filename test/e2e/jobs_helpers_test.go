package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	_ "image/jpeg" // decode job snapshots and sprites
	_ "image/png"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// Helpers of the VOD job tests (jobs_test.go and webhooks_test.go).

// jobEnv is the folders of one test's job engine: the database, the
// outputs and the media root, all below the test's temporary folder and
// absolute, so that a restarted server (which runs in a new folder) finds
// the same ones.
type jobEnv struct {
	Base    string
	DB      string // jobs.db_path
	JobsDir string // jobs.dir
	Media   string // the only jobs.media_roots entry
}

func newJobEnv(t *testing.T) jobEnv {
	t.Helper()
	base := t.TempDir()
	e := jobEnv{Base: base, DB: filepath.Join(base, "db", "mps.db"), JobsDir: filepath.Join(base, "jobs"), Media: filepath.Join(base, "media")}
	for _, d := range []string{filepath.Dir(e.DB), e.JobsDir, e.Media} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// config returns the server configuration: debug logs and the jobs
// section (see jobsSection).
func (e jobEnv) config(jobsExtra string) string {
	return "\nlog:\n  level: debug\n" + e.jobsSection(jobsExtra)
}

// jobsSection is the jobs: section with the env's folders, webhooks retried at least every second, and jobsExtra (more YAML inside
// jobs:, indented by two spaces).
func (e jobEnv) jobsSection(jobsExtra string) string {
	return `
jobs:
  enabled: true
  db_path: ` + strconv.Quote(e.DB) + `
  dir: ` + strconv.Quote(e.JobsDir) + `
  media_roots: [` + strconv.Quote(e.Media) + `]
  webhooks:
    timeout: 3s
    max_attempts: 100
    backoff_max: 1s
` + jobsExtra
}

// clipOptions says what makeClip encodes.
type clipOptions struct {
	Dur     float64 // seconds (default 4)
	Size    string  // default 320x240
	Video   string  // lavfi video source without size and rate (default testsrc2)
	Audio   string  // lavfi audio graph (default a 440 Hz sine)
	NoAudio bool
	// MoovAtEnd leaves the MP4 index at the end of the file (no
	// +faststart), as a recorder that died would.
	MoovAtEnd bool
}

// makeClip encodes a test clip with ffmpeg (H.264 + AAC in MP4, 30 fps,
// one keyframe a second) and returns its path.
func makeClip(t *testing.T, path string, o clipOptions) string {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg")
	if o.Dur == 0 {
		o.Dur = 4
	}
	if o.Size == "" {
		o.Size = "320x240"
	}
	if o.Video == "" {
		o.Video = "testsrc2"
	}
	if o.Audio == "" {
		o.Audio = "sine=frequency=440:sample_rate=48000"
	}
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("%s=size=%s:rate=30", o.Video, o.Size)}
	if !o.NoAudio {
		args = append(args, "-f", "lavfi", "-i", o.Audio)
	}
	args = append(args, "-t", strconv.FormatFloat(o.Dur, 'f', 3, 64),
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p")
	if !o.NoAudio {
		args = append(args, "-c:a", "aac", "-b:a", "96k")
	}
	if !o.MoovAtEnd {
		args = append(args, "-movflags", "+faststart")
	}
	args = append(args, path)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("make clip %s: %v\n%s", path, err, out)
	}
	return path
}

// ---------------------------------------------------------------------------
// The job API

// apiJob is a job as GET /api/v1/jobs/{id} shows it.
type apiJob struct {
	ID         string         `json:"id"`
	Spec       apiJobSpec     `json:"spec"`
	State      string         `json:"state"`
	Progress   float64        `json:"progress"`
	Tasks      []apiJobTask   `json:"tasks"`
	Error      string         `json:"error"`
	Attempts   int            `json:"attempts"`
	OutputDir  string         `json:"output_dir"`
	InputMedia map[string]any `json:"input_media"`
	CreatedAt  time.Time      `json:"created_at"`
	StartedAt  *time.Time     `json:"started_at"`
	FinishedAt *time.Time     `json:"finished_at"`
}

type apiJobSpec struct {
	Input struct {
		Path      string `json:"path"`
		Recording string `json:"recording"`
		URL       string `json:"url"`
	} `json:"input"`
	SessionID      string          `json:"session_id"`
	SessionContext json.RawMessage `json:"session_context"`
}

type apiJobTask struct {
	Type     string         `json:"type"`
	Template string         `json:"template"`
	State    string         `json:"state"`
	Progress float64        `json:"progress"`
	Outputs  []apiJobOutput `json:"outputs"`
	Error    string         `json:"error"`
}

type apiJobOutput struct {
	Kind     string         `json:"kind"`
	Path     string         `json:"path"`
	MIME     string         `json:"mime"`
	Size     int64          `json:"size"`
	Width    int            `json:"width"`
	Height   int            `json:"height"`
	Duration float64        `json:"duration"`
	Data     map[string]any `json:"data"`
}

func (j apiJob) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "{%s %s progress %.3f attempts %d error %q", j.ID, j.State, j.Progress, j.Attempts, j.Error)
	for i, tk := range j.Tasks {
		fmt.Fprintf(&b, " task%d{%s/%s %s %.3f outputs %d error %q}", i+1, tk.Type, tk.Template, tk.State, tk.Progress, len(tk.Outputs), tk.Error)
	}
	return b.String() + "}"
}

// finished reports whether the job reached a final state.
func (j apiJob) finished() bool {
	return j.State == "succeeded" || j.State == "failed" || j.State == "cancelled"
}

// output returns the first output of a kind ("" for any) of task i.
func (j apiJob) output(t *testing.T, task int, kind string) apiJobOutput {
	t.Helper()
	if task >= len(j.Tasks) {
		t.Fatalf("job %s has %d tasks, want task %d", j.ID, len(j.Tasks), task+1)
	}
	for _, o := range j.Tasks[task].Outputs {
		if kind == "" || o.Kind == kind {
			return o
		}
	}
	t.Fatalf("task %d (%s) of job %s has no %q output: %+v", task+1, j.Tasks[task].Type, j.ID, kind, j.Tasks[task].Outputs)
	return apiJobOutput{}
}

// jsonBody marshals v, or passes a string through.
func jsonBody(t *testing.T, v any) string {
	t.Helper()
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// submitJob posts a job; it returns the status, the job (on 2xx) and the
// body.
func (s *server) submitJob(t *testing.T, spec any) (int, apiJob, []byte) {
	t.Helper()
	code, b := s.apiBody(t, http.MethodPost, "/api/v1/jobs", jsonBody(t, spec))
	var j apiJob
	if code/100 == 2 {
		if err := json.Unmarshal(b, &j); err != nil {
			t.Fatalf("POST /api/v1/jobs: %d, not a job: %v: %.500s", code, err, b)
		}
	}
	return code, j, b
}

// mustSubmit posts a job and wants 201.
func (s *server) mustSubmit(t *testing.T, spec any) apiJob {
	t.Helper()
	code, j, b := s.submitJob(t, spec)
	if code != http.StatusCreated {
		t.Fatalf("POST /api/v1/jobs %s: %d %.500s, want 201", jsonBody(t, spec), code, b)
	}
	if j.ID == "" {
		t.Fatalf("POST /api/v1/jobs: 201 without a job id: %.500s", b)
	}
	return j
}

// job returns GET /api/v1/jobs/{id}.
func (s *server) job(t *testing.T, id string) apiJob {
	t.Helper()
	code, b := s.api(t, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id), apiToken)
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/jobs/%s: %d %.500s", id, code, b)
	}
	var j apiJob
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatalf("GET /api/v1/jobs/%s: %v: %.500s", id, err, b)
	}
	return j
}

// waitJob polls a job until cond holds.
func waitJob(t *testing.T, s *server, id string, timeout time.Duration, what string, cond func(apiJob) bool) apiJob {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j := s.job(t, id)
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: timed out after %v waiting for %s; now %v", id, timeout, what, j)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitJobFinished waits until a job reached a final state.
func waitJobFinished(t *testing.T, s *server, id string, timeout time.Duration) apiJob {
	t.Helper()
	return waitJob(t, s, id, timeout, "a final state", apiJob.finished)
}

// waitJobSucceeded waits until a job finished and wants it succeeded.
func waitJobSucceeded(t *testing.T, s *server, id string, timeout time.Duration) apiJob {
	t.Helper()
	j := waitJobFinished(t, s, id, timeout)
	if j.State != "succeeded" {
		t.Fatalf("job %s ended %s, want succeeded: %v", id, j.State, j)
	}
	for i, tk := range j.Tasks {
		if tk.State != "succeeded" || tk.Progress != 1 || len(tk.Outputs) == 0 {
			t.Errorf("job %s task %d (%s): state %s progress %v with %d outputs, want succeeded, 1 and outputs", id, i+1, tk.Type, tk.State, tk.Progress, len(tk.Outputs))
		}
	}
	if j.Progress != 1 {
		t.Errorf("job %s succeeded with progress %v, want 1", id, j.Progress)
	}
	return j
}

// outputURL is where the server serves a job output.
func (s *server) outputURL(o apiJobOutput) string {
	return s.URL("/outputs/" + (&url.URL{Path: o.Path}).EscapedPath())
}

// fetchOutput GETs a job output and checks its status and size against
// what the job says.
func (s *server) fetchOutput(t *testing.T, o apiJobOutput) []byte {
	t.Helper()
	u := s.outputURL(o)
	code, h, b := getWith(t, u, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %.300s", u, code, b)
	}
	if o.Size > 0 && int64(len(b)) != o.Size {
		t.Errorf("GET %s: %d bytes, the job says %d", u, len(b), o.Size)
	}
	if o.MIME != "" && !strings.HasPrefix(h.Get("Content-Type"), strings.Split(o.MIME, ";")[0]) {
		t.Errorf("GET %s: Content-Type %q, the job says %q", u, h.Get("Content-Type"), o.MIME)
	}
	return b
}

// saveOutput fetches a job output into the test's temporary folder, for
// tools that want a file.
func (s *server) saveOutput(t *testing.T, o apiJobOutput) string {
	t.Helper()
	b := s.fetchOutput(t, o)
	p := filepath.Join(t.TempDir(), filepath.Base(o.Path))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// decodeImage decodes a JPEG or PNG.
func decodeImage(t *testing.T, what string, b []byte) image.Image {
	t.Helper()
	img, format, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: not a decodable image (%d bytes): %v", what, len(b), err)
	}
	_ = format
	return img
}

// ---------------------------------------------------------------------------
// Media checks

// videoInfo is the first video stream's codec and size, the first audio
// stream's codec, and the format's duration, from ffprobe.
type videoInfo struct {
	VideoCodec    string
	Width, Height int
	AudioCodec    string
	Duration      float64
	Frames        int
}

// probeVideo runs ffprobe on a file or URL, counting frames when count.
func probeVideo(t *testing.T, u string, count bool) videoInfo {
	t.Helper()
	var extra []string
	if count {
		extra = append(extra, "-count_frames")
	}
	p := ffprobe(t, u, extra...)
	m := probeMedia(t, u)
	vi := videoInfo{Duration: m.Duration}
	if v := p.ByType("video"); len(v) > 0 {
		vi.VideoCodec, vi.Width, vi.Height = v[0].CodecName, v[0].Width, v[0].Height
		vi.Frames, _ = strconv.Atoi(v[0].NbReadFrames)
	}
	if a := p.ByType("audio"); len(a) > 0 {
		vi.AudioCodec = a[0].CodecName
	}
	return vi
}

var reEBUR128I = regexp.MustCompile(`(?s)Integrated loudness:\s*I:\s*(-?[0-9.]+|-inf)\s*LUFS`)

// loudness measures the integrated loudness of a file with ffmpeg's ebur128.
func loudness(t *testing.T, path string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-i", path,
		"-map", "0:a:0", "-af", "ebur128", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg ebur128 %s: %v\n%s", path, err, testutil.Tail(string(out), 20))
	}
	m := reEBUR128I.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("ffmpeg ebur128 %s: no integrated loudness in:\n%s", path, testutil.Tail(string(out), 20))
	}
	if m[1] == "-inf" {
		return math.Inf(-1)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// rawFrame decodes the frame at sec of a video as RGB24; it returns the
// pixels and the size.
func rawFrame(t *testing.T, path string, sec float64) ([]byte, int, int) {
	t.Helper()
	vi := probeVideo(t, path, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", path,
		"-ss", strconv.FormatFloat(sec, 'f', 3, 64), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("extract a frame of %s: %v\n%s", path, err, stderr.String())
	}
	if want := vi.Width * vi.Height * 3; len(out) != want {
		t.Fatalf("extract a frame of %s: %d bytes, want %d (%dx%d)", path, len(out), want, vi.Width, vi.Height)
	}
	return out, vi.Width, vi.Height
}

// meanAbsDiff is the mean absolute difference of two RGB24 frames of width
// w inside the rectangle r.
func meanAbsDiff(a, b []byte, w int, r image.Rectangle) float64 {
	var sum float64
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			for c := range 3 {
				i := (y*w+x)*3 + c
				sum += math.Abs(float64(a[i]) - float64(b[i]))
				n++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// ---------------------------------------------------------------------------
// Processes

// pgrep returns the pids of the processes whose command line contains pat
// (pgrep -f, with pat taken literally).
func pgrep(t *testing.T, pat string) []int {
	t.Helper()
	testutil.RequireTools(t, "pgrep")
	out, err := exec.Command("pgrep", "-f", regexp.QuoteMeta(pat)).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
			return nil // none
		}
		t.Fatalf("pgrep -f %q: %v", pat, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			// A zombie has no command line; pgrep may still list it.
			if st, _, _, ok := procState(pid); ok && st != 'Z' {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// killPids ends leftover processes that a failed test found, so they do
// not slow the other tests down.
func killPids(pids []int) {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// ---------------------------------------------------------------------------
// The mps binary as a CLI

// runCLI runs the harness-built mps with args and returns its exit code,
// stdout and stderr.
func runCLI(t *testing.T, timeout time.Duration, args ...string) (int, string, string) {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("mps binary not built: %v\n%s", buildErr, buildOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, mpsBin, args...)
	cmd.Env = append(os.Environ(), "MPS_API_TOKEN="+apiToken, "NO_COLOR=1")
	var stdout, stderr strings.Builder
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok || ctx.Err() != nil {
			t.Fatalf("mps %s: %v (timeout %v)\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, timeout, stdout.String(), testutil.Tail(stderr.String(), 20))
		}
		code = ee.ExitCode()
	}
	return code, stdout.String(), stderr.String()
}

// runCLITTY runs the harness-built mps with args on a pseudo-terminal
// (util-linux script), as a user at a terminal sees it, and returns its
// exit code and output (stdout and stderr together).
func runCLITTY(t *testing.T, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	testutil.RequireTools(t, "script")
	quoted := []string{"'" + mpsBin + "'"}
	for _, a := range args {
		quoted = append(quoted, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// The terminal gets a size: without one (no controlling terminal to
	// inherit it from) progress bars have no room to draw in.
	cmd := exec.CommandContext(ctx, "script", "-q", "-e", "-c", "stty cols 120 rows 40; exec "+strings.Join(quoted, " "), "/dev/null")
	cmd.Env = append(os.Environ(), "MPS_API_TOKEN="+apiToken, "TERM=xterm", "COLUMNS=120")
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok || ctx.Err() != nil {
			t.Fatalf("script -c mps %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		code = ee.ExitCode()
	}
	return code, string(out)
}
