package rtsp

import (
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"

	"github.com/mps-dev/mps/ingest/auth"
)

// ffmpeg publishes H.264 and AAC over TCP; the hub gets one session whose
// units decode, and the stream info tells the protocol and the remote.
func TestPublishH264AAC(t *testing.T) {
	e := newEnv(t, &auth.Policy{Apps: []auth.App{{Name: "live", AllowLoopbackWithoutKey: true, AllowRecordParam: true}}})
	var infos []auth.PublishInfo
	e.srv.OnPublish = func(pi auth.PublishInfo) { infos = append(infos, pi) }
	p := pushRTSP(t, e.url("live/cam1?record=1"), pushOptions{transport: "tcp", dur: 6 * time.Second})
	st := e.waitLive("live/cam1", 10*time.Second)
	c := collect(t, st, 3*time.Second)

	if c.sessions != 1 {
		t.Fatalf("%d sessions, want 1", c.sessions)
	}
	sess := st.Session()
	if sess.Protocol != Protocol || sess.RemoteAddr == "" {
		t.Errorf("session protocol %q remote %q", sess.Protocol, sess.RemoteAddr)
	}
	v, a := c.track("h264"), c.track("aac")
	if v == nil || a == nil {
		t.Fatalf("tracks %v, want h264 and aac", c.tracks)
	}
	if w, h := v.Resolution(); w != 320 || h != 240 {
		t.Errorf("resolution %dx%d", w, h)
	}
	if n := decodeVideo(t, v, c.units[v]); n < 45 {
		t.Errorf("decoded %d video frames of %d units", n, len(c.units[v]))
	}
	if n := decodeAAC(t, a, c.units[a]); n < 70 {
		t.Errorf("decoded %d audio frames of %d units", n, len(c.units[a]))
	}
	if st.Info().BytesIn == 0 {
		t.Errorf("no bytes counted in")
	}
	if len(infos) != 1 || infos[0].Name != "live/cam1" || infos[0].Protocol != Protocol || infos[0].Params.Get("record") != "1" {
		t.Errorf("OnPublish calls: %+v", infos)
	}
	if err := p.wait(t, 15*time.Second); err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	select {
	case <-st.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end after the publisher left")
	}
}

// ffmpeg publishes H.265 and Opus over UDP.
func TestPublishH265OpusUDP(t *testing.T) {
	e := newEnv(t, nil)
	pushRTSP(t, e.url("live/hevc"), pushOptions{hevc: true, opus: true, transport: "udp", dur: 6 * time.Second})
	st := e.waitLive("live/hevc", 10*time.Second)
	c := collect(t, st, 3*time.Second)
	v, a := c.track("h265"), c.track("opus")
	if v == nil || a == nil {
		t.Fatalf("tracks %v, want h265 and opus", c.tracks)
	}
	if n := decodeVideo(t, v, c.units[v]); n < 45 {
		t.Errorf("decoded %d video frames of %d units", n, len(c.units[v]))
	}
	if n := len(c.units[a]); n < 70 {
		t.Errorf("%d opus packets in 3 s", n)
	}
	for i, au := range c.units[a] {
		if d := opus.PacketDuration(au.Payload); d != 20*time.Millisecond {
			t.Fatalf("opus packet %d lasts %v, want 20ms", i, d)
		}
	}
	if _, ch := a.AudioFormat(); ch != 1 && ch != 2 {
		t.Errorf("opus channels %d", ch)
	}
	if st.Session().Protocol != Protocol {
		t.Errorf("protocol %q", st.Session().Protocol)
	}
}

// A wrong key is refused before any media, with a 401, and no stream appears.
func TestWrongKeyRefused(t *testing.T) {
	policy := &auth.Policy{Apps: []auth.App{{Name: "live", Keys: []string{"right-key-123"}}}}
	e := newEnv(t, policy)
	p := pushRTSP(t, e.url("live/sec?key=wrong"), pushOptions{transport: "tcp", dur: 3 * time.Second})
	if err := p.wait(t, 15*time.Second); err == nil {
		t.Fatal("ffmpeg published with a wrong key")
	}
	if s := p.stderr.String(); !containsAny(s, "401", "Unauthorized") {
		t.Errorf("ffmpeg did not see 401:\n%s", s)
	}
	if _, err := e.hub.Get("live/sec"); err == nil {
		t.Fatal("stream exists after a refused publisher")
	}
	if len(e.logs.Lines("publish refused", "wrong key")) == 0 {
		t.Errorf("no refusal logged")
	}

	// The right key works.
	pushRTSP(t, e.url("live/sec?key=right-key-123"), pushOptions{transport: "tcp", dur: 3 * time.Second})
	e.waitLive("live/sec", 10*time.Second)
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
