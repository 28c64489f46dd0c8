package pull

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/ingest/rtsp"
	"github.com/mps-dev/mps/ingest/srt"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testutil"
)

// TestPullRTMP pulls from an ffmpeg RTMP listener, survives the source
// being killed and restarted, and ends its stream when stopped.
func TestPullRTMP(t *testing.T) {
	t.Parallel()
	port := testutil.FreePort(t)
	src := rtmpListener(t, port)
	hub := newHub(t, 300*time.Millisecond)
	m := newManager(t, hub)
	const name = "live/cam9"
	if _, err := m.Start(Source{Name: name, URL: fmt.Sprintf("rtmp://127.0.0.1:%d/live/x", port)}, OriginConfig); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, name, PhaseLive, 15*time.Second)
	st := waitLive(t, hub, name, 5*time.Second)
	sess := st.Session()
	if sess.Protocol != "pull-rtmp" || sess.RemoteAddr != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Errorf("session protocol %q remote %q", sess.Protocol, sess.RemoteAddr)
	}
	checkDecodes(t, st, 2*time.Second, 20)
	if info := st.Info(); info.BytesIn == 0 {
		t.Error("no bytes counted in")
	}

	// The source dies: the pull backs off, then comes back by itself.
	src.kill()
	bo := waitState(t, m, name, PhaseBackoff, 15*time.Second)
	if bo.LastError == "" || bo.NextAttempt == nil || bo.LastErrorAt == nil {
		t.Errorf("backoff state without error or next attempt: %+v", bo)
	}
	rtmpListener(t, port)
	back := waitState(t, m, name, PhaseLive, 20*time.Second)
	if back.Connects != 2 {
		t.Errorf("connects %d, want 2", back.Connects)
	}
	st2 := waitLive(t, hub, name, 5*time.Second)
	checkDecodes(t, st2, 1500*time.Millisecond, 10)

	// Stopping the pull ends its stream (after the hub's grace period).
	if err := m.Stop(name); err != nil {
		t.Fatal(err)
	}
	select {
	case <-st2.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end after the pull stopped")
	}
	if _, ok := m.Get(name); ok {
		t.Error("stopped pull still listed")
	}
	if err := m.Stop(name); !errors.Is(err, ErrNotFound) {
		t.Errorf("second stop: %v, want ErrNotFound", err)
	}
}

// rtspSource is an RTSP server (the project's own, on its own hub) that
// ffmpeg publishes a test pattern to: a real RTSP source to pull from.
type rtspSource struct {
	srv *rtsp.Server
	ff  *source
}

func startRTSPSource(t *testing.T, port int) *rtspSource {
	t.Helper()
	hub := newHub(t, -1)
	srv := &rtsp.Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Hub: hub, Logger: testLogger(t)}
	var err error
	for i := 0; i < 50; i++ { // the port may linger a moment after a restart
		if err = srv.Initialize(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	s := &rtspSource{srv: srv}
	t.Cleanup(s.kill)
	s.ff = startSource(t, "-f", "rtsp", "-rtsp_transport", "tcp", fmt.Sprintf("rtsp://127.0.0.1:%d/live/src", port))
	waitLive(t, hub, "live/src", 10*time.Second)
	return s
}

func (s *rtspSource) kill() {
	s.ff.kill()
	s.srv.Close()
}

func TestPullRTSP(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{rtsp.TransportTCP, rtsp.TransportAuto} {
		t.Run("transport="+transport, func(t *testing.T) {
			t.Parallel()
			port := testutil.FreePort(t)
			src := startRTSPSource(t, port)
			hub := newHub(t, 300*time.Millisecond)
			m := newManager(t, hub)
			const name = "live/cam9"
			if _, err := m.Start(Source{Name: name, URL: fmt.Sprintf("rtsp://127.0.0.1:%d/live/src", port), RTSPTransport: transport}, OriginAPI); err != nil {
				t.Fatal(err)
			}
			waitState(t, m, name, PhaseLive, 15*time.Second)
			st := waitLive(t, hub, name, 5*time.Second)
			if p := st.Session().Protocol; p != "pull-rtsp" {
				t.Errorf("protocol %q", p)
			}
			checkDecodes(t, st, 2*time.Second, 20)
			if transport != rtsp.TransportAuto {
				return
			}
			src.kill()
			waitState(t, m, name, PhaseBackoff, 15*time.Second)
			startRTSPSource(t, port)
			waitState(t, m, name, PhaseLive, 20*time.Second)
			checkDecodes(t, waitLive(t, hub, name, 5*time.Second), 1500*time.Millisecond, 10)
			if err := m.Stop(name); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPullSRT pulls from an SRT server (the project's own) that ffmpeg
// publishes to, reading with the "read:" stream ID.
func TestPullSRT(t *testing.T) {
	t.Parallel()
	hub0 := newHub(t, -1)
	srv := &srt.Server{Addr: "127.0.0.1:0", Hub: hub0, Logger: testLogger(t)}
	if err := srv.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	addr := srv.ListenAddr().String()
	startSource(t, "-f", "mpegts", "srt://"+addr+"?streamid=publish:live/src&pkt_size=1316")
	waitLive(t, hub0, "live/src", 10*time.Second)

	hub := newHub(t, 300*time.Millisecond)
	m := newManager(t, hub)
	if _, err := m.Start(Source{Name: "live/cam9", URL: "srt://" + addr + "?streamid=read:live/src"}, OriginAPI); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "live/cam9", PhaseLive, 15*time.Second)
	st := waitLive(t, hub, "live/cam9", 5*time.Second)
	if p := st.Session().Protocol; p != "pull-srt" {
		t.Errorf("protocol %q", p)
	}
	checkDecodes(t, st, 2*time.Second, 20)
}

// TestPullHLS pulls a live HLS playlist that ffmpeg writes, served over HTTP.
func TestPullHLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	startSource(t, "-f", "hls", "-hls_time", "1", "-hls_list_size", "6", "-hls_flags", "delete_segments", dir+"/index.m3u8")
	hs := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(hs.Close)

	hub := newHub(t, 300*time.Millisecond)
	m := newManager(t, hub)
	if _, err := m.Start(Source{Name: "live/cam9", URL: hs.URL + "/index.m3u8"}, OriginAPI); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "live/cam9", PhaseLive, 20*time.Second)
	st := waitLive(t, hub, "live/cam9", 5*time.Second)
	if p := st.Session().Protocol; p != "pull-hls" {
		t.Errorf("protocol %q", p)
	}
	checkDecodes(t, st, 3*time.Second, 20)
}

// TestPullBackoff: an unreachable source backs off with growing delays and
// reports why; Close stops it.
func TestPullBackoff(t *testing.T) {
	t.Parallel()
	hub := newHub(t, -1)
	m := newManager(t, hub)
	port := testutil.FreePort(t) // nothing listens there
	if _, err := m.Start(Source{Name: "live/gone", URL: fmt.Sprintf("rtmp://127.0.0.1:%d/live/x", port)}, OriginConfig); err != nil {
		t.Fatal(err)
	}
	first := waitState(t, m, "live/gone", PhaseBackoff, 5*time.Second)
	if !strings.Contains(first.LastError, "connect") || first.NextAttempt == nil {
		t.Errorf("backoff state: %+v", first)
	}
	d1 := first.NextAttempt.Sub(*first.LastErrorAt)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := m.Get("live/gone")
		if st.Failures >= 3 && st.State == PhaseBackoff {
			d := st.NextAttempt.Sub(*st.LastErrorAt)
			if d <= d1 {
				t.Errorf("delay did not grow: %s after %s", d, d1)
			}
			if d > time.Second {
				t.Errorf("delay %s above the maximum", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no third failure: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := hub.Get("live/gone"); !errors.Is(err, stream.ErrNotFound) {
		t.Errorf("an unreachable pull made a stream: %v", err)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	good := []Source{
		{Name: "live/a", URL: "rtsp://cam.local:554/stream1"},
		{Name: "live/a", URL: "rtsp://u:p@10.0.0.2/s", RTSPTransport: "tcp"},
		{Name: "live/a", URL: "rtmp://example.com/live/key"},
		{Name: "live/a", URL: "rtmps://example.com:443/app/key?x=1"},
		{Name: "live/a", URL: "srt://example.com:8890?streamid=read:live/a"},
		{Name: "live/a", URL: "https://example.com/live/index.m3u8"},
	}
	for _, s := range good {
		if err := Check(s); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	bad := []Source{
		{Name: "", URL: "rtsp://h/s"},
		{Name: "live/../x", URL: "rtsp://h/s"},
		{Name: "live/a", URL: ""},
		{Name: "live/a", URL: "ftp://h/x"},
		{Name: "live/a", URL: "rtmp://h/onlyapp"},
		{Name: "live/a", URL: "rtmp:///live/x"},
		{Name: "live/a", URL: "srt://host-without-port"},
		{Name: "live/a", URL: "srt://h:1?latency=abc&passphrase=short"},
		{Name: "live/a", URL: "http:///x.m3u8"},
		{Name: "live/a", URL: "rtsp://h/s", RTSPTransport: "quic"},
	}
	for _, s := range bad {
		if err := Check(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", s, err)
		}
	}
}

func TestManagerErrors(t *testing.T) {
	t.Parallel()
	hub := newHub(t, -1)
	m := newManager(t, hub)
	src := Source{Name: "live/x", URL: "rtsp://127.0.0.1:1/none"}
	st, err := m.Start(src, OriginAPI)
	if err != nil {
		t.Fatal(err)
	}
	if st.Origin != OriginAPI || st.Protocol != "pull-rtsp" {
		t.Errorf("state %+v", st)
	}
	if _, err := m.Start(src, OriginAPI); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate: %v", err)
	}
	if got := m.List(); len(got) != 1 || got[0].Name != "live/x" {
		t.Errorf("list %+v", got)
	}
	if got, _ := m.Start(Source{Name: "live/y", URL: "rtsp://user:secret@127.0.0.1:1/s"}, OriginAPI); strings.Contains(got.URL, "secret") {
		t.Errorf("password shown: %s", got.URL)
	}
	m.Close()
	if _, err := m.Start(Source{Name: "live/z", URL: "rtsp://h/s"}, OriginAPI); !errors.Is(err, ErrClosed) {
		t.Errorf("after close: %v", err)
	}
	if len(m.List()) != 0 {
		t.Error("pulls listed after close")
	}
}
