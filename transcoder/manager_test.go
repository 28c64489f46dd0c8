package transcoder

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testutil"
)

// waitTimeout bounds every wait in these tests. It detects hangs; it is not
// a performance threshold.
const waitTimeout = 60 * time.Second

// testMedia is real encoded media, made by ffmpeg at test time and split
// into access units the way an ingest hands them to the hub.
type testMedia struct {
	sps, pps []byte
	frames   [][]byte // AVCC access units without parameter sets, one per 1/fps
	keys     []bool
	aus      [][]byte // AAC frames of 1024 samples at 48 kHz
	fps      int
	dur      time.Duration
}

var (
	mediaOnce sync.Once
	media     *testMedia
	mediaErr  error
)

// testMediaFor returns 4 s of 640x360 30 fps H.264 (GOP 1 s, no B-frames)
// and 48 kHz stereo AAC, made once per test binary.
func testMediaFor(t testing.TB) *testMedia {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg")
	mediaOnce.Do(func() { media, mediaErr = makeTestMedia(4) })
	if mediaErr != nil {
		t.Fatal(mediaErr)
	}
	return media
}

func makeTestMedia(seconds int) (*testMedia, error) {
	const fps = 30
	dur := time.Duration(seconds) * time.Second
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-t", dur.String(), "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "30",
		"-bsf:v", "h264_metadata=aud=insert", "-f", "h264", "-").Output()
	if err != nil {
		return nil, err
	}
	m := &testMedia{fps: fps, dur: dur}
	var au [][]byte
	flush := func() error {
		nalus, _, sps, pps := stream.SplitParameterSets(au, false)
		if sps != nil {
			m.sps, m.pps = sps, pps
		}
		au = nil
		if len(nalus) == 0 {
			return nil
		}
		b, err := h264.AVCC(nalus).Marshal()
		if err != nil {
			return err
		}
		m.frames = append(m.frames, b)
		m.keys = append(m.keys, h264.IsRandomAccess(nalus))
		return nil
	}
	var annexb h264.AnnexB
	if err := annexb.Unmarshal(out); err != nil {
		// Too many NAL units for one access unit: split by hand.
		annexb = testutil.SplitAnnexB(out)
	}
	for _, n := range annexb {
		if h264.NALUType(n[0]&0x1f) == h264.NALUTypeAccessUnitDelimiter {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		au = append(au, n)
	}
	if err := flush(); err != nil {
		return nil, err
	}

	out, err = exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", dur.String(), "-c:a", "aac", "-ac", "2", "-f", "adts", "-").Output()
	if err != nil {
		return nil, err
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(out); err != nil {
		return nil, err
	}
	for _, p := range pkts {
		// Keep the audio within the video's length, so that looping never
		// goes back in time.
		if time.Duration(len(m.aus)+1)*1024*time.Second/48000 > dur {
			break
		}
		m.aus = append(m.aus, p.AU)
	}
	if m.sps == nil || len(m.frames) != seconds*fps || !m.keys[0] || len(m.aus) == 0 {
		return nil, errors.New("test media: unexpected encoder output")
	}
	return m, nil
}

func (m *testMedia) tracks() []*stream.Track {
	return []*stream.Track{
		{Codec: &codecs.H264{SPS: m.sps, PPS: m.pps}, ClockRate: 90000},
		{Codec: &codecs.MPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{
			Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2, ChannelConfig: 2,
		}}, ClockRate: 48000},
	}
}

// videoDTS is the DTS of video frame i of the looped media.
func (m *testMedia) videoDTS(i int) time.Duration {
	return time.Duration(i) * time.Second / time.Duration(m.fps)
}

// play publishes the media in real time, looping it, until ctx ends or
// the publisher is stopped. Timestamps keep growing across loops.
func (m *testMedia) play(ctx context.Context, p *stream.Publisher) {
	video, audio := p.Session().Tracks[0], p.Session().Tracks[1]
	start := time.Now()
	perLoop := len(m.frames)
	aPerLoop := len(m.aus)
	vi, ai := 0, 0
	loopAudioStart := func(loop int) time.Duration { return time.Duration(loop) * m.dur }
	for {
		vt := m.videoDTS(vi)
		aloop, aidx := ai/aPerLoop, ai%aPerLoop
		at := loopAudioStart(aloop) + time.Duration(aidx)*1024*time.Second/48000
		var au *stream.AccessUnit
		if vt <= at {
			f := vi % perLoop
			au = &stream.AccessUnit{Track: video, DTS: vt, PTS: vt, Key: m.keys[f], Payload: m.frames[f]}
			vi++
		} else {
			au = &stream.AccessUnit{Track: audio, DTS: at, PTS: at, Key: true, Payload: m.aus[aidx]}
			ai++
		}
		if d := time.Until(start.Add(au.DTS)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			case <-p.Done():
				t.Stop()
				return
			}
		}
		p.WriteUnit(au)
	}
}

// source is a test publisher on a hub.
type source struct {
	pub    *stream.Publisher
	cancel context.CancelFunc
	done   chan struct{}
}

func startSource(t testing.TB, hub *stream.Hub, name string, m *testMedia) *source {
	t.Helper()
	p, err := hub.Publish(name, m.tracks(), stream.PublishOptions{Protocol: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &source{pub: p, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		m.play(ctx, p)
	}()
	t.Cleanup(s.stop)
	return s
}

// stop ends the publishing session.
func (s *source) stop() {
	s.cancel()
	<-s.done
	s.pub.Close(nil)
}

type testEnv struct {
	hub  *stream.Hub
	m    *Manager
	logs *testutil.LogBuffer
}

func newTestEnv(t *testing.T, grace time.Duration, sink ThumbnailSink) *testEnv {
	t.Helper()
	checkLeaks(t)
	logs := &testutil.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hub := stream.NewHub(stream.HubConfig{GracePeriod: grace, Logger: log})
	m := &Manager{Hub: hub, Logger: log, Thumbnails: sink, ThumbnailInterval: time.Second,
		RestartBackoffMin: 100 * time.Millisecond, RestartBackoffMax: time.Second}
	t.Cleanup(func() {
		m.Close()
		hub.Close()
		if t.Failed() || os.Getenv("TRANSCODER_TEST_LOGS") != "" {
			t.Logf("logs:\n%s", testutil.Tail(logs.String(), 80))
		}
	})
	return &testEnv{hub: hub, m: m, logs: logs}
}

// checkLeaks fails the test if goroutines of this package outlive it.
// Call it before anything that registers a cleanup.
func checkLeaks(t *testing.T) {
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			buf := make([]byte, 4<<20)
			buf = buf[:runtime.Stack(buf, true)]
			var leaked []string
			for g := range strings.SplitSeq(string(buf), "\n\n") {
				if strings.Contains(g, "mps/transcoder.") && !strings.Contains(g, "checkLeaks") &&
					!strings.Contains(g, "testing.tRunner") {
					leaked = append(leaked, g)
				}
			}
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("goroutines leaked:\n%s", strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// rungCollector reads a rung stream and records what it sees.
type rungCollector struct {
	mu       sync.Mutex
	tracks   []*stream.Track
	sessions int
	keys     []time.Duration // video keyframe DTS
	videoDTS []time.Duration
	audio    int
	audioDTS []time.Duration
	err      error
	done     chan struct{}
}

func collect(t *testing.T, hub *stream.Hub, name string) *rungCollector {
	t.Helper()
	var s *stream.Stream
	waitFor(t, "stream "+name, func() bool {
		var err error
		s, err = hub.Get(name)
		return err == nil
	})
	r, err := s.NewReader("test", "")
	if err != nil {
		t.Fatal(err)
	}
	c := &rungCollector{done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(c.done)
		for {
			it, err := r.Read(ctx)
			if err != nil {
				c.mu.Lock()
				c.err = err
				c.mu.Unlock()
				return
			}
			c.mu.Lock()
			if it.Session != nil {
				c.tracks = it.Session.Tracks
				c.sessions++
			} else if it.AU.Track.IsVideo() {
				c.videoDTS = append(c.videoDTS, it.AU.DTS)
				if it.AU.Key {
					c.keys = append(c.keys, it.AU.DTS)
				}
			} else {
				c.audio++
				c.audioDTS = append(c.audioDTS, it.AU.DTS)
			}
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		r.Close()
		<-c.done
	})
	return c
}

func (c *rungCollector) snapshot() (tracks []*stream.Track, keys, dts []time.Duration, audio int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tracks, slices.Clone(c.keys), slices.Clone(c.videoDTS), c.audio
}

func (c *rungCollector) lastDTS() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.videoDTS) == 0 {
		return -1
	}
	return c.videoDTS[len(c.videoDTS)-1]
}

func testTemplate() *Template {
	return &Template{
		Name: "test",
		Rungs: []Rung{
			{Name: "src", Passthrough: true},
			{Name: "180p", Video: Video{Codec: CodecH264, Width: 320, Height: 180, Bitrate: 300_000, Preset: "ultrafast", GOP: 2 * time.Second},
				Audio: Audio{Codec: CodecAAC, Bitrate: 64_000}},
			{Name: "90p", Video: Video{Codec: CodecH264, Height: 90, Bitrate: 100_000, Preset: "ultrafast", GOP: 2 * time.Second},
				Audio: Audio{Codec: CodecAAC, Bitrate: 32_000, Channels: 1}},
			// Larger than the source: skipped.
			{Name: "1080p", Video: Video{Codec: CodecH264, Width: 1920, Height: 1080, Preset: "ultrafast"}},
		},
	}
}

// TestLadder runs a 2-rung ladder: right sizes and codecs, keyframes at the
// same source timestamps on both rungs, a restart after the child is
// killed, and no child left after Stop.
func TestLadder(t *testing.T) {
	med := testMediaFor(t)
	env := newTestEnv(t, 5*time.Second, nil)
	src := startSource(t, env.hub, "live/x", med)
	if err := env.m.Start("live/x", testTemplate()); err != nil {
		t.Fatal(err)
	}
	c180 := collect(t, env.hub, "live/x/180p")
	c90 := collect(t, env.hub, "live/x/90p")
	// Wait for at least three keyframes on both.
	waitFor(t, "keyframes on both rungs", func() bool {
		_, k1, _, _ := c180.snapshot()
		_, k2, _, _ := c90.snapshot()
		return len(k1) >= 3 && len(k2) >= 3
	})

	info, ok := env.m.Info("live/x")
	if !ok || info.State != StateRunning || info.PID == 0 || info.Template != "test" {
		t.Fatalf("info = %+v, %v", info, ok)
	}
	wantVariants := []string{"live/x", "live/x/180p", "live/x/90p"}
	if v := env.m.Variants("live/x"); !slices.Equal(v, wantVariants) {
		t.Errorf("Variants = %v, want %v", v, wantVariants)
	}
	if !slices.Equal(info.Rungs, wantVariants) {
		t.Errorf("info.Rungs = %v", info.Rungs)
	}
	if s, ok := env.m.SourceOf("live/x/90p"); !ok || s != "live/x" {
		t.Errorf("SourceOf(90p) = %q, %v", s, ok)
	}
	if err := env.m.Start("live/x/90p", testTemplate()); !errors.Is(err, ErrUnsupportedSource) {
		t.Errorf("a ladder on a rendition: %v", err)
	}
	for _, n := range []string{"live/x", "live/x/src", "live/x/1080p", "live/y/90p", "x"} {
		if s, ok := env.m.SourceOf(n); ok {
			t.Errorf("SourceOf(%s) = %q", n, s)
		}
	}

	for _, tc := range []struct {
		c    *rungCollector
		w, h int
	}{{c180, 320, 180}, {c90, 160, 90}} {
		tracks, keys, dts, audio := tc.c.snapshot()
		if len(tracks) != 2 {
			t.Fatalf("%dx%d: %d tracks", tc.w, tc.h, len(tracks))
		}
		if _, ok := tracks[0].Codec.(*codecs.H264); !ok {
			t.Errorf("video codec %T", tracks[0].Codec)
		}
		if w, h := tracks[0].Resolution(); w != tc.w || h != tc.h {
			t.Errorf("resolution %dx%d, want %dx%d", w, h, tc.w, tc.h)
		}
		if a, ok := tracks[1].Codec.(*codecs.MPEG4Audio); !ok || a.Config.SampleRate != 48000 {
			t.Errorf("audio codec %#v", tracks[1].Codec)
		}
		if audio == 0 {
			t.Errorf("%dx%d: no audio", tc.w, tc.h)
		}
		// Every frame carries a source frame's timestamp, and keyframes
		// fall on multiples of the GOP.
		for _, d := range dts {
			if i := int(d * 30 / time.Second); med.videoDTS(i) != d && med.videoDTS(i+1) != d {
				t.Fatalf("%dx%d: DTS %v is not a source frame's", tc.w, tc.h, d)
			}
		}
		for _, k := range keys {
			if k%(2*time.Second) != 0 {
				t.Errorf("%dx%d: keyframe at %v, not on the 2 s GOP grid", tc.w, tc.h, k)
			}
		}
	}
	_, _, srcDTS, _ := c180.snapshot()
	if len(srcDTS) > 0 && srcDTS[len(srcDTS)-1] > time.Minute {
		t.Errorf("DTS %v is not in the source's timeline", srcDTS[len(srcDTS)-1])
	}
	// Identical keyframes where both rungs were read.
	_, k1, _, _ := c180.snapshot()
	_, k2, _, _ := c90.snapshot()
	lo, hi := max(k1[0], k2[0]), min(k1[len(k1)-1], k2[len(k2)-1])
	in := func(ks []time.Duration) []time.Duration {
		return slices.DeleteFunc(slices.Clone(ks), func(k time.Duration) bool { return k < lo || k > hi })
	}
	if a, b := in(k1), in(k2); len(a) < 2 || !slices.Equal(a, b) {
		t.Errorf("keyframes differ: 180p %v, 90p %v", a, b)
	}

	// Progress arrives.
	waitFor(t, "progress", func() bool {
		p, ok := env.m.Progress("live/x")
		return ok && p.Frame > 0 && !p.Updated.IsZero()
	})

	// Kill the child: the ladder restarts it and the rungs flow again,
	// while the source keeps its session.
	pid := info.PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := c180.lastDTS()
	waitFor(t, "a restart", func() bool {
		i, _ := env.m.Info("live/x")
		return i.Restarts >= 1 && i.PID != 0 && i.PID != pid
	})
	if !processGone(pid) {
		t.Errorf("killed child %d was not reaped", pid)
	}
	waitFor(t, "rung frames after the restart", func() bool {
		return c180.lastDTS() > killedAt+3*time.Second && c90.lastDTS() > killedAt+3*time.Second
	})
	if s := src.pub.Session(); s.ID != 1 || src.pub.Stream().State() != stream.StateLive {
		t.Errorf("source disturbed: session %d, state %s", s.ID, src.pub.Stream().State())
	}
	info, _ = env.m.Info("live/x")
	if info.State != StateRunning || info.LastError == "" {
		t.Errorf("after restart: %+v", info)
	}
	// Timestamps never went backwards on a rung.
	for _, c := range []*rungCollector{c180, c90} {
		_, _, dts, _ := c.snapshot()
		for i := 1; i < len(dts); i++ {
			if dts[i] <= dts[i-1] {
				t.Fatalf("DTS went from %v to %v", dts[i-1], dts[i])
			}
		}
	}

	pid = info.PID
	if err := env.m.Stop("live/x"); err != nil {
		t.Fatal(err)
	}
	if !processGone(pid) {
		t.Errorf("child %d still exists after Stop", pid)
	}
	if _, ok := env.m.Info("live/x"); ok {
		t.Error("Info after Stop")
	}
	if v := env.m.Variants("live/x"); v != nil {
		t.Errorf("Variants after Stop = %v", v)
	}
	if err := env.m.Stop("live/x"); !errors.Is(err, ErrNoLadder) {
		t.Errorf("second Stop: %v", err)
	}
}

// TestLadderSessions: a new source session restarts the child, and the end
// of the source stops the ladder.
func TestLadderSessions(t *testing.T) {
	med := testMediaFor(t)
	env := newTestEnv(t, 2*time.Second, nil)
	tpl := &Template{Name: "one", Rungs: []Rung{{Name: "90p",
		Video: Video{Height: 90, Preset: "ultrafast", GOP: time.Second}, Audio: Audio{Codec: AudioNone}}}}
	src := startSource(t, env.hub, "live/s", med)
	if err := env.m.Start("live/s", tpl); err != nil {
		t.Fatal(err)
	}
	c := collect(t, env.hub, "live/s/90p")
	waitFor(t, "rung frames", func() bool { _, k, _, _ := c.snapshot(); return len(k) >= 2 })
	info, _ := env.m.Info("live/s")
	pid := info.PID
	tracks, _, _, _ := c.snapshot()
	if len(tracks) != 1 {
		t.Errorf("audio none: %d tracks", len(tracks))
	}

	// Reconnect: a new session.
	src.stop()
	src = startSource(t, env.hub, "live/s", med)
	waitFor(t, "a new child", func() bool {
		i, _ := env.m.Info("live/s")
		return i.PID != 0 && i.PID != pid && i.State == StateRunning
	})
	if !processGone(pid) {
		t.Errorf("old child %d still exists", pid)
	}
	waitFor(t, "a new rung session", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.sessions >= 2 && len(c.videoDTS) > 0
	})
	if i, _ := env.m.Info("live/s"); i.Restarts != 0 {
		t.Errorf("a new session counted as a restart: %+v", i)
	}

	// The source ends for good.
	pid = func() int { i, _ := env.m.Info("live/s"); return i.PID }()
	// The stream ends once the grace period is over.
	src.stop()
	waitFor(t, "the ladder to stop with its source", func() bool {
		_, ok := env.m.Info("live/s")
		return !ok
	})
	if !processGone(pid) {
		t.Errorf("child %d still exists after the source ended", pid)
	}
}

func TestUnsupported(t *testing.T) {
	env := newTestEnv(t, time.Second, nil)
	p, err := env.hub.Publish("live/av1", []*stream.Track{{Codec: &codecs.AV1{}, ClockRate: 90000}},
		stream.PublishOptions{Protocol: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(nil)
	err = env.m.Start("live/av1", testTemplate())
	if !errors.Is(err, ErrUnsupportedSource) || !strings.Contains(err.Error(), "av1") {
		t.Errorf("AV1 source: %v", err)
	}
	if _, ok := env.m.Info("live/av1"); ok {
		t.Error("a ladder runs on an AV1 source")
	}
	if err := env.m.Start("live/none", testTemplate()); !errors.Is(err, ErrNoStream) {
		t.Errorf("missing stream: %v", err)
	}
	// AV1 rungs are supported (fMP4 output); the AV1 source is not.
	tpl := &Template{Name: "av1", Rungs: []Rung{{Name: "720p", Video: Video{Codec: CodecAV1, Height: 720}}}}
	if err := env.m.Start("live/av1", tpl); !errors.Is(err, ErrUnsupportedSource) {
		t.Errorf("AV1 rung on an AV1 source: %v", err)
	}
	for _, bad := range []*Template{nil, {Name: "empty"}, {Rungs: []Rung{{Name: "a/b"}}}, {Rungs: []Rung{{Name: "a"}, {Name: "a"}}}} {
		if err := env.m.Start("live/av1", bad); !errors.Is(err, ErrInvalidTemplate) {
			t.Errorf("template %+v: %v", bad, err)
		}
	}
}

type fakeSink struct {
	mu   sync.Mutex
	imgs map[string][][]byte
}

func (f *fakeSink) Put(name string, img []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.imgs == nil {
		f.imgs = make(map[string][][]byte)
	}
	f.imgs[name] = append(f.imgs[name], img)
}

func (f *fakeSink) get(name string) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.imgs[name])
}

// TestThumbnails runs a ladder whose only rung is the source: the child
// makes thumbnails and nothing else.
func TestThumbnails(t *testing.T) {
	med := testMediaFor(t)
	sink := &fakeSink{}
	env := newTestEnv(t, time.Second, sink)
	startSource(t, env.hub, "live/t", med)
	tpl := &Template{Name: "pass", Rungs: []Rung{{Name: "source", Passthrough: true}}}
	if err := env.m.Start("live/t", tpl); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two thumbnails", func() bool { return len(sink.get("live/t")) >= 2 })
	for _, b := range sink.get("live/t") {
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("thumbnail does not decode: %v", err)
		}
		if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w != 320 || h != 180 {
			t.Errorf("thumbnail %dx%d, want 320x180", w, h)
		}
	}
	if !env.m.MakesThumbnails("live/t") || env.m.MakesThumbnails("live/other") {
		t.Error("MakesThumbnails")
	}
	if v := env.m.Variants("live/t"); !slices.Equal(v, []string{"live/t"}) {
		t.Errorf("Variants = %v", v)
	}
	if _, ok := env.m.SourceOf("live/t/source"); ok {
		t.Error("a passthrough rung is not a rendition stream")
	}

	// Start again with another template: it replaces the ladder.
	pid := func() int { i, _ := env.m.Info("live/t"); return i.PID }()
	tpl2 := &Template{Name: "pass2", Rungs: []Rung{{Name: "source", Passthrough: true}}}
	if err := env.m.Start("live/t", tpl2); err != nil {
		t.Fatal(err)
	}
	if !processGone(pid) {
		t.Errorf("the replaced ladder's child %d is still there", pid)
	}
	waitFor(t, "the new ladder's child", func() bool {
		i, ok := env.m.Info("live/t")
		return ok && i.Template == "pass2" && i.PID != 0 && i.PID != pid
	})
}

// TestLadderCodecs: an H.265 rung with Opus audio, and an H.264 rung that
// copies the source audio (same config, same timestamps).
func TestLadderCodecs(t *testing.T) {
	med := testMediaFor(t)
	env := newTestEnv(t, time.Second, nil)
	startSource(t, env.hub, "live/c", med)
	srcReader := collect(t, env.hub, "live/c")
	tpl := &Template{Name: "codecs", Rungs: []Rung{
		{Name: "hevc", Video: Video{Codec: CodecH265, Height: 90, Bitrate: 100_000, Preset: "ultrafast"},
			Audio: Audio{Codec: CodecOpus, Bitrate: 48_000}},
		{Name: "copy", Video: Video{Codec: CodecH264, Width: 160, Preset: "ultrafast"}, Audio: Audio{Codec: AudioCopy}},
	}}
	if err := env.m.Start("live/c", tpl); err != nil {
		t.Fatal(err)
	}
	hevc := collect(t, env.hub, "live/c/hevc")
	cp := collect(t, env.hub, "live/c/copy")
	waitFor(t, "frames on both rungs", func() bool {
		_, k1, _, a1 := hevc.snapshot()
		_, k2, _, a2 := cp.snapshot()
		return len(k1) >= 2 && len(k2) >= 2 && a1 > 10 && a2 > 10
	})
	tracks, _, _, _ := hevc.snapshot()
	if c, ok := tracks[0].Codec.(*codecs.H265); !ok || len(c.VPS) == 0 || len(c.SPS) == 0 || len(c.PPS) == 0 {
		t.Errorf("hevc rung video %#v", tracks[0].Codec)
	}
	if w, h := tracks[0].Resolution(); w != 160 || h != 90 {
		t.Errorf("hevc rung %dx%d", w, h)
	}
	if c, ok := tracks[1].Codec.(*codecs.Opus); !ok || c.ChannelCount != 2 || tracks[1].ClockRate != 48000 {
		t.Errorf("hevc rung audio %#v", tracks[1].Codec)
	}
	tracks, _, _, _ = cp.snapshot()
	srcTracks, _, _, _ := srcReader.snapshot()
	if !sameCodec(tracks[1].Codec, srcTracks[1].Codec) {
		t.Errorf("copied audio %#v, source %#v", tracks[1].Codec, srcTracks[1].Codec)
	}
	if w, h := tracks[0].Resolution(); w != 160 || h != 90 {
		t.Errorf("copy rung %dx%d", w, h)
	}
	// Copied audio keeps the source's timestamps exactly.
	srcReader.mu.Lock()
	srcAudio := make(map[time.Duration]bool)
	for _, d := range srcReader.audioDTS {
		srcAudio[d] = true
	}
	srcReader.mu.Unlock()
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for _, d := range cp.audioDTS {
		if !srcAudio[d] {
			t.Fatalf("copied audio DTS %v is not a source audio DTS", d)
		}
	}
}
