package web

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testutil"
)

const (
	loopbackAddr = "127.0.0.1:40000"
	remoteAddr   = "203.0.113.7:40000"
)

// sps352x288 is an H.264 SPS of a 352x288 picture.
var sps352x288 = []byte{
	0x67, 0x64, 0x00, 0x0c, 0xac, 0x3b, 0x50, 0xb0,
	0x4b, 0x42, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00,
	0x00, 0x03, 0x00, 0x3d, 0x08,
}

type fixture struct {
	hub  *stream.Hub
	srv  *Server
	logs *testutil.LogBuffer
}

// newFixture returns a server over a fresh hub; playback may be nil.
func newFixture(t testing.TB, token string, playback http.Handler) *fixture {
	t.Helper()
	logs := &testutil.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return newFixtureConfig(t, Config{Token: token, Playback: playback, Logger: log}, logs)
}

// newFixtureConfig returns a server over a fresh hub with cfg; logs
// receives the log when cfg.Logger writes to it.
func newFixtureConfig(t testing.TB, cfg Config, logs *testutil.LogBuffer) *fixture {
	t.Helper()
	if logs == nil {
		logs = &testutil.LogBuffer{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	hub := stream.NewHub(stream.HubConfig{Logger: cfg.Logger, GracePeriod: time.Minute})
	t.Cleanup(hub.Close)
	cfg.Hub = hub
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{hub: hub, srv: srv, logs: logs}
}

// publish starts a publisher on name and writes one second of 30 fps
// video, starting on a keyframe, so that rates are measured.
func (f *fixture) publish(t *testing.T, name string) *stream.Publisher {
	t.Helper()
	track := h264Track()
	p, err := f.hub.Publish(name, []*stream.Track{track}, stream.PublishOptions{Protocol: "rtmp", RemoteAddr: "127.0.0.1:50000"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(nil) })
	for i := range 31 {
		ts := time.Duration(i) * time.Second / 30
		payload := make([]byte, 1000)
		p.AddBytesIn(len(payload))
		p.WriteUnit(&stream.AccessUnit{Track: track, DTS: ts, PTS: ts, Key: i == 0, Payload: payload})
	}
	return p
}

func h264Track() *stream.Track {
	return &stream.Track{Codec: &codecs.H264{SPS: sps352x288, PPS: []byte{0x68, 0xee, 0x3c, 0x80}}, ClockRate: 90000}
}

type request struct {
	method, path, remote, token string
	header                      http.Header
	body                        string
}

// do serves one request; remote defaults to loopback.
func (f *fixture) do(t *testing.T, r request) *http.Response {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	var rb io.Reader
	if r.body != "" {
		rb = strings.NewReader(r.body)
	}
	req := httptest.NewRequest(r.method, r.path, rb)
	req.RemoteAddr = loopbackAddr
	if r.remote != "" {
		req.RemoteAddr = r.remote
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// decode reads a JSON body into v, after checking the status.
func decode(t *testing.T, resp *http.Response, status int, v any) {
	t.Helper()
	b := body(t, resp)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" && ct != "application/json; charset=UTF-8" {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
	if err := json.Unmarshal([]byte(b), v); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
}

// wantError checks an error response: its status, the same code in the
// JSON body, and a message containing want.
func wantError(t *testing.T, resp *http.Response, status int, want string) ErrorBody {
	t.Helper()
	var e ErrorBody
	decode(t, resp, status, &e)
	if e.Code != status {
		t.Errorf("body code %d, want %d", e.Code, status)
	}
	if !bytes.Contains([]byte(e.Error), []byte(want)) {
		t.Errorf("error %q does not contain %q", e.Error, want)
	}
	return e
}
