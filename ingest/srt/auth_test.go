package srt

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/mps-dev/mps/ingest/auth"
)

// dial connects with gosrt's own client.
func (e *testEnv) dial(streamID, passphrase string) (gosrt.Conn, error) {
	cfg := gosrt.DefaultConfig()
	cfg.StreamId = streamID
	cfg.Passphrase = passphrase
	cfg.ConnectionTimeout = 2 * time.Second
	return gosrt.Dial("srt", fmt.Sprintf("127.0.0.1:%d", e.port), cfg)
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *Server) { s.Passphrases["open"] = "" })
	cases := []struct {
		name, streamID, passphrase, reason string
	}{
		{"wrong passphrase", "publish:live/a:" + testKey, "wrong-passphrase", "wrong passphrase"},
		{"missing passphrase", "publish:live/a:" + testKey, "", "missing passphrase"},
		{"passphrase to an open app", "publish:open/a", testPassphrase, "passphrase given, but the application has none"},
		{"wrong key", "#!::r=live/a,m=publish,s=nope-nope", testPassphrase, "wrong key"},
		{"missing key", "#!::r=live/a,m=publish", testPassphrase, "missing key"},
		{"bad stream id", "hello", testPassphrase, "bad stream id"},
		{"bad mode", "#!::r=live/a,m=play", testPassphrase, "bad stream id"},
		{"unknown app", "publish:other/a:" + testKey, "", "unknown application"},
		{"read missing stream", "read:live/none", testPassphrase, "stream not found"},
		{"read wrong passphrase", "#!::r=live/none,m=request", "wrong-passphrase", "wrong passphrase"},
	}
	for _, c := range cases {
		conn, err := e.dial(c.streamID, c.passphrase)
		if err == nil {
			conn.Close()
			t.Errorf("%s: accepted", c.name)
			continue
		}
		e.waitLog(3*time.Second, "srt connection refused", fmt.Sprintf("reason=%q", c.reason))
	}
	if len(e.hub.Streams()) != 0 {
		t.Fatal("a refused publisher made a stream")
	}
	// The key never shows in the logs.
	if lines := e.logs.Lines(testKey); len(lines) != 0 {
		t.Fatalf("key logged: %q", lines)
	}
}

// ffmpeg gets refused for a wrong passphrase and for a wrong key.
func TestFFmpegRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct{ streamID, passphrase, reason string }{
		{"#!::r=live/cam1,m=publish,s=" + testKey, "not-the-passphrase", "wrong passphrase"},
		{"#!::r=live/cam1,m=publish,s=wrong-key", testPassphrase, "wrong key"},
	} {
		p := push(t, e.url(c.streamID, c.passphrase), 3*time.Second, h264AAC)
		if err := p.wait(t, 15*time.Second); err == nil {
			t.Fatalf("%s: ffmpeg succeeded", c.reason)
		}
		e.waitLog(time.Second, "srt connection refused", fmt.Sprintf("reason=%q", c.reason))
	}
	if len(e.hub.Streams()) != 0 {
		t.Fatal("a refused publisher made a stream")
	}
}

func TestAdmission(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var reqs []auth.PublishRequest
	e := newEnv(t, func(s *Server) {
		s.Admit = func(_ context.Context, req auth.PublishRequest) (url.Values, error) {
			mu.Lock()
			defer mu.Unlock()
			reqs = append(reqs, req)
			if req.Name == "live/no" {
				return nil, fmt.Errorf("%w: not today", auth.ErrAdmissionRefused)
			}
			return url.Values{"ladder": {"x"}}, nil
		}
	})
	if _, err := e.dial("publish:live/no:"+testKey, testPassphrase); err == nil {
		t.Fatal("admission refusal ignored")
	}
	e.waitLog(time.Second, "srt connection refused", `reason="refused by admission"`, "not today")
	conn, err := e.dial("publish:live/yes:"+testKey, testPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(reqs) != 2 || reqs[1].Protocol != "srt" || reqs[1].RemoteAddr == "" {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestSecondPublisherRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	push(t, e.url("publish:live/busy:"+testKey, testPassphrase), 10*time.Second, h264AAC)
	e.waitLive("live/busy", 5*time.Second)
	_, err := e.dial("publish:live/busy:"+testKey, testPassphrase)
	if err == nil {
		t.Fatal("second publisher accepted")
	}
	e.waitLog(time.Second, "srt connection refused", `reason="already publishing"`)
}
