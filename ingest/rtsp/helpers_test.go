package rtsp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

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

// freeUDPPair returns an even loopback UDP port whose successor was free a
// moment ago too, for the RTP and RTCP listeners.
func freeUDPPair(t *testing.T) int {
	t.Helper()
	for range 100 {
		a, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port
		a.Close()
		p &^= 1
		if p < 1024 || p > 65534 {
			continue
		}
		x, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		y, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p+1))
		x.Close()
		if err != nil {
			continue
		}
		y.Close()
		return p
	}
	t.Fatal("no free UDP port pair")
	return 0
}

// newEnv starts a hub and a server on 127.0.0.1, TCP port 0 and a free UDP
// pair. Both stop at the end of the test; the logs are printed when it fails.
func newEnv(t *testing.T, policy *auth.Policy, configure ...func(*Server)) *testEnv {
	t.Helper()
	logs := &testutil.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hub := stream.NewHub(stream.HubConfig{GracePeriod: -1, Logger: log})
	var srv *Server
	for attempt := 0; ; attempt++ {
		udp := freeUDPPair(t)
		srv = &Server{
			Addr:        "127.0.0.1:0",
			UDPRTPAddr:  fmt.Sprintf("127.0.0.1:%d", udp),
			UDPRTCPAddr: fmt.Sprintf("127.0.0.1:%d", udp+1),
			Hub:         hub,
			Auth:        policy,
			Logger:      log,
		}
		for _, fn := range configure {
			fn(srv)
		}
		err := srv.Initialize()
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		srv.Close()
		hub.Close()
		if t.Failed() || os.Getenv("RTSP_TEST_LOGS") != "" {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &testEnv{t: t, srv: srv, hub: hub, logs: logs, port: srv.ListenAddr().(*net.TCPAddr).Port}
}

func (e *testEnv) url(path string) string {
	return fmt.Sprintf("rtsp://127.0.0.1:%d/%s", e.port, path)
}

// proc is a running ffmpeg.
type proc struct {
	cmd    *exec.Cmd
	stdout *testutil.LogBuffer
	stderr *testutil.LogBuffer
	done   chan struct{}
	err    error
}

func startFFmpeg(t *testing.T, args ...string) *proc {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg")
	p := &proc{cmd: exec.Command("ffmpeg", append([]string{"-hide_banner", "-nostdin"}, args...)...),
		stdout: &testutil.LogBuffer{}, stderr: &testutil.LogBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout = p.stdout
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
		if t.Failed() {
			t.Logf("ffmpeg %s\nstderr:\n%s", strings.Join(args, " "), testutil.Tail(p.stderr.String(), 30))
		}
	})
	return p
}

func (p *proc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("ffmpeg still running after %v; stderr:\n%s", timeout, p.stderr.String())
		return nil
	}
}

// pushOptions says what pushRTSP sends.
type pushOptions struct {
	hevc, opus bool
	transport  string // tcp or udp
	dur        time.Duration
}

// pushRTSP publishes lavfi test media to url with ffmpeg's RTSP muxer.
func pushRTSP(t *testing.T, url string, o pushOptions) *proc {
	t.Helper()
	args := []string{"-loglevel", "error",
		"-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
		"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", fmt.Sprintf("%.1f", o.dur.Seconds())}
	if o.hevc {
		args = append(args, "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:keyint=30", "-pix_fmt", "yuv420p")
	} else {
		args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p")
	}
	if o.opus {
		args = append(args, "-c:a", "libopus", "-b:a", "64k")
	} else {
		args = append(args, "-c:a", "aac", "-b:a", "96k")
	}
	if o.transport != "" {
		args = append(args, "-rtsp_transport", o.transport)
	}
	args = append(args, "-f", "rtsp", url)
	return startFFmpeg(t, args...)
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

// collected is what a hub reader received.
type collected struct {
	sessions int
	tracks   []*stream.Track
	units    map[*stream.Track][]*stream.AccessUnit
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
			c.sessions++
			c.tracks = it.Session.Tracks
			continue
		}
		us := c.units[it.AU.Track]
		if n := len(us); n > 0 && it.AU.DTS < us[n-1].DTS {
			t.Errorf("%s DTS went backwards: %v after %v", it.AU.Track.CodecName(), it.AU.DTS, us[n-1].DTS)
		}
		if it.AU.PTS < it.AU.DTS {
			t.Errorf("%s PTS %v before DTS %v", it.AU.Track.CodecName(), it.AU.PTS, it.AU.DTS)
		}
		c.units[it.AU.Track] = append(us, it.AU)
	}
}

func (c *collected) track(codec string) *stream.Track {
	for _, t := range c.tracks {
		if t.CodecName() == codec {
			return t
		}
	}
	return nil
}

// decodeVideo writes the video units of tr as an Annex B file, parameter
// sets before every keyframe, and returns the frames ffmpeg decodes from it.
func decodeVideo(t *testing.T, tr *stream.Track, units []*stream.AccessUnit) int {
	t.Helper()
	var params [][]byte
	format := "h264"
	switch c := tr.Codec.(type) {
	case *codecs.H264:
		params = [][]byte{c.SPS, c.PPS}
	case *codecs.H265:
		params = [][]byte{c.VPS, c.SPS, c.PPS}
		format = "hevc"
	default:
		t.Fatalf("not video: %s", tr.CodecName())
	}
	var buf bytes.Buffer
	for i, au := range units {
		if i == 0 && !au.Key {
			t.Fatalf("first %s unit is not a keyframe", tr.CodecName())
		}
		var nalus h264.AVCC
		if err := nalus.Unmarshal(au.Payload); err != nil {
			t.Fatalf("unit %d: %v", i, err)
		}
		if au.Key {
			nalus = append(append([][]byte{}, params...), nalus...)
		}
		b, err := h264.AnnexB(nalus).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
	}
	return decodeFile(t, "video."+format, format, buf.Bytes())
}

// decodeAAC writes AAC units as ADTS and returns the frames ffmpeg decodes.
func decodeAAC(t *testing.T, tr *stream.Track, units []*stream.AccessUnit) int {
	t.Helper()
	cfg := tr.Codec.(*codecs.MPEG4Audio).Config
	pkts := make(mpeg4audio.ADTSPackets, 0, len(units))
	for _, au := range units {
		pkts = append(pkts, &mpeg4audio.ADTSPacket{
			Type: cfg.Type, SampleRate: cfg.SampleRate, ChannelConfig: cfg.ChannelConfig, AU: au.Payload,
		})
	}
	b, err := pkts.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return decodeFile(t, "audio.aac", "aac", b)
}

// decodeFile decodes data with ffmpeg, failing on any decode error, and
// returns the number of frames decoded.
func decodeFile(t *testing.T, name, format string, data []byte) int {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-xerror",
		"-f", format, "-i", path, "-f", "framecrc", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("decode %s: %v\n%s", name, err, testutil.Tail(string(out), 20))
	}
	return countFrames(string(out))[0]
}

// countFrames counts the framecrc lines per stream index.
func countFrames(out string) map[int]int {
	n := map[int]int{}
	for _, line := range strings.Split(out, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		var idx int
		if _, err := fmt.Sscanf(line, "%d,", &idx); err == nil {
			n[idx]++
		}
	}
	return n
}

// readRTSP plays url with ffmpeg for dur over transport and returns the
// frames decoded per stream (0 video, 1 audio), failing on decode errors.
func readRTSP(t *testing.T, url, transport string, dur time.Duration) map[int]int {
	t.Helper()
	p := startFFmpeg(t, "-v", "error", "-rtsp_transport", transport, "-i", url,
		"-t", fmt.Sprintf("%.1f", dur.Seconds()), "-map", "0", "-f", "framecrc", "-")
	if err := p.wait(t, dur+20*time.Second); err != nil {
		t.Fatalf("ffmpeg read over %s: %v\n%s", transport, err, p.stderr.String())
	}
	if s := strings.TrimSpace(p.stderr.String()); s != "" {
		t.Errorf("ffmpeg read over %s reported errors:\n%s", transport, testutil.Tail(s, 20))
	}
	return countFrames(p.stdout.String())
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func aacConfig() *mpeg4audio.AudioSpecificConfig {
	return &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2, ChannelConfig: 2}
}
