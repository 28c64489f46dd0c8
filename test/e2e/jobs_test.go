package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/gif"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// End-to-end tests of the VOD job engine (issue 5): every task type makes
// real outputs, served at /outputs/; progress, cancel, restart safety, bad
// inputs, idempotency, the CLI and recording workflows. Webhooks are in
// webhooks_test.go.

// templateExists reports whether the server has a template of a task type.
func (s *server) templateExists(t *testing.T, taskType, name string) bool {
	t.Helper()
	code, b := s.api(t, http.MethodGet, "/api/v1/templates?type="+taskType, apiToken)
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/templates?type=%s: %d %.300s", taskType, code, b)
	}
	var list struct {
		Templates []struct {
			Type    string `json:"type"`
			Name    string `json:"name"`
			Builtin bool   `json:"builtin"`
		} `json:"templates"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatalf("GET /api/v1/templates: %v: %.300s", err, b)
	}
	for _, tp := range list.Templates {
		if tp.Type == taskType && tp.Name == name {
			return true
		}
	}
	return false
}

type jobTask struct {
	Type     string `json:"type"`
	Template string `json:"template,omitempty"`
	Params   any    `json:"params,omitempty"`
}

type jobSpec struct {
	Input          map[string]string `json:"input"`
	Tasks          []jobTask         `json:"tasks"`
	Output         string            `json:"output,omitempty"`
	SessionID      string            `json:"session_id,omitempty"`
	SessionContext any               `json:"session_context,omitempty"`
	Notify         map[string]string `json:"notify,omitempty"`
}

func pathInput(p string) map[string]string { return map[string]string{"path": p} }

// TestJobsTaskTypes runs one job per task type on small clips made with
// ffmpeg, and checks the outputs it serves at /outputs/ with ffprobe,
// ffmpeg and Go's image decoders.
func TestJobsTaskTypes(t *testing.T) {
	t.Parallel()
	env := newJobEnv(t)
	makeClip(t, filepath.Join(env.Media, "clip.mp4"), clipOptions{Dur: 4})
	// A different picture of the same size and length, for the PSNR
	// against another video.
	makeClip(t, filepath.Join(env.Media, "other.mp4"), clipOptions{Dur: 4, Video: "smptebars"})
	// Quiet audio (about -40 LUFS), far from the -23 target.
	quiet := makeClip(t, filepath.Join(env.Media, "quiet.mp4"), clipOptions{Dur: 6, Audio: "sine=frequency=1000:sample_rate=48000,volume=0.02"})
	s := startServer(t, serverOptions{Config: env.config("  workers: 2\n")})

	// Decided before anything is submitted: the adaptive task type may not
	// be there yet.
	hasAdaptive := s.templateExists(t, "adaptive", "adaptive-default")
	if hasAdaptive {
		makeClip(t, filepath.Join(env.Media, "clip360.mp4"), clipOptions{Dur: 6, Size: "640x360"})
	}

	watermark := map[string]any{"watermark": map[string]any{"text": "MPS WATERMARK", "position": "top-right", "scale": 0.08}}
	jobs := map[string]apiJob{
		"transcode": s.mustSubmit(t, jobSpec{Input: pathInput("clip.mp4"), Tasks: []jobTask{
			{Type: "transcode", Template: "mp4-720p"},
			{Type: "quality", Template: "quality-psnr-ssim"},
		}}),
		"watermark": s.mustSubmit(t, jobSpec{Input: pathInput("clip.mp4"), Tasks: []jobTask{{Type: "transcode", Template: "mp4-720p", Params: watermark}}}),
		"snapshot":  s.mustSubmit(t, jobSpec{Input: pathInput("clip.mp4"), Tasks: []jobTask{{Type: "snapshot", Template: "snapshot-sample-10s", Params: map[string]any{"interval": 1}}}}),
		"sprite":    s.mustSubmit(t, jobSpec{Input: pathInput("clip.mp4"), Tasks: []jobTask{{Type: "sprite", Template: "sprite-default"}}}),
		"gif":       s.mustSubmit(t, jobSpec{Input: pathInput("clip.mp4"), Tasks: []jobTask{{Type: "animated", Template: "gif-preview"}}}),
		"loudnorm":  s.mustSubmit(t, jobSpec{Input: pathInput("quiet.mp4"), Tasks: []jobTask{{Type: "enhance", Template: "loudnorm-ebu"}}}),
		"psnr-other": s.mustSubmit(t, jobSpec{Input: pathInput("clip.mp4"), Tasks: []jobTask{
			{Type: "quality", Template: "quality-psnr-ssim", Params: map[string]any{"reference": "other.mp4"}},
		}}),
	}
	if hasAdaptive {
		jobs["adaptive"] = s.mustSubmit(t, jobSpec{Input: pathInput("clip360.mp4"), Tasks: []jobTask{{Type: "adaptive", Template: "adaptive-default"}}})
	}
	for name, j := range jobs {
		if j.State != "queued" || len(j.Tasks) == 0 {
			t.Errorf("%s: a new job is %s with %d tasks, want queued: %v", name, j.State, len(j.Tasks), j)
		}
	}
	const jobTimeout = 90 * time.Second
	var psnrFaithful float64

	t.Run("transcode", func(t *testing.T) {
		j := waitJobSucceeded(t, s, jobs["transcode"].ID, jobTimeout)
		o := j.output(t, 0, "video")
		if !strings.HasPrefix(o.Path, j.OutputDir+"/") {
			t.Errorf("output path %q is not below the job's output_dir %q", o.Path, j.OutputDir)
		}
		vi := probeVideo(t, s.outputURL(o), false)
		t.Logf("mp4-720p of a 320x240 4 s clip: %+v (job says %dx%d %.3f s)", vi, o.Width, o.Height, o.Duration)
		if vi.VideoCodec != "h264" || vi.AudioCodec != "aac" {
			t.Errorf("codecs %s/%s, want h264/aac", vi.VideoCodec, vi.AudioCodec)
		}
		// mp4-720p bounds the picture to 1280x720 and does not upscale by
		// default: a 320x240 input stays 320x240.
		if vi.Width != 320 || vi.Height != 240 {
			t.Errorf("size %dx%d, want 320x240 (the input's; no upscale by default)", vi.Width, vi.Height)
		}
		if o.Width != vi.Width || o.Height != vi.Height {
			t.Errorf("the job says %dx%d, the file is %dx%d", o.Width, o.Height, vi.Width, vi.Height)
		}
		if math.Abs(vi.Duration-4) > 0.2 || math.Abs(o.Duration-vi.Duration) > 0.1 {
			t.Errorf("duration %.3f s (job says %.3f), want 4 s", vi.Duration, o.Duration)
		}
		if o.MIME != "video/mp4" {
			t.Errorf("output mime %q, want video/mp4", o.MIME)
		}

		// Range requests work on outputs.
		full := s.fetchOutput(t, o)
		code, h, part := getWith(t, s.outputURL(o), map[string]string{"Range": "bytes=100-199"})
		if code != http.StatusPartialContent || len(part) != 100 || string(part) != string(full[100:200]) {
			t.Errorf("GET %s Range bytes=100-199: %d, %d bytes (same as the file: %v), want 206 and those 100 bytes", o.Path, code, len(part), len(part) == 100 && string(part) == string(full[100:200]))
		}
		if cr := h.Get("Content-Range"); cr != fmt.Sprintf("bytes 100-199/%d", len(full)) {
			t.Errorf("Content-Range %q, want bytes 100-199/%d", cr, len(full))
		}
		// No listing of folders, nothing outside the jobs folder.
		if code, _ := httpGet(t, s.URL("/outputs/"+j.OutputDir)); code != http.StatusNotFound {
			t.Errorf("GET /outputs/%s (a folder): %d, want 404", j.OutputDir, code)
		}
		if code, _, _ := rawRequest(t, s.HTTPAddr, http.MethodGet, "/outputs/../db/mps.db", nil); code == http.StatusOK {
			t.Errorf("GET /outputs/../db/mps.db: 200, want a refusal")
		}

		// Task 2: the quality of the transcode against its source.
		q := j.output(t, 1, "report")
		psnr, ssim := metricMean(t, q, "psnr"), metricMean(t, q, "ssim")
		t.Logf("quality of the mp4-720p output against its source: PSNR %.2f dB, SSIM %.4f", psnr, ssim)
		psnrFaithful = psnr
		if psnr <= 35 {
			t.Errorf("PSNR of a faithful re-encode is %.2f dB, want > 35", psnr)
		}
		if ssim < 0.9 || ssim > 1 {
			t.Errorf("SSIM of a faithful re-encode is %.4f, want 0.9..1", ssim)
		}
		var report map[string]any
		if err := json.Unmarshal(s.fetchOutput(t, q), &report); err != nil {
			t.Errorf("quality report %s is not JSON: %v", q.Path, err)
		} else if report["psnr"] == nil || report["ssim"] == nil {
			t.Errorf("quality report %s has no psnr or ssim: %v", q.Path, report)
		}
	})

	t.Run("psnr-other", func(t *testing.T) {
		j := waitJobSucceeded(t, s, jobs["psnr-other"].ID, jobTimeout)
		psnr := metricMean(t, j.output(t, 0, "report"), "psnr")
		t.Logf("PSNR of testsrc2 against smptebars: %.2f dB (faithful re-encode: %.2f dB)", psnr, psnrFaithful)
		if psnr >= 25 {
			t.Errorf("PSNR against a different video is %.2f dB, want far lower than a re-encode's (< 25 dB)", psnr)
		}
		if psnrFaithful > 0 && psnrFaithful-psnr < 10 {
			t.Errorf("PSNR against a different video (%.2f dB) is less than 10 dB below a faithful re-encode's (%.2f dB)", psnr, psnrFaithful)
		}
	})

	t.Run("watermark", func(t *testing.T) {
		plain := waitJobSucceeded(t, s, jobs["transcode"].ID, jobTimeout)
		marked := waitJobSucceeded(t, s, jobs["watermark"].ID, jobTimeout)
		a, w, h := rawFrame(t, s.saveOutput(t, plain.output(t, 0, "video")), 2)
		b, w2, h2 := rawFrame(t, s.saveOutput(t, marked.output(t, 0, "video")), 2)
		if w != w2 || h != h2 {
			t.Fatalf("the watermarked output is %dx%d, the plain one %dx%d", w2, h2, w, h)
		}
		// The text sits in the top-right corner: compare it with the
		// bottom-left corner, where both outputs show the same picture.
		topRight := image.Rect(w/2, 0, w, h/4)
		bottomLeft := image.Rect(0, h*3/4, w/2, h)
		in, out := meanAbsDiff(a, b, w, topRight), meanAbsDiff(a, b, w, bottomLeft)
		t.Logf("mean |difference| watermarked vs plain at 2 s: top-right %.2f, bottom-left %.2f", in, out)
		if in < 4 || in < 4*out {
			t.Errorf("the top-right corner differs by %.2f on average (bottom-left %.2f); want a visible watermark there (>= 4 and 4x the rest)", in, out)
		}
		if out > 3 {
			t.Errorf("the bottom-left corner differs by %.2f on average; the watermark should change only its corner", out)
		}
	})

	t.Run("snapshot", func(t *testing.T) {
		j := waitJobSucceeded(t, s, jobs["snapshot"].ID, jobTimeout)
		outs := j.Tasks[0].Outputs
		// One image a second of a 4 s clip: at 0, 1, 2 and 3 s.
		if len(outs) != 4 {
			t.Errorf("interval 1 over a 4 s clip gave %d images, want 4: %+v", len(outs), outs)
		}
		for i, o := range outs {
			img := decodeImage(t, o.Path, s.fetchOutput(t, o))
			b := img.Bounds()
			// snapshot-sample-10s scales to a width of 640, keeping 4:3.
			if b.Dx() != 640 || b.Dy() != 480 || o.Width != 640 || o.Height != 480 {
				t.Errorf("%s: image %dx%d (job says %dx%d), want 640x480", o.Path, b.Dx(), b.Dy(), o.Width, o.Height)
			}
			if tm, ok := o.Data["time"].(float64); !ok || math.Abs(tm-float64(i)) > 0.05 {
				t.Errorf("%s: time %v, want %d s", o.Path, o.Data["time"], i)
			}
		}
	})

	t.Run("sprite", func(t *testing.T) {
		j := waitJobSucceeded(t, s, jobs["sprite"].ID, jobTimeout)
		sheet := j.output(t, 0, "sprite")
		vtt := j.output(t, 0, "vtt")
		img := decodeImage(t, sheet.Path, s.fetchOutput(t, sheet))
		b := img.Bounds()
		t.Logf("sprite sheet %s: %dx%d; job says %dx%d %v", sheet.Path, b.Dx(), b.Dy(), sheet.Width, sheet.Height, sheet.Data)
		// sprite-default: 10x10 thumbnails 160 wide; 4:3 makes them 120 high.
		if b.Dx() != 1600 || b.Dy() != 1200 || sheet.Width != b.Dx() || sheet.Height != b.Dy() {
			t.Errorf("sheet %dx%d (job says %dx%d), want 1600x1200", b.Dx(), b.Dy(), sheet.Width, sheet.Height)
		}
		text := string(s.fetchOutput(t, vtt))
		cues := parseSpriteVTT(t, text)
		if len(cues) != 100 {
			t.Errorf("%s has %d cues, want 100 (one per thumbnail of a 10x10 sheet)", vtt.Path, len(cues))
		}
		vttBase := path.Dir(vtt.Path)
		images := map[string]image.Rectangle{path.Join(path.Dir(sheet.Path), path.Base(sheet.Path)): b}
		var prevEnd float64
		for i, c := range cues {
			ref := path.Join(vttBase, c.image)
			bounds, ok := images[ref]
			if !ok {
				// Another sheet: it must exist and decode.
				bi := decodeImage(t, ref, fetchOK(t, s.URL("/outputs/"+ref)))
				bounds = bi.Bounds()
				images[ref] = bounds
			}
			if c.w != 160 || c.h != 120 || !c.rect().In(bounds) {
				t.Errorf("cue %d: %s#xywh=%d,%d,%d,%d is not a 160x120 cell inside the %dx%d image", i, c.image, c.x, c.y, c.w, c.h, bounds.Dx(), bounds.Dy())
			}
			if c.start < prevEnd-0.001 || c.end <= c.start {
				t.Errorf("cue %d: %.3f --> %.3f after a cue ending at %.3f", i, c.start, c.end, prevEnd)
			}
			prevEnd = c.end
		}
		if len(cues) > 0 && (cues[0].start != 0 || math.Abs(cues[len(cues)-1].end-4) > 0.2) {
			t.Errorf("cues cover %.3f..%.3f s, want 0..4 s", cues[0].start, cues[len(cues)-1].end)
		}
	})

	t.Run("gif", func(t *testing.T) {
		j := waitJobSucceeded(t, s, jobs["gif"].ID, jobTimeout)
		o := j.output(t, 0, "image")
		g, err := gif.DecodeAll(strings.NewReader(string(s.fetchOutput(t, o))))
		if err != nil {
			t.Fatalf("%s is not a GIF: %v", o.Path, err)
		}
		var total int
		for _, d := range g.Delay {
			total += d
		}
		t.Logf("%s: %d frames, %dx%d, %d centiseconds, loop %d", o.Path, len(g.Image), g.Config.Width, g.Config.Height, total, g.LoopCount)
		// gif-preview: 3 s at 10 fps from 10 % in, 320 wide.
		if n := len(g.Image); n < 28 || n > 31 {
			t.Errorf("GIF has %d frames, want 30 (3 s at 10 fps)", n)
		}
		if g.Config.Width != 320 || g.Config.Height != 240 {
			t.Errorf("GIF is %dx%d, want 320x240", g.Config.Width, g.Config.Height)
		}
		if math.Abs(float64(total)-300) > 20 {
			t.Errorf("GIF plays %d centiseconds, want 300", total)
		}
		if g.LoopCount != 0 {
			t.Errorf("GIF loop count %d, want 0 (forever): gif-preview sets loop", g.LoopCount)
		}
	})

	t.Run("loudnorm", func(t *testing.T) {
		j := waitJobSucceeded(t, s, jobs["loudnorm"].ID, jobTimeout)
		o := j.output(t, 0, "")
		before := loudness(t, quiet)
		after := loudness(t, s.saveOutput(t, o))
		t.Logf("integrated loudness: input %.1f LUFS, loudnorm-ebu output %s %.1f LUFS", before, o.Path, after)
		if math.Abs(before+23) < 5 {
			t.Fatalf("the input is already at %.1f LUFS, too close to -23 to show anything", before)
		}
		if math.Abs(after+23) > 1 {
			t.Errorf("output loudness %.1f LUFS, want -23 ± 1 LU", after)
		}
		vi := probeVideo(t, s.outputURL(o), false)
		if vi.AudioCodec != "aac" || vi.VideoCodec != "h264" || math.Abs(vi.Duration-6) > 0.2 {
			t.Errorf("loudnorm output %+v, want the h264 video and aac audio, 6 s", vi)
		}
	})

	t.Run("adaptive", func(t *testing.T) {
		if !hasAdaptive {
			t.Skip("GET /api/v1/templates?type=adaptive lists no adaptive-default: this build has no adaptive task type yet")
		}
		j := waitJobSucceeded(t, s, jobs["adaptive"].ID, jobTimeout)
		pl := j.output(t, 0, "playlist")
		mpd := j.output(t, 0, "manifest")
		t.Logf("adaptive outputs: %s %dx%d %.3f s %v; %s", pl.Path, pl.Width, pl.Height, pl.Duration, pl.Data, mpd.Path)
		if path.Base(pl.Path) != "index.m3u8" || path.Base(mpd.Path) != "manifest.mpd" {
			t.Errorf("adaptive outputs %s and %s, want index.m3u8 and manifest.mpd", pl.Path, mpd.Path)
		}
		body := string(s.fetchOutput(t, pl))
		if !strings.Contains(body, "#EXT-X-STREAM-INF") {
			t.Errorf("index.m3u8 is no multivariant playlist:\n%s", body)
		}
		res := ffmpegDecode(t, s.outputURL(pl), 10*time.Second)
		t.Logf("ffmpeg decoded %s: %d video frames (%s), %.2f s of audio", pl.Path, res.VideoFrames, res.VideoSize, res.AudioSeconds)
		if res.Err != nil || res.VideoFrames < 150 || res.AudioSeconds < 5 {
			t.Errorf("ffmpeg decoded %d video frames and %.2f s of audio from the 6 s HLS output (error %v), want about 180 and 6 s\n%s",
				res.VideoFrames, res.AudioSeconds, res.Err, res.Stderr)
		}
		dir := browserDir(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, tc := range []struct{ player, u string }{{"hls", s.outputURL(pl)}, {"dash", s.outputURL(mpd)}} {
			t.Run(tc.player, func(t *testing.T) {
				res := runPlayerWith(t, ctx, dir, tc.player, tc.u, 3, 30, nil, playerOptions{Width: pl.Width, Height: pl.Height})
				if tc.player == "hls" && res.Info.Live != nil && *res.Info.Live {
					t.Errorf("hls.js sees a live playlist; a VOD output must end with EXT-X-ENDLIST")
				}
				if tc.player == "dash" && res.Info.Dynamic != nil && *res.Info.Dynamic {
					t.Errorf("dash.js sees a dynamic MPD; a VOD output is static")
				}
			})
		}
	})
}

// metricMean returns the mean of a metric (psnr, ssim) of a quality report
// output.
func metricMean(t *testing.T, o apiJobOutput, metric string) float64 {
	t.Helper()
	m, ok := o.Data[metric].(map[string]any)
	if !ok {
		t.Fatalf("quality output %s has no %s summary: %v", o.Path, metric, o.Data)
	}
	v, ok := m["mean"].(float64)
	if !ok {
		t.Fatalf("quality output %s: %s has no mean: %v", o.Path, metric, m)
	}
	if n, _ := m["frames"].(float64); n < 100 {
		t.Errorf("quality output %s: %s over %v frames, want every frame of the 4 s clip (120)", o.Path, metric, m["frames"])
	}
	return v
}

type spriteCue struct {
	start, end float64
	image      string
	x, y, w, h int
}

func (c spriteCue) rect() image.Rectangle { return image.Rect(c.x, c.y, c.x+c.w, c.y+c.h) }

var reVTTCue = regexp.MustCompile(`(?m)^(\d+):(\d\d):(\d\d)\.(\d\d\d) --> (\d+):(\d\d):(\d\d)\.(\d\d\d)\s*\n([^#\s]+)#xywh=(\d+),(\d+),(\d+),(\d+)\s*$`)

// parseSpriteVTT reads the cues of a sprite WebVTT file.
func parseSpriteVTT(t *testing.T, text string) []spriteCue {
	t.Helper()
	if !strings.HasPrefix(text, "WEBVTT") {
		t.Errorf("sprite VTT does not start with WEBVTT: %.100q", text)
	}
	ts := func(h, m, s, ms string) float64 {
		hh, _ := strconv.Atoi(h)
		mm, _ := strconv.Atoi(m)
		ss, _ := strconv.Atoi(s)
		mss, _ := strconv.Atoi(ms)
		return float64(hh*3600+mm*60+ss) + float64(mss)/1000
	}
	var cues []spriteCue
	for _, m := range reVTTCue.FindAllStringSubmatch(text, -1) {
		n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
		cues = append(cues, spriteCue{start: ts(m[1], m[2], m[3], m[4]), end: ts(m[5], m[6], m[7], m[8]), image: m[9],
			x: n(10), y: n(11), w: n(12), h: n(13)})
	}
	if arrows := strings.Count(text, "-->"); arrows != len(cues) {
		t.Errorf("sprite VTT has %d cues but %d of them parse as TIME --> TIME / IMAGE#xywh=x,y,w,h", arrows, len(cues))
	}
	return cues
}

// longTranscode is a transcode that takes several seconds on a small
// clip: upscaled to 1280x960 at x264's medium preset.
var longTranscode = jobTask{Type: "transcode", Template: "mp4-720p",
	Params: map[string]any{"video": map[string]any{"width": 1280, "height": 960, "allow_upscale": true, "bitrate": "2500k", "maxrate": "2750k"}}}

// TestJobsProgress follows a longer transcode through the API: running,
// with a progress between 0 and 1 that grows, then succeeded at 1.
func TestJobsProgress(t *testing.T) {
	t.Parallel()
	env := newJobEnv(t)
	makeClip(t, filepath.Join(env.Media, "long.mp4"), clipOptions{Dur: 8})
	s := startServer(t, serverOptions{Config: env.config("")})
	j := s.mustSubmit(t, jobSpec{Input: pathInput("long.mp4"), Tasks: []jobTask{longTranscode}})

	var seen []float64 // progress values while running, in order
	states := map[string]bool{}
	deadline := time.Now().Add(90 * time.Second)
	var last apiJob
	for {
		last = s.job(t, j.ID)
		states[last.State] = true
		if last.State == "running" {
			if last.Progress < 0 || last.Progress > 1 {
				t.Errorf("running job has progress %v, want 0..1", last.Progress)
			}
			if len(seen) > 0 && last.Progress < seen[len(seen)-1] {
				t.Errorf("progress went back from %v to %v", seen[len(seen)-1], last.Progress)
			}
			if len(seen) == 0 || last.Progress != seen[len(seen)-1] {
				seen = append(seen, last.Progress)
			}
			if tp := last.Tasks[0].Progress; math.Abs(tp-last.Progress) > 1e-9 {
				t.Errorf("a one-task job has progress %v, its task %v", last.Progress, tp)
			}
		}
		if last.finished() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job not finished after 90 s: %v", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("states seen %v; distinct progress values while running: %v", states, seen)
	if last.State != "succeeded" || last.Progress != 1 || last.Tasks[0].Progress != 1 {
		t.Fatalf("final job %v, want succeeded with progress 1", last)
	}
	var between []float64
	for _, p := range seen {
		if p > 0 && p < 1 {
			between = append(between, p)
		}
	}
	if len(between) < 2 {
		t.Errorf("saw %d progress values strictly between 0 and 1 while running (%v), want at least 2 that increase", len(between), seen)
	}
	if last.StartedAt == nil || last.FinishedAt == nil || last.FinishedAt.Before(*last.StartedAt) {
		t.Errorf("started_at %v, finished_at %v", last.StartedAt, last.FinishedAt)
	}
	vi := probeVideo(t, s.outputURL(last.output(t, 0, "video")), false)
	if vi.Width != 1280 || vi.Height != 960 || math.Abs(vi.Duration-8) > 0.2 {
		t.Errorf("output %+v, want 1280x960, 8 s", vi)
	}
}

// runningWithFFmpeg waits until a job runs and its ffmpeg (found by the
// job's output folder on its command line) is there.
func runningWithFFmpeg(t *testing.T, s *server, env jobEnv, id string) (apiJob, []int, string) {
	t.Helper()
	var pids []int
	var pat string
	j := waitJob(t, s, id, 60*time.Second, "running with its ffmpeg and some progress", func(j apiJob) bool {
		if j.State != "running" || j.Progress <= 0 {
			return false
		}
		pat = filepath.Join(env.JobsDir, j.OutputDir) + string(filepath.Separator)
		pids = pgrep(t, pat)
		return len(pids) > 0
	})
	return j, pids, pat
}

// TestJobsCancel cancels a running job: the answer says cancelled, and its
// ffmpeg is gone within a second.
func TestJobsCancel(t *testing.T) {
	t.Parallel()
	env := newJobEnv(t)
	makeClip(t, filepath.Join(env.Media, "long.mp4"), clipOptions{Dur: 12})
	s := startServer(t, serverOptions{Config: env.config("")})
	j := s.mustSubmit(t, jobSpec{Input: pathInput("long.mp4"), Tasks: []jobTask{longTranscode}})
	_, pids, pat := runningWithFFmpeg(t, s, env, j.ID)
	t.Logf("ffmpeg of job %s: pids %v", j.ID, pids)

	code, b := s.api(t, http.MethodPost, "/api/v1/jobs/"+j.ID+"/cancel", apiToken)
	tCancel := time.Now()
	if code != http.StatusOK {
		t.Fatalf("POST /api/v1/jobs/%s/cancel: %d %s, want 200", j.ID, code, b)
	}
	var cj apiJob
	if err := json.Unmarshal(b, &cj); err != nil || cj.State != "cancelled" {
		t.Errorf("cancel answered %s (%v), want the job in state cancelled", b, err)
	}
	var left []int
	for {
		if left = pgrep(t, pat); len(left) == 0 {
			break
		}
		if time.Since(tCancel) > time.Second {
			t.Errorf("ffmpeg of the cancelled job still runs %v after the cancel: pids %v", time.Since(tCancel).Round(time.Millisecond), left)
			killPids(left)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("ffmpeg gone %v after the cancel", time.Since(tCancel).Round(time.Millisecond))
	// It stays cancelled: the worker's end must not overwrite it.
	time.Sleep(1500 * time.Millisecond)
	got := s.job(t, j.ID)
	if got.State != "cancelled" || got.FinishedAt == nil {
		t.Errorf("after the cancel the job is %v, want cancelled with finished_at", got)
	}
	if got.Tasks[0].State != "cancelled" {
		t.Errorf("the running task is %s after the cancel, want cancelled", got.Tasks[0].State)
	}
	if code, b := s.api(t, http.MethodPost, "/api/v1/jobs/"+j.ID+"/cancel", apiToken); code != http.StatusConflict {
		t.Errorf("cancel of a cancelled job: %d %s, want 409", code, b)
	}
	if code, b := s.api(t, http.MethodPost, "/api/v1/jobs/job_doesnotexist/cancel", apiToken); code != http.StatusNotFound {
		t.Errorf("cancel of an unknown job: %d %s, want 404", code, b)
	}
}

// TestJobsKillRestart kills mps with SIGKILL while a job runs and starts it
// again on the same database and folder: the job runs again and succeeds.
func TestJobsKillRestart(t *testing.T) {
	t.Parallel()
	env := newJobEnv(t)
	makeClip(t, filepath.Join(env.Media, "mid.mp4"), clipOptions{Dur: 6})
	cfg := env.config("")
	s1 := startServer(t, serverOptions{Config: cfg})
	j := s1.mustSubmit(t, jobSpec{Input: pathInput("mid.mp4"), Tasks: []jobTask{longTranscode}})
	running, pids, pat := runningWithFFmpeg(t, s1, env, j.ID)
	t.Logf("killing mps while job %s runs at %.0f%% (ffmpeg pids %v)", j.ID, running.Progress*100, pids)
	s1.kill()
	// Its ffmpeg must not live on as an orphan.
	deadline := time.Now().Add(2 * time.Second)
	for left := pgrep(t, pat); len(left) > 0; left = pgrep(t, pat) {
		if time.Now().After(deadline) {
			t.Errorf("ffmpeg of job %s outlived the SIGKILL of mps by 2 s: pids %v", j.ID, left)
			killPids(left)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	s2 := startServer(t, serverOptions{Config: cfg})
	got := waitJobSucceeded(t, s2, j.ID, 90*time.Second)
	t.Logf("after the restart: %v", got)
	if got.Attempts < 2 {
		t.Errorf("attempts %d after a run that was killed, want at least 2", got.Attempts)
	}
	vi := probeVideo(t, s2.outputURL(got.output(t, 0, "video")), false)
	if vi.Width != 1280 || vi.Height != 960 || math.Abs(vi.Duration-6) > 0.2 || vi.VideoCodec != "h264" {
		t.Errorf("output after the restart %+v, want h264 1280x960, 6 s", vi)
	}
}

// TestJobsBadInputs submits inputs that cannot work: each fails fast, with
// a message that says what is wrong, and is not retried (or is refused
// at submit).
func TestJobsBadInputs(t *testing.T) {
	t.Parallel()
	env := newJobEnv(t)
	// A truncated MP4 whose index (moov) was at the end: half of it has no
	// index at all.
	full := makeClip(t, filepath.Join(env.Base, "full.mp4"), clipOptions{Dur: 4, MoovAtEnd: true})
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(env.Media, "truncated.mp4"), b[:len(b)/2])
	// A truncated MP4 with its index first: ffmpeg decodes what is left
	// and exits 0, but the job must still fail as truncated.
	fs := makeClip(t, filepath.Join(env.Base, "faststart.mp4"), clipOptions{Dur: 4})
	if b, err = os.ReadFile(fs); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(env.Media, "truncated-faststart.mp4"), b[:len(b)/2])
	mustWrite(t, filepath.Join(env.Media, "notes.mp4"), []byte(strings.Repeat("This is a text file, not a video.\n", 50)))
	mustWrite(t, filepath.Join(env.Media, "notes.txt"), []byte("hello\n"))
	makeClip(t, filepath.Join(env.Media, "clip.mp4"), clipOptions{Dur: 2})

	// A real file on a loopback HTTP server, which the config allows by
	// name but not by address (allow_private is false).
	media := httptest.NewServer(http.FileServer(http.Dir(env.Media)))
	defer media.Close()

	s := startServer(t, serverOptions{Config: env.config(`  workers: 2
  max_attempts: 3
  url_inputs:
    allowed_hosts: ["127.0.0.1", "localhost"]
    allow_private: false
`)})

	mp4 := []jobTask{{Type: "transcode", Template: "mp4-720p"}}
	cases := []struct {
		name string
		spec jobSpec
		want []string // the error names these (any case)
	}{
		{name: "truncated mp4", spec: jobSpec{Input: pathInput("truncated.mp4"), Tasks: mp4}, want: []string{"input"}},
		{name: "truncated faststart mp4", spec: jobSpec{Input: pathInput("truncated-faststart.mp4"), Tasks: mp4}, want: []string{"truncated"}},
		{name: "text file named .mp4", spec: jobSpec{Input: pathInput("notes.mp4"), Tasks: mp4}, want: []string{"input"}},
		{name: "text file", spec: jobSpec{Input: pathInput("notes.txt"), Tasks: mp4}, want: []string{"input"}},
		{name: "missing file", spec: jobSpec{Input: pathInput("nothere.mp4"), Tasks: mp4}, want: []string{"nothere.mp4"}},
		{name: "loopback URL", spec: jobSpec{Input: map[string]string{"url": media.URL + "/clip.mp4"}, Tasks: mp4}, want: []string{"input.url", "private or loopback"}},
		{name: "host not allowed", spec: jobSpec{Input: map[string]string{"url": "http://media.example.com/clip.mp4"}, Tasks: mp4}, want: []string{"media.example.com", "allowed"}},
		{name: "unknown params field", spec: jobSpec{Input: pathInput("clip.mp4"), Tasks: []jobTask{{Type: "transcode", Template: "mp4-720p",
			Params: map[string]any{"video": map[string]any{"bitrat": "1M"}}}}}, want: []string{"bitrat"}},
		{name: "bad params value", spec: jobSpec{Input: pathInput("clip.mp4"), Tasks: []jobTask{{Type: "snapshot", Template: "snapshot-sample-10s",
			Params: map[string]any{"format": "bmp"}}}}, want: []string{"format", "bmp"}},
	}
	ids := map[string]string{}
	for _, c := range cases {
		code, j, b := s.submitJob(t, c.spec)
		switch code {
		case http.StatusCreated:
			ids[c.name] = j.ID
		case http.StatusBadRequest:
			// Refused at once: as good, when the answer names the problem.
			checkNames(t, c.name+": 400", string(b), c.want)
		default:
			t.Errorf("%s: POST /api/v1/jobs: %d %s, want 201 (then a failed job) or 400", c.name, code, b)
		}
	}
	for _, c := range cases {
		id, ok := ids[c.name]
		if !ok {
			continue
		}
		j := waitJobFinished(t, s, id, 60*time.Second)
		took := time.Duration(0)
		if j.StartedAt != nil && j.FinishedAt != nil {
			took = j.FinishedAt.Sub(*j.StartedAt)
		}
		t.Logf("%s: %s after %v, attempts %d: %s", c.name, j.State, took.Round(time.Millisecond), j.Attempts, j.Error)
		if j.State != "failed" {
			t.Errorf("%s: job ended %s, want failed: %v", c.name, j.State, j)
			continue
		}
		checkNames(t, c.name+": job error", j.Error, c.want)
		if j.Tasks[0].State == "succeeded" {
			t.Errorf("%s: the task succeeded in a failed job: %v", c.name, j)
		}
		if j.Attempts != 1 {
			t.Errorf("%s: %d attempts, want 1: bad input is not retried", c.name, j.Attempts)
		}
		if took > 5*time.Second {
			t.Errorf("%s: failing took %v, want fast (< 5 s)", c.name, took)
		}
	}
	// No retry comes later either (River's first retry would be after 1 s).
	time.Sleep(1500 * time.Millisecond)
	for _, c := range cases {
		if id, ok := ids[c.name]; ok {
			if j := s.job(t, id); j.finished() && j.State != "succeeded" && (j.State != "failed" || j.Attempts != 1) {
				t.Errorf("%s: 1.5 s after failing the job is %v, want still failed after 1 attempt", c.name, j)
			}
		}
	}

	// Refused at submit: 400 naming what is wrong.
	for _, c := range []struct {
		name, body string
		want       []string
	}{
		{"unknown template", `{"input":{"path":"clip.mp4"},"tasks":[{"type":"transcode","template":"mp4-9000p"}]}`, []string{"mp4-9000p"}},
		{"unknown task type", `{"input":{"path":"clip.mp4"},"tasks":[{"type":"teleport"}]}`, []string{"teleport"}},
		{"unknown spec field", `{"input":{"path":"clip.mp4"},"tasks":[{"type":"transcode","template":"mp4-720p"}],"priorty":1}`, []string{"priorty"}},
		{"no input", `{"input":{},"tasks":[{"type":"transcode","template":"mp4-720p"}]}`, []string{"input"}},
		{"two inputs", `{"input":{"path":"clip.mp4","url":"http://127.0.0.1/x.mp4"},"tasks":[{"type":"transcode","template":"mp4-720p"}]}`, []string{"input"}},
		{"no tasks", `{"input":{"path":"clip.mp4"},"tasks":[]}`, []string{"tasks"}},
		{"output outside", `{"input":{"path":"clip.mp4"},"output":"../escape","tasks":[{"type":"transcode","template":"mp4-720p"}]}`, []string{"output"}},
		{"bad notify", `{"input":{"path":"clip.mp4"},"notify":{"url":"ftp://x"},"tasks":[{"type":"transcode","template":"mp4-720p"}]}`, []string{"notify.url"}},
	} {
		code, b := s.apiBody(t, http.MethodPost, "/api/v1/jobs", c.body)
		if code != http.StatusBadRequest {
			t.Errorf("%s: POST /api/v1/jobs: %d %s, want 400", c.name, code, b)
			continue
		}
		checkNames(t, c.name+": 400", string(b), c.want)
	}
	code, b2 := s.api(t, http.MethodGet, "/api/v1/jobs?limit=1000", apiToken)
	var list struct {
		Jobs  []apiJob `json:"jobs"`
		Total int      `json:"total"`
	}
	if code != http.StatusOK || json.Unmarshal(b2, &list) != nil {
		t.Fatalf("GET /api/v1/jobs: %d %.300s", code, b2)
	}
	if list.Total != len(ids) || len(list.Jobs) != len(ids) {
		t.Errorf("GET /api/v1/jobs lists %d jobs (total %d), want the %d accepted ones: refused submits make no job", len(list.Jobs), list.Total, len(ids))
	}
}

func mustWrite(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkNames wants msg to contain each of want, ignoring case.
func checkNames(t *testing.T, what, msg string, want []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(strings.ToLower(msg), strings.ToLower(w)) {
			t.Errorf("%s: %q does not name %q", what, msg, w)
		}
	}
}

// TestJobsIdempotency submits the same session_id twice: the second answer
// is 200 with the first job.
func TestJobsIdempotency(t *testing.T) {
	t.Parallel()
	env := newJobEnv(t)
	makeClip(t, filepath.Join(env.Media, "clip.mp4"), clipOptions{Dur: 2})
	s := startServer(t, serverOptions{Config: env.config("")})
	sp := jobSpec{Input: pathInput("clip.mp4"), Tasks: []jobTask{{Type: "snapshot", Template: "snapshot-sample-10s"}},
		SessionID: "upload-42", SessionContext: map[string]any{"user": "ada"}}
	code1, j1, b1 := s.submitJob(t, sp)
	code2, j2, b2 := s.submitJob(t, sp)
	if code1 != http.StatusCreated || code2 != http.StatusOK {
		t.Errorf("the same session_id twice: %d then %d, want 201 then 200\n%s\n%s", code1, code2, b1, b2)
	}
	if j1.ID == "" || j1.ID != j2.ID {
		t.Errorf("the same session_id gave jobs %q and %q, want one", j1.ID, j2.ID)
	}
	other := sp
	other.SessionID = "upload-43"
	if code, j3, b := s.submitJob(t, other); code != http.StatusCreated || j3.ID == j1.ID {
		t.Errorf("another session_id: %d, job %q (first %q): %s; want 201 and a new job", code, j3.ID, j1.ID, b)
	}
	j := waitJobSucceeded(t, s, j1.ID, 60*time.Second)
	if j.Spec.SessionID != "upload-42" || !strings.Contains(string(j.Spec.SessionContext), "ada") {
		t.Errorf("job spec session_id %q context %s, want them as submitted", j.Spec.SessionID, j.Spec.SessionContext)
	}
	// Still the same job once it has finished.
	if code, j4, b := s.submitJob(t, sp); code != http.StatusOK || j4.ID != j1.ID || j4.State != "succeeded" {
		t.Errorf("the same session_id after the job finished: %d, job %q %s: %.300s; want 200 and the finished job %s", code, j4.ID, j4.State, b, j1.ID)
	}
}

// TestJobsCLI drives the job API with `mps job`.
func TestJobsCLI(t *testing.T) {
	t.Parallel()
	env := newJobEnv(t)
	makeClip(t, filepath.Join(env.Media, "clip.mp4"), clipOptions{Dur: 3})
	makeClip(t, filepath.Join(env.Media, "long.mp4"), clipOptions{Dur: 12})
	mustWrite(t, filepath.Join(env.Media, "notes.mp4"), []byte("not a video\n"))
	s := startServer(t, serverOptions{Config: env.config("")})
	srv := "--server=" + s.URL("")

	code, out, errOut := runCLI(t, 2*time.Minute, "job", "submit", srv, "--template", "mp4-720p", "clip.mp4", "--wait")
	t.Logf("mps job submit --wait: exit %d\nstdout:\n%s\nstderr (tail):\n%s", code, out, tailLines(errOut, 5))
	if code != 0 {
		t.Fatalf("mps job submit --wait exited %d, want 0", code)
	}
	m := regexp.MustCompile(`job (job_[0-9a-zA-Z_-]+)`).FindStringSubmatch(errOut + out)
	if m == nil {
		t.Fatalf("mps job submit printed no job id")
	}
	id := m[1]
	if !strings.Contains(out, "task 1 transcode: succeeded") || !regexp.MustCompile(`video \S*`+regexp.QuoteMeta(id)+`/\S+\.mp4 320x240 3\.\d\ds`).MatchString(out) {
		t.Errorf("mps job submit --wait printed no succeeded task with its output (video %s/....mp4 320x240 3.xs)", id)
	}
	if j := s.job(t, id); j.State != "succeeded" {
		t.Errorf("job %s is %s after mps job submit --wait, want succeeded", id, j.State)
	}
	// On a terminal, a progress bar per task, labelled with the task.
	code, tty := runCLITTY(t, 2*time.Minute, "job", "submit", srv, "--template", "mp4-720p", "--template", "snapshot-sample-10s", "clip.mp4", "--wait")
	t.Logf("mps job submit --wait on a terminal: exit %d, output ends:\n%s", code, tailLines(tty, 8))
	if code != 0 || !strings.Contains(tty, "1 transcode mp4-720p") || !strings.Contains(tty, "2 snapshot snapshot-sample-10s") || !strings.Contains(tty, "100 %") {
		t.Errorf("mps job submit --wait on a terminal: exit %d; want 0 and a progress bar per task (1 transcode mp4-720p, 2 snapshot snapshot-sample-10s) reaching 100 %%", code)
	}

	code, out, errOut = runCLI(t, 30*time.Second, "job", "ls", srv)
	if code != 0 || !regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(id)+`\s+succeeded\s+100%`).MatchString(out) {
		t.Errorf("mps job ls: exit %d, want 0 and a line '%s succeeded 100%%':\n%s%s", code, id, out, errOut)
	}

	code, out, errOut = runCLI(t, 30*time.Second, "job", "get", srv, id)
	var got apiJob
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.ID != id || got.State != "succeeded" {
		t.Errorf("mps job get %s: exit %d, want 0 and the job as JSON:\n%s%s", id, code, out, errOut)
	}
	if code, _, errOut = runCLI(t, 30*time.Second, "job", "get", srv, "job_nosuchjob"); code == 0 || !strings.Contains(errOut, "404") {
		t.Errorf("mps job get of an unknown job: exit %d, stderr %q; want a failure that says 404", code, errOut)
	}

	// Without --wait, submit prints the id; cancel stops it.
	code, out, errOut = runCLI(t, 30*time.Second, "job", "submit", srv, "--template", "mp4-720p", "--params", `{"video":{"width":1280,"height":960,"allow_upscale":true}}`, "long.mp4")
	longID := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(longID, "job_") {
		t.Fatalf("mps job submit (no --wait): exit %d, stdout %q, want 0 and the job id\n%s", code, out, errOut)
	}
	_, pids, pat := runningWithFFmpeg(t, s, env, longID)
	code, out, errOut = runCLI(t, 30*time.Second, "job", "cancel", srv, longID)
	if code != 0 || strings.TrimSpace(out) != "job "+longID+" cancelled" {
		t.Errorf("mps job cancel %s: exit %d, stdout %q, want 0 and 'job %s cancelled'\n%s", longID, code, out, longID, errOut)
	}
	waitFor(t, 2*time.Second, fmt.Sprintf("the cancelled job's ffmpeg (pids %v) to end", pids), func() bool { return len(pgrep(t, pat)) == 0 })
	if j := s.job(t, longID); j.State != "cancelled" {
		t.Errorf("job %s is %s after mps job cancel, want cancelled", longID, j.State)
	}
	if code, _, errOut = runCLI(t, 30*time.Second, "job", "cancel", srv, id); code == 0 || !strings.Contains(errOut, "succeeded") {
		t.Errorf("mps job cancel of a succeeded job: exit %d, stderr %q; want a failure that says it succeeded", code, errOut)
	}

	// --wait on a job that fails: non-zero exit and the error.
	code, out, errOut = runCLI(t, time.Minute, "job", "submit", srv, "--template", "mp4-720p", "notes.mp4", "--wait")
	if code == 0 || !strings.Contains(out+errOut, "failed") || !strings.Contains(strings.ToLower(out+errOut), "input") {
		t.Errorf("mps job submit --wait of a text file: exit %d, want non-zero and the error\nstdout:\n%s\nstderr:\n%s", code, out, tailLines(errOut, 5))
	}
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestWorkflowRecording: a configured workflow submits a snapshot job when
// a recording of a matching stream finishes, and the job succeeds on the
// recording.
func TestWorkflowRecording(t *testing.T) {
	t.Parallel()
	env := newJobEnv(t)
	recDir := filepath.Join(env.Base, "recordings")
	cfg := recordingConfig(recDir, recRuleAll) + env.jobsSection(`  workflows:
    - name: rec-snap
      on: recording.finished
      match: "live/*"
      tasks:
        - {type: snapshot, template: snapshot-sample-10s}
`)
	s := startServer(t, serverOptions{Config: cfg})
	code, b := s.api(t, http.MethodGet, "/api/v1/workflows", apiToken)
	if code != http.StatusOK || !strings.Contains(string(b), `"rec-snap"`) {
		t.Errorf("GET /api/v1/workflows: %d %s, want the configured rec-snap", code, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const name = "live/wf"
	pub := ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: 4 * time.Second, Size: "320x240"})
	if exited, err := pub.Wait(30 * time.Second); !exited || err != nil {
		t.Fatalf("publisher: exited %v, %v", exited, err)
	}
	recs := waitRecordingsDone(t, s, name, 1, 30*time.Second)
	rec := recs[len(recs)-1]
	t.Logf("recording: %v", rec)

	var job apiJob
	waitFor(t, 30*time.Second, "a job whose input is recording "+rec.ID, func() bool {
		code, b := s.api(t, http.MethodGet, "/api/v1/jobs", apiToken)
		var list struct {
			Jobs []apiJob `json:"jobs"`
		}
		if code != http.StatusOK || json.Unmarshal(b, &list) != nil {
			return false
		}
		for _, j := range list.Jobs {
			if j.Spec.Input.Recording == rec.ID {
				job = j
				return true
			}
		}
		return false
	})
	j := waitJobSucceeded(t, s, job.ID, 60*time.Second)
	t.Logf("workflow job: %v, session_context %s", j, j.Spec.SessionContext)
	if !strings.Contains(string(j.Spec.SessionContext), "rec-snap") {
		t.Errorf("the workflow's job has session_context %s, want it to name the workflow", j.Spec.SessionContext)
	}
	if p, _ := j.InputMedia["path"].(string); p != recFile(recDir, rec) {
		t.Errorf("the job's input is %q, want the recording's file %s", p, recFile(recDir, rec))
	}
	o := j.output(t, 0, "image")
	img := decodeImage(t, o.Path, s.fetchOutput(t, o))
	if b := img.Bounds(); b.Dx() != 640 || b.Dy() != 480 {
		t.Errorf("snapshot of the 320x240 recording is %dx%d, want 640x480", b.Dx(), b.Dy())
	}
	// One job per recording: nothing more shows up.
	time.Sleep(time.Second)
	code, b = s.api(t, http.MethodGet, "/api/v1/jobs", apiToken)
	var list struct {
		Total int `json:"total"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &list) != nil || list.Total != len(recs) {
		t.Errorf("GET /api/v1/jobs: %d total %d, want one job per recording (%d)", code, list.Total, len(recs))
	}
}
