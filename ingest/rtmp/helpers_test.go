package rtmp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	rtmpcodecs "github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testutil"
)

type testEnv struct {
	t    *testing.T
	srv  *Server
	hub  *stream.Hub
	logs *testutil.LogBuffer
	port int
}

// newEnv starts a hub and a server on 127.0.0.1:0. Both stop at the end
// of the test; the logs are printed when it fails.
func newEnv(t *testing.T, policy *auth.Policy, configure ...func(*Server)) *testEnv {
	t.Helper()
	return newEnvWithHub(t, stream.HubConfig{GracePeriod: -1}, policy, configure...)
}

func newEnvWithHub(t *testing.T, hubCfg stream.HubConfig, policy *auth.Policy, configure ...func(*Server)) *testEnv {
	t.Helper()
	logs := &testutil.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hubCfg.Logger = log
	hub := stream.NewHub(hubCfg)
	srv := &Server{Addr: "127.0.0.1:0", Hub: hub, Auth: policy, Logger: log}
	for _, fn := range configure {
		fn(srv)
	}
	if err := srv.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		hub.Close()
		if t.Failed() || os.Getenv("RTMP_TEST_LOGS") != "" {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &testEnv{t: t, srv: srv, hub: hub, logs: logs, port: srv.ListenAddr().(*net.TCPAddr).Port}
}

func (e *testEnv) url(path string) string {
	return fmt.Sprintf("rtmp://127.0.0.1:%d/%s", e.port, path)
}

func needFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
}

// pusher is an ffmpeg process publishing test media.
type pusher struct {
	cmd    *exec.Cmd
	stderr *testutil.LogBuffer
	done   chan struct{}
	err    error
}

// Media inputs for push.
var (
	avInput = []string{
		"-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-re", "-f", "lavfi", "-i", "sine=frequency=440",
	}
	avCodecs    = []string{"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "aac"}
	audioInput  = []string{"-re", "-f", "lavfi", "-i", "sine=frequency=440"}
	audioCodecs = []string{"-vn", "-c:a", "aac"}
	videoInput  = []string{"-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"}
	videoCodecs = []string{"-an", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30"}
)

// push starts ffmpeg sending dur of media to url. The process is killed at
// the end of the test if still running.
func push(t *testing.T, url string, dur time.Duration, input, codecs []string) *pusher {
	t.Helper()
	needFFmpeg(t)
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error"}
	args = append(args, input...)
	args = append(args, "-t", fmt.Sprintf("%.1f", dur.Seconds()))
	args = append(args, codecs...)
	args = append(args, "-f", "flv", url)
	p := &pusher{cmd: exec.Command("ffmpeg", args...), stderr: &testutil.LogBuffer{}, done: make(chan struct{})}
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

// wait returns ffmpeg's exit error, failing the test if it runs past timeout.
func (p *pusher) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("ffmpeg still running after %v; stderr:\n%s", timeout, p.stderr.String())
		return nil
	}
}

func (p *pusher) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitLive waits until name is live in the hub.
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

// received summarises what a hub reader saw.
type received struct {
	session  *stream.Session
	sessions int
	units    map[string]int // per codec
	keys     map[string]int // keyframes per codec
	firstKey map[string]bool
	lastDTS  map[*stream.Track]time.Duration
	maxGap   map[string]time.Duration // largest DTS step between consecutive units
	err      error
}

// continuous fails the test unless the reader saw one session, at least
// the given number of units per codec, and no DTS gap longer than 200 ms
// (a dropped frame or a stall in the ingest). Counts depend on the
// machine's load, so callers ask for about half of the nominal rate; the
// gap check is what proves that nothing was lost.
func (rc *received) continuous(t *testing.T, min map[string]int) {
	t.Helper()
	if rc.sessions != 1 {
		t.Fatalf("reader saw %d sessions, want 1", rc.sessions)
	}
	for codec, n := range min {
		if rc.units[codec] < n {
			t.Fatalf("got %d %s units, want at least %d", rc.units[codec], codec, n)
		}
		if gap := rc.maxGap[codec]; gap > 200*time.Millisecond {
			t.Fatalf("%s stream has a %v gap", codec, gap)
		}
	}
}

// readFor reads st for d (or until the stream ends) and checks that every
// track's DTS never goes backwards.
func readFor(t *testing.T, st *stream.Stream, d time.Duration) *received {
	t.Helper()
	rd, err := st.NewReader("test", "")
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	rc := &received{
		units:    map[string]int{},
		keys:     map[string]int{},
		firstKey: map[string]bool{},
		lastDTS:  map[*stream.Track]time.Duration{},
		maxGap:   map[string]time.Duration{},
	}
	for {
		it, err := rd.Read(ctx)
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				rc.err = err
			}
			return rc
		}
		if it.Session != nil {
			rc.session = it.Session
			rc.sessions++
			clear(rc.lastDTS)
			continue
		}
		au := it.AU
		name := au.Track.CodecName()
		if rc.units[name] == 0 {
			rc.firstKey[name] = au.Key
		}
		rc.units[name]++
		if au.Key {
			rc.keys[name]++
		}
		if last, ok := rc.lastDTS[au.Track]; ok {
			if au.DTS < last {
				t.Errorf("%s DTS went backwards: %v after %v", name, au.DTS, last)
			}
			rc.maxGap[name] = max(rc.maxGap[name], au.DTS-last)
		}
		if au.PTS < au.DTS {
			t.Errorf("%s PTS %v before DTS %v", name, au.PTS, au.DTS)
		}
		if len(au.Payload) == 0 {
			t.Errorf("%s access unit with an empty payload", name)
		}
		rc.lastDTS[au.Track] = au.DTS
	}
}

func trackCodecs(tracks []*stream.Track) []string {
	out := make([]string, len(tracks))
	for i, t := range tracks {
		out[i] = t.CodecName()
	}
	return out
}

// dialPublish connects a gortmplib client that publishes to rawURL
// (rtmp://host/app/name?query, or rtmp://host/app#name?query).
func dialPublish(t *testing.T, rawURL string) (*gortmplib.Client, error) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c := &gortmplib.Client{URL: u, Publish: true}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Initialize(ctx); err != nil {
		return nil, err
	}
	t.Cleanup(c.Close)
	return c, nil
}

// fakeAAC is an AAC track whose frames are not real audio: the server does
// not decode them.
func fakeAAC() *gortmplib.Track {
	return &gortmplib.Track{Codec: &rtmpcodecs.MPEG4Audio{Config: &mpeg4audio.AudioSpecificConfig{
		Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 44100, ChannelCount: 2,
	}}}
}

// aacFrameDuration is the duration of one 1024-sample AAC frame at 44.1 kHz.
const aacFrameDuration = 1024 * time.Second / 44100

// writeFakeAAC sends n frames starting at frame first, as fast as possible.
func writeFakeAAC(w *gortmplib.Writer, track *gortmplib.Track, first, n int) error {
	for i := first; i < first+n; i++ {
		if err := w.WriteMPEG4Audio(track, time.Duration(i)*aacFrameDuration, []byte{0x21, 0x10, 0x04, byte(i)}); err != nil {
			return err
		}
	}
	return nil
}

func newFakeAACWriter(t *testing.T, c *gortmplib.Client) (*gortmplib.Writer, *gortmplib.Track) {
	t.Helper()
	track := fakeAAC()
	w := &gortmplib.Writer{Conn: c, Tracks: []*gortmplib.Track{track}}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	return w, track
}

// h264Frames holds parameter sets and slices from a real encoder.
type h264Frames struct {
	sps, pps []byte
	idr      [][]byte // the NAL units of a keyframe, without parameter sets
	p        [][]byte // the NAL units of a predicted frame
}

// encodeH264 encodes two frames of testsrc2 at size with libx264.
func encodeH264(t *testing.T, size string) *h264Frames {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size="+size+":rate=30", "-frames:v", "2",
		"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-f", "h264", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(out); err != nil {
		t.Fatal(err)
	}
	f := &h264Frames{}
	for _, n := range nalus {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			f.sps = n
		case h264.NALUTypePPS:
			f.pps = n
		case h264.NALUTypeIDR:
			f.idr = append(f.idr, n)
		case h264.NALUTypeNonIDR:
			f.p = append(f.p, n)
		}
	}
	if f.sps == nil || f.pps == nil || f.idr == nil || f.p == nil {
		t.Fatalf("unexpected encoder output: %d NAL units", len(nalus))
	}
	return f
}

// sendH264 publishes 3 s of a, then 2 s of b whose parameter sets come
// in-band in its first keyframe, as fast as the connection allows.
func sendH264(t *testing.T, c *gortmplib.Client, a, b *h264Frames) {
	t.Helper()
	track := &gortmplib.Track{Codec: &rtmpcodecs.H264{SPS: a.sps, PPS: a.pps}}
	w := &gortmplib.Writer{Conn: c, Tracks: []*gortmplib.Track{track}}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	frame := time.Second / 30
	for i := range 150 {
		f := a
		if i >= 90 {
			f = b
		}
		au := f.p
		if i%30 == 0 {
			au = f.idr
			if i == 90 {
				au = append([][]byte{b.sps, b.pps}, b.idr...)
			}
		}
		pts := time.Duration(i) * frame
		if err := w.WriteH264(track, pts, pts, au); err != nil {
			t.Fatal(err)
		}
	}
}

// waitLog waits for a log line that contains every one of parts.
func (e *testEnv) waitLog(timeout time.Duration, parts ...string) string {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if lines := e.logs.Lines(parts...); len(lines) > 0 {
			return lines[0]
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no log line with %q after %v", parts, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
