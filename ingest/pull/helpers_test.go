package pull

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testutil"
)

func TestMain(m *testing.M) {
	os.Exit(testutil.RunWithLeakCheck(m, "github.com/mps-dev/mps/ingest/"))
}

// logBuf collects the logs of a test, shown when it fails.
func testLogger(t *testing.T) *slog.Logger {
	buf := &testutil.LogBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", testutil.Tail(buf.String(), 60))
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newManager(t *testing.T, hub *stream.Hub) *Manager {
	m := &Manager{
		Hub:         hub,
		MinBackoff:  200 * time.Millisecond,
		MaxBackoff:  time.Second,
		ReadTimeout: 5 * time.Second,
		Logger:      testLogger(t),
	}
	t.Cleanup(m.Close)
	return m
}

func newHub(t *testing.T, grace time.Duration) *stream.Hub {
	h := stream.NewHub(stream.HubConfig{GracePeriod: grace, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(h.Close)
	return h
}

// source is an ffmpeg process that makes a live test pattern (H.264 and
// AAC) and sends it to out (the last arguments: format and URL).
type source struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan struct{}
}

func startSource(t *testing.T, out ...string) *source {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg")
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k", "-ac", "2"}
	args = append(args, out...)
	cmd := exec.Command("ffmpeg", args...)
	s := &source{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(s.kill)
	return s
}

func (s *source) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// rtmpListener is `ffmpeg ... -f flv -listen 1 rtmp://127.0.0.1:PORT/live/x`:
// an RTMP server that serves one player.
func rtmpListener(t *testing.T, port int) *source {
	return startSource(t, "-f", "flv", "-listen", "1", fmt.Sprintf("rtmp://127.0.0.1:%d/live/x", port))
}

// waitState waits until the pull of name is in phase.
func waitState(t *testing.T, m *Manager, name string, phase Phase, timeout time.Duration) State {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var st State
	for time.Now().Before(deadline) {
		st, _ = m.Get(name)
		if st.State == phase {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("pull %s: state %s, want %s (last error %q)", name, st.State, phase, st.LastError)
	return st
}

func waitLive(t *testing.T, hub *stream.Hub, name string, timeout time.Duration) *stream.Stream {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if st, err := hub.Get(name); err == nil && st.State() == stream.StateLive {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("stream %s not live after %s", name, timeout)
	return nil
}

type collected struct {
	tracks []*stream.Track
	units  map[*stream.Track][]*stream.AccessUnit
}

func (c *collected) track(codec string) *stream.Track {
	for _, t := range c.tracks {
		if t.CodecName() == codec {
			return t
		}
	}
	return nil
}

// collect reads st for d, checking that DTS never goes backwards per track.
func collect(t *testing.T, st *stream.Stream, d time.Duration) *collected {
	t.Helper()
	rd, err := st.NewReader("test", "")
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	c := &collected{units: map[*stream.Track][]*stream.AccessUnit{}}
	for {
		it, err := rd.Read(ctx)
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, stream.ErrStreamEnded) {
				t.Errorf("read: %v", err)
			}
			return c
		}
		if it.Session != nil {
			c.tracks = it.Session.Tracks
			continue
		}
		us := c.units[it.AU.Track]
		if n := len(us); n > 0 && it.AU.DTS < us[n-1].DTS {
			t.Errorf("%s DTS went backwards: %v after %v", it.AU.Track.CodecName(), it.AU.DTS, us[n-1].DTS)
		}
		c.units[it.AU.Track] = append(us, it.AU)
	}
}

// checkDecodes reads st for d and checks that ffmpeg decodes its H.264
// and AAC tracks.
func checkDecodes(t *testing.T, st *stream.Stream, d time.Duration, minFrames int) {
	t.Helper()
	c := collect(t, st, d)
	v := c.track("h264")
	if v == nil {
		t.Fatalf("no h264 track in %v", c.tracks)
	}
	if n := decodeVideo(t, v, c.units[v]); n < minFrames {
		t.Errorf("decoded %d video frames, want at least %d", n, minFrames)
	}
	a := c.track("aac")
	if a == nil {
		t.Fatalf("no aac track in %v", c.tracks)
	}
	if n := decodeAAC(t, a, c.units[a]); n < minFrames {
		t.Errorf("decoded %d audio frames, want at least %d", n, minFrames)
	}
}

func decodeVideo(t *testing.T, tr *stream.Track, units []*stream.AccessUnit) int {
	t.Helper()
	c, ok := tr.Codec.(*codecs.H264)
	if !ok {
		t.Fatalf("not h264: %s", tr.CodecName())
	}
	var buf bytes.Buffer
	for i, au := range units {
		if i == 0 && !au.Key {
			t.Fatalf("first video unit is not a keyframe")
		}
		var nalus h264.AVCC
		if err := nalus.Unmarshal(au.Payload); err != nil {
			t.Fatalf("unit %d: %v", i, err)
		}
		if au.Key {
			nalus = append([][]byte{c.SPS, c.PPS}, nalus...)
		}
		b, err := h264.AnnexB(nalus).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
	}
	return decodeFile(t, "video.h264", "h264", buf.Bytes())
}

func decodeAAC(t *testing.T, tr *stream.Track, units []*stream.AccessUnit) int {
	t.Helper()
	cfg := tr.Codec.(*codecs.MPEG4Audio).Config
	pkts := make(mpeg4audio.ADTSPackets, 0, len(units))
	for _, au := range units {
		pkts = append(pkts, &mpeg4audio.ADTSPacket{Type: cfg.Type, SampleRate: cfg.SampleRate, ChannelConfig: cfg.ChannelConfig, AU: au.Payload})
	}
	b, err := pkts.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return decodeFile(t, "audio.aac", "aac", b)
}

// decodeFile decodes data with ffmpeg (errors fatal) and returns the
// number of frames.
func decodeFile(t *testing.T, name, format string, data []byte) int {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-f", format, "-count_frames", "-select_streams", "0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", p).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", name, err, out)
	}
	var n int
	fields := strings.Fields(string(out))
	if len(fields) == 0 {
		t.Fatalf("ffprobe %s: no output", name)
	}
	if _, err := fmt.Sscan(fields[len(fields)-1], &n); err != nil {
		t.Fatalf("ffprobe %s: %q", name, out)
	}
	return n
}
