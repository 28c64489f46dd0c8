package main

import (
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/ingest/auth"
)

func TestServerStartsAndStopsCleanly(t *testing.T) {
	checkGoroutines(t)
	srv, logs := startTestServer(t, testConfig(t))
	base := "http://" + srv.HTTPAddr().String()

	if code, body := get(t, base+"/healthz"); code != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Errorf("healthz: %d %s", code, body)
	}
	if code, body := get(t, base+"/api/v1/streams"); code != http.StatusOK || body != "[]\n" {
		t.Errorf("streams: %d %q", code, body)
	}
	if code, _ := get(t, base+"/live/cam1/index.m3u8"); code != http.StatusNotFound {
		t.Errorf("playlist of a missing stream: %d, want 404", code)
	}
	conn, err := net.DialTimeout("tcp", srv.RTMPAddr().String(), waitTimeout)
	if err != nil {
		t.Fatalf("rtmp listener: %v", err)
	}
	conn.Close()

	for _, want := range []string{"http=" + srv.HTTPAddr().String(), "rtmp=" + srv.RTMPAddr().String()} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("start-up log lacks %q:\n%s", want, logs)
		}
	}
}

func TestRTMPCanBeDisabled(t *testing.T) {
	cfg := testConfig(t)
	cfg.RTMP.Enabled = false
	srv, logs := startTestServer(t, cfg)
	if srv.RTMPAddr() != nil {
		t.Errorf("RTMP listens on %s while disabled", srv.RTMPAddr())
	}
	if !strings.Contains(logs.String(), "rtmp=disabled") {
		t.Errorf("log does not say RTMP is disabled:\n%s", logs)
	}
}

func TestStartFailsOnBusyPort(t *testing.T) {
	checkGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	for _, which := range []string{"http", "rtmp"} {
		cfg := testConfig(t)
		if which == "http" {
			cfg.HTTP.Address = ln.Addr().String()
		} else {
			cfg.RTMP.Address = ln.Addr().String()
		}
		_, err := startServer(cfg, discardLogger())
		if err == nil || !strings.Contains(err.Error(), which) || !strings.Contains(err.Error(), ln.Addr().String()) {
			t.Errorf("%s port busy: error %v, want one naming %s and the address", which, err, which)
		}
	}
}

// A publisher pushed with ffmpeg shows in the API and plays as LL-HLS and
// DASH through the same HTTP listener.
func TestPublishThenWatch(t *testing.T) {
	needFFmpeg(t)
	srv, _ := startTestServer(t, testConfig(t))
	base := "http://" + srv.HTTPAddr().String()
	ffmpegPublish(t, "rtmp://"+srv.RTMPAddr().String()+"/live/cam1", 6)

	in := waitLive(t, base, "live/cam1")
	if in.Protocol != "rtmp" || len(in.Tracks) != 2 {
		t.Errorf("stream info %+v, want rtmp with video and audio", in)
	}
	code, body := get(t, base+"/live/cam1/index.m3u8")
	if code != http.StatusOK || !strings.HasPrefix(body, "#EXTM3U") {
		t.Errorf("index.m3u8: %d %q", code, body)
	}
	code, body = get(t, base+"/live/cam1/manifest.mpd")
	if code != http.StatusOK || !strings.Contains(body, "<MPD") {
		t.Errorf("manifest.mpd: %d %.200q", code, body)
	}
	code, body = get(t, base+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, `mps_stream_up{stream="live/cam1"} 1`) {
		t.Errorf("metrics lack the live stream: %d", code)
	}
	if !strings.Contains(body, "mps_recordings_writing 0") || !strings.Contains(body, "mps_recording_bytes_written_total 0") {
		t.Errorf("metrics lack the recorder's counters")
	}
	code, body = get(t, base+"/api/v1/events?type=stream.")
	if code != http.StatusOK || !strings.Contains(body, `"type":"stream.started"`) || !strings.Contains(body, `"stream":"live/cam1"`) {
		t.Errorf("events lack stream.started of live/cam1: %d %s", code, body)
	}
}

// An application that requires keys refuses a publisher without one and
// accepts a key made by `mps sign-key` with its secret.
func TestSignedKeyPublishes(t *testing.T) {
	needFFmpeg(t)
	const secret = "0123456789abcdef-test-secret"
	cfg := testConfig(t)
	cfg.Applications[0].SigningSecret = secret
	cfg.Applications[0].AllowLoopbackWithoutKey = false
	srv, logs := startTestServer(t, cfg)
	base := "http://" + srv.HTTPAddr().String()
	rtmpURL := "rtmp://" + srv.RTMPAddr().String() + "/live/"

	refused := ffmpegPublish(t, rtmpURL+"cam1", 3)
	waitExit(t, refused)
	if !strings.Contains(logs.String(), auth.ErrMissingKey.Error()) {
		t.Errorf("publisher without a key was not refused for a missing key:\n%s", logs)
	}
	wrong := ffmpegPublish(t, rtmpURL+"cam1?key="+auth.SignKey("another-secret-of-16", "live/cam1", time.Now().Add(time.Hour)), 3)
	waitExit(t, wrong)
	if code, _ := get(t, base+"/api/v1/streams/live/cam1"); code != http.StatusNotFound {
		t.Fatalf("a refused publisher created the stream (status %d)", code)
	}

	key := runCommand(t, "sign-key", "live/cam1", "--secret", secret, "--ttl", "1h")
	ffmpegPublish(t, rtmpURL+"cam1?key="+strings.TrimSpace(key), 6)
	waitLive(t, base, "live/cam1")
}

func waitExit(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("refused ffmpeg did not exit")
	}
}
