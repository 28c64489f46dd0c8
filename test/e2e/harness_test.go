package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

var (
	flagKeep = flag.Bool("e2e.keep", false, "keep the temporary folder with the built binary")
	flagRace = flag.Bool("e2e.race", os.Getenv("MPS_E2E_RACE") != "", "build mps with -race (slower)")
	flagLogs = flag.Bool("e2e.logs", false, "print every server's log, not only those of failed tests")
)

var (
	repoRoot string // the module root
	workDir  string // temporary folder for this run
	mpsBin   string // the built binary
	buildErr error  // why the binary could not be built
	buildOut string
)

const apiToken = "e2e-test-token"

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		var err error
		repoRoot, err = testutil.RepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		workDir, err = os.MkdirTemp("", "mps-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		if *flagKeep {
			fmt.Fprintln(os.Stderr, "e2e: keeping", workDir)
		} else {
			defer os.RemoveAll(workDir)
		}
		mpsBin = filepath.Join(workDir, "mps")
		if testing.Short() {
			return m.Run() // every test skips itself
		}
		args := []string{"build", "-o", mpsBin}
		if *flagRace {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/mps")
		cmd := exec.Command("go", args...)
		cmd.Dir = repoRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			// Every test that needs the server fails with this message.
			buildErr = fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
			buildOut = string(out)
		}
		return m.Run()
	}()
	os.Exit(code)
}

// server is one running `mps serve`.
type server struct {
	t        *testing.T
	dir      string
	RTMPAddr string // 127.0.0.1:port
	HTTPAddr string // 127.0.0.1:port
	Log      *testutil.LogBuffer
	cmd      *exec.Cmd
	exited   chan struct{}
	exitErr  error
	killed   bool // kill was called: the exit is the test's doing
}

// serverOptions configures startServer.
type serverOptions struct {
	// Config is YAML merged over the built-in defaults (the loader accepts
	// partial files). Addresses and the API token come from the environment.
	Config string
	// Env adds environment variables.
	Env []string
}

// fastConfig makes streams produce segments quickly and end quickly. The
// grace period leaves room for a reconnect: ffmpeg starts in a moment, but
// the RTMP ingest reads about 2 s of media before it publishes a session
// (gortmplib's track detection), so a reconnect takes at least that long.
const fastConfig = `
log:
  level: debug
hub:
  grace_period: 5s
packager:
  segment_duration: 1s
  part_duration: 200ms
  playlist_segments: 6
  linger: 60s
`

// startServer starts mps and waits until /healthz answers 200. The server is
// stopped at cleanup, and its log is printed when the test failed.
func startServer(t *testing.T, opts serverOptions) *server {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	if buildErr != nil {
		t.Fatalf("mps binary not built: %v\n%s", buildErr, buildOut)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := tryStartServer(t, opts)
		if err == nil {
			return s
		}
		lastErr = err
		// A port picked by freePort may have been taken meanwhile: retry.
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("start mps: %v", lastErr)
	return nil
}

func tryStartServer(t *testing.T, opts serverOptions) (*server, error) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "mps.yaml")
	if err := os.WriteFile(cfgPath, []byte(opts.Config), 0o644); err != nil {
		return nil, err
	}
	s := &server{
		t:        t,
		dir:      dir,
		RTMPAddr: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)),
		HTTPAddr: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)),
		Log:      &testutil.LogBuffer{},
		exited:   make(chan struct{}),
	}
	cmd := exec.Command(mpsBin, "serve", "--config", cfgPath)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"MPS_RTMP_ADDRESS="+s.RTMPAddr,
		"MPS_HTTP_ADDRESS="+s.HTTPAddr,
		"MPS_API_TOKEN="+apiToken,
		// In cluster mode, the other nodes reach this one here.
		"MPS_CLUSTER_ADDRESS=http://"+s.HTTPAddr,
	)
	cmd.Env = append(cmd.Env, opts.Env...)
	cmd.Stdout = s.Log
	cmd.Stderr = s.Log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s.cmd = cmd
	go func() {
		s.exitErr = cmd.Wait()
		close(s.exited)
	}()

	// Wait for /healthz.
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("mps exited before it was healthy (%v); log:\n%s", s.exitErr, testutil.Tail(s.Log.String(), 60))
		default:
		}
		resp, err := client.Get("http://" + s.HTTPAddr + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("mps not healthy after 30 s (last: %v); log:\n%s", err, testutil.Tail(s.Log.String(), 60))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() {
		select {
		case <-s.exited:
			if !s.killed {
				t.Errorf("mps exited during the test: %v", s.exitErr)
			}
		default:
			s.stop()
			if s.exitErr != nil {
				t.Errorf("mps exited with %v after SIGTERM; want a clean exit", s.exitErr)
			}
		}
		log := s.Log.String()
		// A recovered panic is logged, not fatal, but it is still a bug.
		for _, line := range strings.Split(log, "\n") {
			l := strings.ToLower(line)
			if strings.Contains(l, "panic") || strings.Contains(line, "DATA RACE") || strings.Contains(line, "fatal error:") {
				t.Errorf("mps log: %s", line)
			}
		}
		if t.Failed() || *flagLogs {
			t.Logf("mps log (%s, rtmp %s, http %s):\n%s", s.dir, s.RTMPAddr, s.HTTPAddr, testutil.Tail(log, 400))
		}
	})
	return s, nil
}

// stop asks mps to shut down with SIGTERM and checks that it exits.
func (s *server) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		s.t.Errorf("mps did not exit within 15 s of SIGTERM; killing it")
		s.kill()
	}
}

// kill ends mps (its process group) with SIGKILL, like a crash; the
// cleanup then does not count its exit as a failure.
func (s *server) kill() {
	s.killed = true
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

// URL returns the http URL of path on the server.
func (s *server) URL(path string) string { return "http://" + s.HTTPAddr + path }

// RTMPURL returns the RTMP URL to publish or play name ("live/x").
func (s *server) RTMPURL(name string) string { return "rtmp://" + s.RTMPAddr + "/" + name }

// HLSURL and DASHURL are the playback URLs of a stream.
func (s *server) HLSURL(name string) string  { return s.URL("/" + name + "/index.m3u8") }
func (s *server) DASHURL(name string) string { return s.URL("/" + name + "/manifest.mpd") }

// waitLog waits until a log line contains all of subs.
func (s *server) waitLog(t *testing.T, timeout time.Duration, subs ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if lines := s.Log.Lines(subs...); len(lines) > 0 {
			return lines[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mps log line with %q within %v", subs, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// ffmpeg publishers

// proc is a running client process with captured output.
type proc struct {
	name   string
	cmd    *exec.Cmd
	Stderr *testutil.LogBuffer
	Stdout *testutil.LogBuffer
	done   chan struct{}
	err    error
}

// startProc runs name with args until it exits or ctx ends.
func startProc(t *testing.T, ctx context.Context, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, Stderr: &testutil.LogBuffer{}, Stdout: &testutil.LogBuffer{}, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, name, args...)
	p.cmd.Stdout = p.Stdout
	p.cmd.Stderr = p.Stderr
	p.cmd.Cancel = func() error { return p.cmd.Process.Signal(syscall.SIGTERM) }
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s %s\nstderr:\n%s", name, strings.Join(args, " "), testutil.Tail(p.Stderr.String(), 40))
		}
	})
	return p
}

// Stop ends the process (SIGTERM, then SIGKILL) and waits for it.
func (p *proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill ends the process at once, like a crashed encoder or a pulled cable.
func (p *proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Wait waits for the process to exit, at most timeout.
func (p *proc) Wait(timeout time.Duration) (exited bool, err error) {
	select {
	case <-p.done:
		return true, p.err
	case <-time.After(timeout):
		return false, nil
	}
}

// Running reports whether the process is still running.
func (p *proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// pubOptions says what an ffmpeg publisher sends.
type pubOptions struct {
	NoVideo  bool
	NoAudio  bool
	Duration time.Duration // 0: until ctx ends or Stop
	Size     string        // default 640x360
	Extra    []string      // extra output options
}

// ffmpegArgs returns the ffmpeg command line that publishes test media to url.
func ffmpegArgs(url string, o pubOptions) []string {
	size := o.Size
	if size == "" {
		size = "640x360"
	}
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "warning", "-re"}
	if !o.NoVideo {
		args = append(args, "-f", "lavfi", "-i", "testsrc2=size="+size+":rate=30")
	}
	if !o.NoAudio {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000")
	}
	if o.Duration > 0 {
		args = append(args, "-t", fmt.Sprintf("%.3f", o.Duration.Seconds()))
	}
	if !o.NoVideo {
		args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30", "-pix_fmt", "yuv420p")
	}
	if !o.NoAudio {
		args = append(args, "-c:a", "aac", "-b:a", "96k")
	}
	args = append(args, o.Extra...)
	args = append(args, "-f", "flv", url)
	return args
}

// ffmpegPublish publishes lavfi test media (H.264 + AAC, 640x360 at 30 fps,
// a GOP of 1 s) to an RTMP URL until ctx ends, Stop is called or Duration
// has been sent.
func ffmpegPublish(t *testing.T, ctx context.Context, url string, o pubOptions) *proc {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg")
	return startProc(t, ctx, "ffmpeg", ffmpegArgs(url, o)...)
}

// ---------------------------------------------------------------------------
// HTTP helpers

var httpClient = &http.Client{Timeout: 15 * time.Second}

// httpGet returns the status and body of a GET.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// tryGet is httpGet without failing the test on a transport error.
func tryGet(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitFor polls cond every 100 ms until it returns true or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var reM3U8Line = regexp.MustCompile(`(?m)^[^#\s][^\r\n]*`)

// waitForPlaylist waits until the stream's multivariant playlist answers
// 200 and its first media playlist lists at least minSegments complete
// segments. It returns the media playlist URL and body.
func waitForPlaylist(t *testing.T, s *server, name string, minSegments int) (string, *mediaPlaylist) {
	t.Helper()
	var mediaURL string
	var last string
	var pl *mediaPlaylist
	waitFor(t, 40*time.Second, "an HLS playlist with segments for "+name, func() bool {
		code, body, err := tryGet(context.Background(), s.HLSURL(name))
		if err != nil || code != http.StatusOK {
			last = fmt.Sprintf("multivariant: %d %v %.200s", code, err, body)
			return false
		}
		u, err := firstMediaPlaylistURL(s.HLSURL(name), body)
		if err != nil {
			last = err.Error()
			return false
		}
		mediaURL = u
		code, body, err = tryGet(context.Background(), mediaURL)
		if err != nil || code != http.StatusOK {
			last = fmt.Sprintf("media playlist %s: %d %v %.200s", mediaURL, code, err, body)
			return false
		}
		pl = parseMediaPlaylist(body)
		last = body
		return len(pl.Segments) >= minSegments
	})
	if pl == nil {
		t.Fatalf("no playlist; last: %s", last)
	}
	return mediaURL, pl
}

// ---------------------------------------------------------------------------
// Admin API

// api calls the admin API with the test's bearer token (token "" sends none).
func (s *server) api(t *testing.T, method, path, token string) (int, []byte) {
	t.Helper()
	return s.apiRequest(t, method, path, token, "")
}

// apiBody calls the admin API with a JSON body and the test's token.
func (s *server) apiBody(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	return s.apiRequest(t, method, path, apiToken, body)
}

func (s *server) apiRequest(t *testing.T, method, path, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL(path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// apiTrack and apiStream are the fields of the stream API that tests read.
type apiTrack struct {
	Index      int     `json:"index"`
	Kind       string  `json:"kind"`
	Codec      string  `json:"codec"`
	Width      int     `json:"width"`
	Height     int     `json:"height"`
	FPS        float64 `json:"fps"`
	SampleRate int     `json:"sample_rate"`
	Channels   int     `json:"channels"`
	Frames     uint64  `json:"frames"`
}

type apiReader struct {
	ID         int    `json:"id"`
	Kind       string `json:"kind"`
	RemoteAddr string `json:"remote_addr"`
}

type apiStream struct {
	Name        string      `json:"name"`
	State       string      `json:"state"`
	Protocol    string      `json:"protocol"`
	Tracks      []apiTrack  `json:"tracks"`
	ReaderCount int         `json:"reader_count"`
	Readers     []apiReader `json:"readers"`
}

// decodeStreamList accepts a bare JSON list or an object holding the list
// under "streams", "items" or "data".
func decodeStreamList(b []byte) ([]apiStream, error) {
	var list []apiStream
	if err := json.Unmarshal(b, &list); err == nil {
		return list, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("stream list is neither a list nor an object: %v: %.300s", err, b)
	}
	for _, k := range []string{"streams", "items", "data"} {
		if raw, ok := obj[k]; ok {
			if err := json.Unmarshal(raw, &list); err != nil {
				return nil, fmt.Errorf("stream list %q: %v: %.300s", k, err, b)
			}
			return list, nil
		}
	}
	return nil, fmt.Errorf("no stream list in %.300s", b)
}

// decodeStream accepts a stream object, bare or under "stream".
func decodeStream(b []byte) (apiStream, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return apiStream{}, fmt.Errorf("stream is not an object: %v: %.300s", err, b)
	}
	if raw, ok := obj["stream"]; ok {
		b = raw
	}
	var st apiStream
	if err := json.Unmarshal(b, &st); err != nil {
		return apiStream{}, fmt.Errorf("stream: %v: %.300s", err, b)
	}
	return st, nil
}

// streams lists the server's streams through the API.
func (s *server) streams(t *testing.T) []apiStream {
	t.Helper()
	code, b := s.api(t, http.MethodGet, "/api/v1/streams", apiToken)
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/streams: %d %.300s", code, b)
	}
	list, err := decodeStreamList(b)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// stream returns one stream from the API; ok is false on 404.
func (s *server) stream(t *testing.T, name string) (apiStream, bool) {
	t.Helper()
	code, b := s.api(t, http.MethodGet, "/api/v1/streams/"+name, apiToken)
	if code == http.StatusNotFound {
		return apiStream{}, false
	}
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/streams/%s: %d %.300s", name, code, b)
	}
	st, err := decodeStream(b)
	if err != nil {
		t.Fatal(err)
	}
	return st, true
}
