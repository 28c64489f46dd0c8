package vod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
	"github.com/mps-dev/mps/transcoder"
)

// qualityFFmpeg runs ffmpeg to make test media.
func qualityFFmpeg(t *testing.T, args ...string) {
	t.Helper()
	full := append([]string{"-nostdin", "-v", "error", "-y"}, args...)
	if out, err := exec.Command("ffmpeg", full...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
	}
}

// qualityMedia is the test media, made once per test run.
type qualityMedia struct {
	dir       string
	ref       string // testsrc2 320x240 25 fps 4 s, lossless (ffv1)
	faithful  string // ref re-encoded with x264 crf 18
	bars      string // smptebars, same size, rate and length
	rate30    string // ref at 30 fps
	small     string // ref scaled to 160x120
	short     string // the first 2 s of ref
	audioOnly string // sine, no video
}

func makeQualityMedia(t *testing.T) *qualityMedia {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	dir := t.TempDir()
	m := &qualityMedia{
		dir:       dir,
		ref:       filepath.Join(dir, "ref.mkv"),
		faithful:  filepath.Join(dir, "faithful.mp4"),
		bars:      filepath.Join(dir, "bars.mp4"),
		rate30:    filepath.Join(dir, "rate30.mp4"),
		small:     filepath.Join(dir, "small.mp4"),
		short:     filepath.Join(dir, "short.mp4"),
		audioOnly: filepath.Join(dir, "audio.m4a"),
	}
	qualityFFmpeg(t, "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=4", "-c:v", "ffv1", m.ref)
	x264 := []string{"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"}
	qualityFFmpeg(t, append([]string{"-i", m.ref, "-crf", "18"}, append(x264, m.faithful)...)...)
	qualityFFmpeg(t, append([]string{"-f", "lavfi", "-i", "smptebars=size=320x240:rate=25:duration=4"}, append(x264, m.bars)...)...)
	qualityFFmpeg(t, append([]string{"-i", m.ref, "-vf", "fps=30", "-crf", "18"}, append(x264, m.rate30)...)...)
	qualityFFmpeg(t, append([]string{"-i", m.ref, "-vf", "scale=160:120", "-crf", "18"}, append(x264, m.small)...)...)
	qualityFFmpeg(t, append([]string{"-i", m.ref, "-t", "2", "-crf", "18"}, append(x264, m.short)...)...)
	qualityFFmpeg(t, "-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", m.audioOnly)
	return m
}

// qualityRun is one run of the quality runner.
type qualityRun struct {
	outs     []Output
	err      error
	report   QualityReport
	progress []float64
	outDir   string
}

func runQualityTask(t *testing.T, caps *transcoder.Capabilities, distorted string, params string) *qualityRun {
	t.Helper()
	in, err := Probe(context.Background(), Env{}, distorted)
	if err != nil {
		t.Fatalf("probe %s: %v", distorted, err)
	}
	return runQualityOn(t, context.Background(), caps, in, params)
}

func runQualityOn(t *testing.T, ctx context.Context, caps *transcoder.Capabilities, in Media, params string) *qualityRun {
	t.Helper()
	r := &qualityRun{outDir: t.TempDir()}
	var mu sync.Mutex
	env := Env{
		Caps:   caps,
		OutDir: r.outDir,
		Progress: func(f float64) {
			mu.Lock()
			r.progress = append(r.progress, f)
			mu.Unlock()
		},
	}
	r.outs, r.err = Quality().Run(ctx, env, in, json.RawMessage(params))
	if r.err != nil {
		return r
	}
	if len(r.outs) != 1 {
		t.Fatalf("outputs %+v, want one report", r.outs)
	}
	o := r.outs[0]
	if o.Kind != "report" || o.Path != QualityReportFile || o.MIME != "application/json" {
		t.Fatalf("output %+v", o)
	}
	b, err := os.ReadFile(filepath.Join(r.outDir, o.Path))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != o.Size {
		t.Fatalf("output size %d, file has %d", o.Size, len(b))
	}
	if err := json.Unmarshal(b, &r.report); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	// Only the report is left in OutDir: the stats files are gone.
	entries, _ := os.ReadDir(r.outDir)
	if len(entries) != 1 {
		t.Fatalf("OutDir holds %v, want only %s", entries, QualityReportFile)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(r.progress) == 0 || r.progress[len(r.progress)-1] != 1 {
		t.Fatalf("progress %v does not end at 1", r.progress)
	}
	for i, p := range r.progress {
		if p < 0 || p > 1 || (i > 0 && p < r.progress[i-1]) {
			t.Fatalf("progress %v is not monotonic in 0..1", r.progress)
		}
	}
	return r
}

func noVMAFCaps() *transcoder.Capabilities {
	return &transcoder.Capabilities{
		FFmpegVersion: "5.1",
		Encoders:      map[string]bool{"libx264": true},
		Filters:       map[string]bool{"psnr": true, "ssim": true, "scale": true, "split": true, "fps": true},
	}
}

func qualityParams(ref string, extra string) string {
	b, _ := json.Marshal(ref)
	if extra == "" {
		return fmt.Sprintf(`{"reference":%s}`, b)
	}
	return fmt.Sprintf(`{"reference":%s,%s}`, b, extra)
}

func TestQualityRunner(t *testing.T) {
	m := makeQualityMedia(t)

	t.Run("faithful re-encode", func(t *testing.T) {
		r := runQualityTask(t, noVMAFCaps(), m.faithful, qualityParams(m.ref, ""))
		if r.err != nil {
			t.Fatal(r.err)
		}
		rep := r.report
		if rep.PSNR == nil || rep.SSIM == nil {
			t.Fatalf("report %+v lacks psnr or ssim", rep)
		}
		t.Logf("psnr %+v ssim %+v", *rep.PSNR, *rep.SSIM)
		if rep.PSNR.Mean <= 35 || rep.SSIM.Mean <= 0.95 {
			t.Fatalf("faithful re-encode: psnr %.2f ssim %.4f, want > 35 dB and > 0.95", rep.PSNR.Mean, rep.SSIM.Mean)
		}
		for _, s := range []*MetricSummary{rep.PSNR, rep.SSIM} {
			if s.Frames != 100 || s.Min > s.Mean || s.Mean > s.Max {
				t.Fatalf("summary %+v: want 100 frames and min <= mean <= max", *s)
			}
			if s.WorstFrame < 0 || s.WorstFrame >= 100 || math.Abs(s.WorstTime-float64(s.WorstFrame)/25) > 1e-9 {
				t.Fatalf("worst frame %d at %.3fs", s.WorstFrame, s.WorstTime)
			}
		}
		if len(rep.PerFrame["psnr"]) != 100 || len(rep.PerFrame["ssim"]) != 100 {
			t.Fatalf("per-frame lengths %d, %d", len(rep.PerFrame["psnr"]), len(rep.PerFrame["ssim"]))
		}
		if rep.PerFrame["psnr"][rep.PSNR.WorstFrame] != rep.PSNR.Min {
			t.Fatal("the worst psnr frame does not hold the minimum")
		}
		if rep.Width != 320 || rep.Height != 240 || rep.FrameRate != 25 || rep.Subsample != 1 {
			t.Fatalf("report %dx%d@%v subsample %d", rep.Width, rep.Height, rep.FrameRate, rep.Subsample)
		}
		if rep.VMAF.Available || rep.VMAF.Computed || rep.VMAF.Reason != vmafUnavailableReason {
			t.Fatalf("vmaf %+v, want unavailable", rep.VMAF)
		}
		// Output Data carries the summaries.
		d := r.outs[0].Data
		ps, ok := d["psnr"].(MetricSummary)
		if !ok || ps != *rep.PSNR {
			t.Fatalf("data psnr %#v, report %+v", d["psnr"], *rep.PSNR)
		}
		if ss, ok := d["ssim"].(MetricSummary); !ok || ss != *rep.SSIM {
			t.Fatalf("data ssim %#v", d["ssim"])
		}
		if v, ok := d["vmaf"].(VMAFResult); !ok || v.Available {
			t.Fatalf("data vmaf %#v", d["vmaf"])
		}
		if _, err := json.Marshal(d); err != nil {
			t.Fatalf("data does not marshal: %v", err)
		}
	})

	t.Run("different video", func(t *testing.T) {
		good := runQualityTask(t, nil, m.faithful, qualityParams(m.ref, ""))
		r := runQualityTask(t, nil, m.bars, qualityParams(m.ref, ""))
		if r.err != nil || good.err != nil {
			t.Fatal(r.err, good.err)
		}
		t.Logf("bars vs testsrc2: psnr %+v ssim %+v", *r.report.PSNR, *r.report.SSIM)
		if r.report.PSNR.Mean >= 20 || r.report.PSNR.Mean > good.report.PSNR.Mean-15 {
			t.Fatalf("different video: psnr %.2f dB, want < 20 and far below %.2f", r.report.PSNR.Mean, good.report.PSNR.Mean)
		}
		if r.report.SSIM.Mean >= 0.8 {
			t.Fatalf("different video: ssim %.4f", r.report.SSIM.Mean)
		}
		if r.report.PSNR.Frames != 100 {
			t.Fatalf("frames %d", r.report.PSNR.Frames)
		}
	})

	t.Run("identical files", func(t *testing.T) {
		r := runQualityTask(t, nil, m.ref, qualityParams(m.ref, `"metrics":["ssim","psnr"]`))
		if r.err != nil {
			t.Fatal(r.err)
		}
		p, s := r.report.PSNR, r.report.SSIM
		if p.Mean != PSNRCap || p.Min != PSNRCap || p.Capped != 100 || p.Frames != 100 {
			t.Fatalf("identical psnr %+v, want every frame capped at %v", *p, PSNRCap)
		}
		if s.Mean != 1 || s.Min != 1 {
			t.Fatalf("identical ssim %+v", *s)
		}
		// The report is valid JSON with no Inf in it.
		b, _ := os.ReadFile(filepath.Join(r.outDir, QualityReportFile))
		if strings.Contains(strings.ToLower(string(b)), "inf") {
			t.Fatalf("report mentions inf: %s", b[:200])
		}
	})

	t.Run("frame rate aligned", func(t *testing.T) {
		r := runQualityTask(t, nil, m.rate30, qualityParams(m.ref, ""))
		if r.err != nil {
			t.Fatal(r.err)
		}
		p := r.report.PSNR
		t.Logf("30 fps vs 25 fps: psnr %+v, warnings %q", *p, r.report.Warnings)
		if p.Frames < 98 || p.Frames > 101 {
			t.Fatalf("compared %d frames, want about 100 (the reference's 25 fps)", p.Frames)
		}
		if p.Mean <= 35 {
			t.Fatalf("aligned psnr %.2f, want > 35", p.Mean)
		}
		if len(r.report.Warnings) == 0 || !strings.Contains(r.report.Warnings[0], "fps") {
			t.Fatalf("warnings %q", r.report.Warnings)
		}
	})

	t.Run("shorter input", func(t *testing.T) {
		r := runQualityTask(t, nil, m.short, qualityParams(m.ref, ""))
		if r.err != nil {
			t.Fatal(r.err)
		}
		if p := r.report.PSNR; p.Frames != 50 || p.Mean <= 35 {
			t.Fatalf("2 s against 4 s: %+v, want the 50 common frames compared", *p)
		}
		if len(r.report.Warnings) == 0 || !strings.Contains(r.report.Warnings[0], "only the first 2.00s") {
			t.Fatalf("warnings %q", r.report.Warnings)
		}
	})

	t.Run("sizes", func(t *testing.T) {
		for _, tc := range []struct {
			scale string
			w, h  int
		}{{"", 320, 240}, {"reference", 320, 240}, {"distorted", 160, 120}, {"200x150", 200, 150}} {
			extra := ""
			if tc.scale != "" {
				extra = fmt.Sprintf(`"scale":%q`, tc.scale)
			}
			r := runQualityTask(t, nil, m.small, qualityParams(m.ref, extra))
			if r.err != nil {
				t.Fatalf("scale %q: %v", tc.scale, r.err)
			}
			if r.report.Width != tc.w || r.report.Height != tc.h {
				t.Fatalf("scale %q: compared at %dx%d, want %dx%d", tc.scale, r.report.Width, r.report.Height, tc.w, tc.h)
			}
			// A downscaled copy still resembles its source.
			if p := r.report.PSNR.Mean; p < 20 || p >= PSNRCap {
				t.Fatalf("scale %q: psnr %.2f", tc.scale, p)
			}
		}
	})

	t.Run("subsample", func(t *testing.T) {
		r := runQualityTask(t, nil, m.faithful, qualityParams(m.ref, `"subsample":4,"metrics":["psnr"]`))
		if r.err != nil {
			t.Fatal(r.err)
		}
		p := r.report.PSNR
		if p.Frames != 25 || r.report.SSIM != nil {
			t.Fatalf("subsample 4: %+v, ssim %v", *p, r.report.SSIM)
		}
		if p.WorstFrame%4 != 0 || math.Abs(p.WorstTime-float64(p.WorstFrame)/25) > 1e-9 {
			t.Fatalf("worst frame %d at %.3fs, want a multiple of 4 in reference frames", p.WorstFrame, p.WorstTime)
		}
	})

	t.Run("vmaf unavailable", func(t *testing.T) {
		r := runQualityTask(t, noVMAFCaps(), m.faithful, qualityParams(m.ref, `"metrics":["psnr","vmaf"]`))
		if r.err != nil {
			t.Fatal(r.err)
		}
		v := r.report.VMAF
		if v.Available || v.Computed || v.Reason != "this ffmpeg has no libvmaf filter" || v.Summary != nil {
			t.Fatalf("vmaf %+v", v)
		}
		if r.report.PSNR == nil || r.report.PSNR.Mean <= 35 {
			t.Fatalf("psnr %+v", r.report.PSNR)
		}
		// Raw JSON shape: {"vmaf": {"available": false, "reason": ...}}.
		var raw map[string]map[string]any
		b, _ := os.ReadFile(filepath.Join(r.outDir, QualityReportFile))
		_ = json.Unmarshal(b, &raw)
		if raw["vmaf"]["available"] != false || raw["vmaf"]["reason"] != vmafUnavailableReason {
			t.Fatalf("raw vmaf %v", raw["vmaf"])
		}
		// VMAF alone: nothing to compute, still no failure.
		r = runQualityTask(t, noVMAFCaps(), m.faithful, qualityParams(m.ref, `"metrics":["vmaf"]`))
		if r.err != nil || r.report.VMAF.Available || r.report.PSNR != nil {
			t.Fatalf("vmaf only: %v %+v", r.err, r.report)
		}
	})

	t.Run("vmaf with the real ffmpeg's capabilities", func(t *testing.T) {
		caps, err := transcoder.Probe(context.Background(), "ffmpeg")
		if err != nil {
			t.Fatal(err)
		}
		r := runQualityTask(t, caps, m.faithful, qualityParams(m.ref, `"metrics":["psnr","ssim","vmaf"]`))
		if r.err != nil {
			t.Fatal(r.err)
		}
		v := r.report.VMAF
		if caps.HasFilter("libvmaf") {
			if !v.Available || !v.Computed || v.Summary == nil || v.Summary.Mean < 50 {
				t.Fatalf("vmaf %+v", v)
			}
		} else if v.Available || v.Reason != vmafUnavailableReason {
			t.Fatalf("this ffmpeg has no libvmaf, but vmaf is %+v", v)
		}
	})

	t.Run("no video", func(t *testing.T) {
		r := runQualityTask(t, nil, m.audioOnly, qualityParams(m.ref, ""))
		if !errors.Is(r.err, ErrBadInput) || !strings.Contains(r.err.Error(), "the input has no video stream") {
			t.Fatalf("audio-only input: %v", r.err)
		}
		r = runQualityTask(t, nil, m.faithful, qualityParams(m.audioOnly, ""))
		if !errors.Is(r.err, ErrBadInput) || !strings.Contains(r.err.Error(), "reference") ||
			!strings.Contains(r.err.Error(), "no video stream") {
			t.Fatalf("audio-only reference: %v", r.err)
		}
	})

	t.Run("bad params", func(t *testing.T) {
		text := filepath.Join(m.dir, "notes.txt")
		if err := os.WriteFile(text, []byte("not a video\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		truncated := filepath.Join(m.dir, "truncated.mp4")
		b, _ := os.ReadFile(m.faithful)
		if err := os.WriteFile(truncated, b[:len(b)/3], 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ params, field string }{
			{`{}`, "reference"},
			{`{"reference":"  "}`, "reference"},
			{qualityParams(filepath.Join(m.dir, "missing.mkv"), ""), "reference"},
			{qualityParams(m.dir, ""), "reference"},
			{qualityParams(text, ""), "reference"},
			{qualityParams(m.ref, `"metrics":["psnr","mse"]`), "metrics[1]"},
			{qualityParams(m.ref, `"metrics":["psnr","psnr"]`), "metrics[1]"},
			{qualityParams(m.ref, `"metrics":"psnr"`), "metrics"},
			{qualityParams(m.ref, `"subsample":-1`), "subsample"},
			{qualityParams(m.ref, `"subsample":5000`), "subsample"},
			{qualityParams(m.ref, `"scale":"big"`), "scale"},
			{qualityParams(m.ref, `"scale":"8x8"`), "scale"},
			{qualityParams(m.ref, `"scale":"320xabc"`), "scale"},
			{qualityParams(m.ref, `"sharpness":3`), "sharpness"},
		} {
			r := runQualityTask(t, nil, m.faithful, tc.params)
			if !errors.Is(r.err, ErrBadInput) || !strings.Contains(r.err.Error(), tc.field) {
				t.Errorf("%s: %v, want ErrBadInput naming %s", tc.params, r.err, tc.field)
			}
		}
		// A truncated reference is caught by the probe or by ffmpeg; either
		// way the task fails and says so.
		r := runQualityTask(t, nil, m.faithful, qualityParams(truncated, ""))
		if r.err == nil || !strings.Contains(r.err.Error(), "reference") {
			t.Errorf("truncated reference: %v", r.err)
		}
		if os.Getuid() != 0 {
			unreadable := filepath.Join(m.dir, "unreadable.mkv")
			_ = os.WriteFile(unreadable, b, 0o000)
			r := runQualityTask(t, nil, m.faithful, qualityParams(unreadable, ""))
			if !errors.Is(r.err, ErrBadInput) || !strings.Contains(r.err.Error(), "reference") {
				t.Errorf("unreadable reference: %v", r.err)
			}
		}
	})

	t.Run("escaped paths", func(t *testing.T) {
		// Output folders and references with filtergraph syntax in their
		// names.
		odd := filepath.Join(m.dir, `we'ird:dir, [x];y\z`)
		if err := os.MkdirAll(odd, 0o755); err != nil {
			t.Fatal(err)
		}
		ref := filepath.Join(odd, "ref 'a':b.mkv")
		b, _ := os.ReadFile(m.ref)
		if err := os.WriteFile(ref, b, 0o644); err != nil {
			t.Fatal(err)
		}
		in, err := Probe(context.Background(), Env{}, m.faithful)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(odd, "out")
		if err := os.Mkdir(out, 0o755); err != nil {
			t.Fatal(err)
		}
		outs, err := Quality().Run(context.Background(), Env{OutDir: out, Progress: func(float64) {}}, in, json.RawMessage(qualityParams(ref, "")))
		if err != nil {
			t.Fatal(err)
		}
		if outs[0].Data["psnr"].(MetricSummary).Mean <= 35 {
			t.Fatalf("psnr %+v", outs[0].Data["psnr"])
		}
	})
}

func TestQualityCancelKillsFFmpeg(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg", "ffprobe", "pgrep")
	dir := t.TempDir()
	// A long input made quickly: a short clip concatenated by stream copy.
	clip := filepath.Join(dir, "clip.mp4")
	qualityFFmpeg(t, "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=25:duration=10",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "250", "-pix_fmt", "yuv420p", clip)
	list := filepath.Join(dir, "list.txt")
	var sb strings.Builder
	for range 60 {
		fmt.Fprintf(&sb, "file '%s'\n", clip)
	}
	if err := os.WriteFile(list, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(dir, "long.mp4")
	qualityFFmpeg(t, "-f", "concat", "-safe", "0", "-i", list, "-c", "copy", long)
	in, err := Probe(context.Background(), Env{}, long)
	if err != nil {
		t.Fatal(err)
	}
	if in.Duration < 500*time.Second {
		t.Fatalf("long input lasts %v", in.Duration)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var last float64
	env := Env{OutDir: filepath.Join(dir, "out"), Progress: func(f float64) { mu.Lock(); last = f; mu.Unlock() }}
	if err := os.Mkdir(env.OutDir, 0o755); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Quality().Run(ctx, env, in, json.RawMessage(qualityParams(long, "")))
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for qualityFFmpegProcs(long) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("ffmpeg never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(1200 * time.Millisecond) // let it make progress
	mu.Lock()
	p := last
	mu.Unlock()
	if p <= 0 || p >= 1 {
		t.Errorf("progress %.3f during the run, want between 0 and 1", p)
	}
	cancel()
	at := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled run: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the runner did not return within 2 s of the cancel")
	}
	for qualityFFmpegProcs(long) > 0 {
		if time.Since(at) > time.Second {
			t.Fatal("ffmpeg still runs 1 s after the cancel")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("returned and ffmpeg gone %v after the cancel", time.Since(at))
	if entries, _ := os.ReadDir(env.OutDir); len(entries) != 0 {
		t.Errorf("a cancelled run left %v", entries)
	}
}

// qualityFFmpegProcs counts ffmpeg processes whose command line mentions
// path.
func qualityFFmpegProcs(path string) int {
	out, _ := exec.Command("pgrep", "-f", "ffmpeg.*"+path).Output()
	return len(strings.Fields(string(out)))
}

func TestQualityPresets(t *testing.T) {
	ps := QualityPresets()
	if _, ok := ps["quality-psnr-ssim"]; !ok {
		t.Fatal("no quality-psnr-ssim preset")
	}
	for name, raw := range ps {
		var p QualityParams
		if err := DecodeParams(raw, &p); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Reference != "" {
			t.Fatalf("%s names a reference", name)
		}
		p.applyDefaults()
		p.Reference = "/some/file.mp4" // the job names it
		if err := p.validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	var p QualityParams
	_ = DecodeParams(ps["quality-psnr-ssim"], &p)
	if strings.Join(p.Metrics, ",") != "psnr,ssim" {
		t.Fatalf("quality-psnr-ssim metrics %v", p.Metrics)
	}
}

func TestQualityGraph(t *testing.T) {
	ref := Media{Path: "/r.mkv", Video: &VideoStream{Width: 320, Height: 240, FPS: 30000.0 / 1001}}
	in := Media{Path: "/d.mp4", Video: &VideoStream{Width: 160, Height: 120, FPS: 25}}
	plan := &qualityPlan{
		params: QualityParams{Subsample: 3, Scale: QualityScaleReference},
		psnr:   true, ssim: true, vmafAsked: true, vmafAvailable: true,
		width: 320, height: 240, ref: ref,
	}
	g, outs := qualityGraph(plan, in, "/t/p.log", "/t/s.log", "/t/v.json")
	for _, want := range []string{
		"[0:v:0]setpts=PTS-STARTPTS,fps=fps=30000/1001,scale=320:240:flags=bicubic,setsar=1,format=yuv420p,framestep=step=3,split=3[d0][d1][d2]",
		"[1:v:0]setpts=PTS-STARTPTS,setsar=1,format=yuv420p,framestep=step=3,split=3[r0][r1][r2]",
		`[d0][r0]psnr=stats_file=\'/t/p.log\':shortest=1[q0]`,
		`[d1][r1]ssim=stats_file=\'/t/s.log\':shortest=1[q1]`,
		`[d2][r2]libvmaf=log_fmt=json:log_path=\'/t/v.json\'`,
	} {
		if !strings.Contains(g, want) {
			t.Errorf("graph %s\nlacks %s", g, want)
		}
	}
	if len(outs) != 3 {
		t.Fatalf("outs %v", outs)
	}
	// Without libvmaf, no libvmaf filter; without a known size, scale2ref.
	plan.vmafAvailable = false
	plan.width, plan.height = 0, 0
	g, outs = qualityGraph(plan, in, "/t/p.log", "/t/s.log", "/t/v.json")
	if strings.Contains(g, "libvmaf") || len(outs) != 2 || !strings.Contains(g, "[dh][rh]scale2ref") {
		t.Fatalf("graph %s", g)
	}
}

func TestQualityRate(t *testing.T) {
	for in, want := range map[float64]string{25: "25", 30000.0 / 1001: "30000/1001", 24000.0 / 1001: "24000/1001",
		60000.0 / 1001: "60000/1001", 12.5: "12.500000", 0: "", math.NaN(): ""} {
		if got := qualityRate(in); got != want {
			t.Errorf("qualityRate(%v) = %q, want %q", in, got, want)
		}
	}
}

const psnrSample = `n:1 mse_avg:0.52 mse_y:0.61 mse_u:0.34 mse_v:0.33 psnr_avg:50.97 psnr_y:50.28 psnr_u:52.82 psnr_v:52.96 
n:2 mse_avg:0.00 mse_y:0.00 mse_u:0.00 mse_v:0.00 psnr_avg:inf psnr_y:inf psnr_u:inf psnr_v:inf 
n:3 mse_avg:5438.72 mse_y:3967.80 mse_u:8261.36 mse_v:8499.76 psnr_avg:10.78 psnr_y:12.15 psnr_u:8.96 psnr_v:8.84 

`

const ssimSample = `n:1 Y:0.548375 U:0.367590 V:0.257634 All:0.469787 (2.755499)
n:2 Y:1.000000 U:1.000000 V:1.000000 All:1.000000 (inf)
n:3 Y:0.990000 U:0.980000 V:0.970000 All:0.985000 (18.239087)
`

func TestParsePSNRStats(t *testing.T) {
	vals, capped, err := ParsePSNRStats(strings.NewReader(psnrSample))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(vals) != "[50.97 100 10.78]" || capped != 1 {
		t.Fatalf("vals %v capped %d", vals, capped)
	}
	// Gray input: no u/v planes.
	vals, _, err = ParsePSNRStats(strings.NewReader("n:1 mse_avg:1.00 mse_y:1.00 psnr_avg:48.13 psnr_y:48.13\n"))
	if err != nil || fmt.Sprint(vals) != "[48.13]" {
		t.Fatalf("gray: %v %v", vals, err)
	}
	if vals, _, err := ParsePSNRStats(strings.NewReader("")); err != nil || len(vals) != 0 {
		t.Fatalf("empty: %v %v", vals, err)
	}
	for _, bad := range []string{
		"n:1 mse_avg:0.52\n",
		"n:1 psnr_avg:abc\n",
		"n:1 psnr_avg:nan\n",
		"n:1 psnr_avg:-inf\n",
		"n:1 psnr_avg:\n",
		"garbage\n",
	} {
		if _, _, err := ParsePSNRStats(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	// Values above the cap are capped too.
	vals, capped, _ = ParsePSNRStats(strings.NewReader("n:1 psnr_avg:250.00\n"))
	if vals[0] != PSNRCap || capped != 1 {
		t.Fatalf("above cap: %v %d", vals, capped)
	}
}

func TestParseSSIMStats(t *testing.T) {
	vals, err := ParseSSIMStats(strings.NewReader(ssimSample))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(vals) != "[0.469787 1 0.985]" {
		t.Fatalf("vals %v", vals)
	}
	for _, bad := range []string{
		"n:1 Y:0.5 U:0.5 V:0.5 (3.0)\n",
		"n:1 All:x (3.0)\n",
		"n:1 All:inf\n",
		"n:1 All:NaN\n",
	} {
		if _, err := ParseSSIMStats(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseVMAFLog(t *testing.T) {
	v2 := `{"version":"2.3.1","fps":100.0,"frames":[{"frameNum":0,"metrics":{"integer_adm2":0.99,"vmaf":95.5}},
		{"frameNum":1,"metrics":{"vmaf":90.25}}],"pooled_metrics":{"vmaf":{"min":90.25,"max":95.5,"mean":92.875}}}`
	vals, err := ParseVMAFLog([]byte(v2))
	if err != nil || fmt.Sprint(vals) != "[95.5 90.25]" {
		t.Fatalf("v2: %v %v", vals, err)
	}
	v1 := `{"version":"1.5.3","frames":[{"frameNum":0,"adm2":0.99,"vmaf":88.0}],"VMAF score":88.0}`
	vals, err = ParseVMAFLog([]byte(v1))
	if err != nil || fmt.Sprint(vals) != "[88]" {
		t.Fatalf("v1: %v %v", vals, err)
	}
	for _, bad := range []string{`nope`, `{"frames":[{"frameNum":0,"metrics":{"psnr":30}}]}`} {
		if _, err := ParseVMAFLog([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func FuzzParsePSNRStats(f *testing.F) {
	f.Add(psnrSample)
	f.Add("n:1 psnr_avg:inf\n")
	f.Add("n:1 psnr_avg:1e400\n")
	f.Add("psnr_avg:-5 psnr_avg:7\n\n\n")
	f.Add(":::: psnr_avg::\n")
	f.Add(strings.Repeat("x", 70000))
	f.Fuzz(func(t *testing.T, s string) {
		vals, capped, err := ParsePSNRStats(strings.NewReader(s))
		if err != nil {
			return
		}
		if capped < 0 || capped > len(vals) {
			t.Fatalf("capped %d of %d", capped, len(vals))
		}
		for _, v := range vals {
			if math.IsNaN(v) || math.IsInf(v, 0) || v > PSNRCap {
				t.Fatalf("value %v", v)
			}
		}
	})
}

func FuzzParseSSIMStats(f *testing.F) {
	f.Add(ssimSample)
	f.Add("n:1 All:1.000000 (inf)\n")
	f.Add("All:0x1p-2 All:3\n")
	f.Add("All:\n")
	f.Add(strings.Repeat("All:1 ", 20000))
	f.Fuzz(func(t *testing.T, s string) {
		vals, err := ParseSSIMStats(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, v := range vals {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("value %v", v)
			}
		}
	})
}
