package srt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
	"github.com/mps-dev/mps/test/testutil"
)

const (
	testKey        = "s3cret-key"
	testPassphrase = "correct-horse-battery"
)

type testEnv struct {
	t    *testing.T
	srv  *Server
	hub  *stream.Hub
	logs *testutil.LogBuffer
	port int
}

// testPolicy is the "live" application with one key and no loopback
// exception, so that keys are checked on 127.0.0.1 too.
func testPolicy() *auth.Policy {
	return &auth.Policy{Apps: []auth.App{{Name: "live", Keys: []string{testKey}}, {Name: "open", AllowLoopbackWithoutKey: true}}}
}

// newEnv starts a hub and an SRT server on a free loopback UDP port, with
// testPassphrase on the "live" application.
func newEnv(t *testing.T, configure ...func(*Server)) *testEnv {
	t.Helper()
	return newEnvWithHub(t, stream.HubConfig{GracePeriod: -1}, configure...)
}

func newEnvWithHub(t *testing.T, hubCfg stream.HubConfig, configure ...func(*Server)) *testEnv {
	t.Helper()
	logs := &testutil.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hubCfg.Logger = log
	hub := stream.NewHub(hubCfg)
	srv := &Server{
		Addr:        "127.0.0.1:0",
		Hub:         hub,
		Auth:        testPolicy(),
		Passphrases: map[string]string{"live": testPassphrase},
		Logger:      log,
	}
	for _, fn := range configure {
		fn(srv)
	}
	if err := srv.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		hub.Close()
		if t.Failed() || os.Getenv("SRT_TEST_LOGS") != "" {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &testEnv{t: t, srv: srv, hub: hub, logs: logs, port: srv.ListenAddr().(*net.UDPAddr).Port}
}

// url is an ffmpeg SRT URL for a stream id and passphrase ("" for none).
func (e *testEnv) url(streamID, passphrase string) string {
	// ffmpeg 5.1 takes the values as they are, without URL-decoding them.
	q := "streamid=" + streamID + "&pkt_size=1316&latency=120000"
	if passphrase != "" {
		q += "&passphrase=" + passphrase
	}
	return fmt.Sprintf("srt://127.0.0.1:%d?%s", e.port, q)
}

// ffmpegProc is an ffmpeg process.
type ffmpegProc struct {
	cmd    *exec.Cmd
	stderr *testutil.LogBuffer
	done   chan struct{}
	err    error
}

var (
	h264AAC = []string{
		"-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
		"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-bf", "2", "-c:a", "aac",
	}
	h265Opus = []string{
		"-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
		"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-c:v", "libx265", "-preset", "ultrafast", "-g", "30", "-x265-params", "log-level=error",
		"-c:a", "libopus", "-ac", "2",
	}
)

// runFFmpeg starts ffmpeg with args (after the common ones). It is
// killed at the end of the test if still running.
func runFFmpeg(t *testing.T, args ...string) *ffmpegProc {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg")
	all := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error"}, args...)
	p := &ffmpegProc{cmd: exec.Command("ffmpeg", all...), stderr: &testutil.LogBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start ffmpeg: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// push sends dur of media in MPEG-TS to an SRT URL.
func push(t *testing.T, srtURL string, dur time.Duration, media []string) *ffmpegProc {
	t.Helper()
	args := append(append([]string{}, media...), "-t", fmt.Sprintf("%.1f", dur.Seconds()), "-f", "mpegts", srtURL)
	return runFFmpeg(t, args...)
}

func (p *ffmpegProc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("ffmpeg still running after %v; stderr:\n%s", timeout, p.stderr.String())
		return nil
	}
}

func (e *testEnv) waitLive(name string, timeout time.Duration) *stream.Stream {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if st, err := e.hub.Get(name); err == nil && st.State() == stream.StateLive {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("stream %s not live after %v", name, timeout)
	return nil
}

func (e *testEnv) waitLog(timeout time.Duration, parts ...string) string {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if lines := e.logs.Lines(parts...); len(lines) > 0 {
			return lines[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("no log line with %q after %v", parts, timeout)
	return ""
}

// received summarises what a hub reader saw.
type received struct {
	session  *stream.Session
	sessions int
	units    map[string]int
	firstKey map[string]bool
	maxGap   map[string]time.Duration
}

// readFor reads st for d and checks DTS order and PTS >= DTS per track.
func readFor(t *testing.T, st *stream.Stream, d time.Duration) *received {
	t.Helper()
	rd, err := st.NewReader("test", "")
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	rc := &received{units: map[string]int{}, firstKey: map[string]bool{}, maxGap: map[string]time.Duration{}}
	last := map[*stream.Track]time.Duration{}
	for {
		it, err := rd.Read(ctx)
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, stream.ErrStreamEnded) {
				t.Errorf("read: %v", err)
			}
			return rc
		}
		if it.Session != nil {
			rc.session = it.Session
			rc.sessions++
			clear(last)
			continue
		}
		au := it.AU
		name := au.Track.CodecName()
		if rc.units[name] == 0 {
			rc.firstKey[name] = au.Key
		}
		rc.units[name]++
		if l, ok := last[au.Track]; ok {
			if au.DTS < l {
				t.Errorf("%s DTS went backwards: %v after %v", name, au.DTS, l)
			}
			rc.maxGap[name] = max(rc.maxGap[name], au.DTS-l)
		}
		if au.PTS < au.DTS {
			t.Errorf("%s PTS %v before DTS %v", name, au.PTS, au.DTS)
		}
		if len(au.Payload) == 0 {
			t.Errorf("%s empty payload", name)
		}
		last[au.Track] = au.DTS
	}
}

func trackCodecs(tracks []*stream.Track) string {
	var out []string
	for _, t := range tracks {
		out = append(out, t.CodecName())
	}
	return strings.Join(out, ",")
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// prependParams puts the media's SPS and PPS in front of an AVCC frame.
func prependParams(t *testing.T, m *testmedia.Media, frame []byte) []byte {
	t.Helper()
	c := m.Video.Codec.(*codecs.H264)
	var avcc h264.AVCC
	if err := avcc.Unmarshal(frame); err != nil {
		t.Fatal(err)
	}
	out, err := append(h264.AVCC{c.SPS, c.PPS}, avcc...).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
