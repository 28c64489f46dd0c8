package vod

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
	"github.com/mps-dev/mps/transcoder"
)

// tcTestMedia makes an input file with ffmpeg (args are the lavfi inputs
// and encoder settings) and probes it.
func tcTestMedia(t *testing.T, name string, args ...string) Media {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	path := filepath.Join(t.TempDir(), name)
	full := append([]string{"-nostdin", "-hide_banner", "-loglevel", "error", "-y"}, args...)
	if out, err := exec.Command("ffmpeg", append(full, path)...).CombinedOutput(); err != nil {
		t.Fatalf("make %s: %v: %s", name, err, out)
	}
	m, err := Probe(context.Background(), Env{}, path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tcTestAV is a testsrc2 video with a sine tone, w×h, secs long, 25 fps.
func tcTestAV(t *testing.T, w, h int, secs string) Media {
	return tcTestMedia(t, "in.mp4",
		"-f", "lavfi", "-i", "testsrc2=size="+tcItoa(w)+"x"+tcItoa(h)+":rate=25:duration="+secs,
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration="+secs,
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
}

func tcItoa(n int) string { return strconv.Itoa(n) }

// tcTestProgress records progress reports.
type tcTestProgress struct {
	mu   sync.Mutex
	vals []float64
}

func (p *tcTestProgress) report(f float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.vals = append(p.vals, f)
}

// check asserts that progress was monotonic and reached 1.
func (p *tcTestProgress) check(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.vals) == 0 || p.vals[len(p.vals)-1] != 1 {
		t.Errorf("progress did not end at 1: %v", p.vals)
	}
	for i := 1; i < len(p.vals); i++ {
		if p.vals[i] < p.vals[i-1] || p.vals[i] < 0 || p.vals[i] > 1 {
			t.Errorf("progress not monotonic in 0..1: %v", p.vals)
			break
		}
	}
}

func tcTestEnv(t *testing.T) (Env, *tcTestProgress) {
	p := &tcTestProgress{}
	return Env{OutDir: t.TempDir(), Progress: p.report}, p
}

func tcTestRun(t *testing.T, r Runner, in Media, params string) (Output, Env) {
	t.Helper()
	env, prog := tcTestEnv(t)
	outs, err := r.Run(context.Background(), env, in, json.RawMessage(params))
	if err != nil {
		t.Fatalf("run %s: %v", params, err)
	}
	if len(outs) != 1 {
		t.Fatalf("want one output, got %+v", outs)
	}
	o := outs[0]
	if st, err := os.Stat(filepath.Join(env.OutDir, o.Path)); err != nil || st.Size() != o.Size || o.Size == 0 {
		t.Errorf("output %+v: file %v %v", o, st, err)
	}
	prog.check(t)
	return o, env
}

// tcTestStreams returns "codec_type:codec_name" of each stream of path.
func tcTestStreams(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name",
		"-of", "csv=p=0:nk=1", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, l := range strings.Fields(string(out)) {
		f := strings.Split(l, ",")
		if len(f) == 2 {
			s = append(s, f[1]+":"+f[0])
		}
	}
	return s
}

func tcTestPreset(t *testing.T, name string) string {
	t.Helper()
	p, ok := TranscodePresets()[name]
	if !ok {
		t.Fatalf("no preset %s", name)
	}
	return string(p)
}

func TestTranscodeMP4720p(t *testing.T) {
	in := tcTestAV(t, 1280, 720, "2")
	o, env := tcTestRun(t, Transcode(), in, tcTestPreset(t, "mp4-720p"))
	path := filepath.Join(env.OutDir, o.Path)
	if got := strings.Join(tcTestStreams(t, path), " "); got != "video:h264 audio:aac" {
		t.Errorf("streams %q", got)
	}
	if o.Kind != "video" || o.MIME != "video/mp4" || o.Width != 1280 || o.Height != 720 || filepath.Ext(o.Path) != ".mp4" {
		t.Errorf("output %+v", o)
	}
	if d := math.Abs(o.Duration - in.Duration.Seconds()); d > 0.1 {
		t.Errorf("duration %.3f, input %.3f", o.Duration, in.Duration.Seconds())
	}
	// +faststart: the moov box comes before mdat.
	b, _ := os.ReadFile(path)
	if m, d := strings.Index(string(b), "moov"), strings.Index(string(b), "mdat"); m < 0 || m > d {
		t.Errorf("moov at %d, mdat at %d: not faststart", m, d)
	}
}

func TestTranscodeWebMAndAudio(t *testing.T) {
	in := tcTestAV(t, 320, 240, "2")
	for _, tc := range []struct {
		params, streams, mime, ext string
		w, h                       int
	}{
		{`{"container":"webm","video":{"codec":"vp9","width":160,"preset":"8","crf":40},"audio":{"codec":"opus"}}`,
			"video:vp9 audio:opus", "video/webm", ".webm", 160, 120},
		{`{"video":{"codec":"av1","width":160,"preset":"12"},"audio":{"codec":"opus"}}`, "video:av1 audio:opus", "video/mp4", ".mp4", 160, 120},
		{`{"container":"mkv","video":{"codec":"h265","height":120,"preset":"ultrafast","profile":"main10"},"audio":{"codec":"mp3"}}`,
			"video:hevc audio:mp3", "video/x-matroska", ".mkv", 160, 120},
		{tcTestPreset(t, "audio-aac-128k"), "audio:aac", "audio/mp4", ".m4a", 0, 0},
		{tcTestPreset(t, "audio-mp3-128k"), "audio:mp3", "audio/mpeg", ".mp3", 0, 0},
		// Never upscaled without allow_upscale; copy keeps the audio.
		{`{"video":{"width":640,"preset":"ultrafast"},"audio":{"codec":"copy"}}`, "video:h264 audio:aac", "video/mp4", ".mp4", 320, 240},
		{`{"video":{"width":640,"allow_upscale":true,"preset":"ultrafast","fps":10},"start":0.5,"duration":1}`, "video:h264 audio:aac", "video/mp4", ".mp4", 640, 480},
	} {
		o, env := tcTestRun(t, Transcode(), in, tc.params)
		if got := strings.Join(tcTestStreams(t, filepath.Join(env.OutDir, o.Path)), " "); got != tc.streams {
			t.Errorf("%s: streams %q, want %q", tc.params, got, tc.streams)
		}
		if o.MIME != tc.mime || filepath.Ext(o.Path) != tc.ext || o.Width != tc.w || o.Height != tc.h {
			t.Errorf("%s: output %+v", tc.params, o)
		}
		want := in.Duration.Seconds()
		if strings.Contains(tc.params, `"duration":1`) {
			want = 1
			m, err := Probe(context.Background(), env, filepath.Join(env.OutDir, o.Path))
			if err != nil || math.Abs(m.Video.FPS-10) > 0.01 {
				t.Errorf("fps: %+v %v", m.Video, err)
			}
		}
		if d := math.Abs(o.Duration - want); d > 0.1 {
			t.Errorf("%s: duration %.3f, want %.3f", tc.params, o.Duration, want)
		}
	}
}

// tcTestFrame decodes the first frame of path as rgb24.
func tcTestFrame(t *testing.T, path string) []byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tcTestRegionDiff is the mean absolute difference of two rgb24 frames of
// width w over the rectangle x0,y0..x1,y1.
func tcTestRegionDiff(a, b []byte, w, x0, y0, x1, y1 int) float64 {
	var sum, n float64
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			for c := range 3 {
				i := (y*w+x)*3 + c
				sum += math.Abs(float64(a[i]) - float64(b[i]))
				n++
			}
		}
	}
	return sum / n
}

func TestTranscodeWatermark(t *testing.T) {
	in := tcTestAV(t, 320, 240, "1")
	base := `{"video":{"preset":"ultrafast","crf":18},"audio":{"codec":"none"}`
	plain, penv := tcTestRun(t, Transcode(), in, base+`}`)
	marked, menv := tcTestRun(t, Transcode(), in, base+`,"watermark":{"text":"MPS MPS","position":"top-left","scale":0.1}}`)
	a := tcTestFrame(t, filepath.Join(penv.OutDir, plain.Path))
	b := tcTestFrame(t, filepath.Join(menv.OutDir, marked.Path))
	if len(a) != 320*240*3 || len(b) != len(a) {
		t.Fatalf("frame sizes %d %d", len(a), len(b))
	}
	// Text 32 px high at 6.4 px from the top-left corner.
	in1 := tcTestRegionDiff(a, b, 320, 4, 4, 120, 44)
	out1 := tcTestRegionDiff(a, b, 320, 160, 140, 320, 240)
	t.Logf("watermark region diff %.2f, elsewhere %.2f", in1, out1)
	if in1 < 15 || out1 > 2 {
		t.Errorf("watermark region diff %.2f (want > 15), elsewhere %.2f (want < 2)", in1, out1)
	}

	// An image (a red PNG, 15% of the width, top-right by default).
	png := filepath.Join(t.TempDir(), "wm.png")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=red:size=64x32", "-frames:v", "1", png).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	img, ienv := tcTestRun(t, Transcode(), in, base+`,"watermark":{"image":"`+png+`"}}`)
	c := tcTestFrame(t, filepath.Join(ienv.OutDir, img.Path))
	in2 := tcTestRegionDiff(a, c, 320, 264, 10, 308, 24)
	out2 := tcTestRegionDiff(a, c, 320, 0, 100, 200, 240)
	t.Logf("image watermark region diff %.2f, elsewhere %.2f", in2, out2)
	if in2 < 30 || out2 > 2 {
		t.Errorf("image watermark region diff %.2f (want > 30), elsewhere %.2f (want < 2)", in2, out2)
	}
}

func TestTranscodeBadParams(t *testing.T) {
	in := tcTestAV(t, 320, 240, "1")
	audio := tcTestMedia(t, "in.m4a", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac")
	env, _ := tcTestEnv(t)
	for _, tc := range []struct {
		in     Media
		params string
		want   string
	}{
		{in, `{"video":{"codec":"h264","colour":1}}`, `unknown field "colour"`},
		{in, `{"container":"webm","video":{"codec":"h264"}}`, "video.codec h264: container webm"},
		{in, `{"video":{"width":5}}`, "video.width 5"},
		{in, `{"container":"avi"}`, `container "avi"`},
		{in, `{"video":{"crf":30,"bitrate":"1M"}}`, "video.crf"},
		{in, `{"video":{"preset":"warp"}}`, `video.preset "warp"`},
		{in, `{"container":"mov","audio":{"codec":"opus"}}`, "audio.codec opus: container mov"},
		{in, `{"container":"mp3","audio":{"bitrate":"1M"}}`, "audio.bitrate"},
		{in, `{"container":"mp3","video":{"codec":"h264"}}`, "audio-only"},
		{in, `{"watermark":{"text":"a","opacity":2}}`, "watermark.opacity"},
		{in, `{"watermark":{"image":"/nonexistent.png"}}`, "watermark.image"},
		{in, `{"start":5}`, "start 5"},
		{in, `{"container":"webm","video":{"codec":"vp9"},"audio":{"codec":"copy"}}`, "audio.codec copy"},
		{audio, `{}`, "the input has no video stream"},
		{audio, tcTestPreset(t, "mp4-720p"), "the input has no video stream"},
	} {
		_, err := Transcode().Run(context.Background(), env, tc.in, json.RawMessage(tc.params))
		if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want ErrBadInput naming %q", tc.params, err, tc.want)
		}
	}
	// CheckParams for templates, and caps without the encoder.
	if err := Transcode().(ParamsChecker).CheckParams(json.RawMessage(`{"video":{"width":5}}`)); !errors.Is(err, ErrBadInput) {
		t.Errorf("CheckParams: %v", err)
	}
	caps := &transcoder.Capabilities{Encoders: map[string]bool{"libx264": true, "aac": true}, Filters: map[string]bool{}}
	if _, err := DecodeTranscodeParams(json.RawMessage(`{"container":"webm"}`), caps); err == nil || !strings.Contains(err.Error(), "libvpx-vp9") {
		t.Errorf("caps: %v", err)
	}
	if _, err := DecodeTranscodeParams(json.RawMessage(`{}`), caps); err != nil {
		t.Errorf("caps h264/aac: %v", err)
	}
	// Every preset is valid.
	for name, p := range TranscodePresets() {
		if _, err := DecodeTranscodeParams(p, nil); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
}

// tcTestChildren counts the ffmpeg processes whose command line mentions
// dir.
func tcTestChildren(dir string) int {
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 0 && filepath.Base(args[0]) == "ffmpeg" && strings.Contains(string(b), dir) {
			n++
		}
	}
	return n
}

// tcTestCancel runs r with params in the background, cancels once ffmpeg
// runs, and checks that Run returns within 1 s with no ffmpeg left.
func tcTestCancel(t *testing.T, r Runner, in Media, params string) {
	t.Helper()
	env, _ := tcTestEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(ctx, env, in, json.RawMessage(params))
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for tcTestChildren(env.OutDir) == 0 && tcTestChildren(in.Path) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("ffmpeg never started")
		}
		select {
		case err := <-done:
			t.Fatalf("finished before the cancel: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	at := time.Now()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled run: %v", err)
		}
		if d := time.Since(at); d > time.Second {
			t.Errorf("returned %s after the cancel", d)
		}
	case <-time.After(time.Second):
		t.Fatal("did not return within 1 s of the cancel")
	}
	if n := tcTestChildren(in.Path); n > 0 {
		t.Errorf("%d ffmpeg children remain", n)
	}
}

func TestTranscodeCancel(t *testing.T) {
	in := tcTestAV(t, 640, 360, "20")
	tcTestCancel(t, Transcode(), in, `{"video":{"codec":"h265","preset":"veryslow"}}`)
}

func TestTranscodeSizeAndRate(t *testing.T) {
	for _, tc := range []struct {
		srcW, srcH, w, h int
		up               bool
		wantW, wantH     int
	}{
		{1920, 1080, 1280, 720, false, 1280, 720},
		{1920, 1080, 1280, 0, false, 1280, 720},
		{1920, 1080, 0, 480, false, 854, 480},
		{1440, 1080, 1280, 720, false, 960, 720},
		{320, 240, 1280, 720, false, 320, 240},
		{320, 240, 1280, 720, true, 960, 720},
		{321, 241, 0, 0, false, 320, 240},
	} {
		if w, h := tcFitSize(tc.srcW, tc.srcH, tc.w, tc.h, tc.up); w != tc.wantW || h != tc.wantH {
			t.Errorf("fit %dx%d into %dx%d (upscale %v): %dx%d, want %dx%d", tc.srcW, tc.srcH, tc.w, tc.h, tc.up, w, h, tc.wantW, tc.wantH)
		}
	}
	for in, want := range map[float64]string{25: "25", 29.97: "30000/1001", 23.976: "24000/1001", 59.94: "60000/1001", 12.5: "12.5"} {
		if got := tcFpsArg(in); got != want {
			t.Errorf("fps %v: %s, want %s", in, got, want)
		}
	}
}
