package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// consoleResult is what test/browser/console.mjs prints.
type consoleResult struct {
	OK             bool                       `json:"ok"`
	Error          string                     `json:"error"`
	Steps          map[string]json.RawMessage `json:"steps"`
	Console        []string                   `json:"console"`
	PageErrors     []string                   `json:"pageErrors"`
	FailedRequests []string                   `json:"failedRequests"`
}

// artifactsDir is where the console's screenshots go: test/artifacts/
// (ignored by git), for people to look at.
func artifactsDir(t *testing.T) string {
	dir, err := filepath.Abs(filepath.Join("..", "artifacts", "console"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestConsole drives the web console in Chromium against a real mps with a
// real ffmpeg push and a job input in the media root: a wrong token gets
// the login form; the stream appears within 5 s and its preview plays;
// starting the recording from the page makes a recording that plays; a
// snapshot job from the form shows progress and then its images; a
// template with an invalid field shows the error next to the field; and
// every page is photographed at laptop and phone sizes (no page is wider
// than the phone's screen).
func TestConsole(t *testing.T) {
	dir := browserDir(t)
	env := newJobEnv(t)
	makeClip(t, filepath.Join(env.Media, "clip.mp4"), clipOptions{Dur: 4})
	recDir := t.TempDir()
	s := startServer(t, serverOptions{Config: fastConfig + `
recording:
  dir: "` + recDir + `"
` + env.jobsSection("")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ffmpegPublish(t, ctx, s.RTMPURL("live/ui"), pubOptions{})
	waitForPlaylist(t, s, "live/ui", 2)

	art := artifactsDir(t)
	if err := os.MkdirAll(art, 0o755); err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithTimeout(ctx, 4*time.Minute)
	defer ccancel()
	cmd := exec.CommandContext(cctx, "node", filepath.Join(dir, "console.mjs"), "--url", "http://"+s.HTTPAddr, "--token", apiToken,
		"--stream", "live/ui", "--input", "clip.mp4", "--artifacts", art)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var res consoleResult
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		t.Fatalf("console.mjs: %v; output not JSON (%v):\n%s\nstderr:\n%s", err, jerr, out, testutil.Tail(stderr.String(), 30))
	}
	for _, step := range []string{"login", "streams", "preview", "record", "job", "template", "pages"} {
		raw, ok := res.Steps[step]
		var st struct {
			OK bool `json:"ok"`
		}
		if !ok || json.Unmarshal(raw, &st) != nil || !st.OK {
			t.Errorf("console step %s failed: %s", step, raw)
		} else {
			t.Logf("console step %s: %s", step, raw)
		}
	}
	if len(res.PageErrors) > 0 {
		t.Errorf("page errors: %v", res.PageErrors)
	}
	if !res.OK {
		t.Errorf("console run: %s; console %v; failed requests %v", res.Error, res.Console, res.FailedRequests)
	}
	t.Logf("screenshots in %s", art)
}
