package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/mps-dev/mps/config"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testutil"
)

// waitTimeout bounds every wait; healthy runs finish far sooner.
const waitTimeout = 20 * time.Second

// testConfig is the default configuration on free loopback ports, with
// the recordings in a temporary folder.
func testConfig(t *testing.T) *config.Config {
	cfg := config.Default()
	cfg.Recording.Dir = filepath.Join(t.TempDir(), "recordings")
	cfg.Jobs.DBPath = filepath.Join(t.TempDir(), "mps.db")
	cfg.Jobs.Dir = filepath.Join(t.TempDir(), "jobs")
	cfg.Jobs.MediaRoots = []string{t.TempDir()}
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.RTMP.Address = "127.0.0.1:0"
	return &cfg
}

// startTestServer starts a server and stops it when the test ends.
func startTestServer(t *testing.T, cfg *config.Config) (*server, *testutil.LogBuffer) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &testutil.LogBuffer{}
	srv, err := startServer(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Error("server did not stop")
		}
	})
	return srv, logs
}

// checkGoroutines fails the test if goroutines started during it outlive
// every cleanup registered after it. Call it first.
func checkGoroutines(t *testing.T) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutine leak: %d running, %d at start\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// client returns an HTTP client that keeps no idle connections alive.
func client() *http.Client {
	return &http.Client{Timeout: waitTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := client().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// waitLive polls the API until name is live with a video track.
func waitLive(t *testing.T, base, name string) stream.Info {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		code, body := get(t, base+"/api/v1/streams/"+name)
		var in stream.Info
		if code == http.StatusOK && json.Unmarshal([]byte(body), &in) == nil && in.State == stream.StateLive {
			for _, tr := range in.Tracks {
				if tr.Kind == "video" && tr.Frames > 0 {
					return in
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not live after %s: %d %s", name, waitTimeout, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// needFFmpeg skips the test when ffmpeg is missing, except in CI, where
// `make test` installs it and its absence is a failure.
func needFFmpeg(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ffmpeg not found; `make test` installs it")
		}
		t.Skip("ffmpeg not found; `make test` installs it")
	}
	return path
}

// ffmpegPublish pushes seconds of test video and audio to url over RTMP.
func ffmpegPublish(t *testing.T, url string, seconds int) *exec.Cmd {
	t.Helper()
	ff := needFFmpeg(t)
	cmd := exec.Command(ff, "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", time.Duration(seconds*int(time.Second)).String(),
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-f", "flv", url)
	cmd.Stderr = &testutil.LogBuffer{}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}
