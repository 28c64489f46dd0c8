package vod

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	_ "image/jpeg" // DecodeConfig of snapshots
	_ "image/png"  // DecodeConfig of snapshots
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SnapshotParams is the template of a snapshot task: still images of the
// input's video, taken in exactly one of four modes (offsets, interval,
// percent or cover).
type SnapshotParams struct {
	// Format is the image format: jpg (default), png or webp.
	Format string `json:"format"`
	// Offsets are the times in seconds to take one image each at. An
	// offset at or past the end of the input is bad input.
	Offsets []float64 `json:"offsets,omitempty"`
	// Interval samples one image every Interval seconds from the start.
	Interval float64 `json:"interval,omitempty"`
	// Percent samples one image every Percent percent of the duration,
	// from the start (10 gives 10 images at 0%, 10%, ... 90%).
	Percent float64 `json:"percent,omitempty"`
	// Cover takes one representative image (ffmpeg's thumbnail filter
	// over the first CoverWindow seconds).
	Cover bool `json:"cover,omitempty"`
	// CoverWindow is the span in seconds from the start that Cover looks
	// at; 0 is the first 180 s (or the whole input when shorter).
	CoverWindow float64 `json:"cover_window,omitempty"`
	// Width and Height bound the image size and keep the aspect ratio:
	// with one of them set the other follows, with both the image fits
	// inside the box, with neither it has the video's size.
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
	// Quality is 1 (smallest) to 100 (best) for jpg and webp; default 85.
	// png is lossless and ignores it.
	Quality int `json:"quality,omitempty"`
	// MaxCount caps the number of images; default 100, at most 10000.
	// Sampling stops there; more offsets than MaxCount is bad input.
	MaxCount int `json:"max_count,omitempty"`
}

const (
	snapDefaultQuality  = 85
	snapDefaultMaxCount = 100
	snapMaxMaxCount     = 10000
	snapCoverWindow     = 180.0
	snapCoverFrames     = 50 // frames the thumbnail filter compares
	snapOffsetBatch     = 8  // offsets per ffmpeg run
)

func (p *SnapshotParams) applyDefaults() {
	if p.Format == "" {
		p.Format = "jpg"
	}
	if p.Quality == 0 {
		p.Quality = snapDefaultQuality
	}
	if p.MaxCount == 0 {
		p.MaxCount = snapDefaultMaxCount
	}
}

func (p *SnapshotParams) validate() error {
	if err := snapCheckFormat("format", p.Format); err != nil {
		return err
	}
	modes := 0
	if len(p.Offsets) > 0 {
		modes++
	}
	if p.Interval != 0 {
		modes++
	}
	if p.Percent != 0 {
		modes++
	}
	if p.Cover {
		modes++
	}
	if modes != 1 {
		return fmt.Errorf("%w: snapshot: set exactly one of offsets, interval, percent and cover (%d are set)", ErrBadInput, modes)
	}
	for i, o := range p.Offsets {
		if o < 0 || math.IsNaN(o) || math.IsInf(o, 0) {
			return fmt.Errorf("%w: offsets[%d] %g: must be 0 or more seconds", ErrBadInput, i, o)
		}
	}
	if p.Interval < 0 || p.Interval != 0 && p.Interval < 0.04 || math.IsNaN(p.Interval) || math.IsInf(p.Interval, 0) {
		return fmt.Errorf("%w: interval %g: must be at least 0.04 seconds", ErrBadInput, p.Interval)
	}
	if p.Percent < 0 || p.Percent > 100 || math.IsNaN(p.Percent) {
		return fmt.Errorf("%w: percent %g: must be more than 0 and at most 100", ErrBadInput, p.Percent)
	}
	if p.CoverWindow < 0 || math.IsNaN(p.CoverWindow) || math.IsInf(p.CoverWindow, 0) {
		return fmt.Errorf("%w: cover_window %g: must be 0 or more seconds", ErrBadInput, p.CoverWindow)
	}
	if err := snapCheckSize(p.Width, p.Height, true); err != nil {
		return err
	}
	if p.Quality < 1 || p.Quality > 100 {
		return fmt.Errorf("%w: quality %d: must be 1..100", ErrBadInput, p.Quality)
	}
	if p.MaxCount < 1 || p.MaxCount > snapMaxMaxCount {
		return fmt.Errorf("%w: max_count %d: must be 1..%d", ErrBadInput, p.MaxCount, snapMaxMaxCount)
	}
	if len(p.Offsets) > p.MaxCount {
		return fmt.Errorf("%w: offsets: %d offsets, more than max_count %d", ErrBadInput, len(p.Offsets), p.MaxCount)
	}
	return nil
}

// snapCheckFormat checks a still image format field.
func snapCheckFormat(field, f string) error {
	switch f {
	case "jpg", "png", "webp":
		return nil
	}
	return fmt.Errorf("%w: %s %q: must be jpg, png or webp", ErrBadInput, field, f)
}

// snapCheckSize checks width and height fields; 0 means "follow the
// other" when zeroOK.
func snapCheckSize(w, h int, zeroOK bool) error {
	if w != 0 || !zeroOK {
		if w < 16 || w > 7680 {
			return fmt.Errorf("%w: width %d: must be 16..7680", ErrBadInput, w)
		}
	}
	if h != 0 && (h < 16 || h > 4320) {
		return fmt.Errorf("%w: height %d: must be 16..4320", ErrBadInput, h)
	}
	return nil
}

// snapNeedVideo fails inputs without video.
func snapNeedVideo(in Media) error {
	if in.Video == nil {
		return fmt.Errorf("%w: the input has no video stream", ErrBadInput)
	}
	return nil
}

// snapScaleFilter returns the scale filter that bounds a frame to w×h
// keeping its aspect ratio, or "" when both are 0.
func snapScaleFilter(w, h int) string {
	switch {
	case w == 0 && h == 0:
		return ""
	case h == 0:
		return fmt.Sprintf("scale=%d:-1", w)
	case w == 0:
		return fmt.Sprintf("scale=-1:%d", h)
	default:
		return fmt.Sprintf("scale=%d:%d:force_original_aspect_ratio=decrease", w, h)
	}
}

// snapJoinFilters joins the non-empty filters with commas.
func snapJoinFilters(fs ...string) string {
	var out []string
	for _, f := range fs {
		if f != "" {
			out = append(out, f)
		}
	}
	return strings.Join(out, ",")
}

// snapEncodeArgs returns the encoder arguments of a still image format at
// quality 1..100.
func snapEncodeArgs(env Env, format string, quality int) ([]string, error) {
	switch format {
	case "png":
		return []string{"-c:v", "png"}, nil
	case "webp":
		if env.Caps != nil && !env.Caps.HasEncoder("libwebp") {
			return nil, fmt.Errorf("this ffmpeg has no libwebp encoder for webp images")
		}
		return []string{"-c:v", "libwebp", "-quality", strconv.Itoa(quality)}, nil
	default:
		// mjpeg's qscale runs from 2 (best) to 31 (worst).
		q := 2 + int(math.Round(float64(100-quality)*29/99))
		return []string{"-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-q:v", strconv.Itoa(q)}, nil
	}
}

// snapMIME returns the MIME type of an image format.
func snapMIME(format string) string {
	switch format {
	case "png":
		return "image/png"
	case "webp":
		return "image/webp"
	case "gif":
		return "image/gif"
	default:
		return "image/jpeg"
	}
}

// snapRate returns an ffmpeg frame rate of one frame every interval
// seconds, as an exact-enough rational.
func snapRate(interval float64) string {
	return fmt.Sprintf("1000000/%d", max(1, int64(math.Round(interval*1e6))))
}

// snapSampleFilter returns the fps filter that keeps one frame every
// interval seconds: the frame shown at 0, interval, 2·interval, ...
// (round=up; the default rounding would take the frame shown half an
// interval later, and drop the last partial interval).
func snapSampleFilter(interval float64) string {
	return "fps=" + snapRate(interval) + ":round=up"
}

// snapSeconds formats seconds for ffmpeg.
func snapSeconds(s float64) string {
	return strconv.FormatFloat(s, 'f', 6, 64)
}

// snapImageSize returns an image file's size: from its header for jpg and
// png, else by probing.
func snapImageSize(ctx context.Context, env Env, path string) (int, int, error) {
	if f, err := os.Open(path); err == nil {
		cfg, _, derr := image.DecodeConfig(f)
		f.Close()
		if derr == nil {
			return cfg.Width, cfg.Height, nil
		}
	}
	m, err := Probe(ctx, env, path)
	if err != nil {
		return 0, 0, fmt.Errorf("probe output %s: %w", filepath.Base(path), err)
	}
	if m.Video == nil {
		return 0, 0, fmt.Errorf("output %s has no image", filepath.Base(path))
	}
	return m.Video.Width, m.Video.Height, nil
}

// snapScaledProgress returns env reporting progress into [lo, hi].
func snapScaledProgress(env Env, lo, hi float64) Env {
	parent := env.Progress
	if parent == nil {
		parent = func(float64) {}
	}
	env.Progress = func(f float64) { parent(lo + (hi-lo)*f) }
	return env
}

// snapFilterPath escapes a file name for a filter option inside a
// filtergraph (two levels of ffmpeg escaping).
func snapFilterPath(p string) string {
	esc := func(s, special string) string {
		var b strings.Builder
		for _, r := range s {
			if strings.ContainsRune(special, r) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		return b.String()
	}
	return esc(esc(p, `\':`), `\'[],;`)
}

// snapReadPrintedTimes reads the pts_time values a metadata=mode=print
// filter wrote.
func snapReadPrintedTimes(path string) []float64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var times []float64
	for _, f := range strings.Fields(string(data)) {
		if v, ok := strings.CutPrefix(f, "pts_time:"); ok {
			if t, err := strconv.ParseFloat(v, 64); err == nil {
				times = append(times, t)
			}
		}
	}
	return times
}

// Snapshot returns the runner of snapshot tasks (params: SnapshotParams).
// Images are named snap_00001.jpg, ... and each Output (kind image)
// carries Data {"time": seconds into the input}.
func Snapshot() Runner {
	return checkedRunner{RunnerFunc(runSnapshot), func(raw json.RawMessage) error {
		_, err := decodeSnapshotParams(raw)
		return err
	}}
}

// decodeSnapshotParams decodes params strictly, with the defaults, and
// checks them.
func decodeSnapshotParams(raw json.RawMessage) (SnapshotParams, error) {
	var p SnapshotParams
	if err := DecodeParams(raw, &p); err != nil {
		return p, err
	}
	p.applyDefaults()
	return p, p.validate()
}

func runSnapshot(ctx context.Context, env Env, in Media, raw json.RawMessage) ([]Output, error) {
	p, err := decodeSnapshotParams(raw)
	if err != nil {
		return nil, err
	}
	if err := snapNeedVideo(in); err != nil {
		return nil, err
	}
	enc, err := snapEncodeArgs(env, p.Format, p.Quality)
	if err != nil {
		return nil, err
	}
	dur := in.Duration.Seconds()
	var times []float64
	switch {
	case len(p.Offsets) > 0:
		times, err = snapOffsets(ctx, env, in, p, enc)
	case p.Cover:
		times, err = snapCover(ctx, env, in, p, enc)
	default:
		interval := p.Interval
		if p.Percent > 0 {
			if dur <= 0 {
				return nil, fmt.Errorf("%w: percent: the input's duration is unknown", ErrBadInput)
			}
			interval = dur * p.Percent / 100
		}
		times, err = snapSample(ctx, env, in, p, enc, interval)
	}
	if err != nil {
		return nil, err
	}
	outs := make([]Output, 0, len(times))
	var w, h int
	for i, t := range times {
		name := fmt.Sprintf("snap_%05d.%s", i+1, p.Format)
		full := filepath.Join(env.OutDir, name)
		st, err := os.Stat(full)
		if err != nil {
			return nil, fmt.Errorf("snapshot %s was not written: %w", name, err)
		}
		if i == 0 { // every image has the same size
			if w, h, err = snapImageSize(ctx, env, full); err != nil {
				return nil, err
			}
		}
		outs = append(outs, Output{
			Kind: "image", Path: name, MIME: snapMIME(p.Format), Size: st.Size(),
			Width: w, Height: h, Data: map[string]any{"time": math.Round(t*1000) / 1000},
		})
	}
	return outs, nil
}

// snapOffsets takes one image per offset, seeking before each input, in
// runs of several inputs each.
func snapOffsets(ctx context.Context, env Env, in Media, p SnapshotParams, enc []string) ([]float64, error) {
	dur := in.Duration.Seconds()
	frame := 0.04 // the last frame starts one frame before the end
	if in.Video.FPS > 0 {
		frame = 1 / in.Video.FPS
	}
	last := dur - frame
	times := make([]float64, len(p.Offsets))
	for i, o := range p.Offsets {
		if dur > 0 && o >= dur {
			return nil, fmt.Errorf("%w: offsets[%d] %gs: at or past the end of the input (%.3fs)", ErrBadInput, i, o, dur)
		}
		times[i] = o
		if dur > 0 && o > last {
			times[i] = max(0, last)
		}
	}
	scale := snapScaleFilter(p.Width, p.Height)
	for lo := 0; lo < len(times); lo += snapOffsetBatch {
		hi := min(len(times), lo+snapOffsetBatch)
		var args []string
		for _, t := range times[lo:hi] {
			args = append(args, "-ss", snapSeconds(t), "-i", in.Path)
		}
		for j := lo; j < hi; j++ {
			args = append(args, "-map", fmt.Sprintf("%d:v:0", j-lo), "-frames:v", "1", "-an", "-sn", "-dn")
			if scale != "" {
				args = append(args, "-vf", scale)
			}
			args = append(args, enc...)
			args = append(args, "-f", "image2", "-update", "1",
				filepath.Join(env.OutDir, fmt.Sprintf("snap_%05d.%s", j+1, p.Format)))
		}
		step := snapScaledProgress(env, float64(lo)/float64(len(times)), float64(hi)/float64(len(times)))
		if err := RunFFmpeg(ctx, step, 0, args...); err != nil {
			return nil, err
		}
		for j := lo; j < hi; j++ {
			if _, err := os.Stat(filepath.Join(env.OutDir, fmt.Sprintf("snap_%05d.%s", j+1, p.Format))); err != nil {
				return nil, fmt.Errorf("%w: offsets[%d] %gs: the input has no video frame there", ErrBadInput, j, p.Offsets[j])
			}
		}
	}
	return times, nil
}

// snapSample takes one image every interval seconds in one ffmpeg run.
func snapSample(ctx context.Context, env Env, in Media, p SnapshotParams, enc []string, interval float64) ([]float64, error) {
	dur := in.Duration.Seconds()
	count := p.MaxCount
	if dur > 0 {
		count = min(count, max(1, int(math.Ceil(dur/interval-1e-9))))
	}
	vf := snapJoinFilters(snapSampleFilter(interval), snapScaleFilter(p.Width, p.Height))
	args := []string{"-i", in.Path, "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", vf, "-frames:v", strconv.Itoa(count)}
	args = append(args, enc...)
	args = append(args, "-f", "image2", "-start_number", "1", filepath.Join(env.OutDir, "snap_%05d."+p.Format))
	total := time.Duration(math.Min(float64(count)*interval, dur) * float64(time.Second))
	if err := RunFFmpeg(ctx, env, total, args...); err != nil {
		return nil, err
	}
	var times []float64
	for i := range count {
		name := fmt.Sprintf("snap_%05d.%s", i+1, p.Format)
		if _, err := os.Stat(filepath.Join(env.OutDir, name)); err != nil {
			break // a video stream shorter than the container
		}
		times = append(times, float64(i)*interval)
	}
	if len(times) == 0 {
		return nil, fmt.Errorf("%w: the input's video stream has no frames", ErrBadInput)
	}
	return times, nil
}

// snapCover picks one representative frame of the first CoverWindow
// seconds: the frames are sampled down to snapCoverFrames, and the
// thumbnail filter picks the one closest to their average histogram.
func snapCover(ctx context.Context, env Env, in Media, p SnapshotParams, enc []string) ([]float64, error) {
	window := p.CoverWindow
	if window == 0 {
		window = snapCoverWindow
	}
	dur := in.Duration.Seconds()
	if dur > 0 {
		window = math.Min(window, dur)
	}
	n := snapCoverFrames
	if fps := in.Video.FPS; fps > 0 {
		n = max(1, min(n, int(window*fps)))
	}
	meta := filepath.Join(env.OutDir, ".cover-meta.txt")
	defer os.Remove(meta)
	vf := snapJoinFilters(
		"fps="+snapRate(window/float64(n)),
		snapScaleFilter(p.Width, p.Height), // before thumbnail: it holds n frames
		fmt.Sprintf("thumbnail=n=%d", n),
		"metadata=mode=add:key=mps_cover:value=1",
		"metadata=mode=print:file="+snapFilterPath(meta),
	)
	args := []string{"-t", snapSeconds(window), "-i", in.Path, "-map", "0:v:0", "-an", "-sn", "-dn",
		"-vf", vf, "-frames:v", "1"}
	args = append(args, enc...)
	args = append(args, "-f", "image2", "-update", "1", filepath.Join(env.OutDir, "snap_00001."+p.Format))
	if err := RunFFmpeg(ctx, env, time.Duration(window*float64(time.Second)), args...); err != nil {
		return nil, err
	}
	t := 0.0
	if ts := snapReadPrintedTimes(meta); len(ts) > 0 {
		t = ts[0]
	}
	return []float64{t}, nil
}

// SnapshotPresets returns the built-in snapshot templates.
func SnapshotPresets() map[string]json.RawMessage {
	return map[string]json.RawMessage{
		"snapshot-sample-10s": json.RawMessage(`{"format":"jpg","interval":10,"width":640,"quality":85,"max_count":100}`),
		"snapshot-cover":      json.RawMessage(`{"format":"jpg","cover":true,"width":1280,"quality":90}`),
		"snapshot-percent-10": json.RawMessage(`{"format":"jpg","percent":10,"width":640,"quality":85}`),
	}
}
