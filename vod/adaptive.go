package vod

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mps-dev/mps/packager"
	"github.com/mps-dev/mps/transcoder"
)

// AdaptiveParams is the template of an adaptive task: a ladder, the same
// transcoder.Template the live side uses (name, upscale, rungs, watermark),
// encoded in one ffmpeg run that decodes the input once, and packaged by
// MPS's own packager as HLS VOD (a multivariant playlist with one variant
// per rung) and a static DASH MPD (one video AdaptationSet with one
// Representation per rung), over one set of CMAF segments.
//
// Every rung is encoded with keyframes forced on one GOP grid (the rungs
// share one GOP) and without B-frames, as live, so that the segments of
// all rungs start at the same times. Rungs carry no audio of their own:
// the presentation has one AAC audio rendition, encoded with the audio
// settings the rungs share.
type AdaptiveParams struct {
	transcoder.Template
	// SegmentDuration is the target segment length in seconds (default
	// 2). Segments are cut on the GOP grid, so it is rounded up to a
	// whole number of GOPs; it must be at least the GOP.
	SegmentDuration float64 `json:"segment_duration,omitempty"`
	// Formats are the manifests to write: hls (index.m3u8 and a media
	// playlist per rendition) and dash (manifest.mpd). Default both.
	Formats []string `json:"formats,omitempty"`
}

// Adaptive limits and defaults.
const (
	adpDefaultName    = "adaptive"
	adpDefaultSegment = 2.0
	adpMinSegment     = 0.5
	adpMaxSegment     = 60.0
	adpFormatHLS      = "hls"
	adpFormatDASH     = "dash"
	// adpEncodeShare is the part of the task's progress that the encode
	// takes; writing the packaged files takes the rest.
	adpEncodeShare = 0.95
)

// applyDefaults fills in what the template leaves unset; the ladder's own
// defaults (transcoder.Template.WithDefaults) come on top.
func (p *AdaptiveParams) applyDefaults() {
	if p.Name == "" {
		p.Name = adpDefaultName
	}
	if p.SegmentDuration == 0 {
		p.SegmentDuration = adpDefaultSegment
	}
	if len(p.Formats) == 0 {
		p.Formats = []string{adpFormatHLS, adpFormatDASH}
	}
}

// validate checks p (with its defaults applied); caps may be nil.
func (p *AdaptiveParams) validate(caps *transcoder.Capabilities) error {
	for i, r := range p.Rungs {
		field := fmt.Sprintf("rungs[%d]", i)
		if r.Passthrough {
			return fmt.Errorf("%w: %s.passthrough: an adaptive job encodes every rung, so that segments line up; remove passthrough", ErrBadInput, field)
		}
		switch r.Video.Codec {
		case transcoder.CodecH264, transcoder.CodecH265, "":
		default:
			return fmt.Errorf("%w: %s.video.codec %q: adaptive jobs encode h264 or h265", ErrBadInput, field, r.Video.Codec)
		}
		switch r.Audio.Codec {
		case "", transcoder.CodecAAC, transcoder.AudioCopy, transcoder.AudioNone:
		default:
			return fmt.Errorf("%w: %s.audio.codec %q: adaptive jobs carry aac audio (aac, copy of an aac input, or none)", ErrBadInput, field, r.Audio.Codec)
		}
	}
	if err := p.Template.Validate(caps); err != nil {
		return fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	d := p.Template.WithDefaults()
	for i := 1; i < len(d.Rungs); i++ {
		if d.Rungs[i].Audio != d.Rungs[0].Audio {
			return fmt.Errorf("%w: rungs[%d].audio: differs from rungs[0].audio; an adaptive presentation has one audio rendition that every rung shares",
				ErrBadInput, i)
		}
	}
	s := p.SegmentDuration
	if math.IsNaN(s) || s < adpMinSegment || s > adpMaxSegment {
		return fmt.Errorf("%w: segment_duration %g: must be from %g to %g seconds", ErrBadInput, s, adpMinSegment, adpMaxSegment)
	}
	if gop := d.Rungs[0].Video.GOP; adpSeconds(s) < gop {
		return fmt.Errorf("%w: segment_duration %g: shorter than the GOP (rungs[0].video.gop %s); segments are cut on keyframes", ErrBadInput, s, gop)
	}
	seen := map[string]bool{}
	for i, f := range p.Formats {
		switch {
		case f != adpFormatHLS && f != adpFormatDASH:
			return fmt.Errorf("%w: formats[%d] %q: want hls or dash", ErrBadInput, i, f)
		case seen[f]:
			return fmt.Errorf("%w: formats[%d] %q: listed twice", ErrBadInput, i, f)
		}
		seen[f] = true
	}
	return nil
}

func adpSeconds(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }

// adpDecode decodes, defaults and validates an adaptive task's params.
func adpDecode(raw json.RawMessage, caps *transcoder.Capabilities) (AdaptiveParams, error) {
	var p AdaptiveParams
	if err := DecodeParams(raw, &p); err != nil {
		return p, err
	}
	p.applyDefaults()
	return p, p.validate(caps)
}

// adaptiveRunner is the adaptive task type's Runner; it also checks
// templates when they are saved.
type adaptiveRunner struct{}

// Adaptive returns the runner of adaptive tasks (see AdaptiveParams). Its
// outputs are index.m3u8 (Kind "playlist", with a summary of the rungs
// and segments in Data) and manifest.mpd (Kind "manifest"), next to the
// media playlists t{n}.m3u8, the init segments t{n}_p0_init.mp4 and the
// segments t{n}_p0_{i}.m4s that they name by relative URIs: track n is
// rung n in template order (skipped rungs left out), and the audio is
// the track after the last rung.
func Adaptive() Runner { return adaptiveRunner{} }

// CheckParams validates an adaptive template without running it.
func (adaptiveRunner) CheckParams(params json.RawMessage) error {
	_, err := adpDecode(params, nil)
	return err
}

// adpRung is a rung as it is encoded for one input.
type adpRung struct {
	transcoder.Rung
	width, height int
	file          string // the intermediate fMP4
}

func (adaptiveRunner) Run(ctx context.Context, env Env, in Media, params json.RawMessage) ([]Output, error) {
	p, err := adpDecode(params, env.Caps)
	if err != nil {
		return nil, err
	}
	if in.Video == nil {
		return nil, fmt.Errorf("%w: the input has no video stream", ErrBadInput)
	}
	d := p.Template.WithDefaults()
	audio := d.Rungs[0].Audio
	if in.Audio == nil {
		audio.Codec = transcoder.AudioNone
	} else if audio.Codec == transcoder.AudioCopy && in.Audio.Codec != "aac" {
		return nil, fmt.Errorf("%w: rungs[0].audio.codec copy: the input's audio is %s, not aac; encode it with codec aac", ErrBadInput, in.Audio.Codec)
	}
	progress := env.progress()

	work, err := os.MkdirTemp(env.OutDir, ".adaptive-")
	if err != nil {
		return nil, fmt.Errorf("adaptive work folder: %w", err)
	}
	defer os.RemoveAll(work)

	rungs := adpPlan(d, in.Video.Width, in.Video.Height, work)
	audioFile := ""
	if audio.Codec != transcoder.AudioNone {
		audioFile = filepath.Join(work, "audio.mp4")
	}
	encEnv := env
	encEnv.Progress = func(f float64) { progress(f * adpEncodeShare) }
	if err := RunFFmpeg(ctx, encEnv, in.Duration, adpArgs(in.Path, d, rungs, audio, audioFile)...); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("adaptive encode: %w", err)
	}

	v, closeAll, err := adpPresentation(rungs, audioFile)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	gop := d.Rungs[0].Video.GOP
	seg := adpSeconds(p.SegmentDuration)
	// Keyframes sit on the GOP grid, give or take a frame: cut a little
	// early so that a keyframe a frame before a segment's end still cuts.
	v.SegmentDuration = seg - min(gop/4, 100*time.Millisecond)
	var formats packager.VODFormat
	if slices.Contains(p.Formats, adpFormatHLS) {
		formats |= packager.VODHLS
	}
	if slices.Contains(p.Formats, adpFormatDASH) {
		formats |= packager.VODDASH
	}
	names, err := v.WriteFiles(ctx, env.OutDir, formats)
	if err != nil {
		for _, n := range names {
			_ = os.Remove(filepath.Join(env.OutDir, n))
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("adaptive: %w", context.Cause(ctx))
		}
		return nil, fmt.Errorf("adaptive packaging: %w", err)
	}
	closeAll()
	_ = os.RemoveAll(work)

	outs, err := adpOutputs(ctx, env, p, rungs, audioFile != "", names, progress)
	if err != nil {
		return nil, err
	}
	// captions hook: subtitles of the job's earlier captions tasks (captions.go).
	return captionsAttachToAdaptive(env, outs)
}

// adpPlan sizes the rungs for a srcW x srcH input, as live ladders do:
// a rung larger than the input is skipped unless the template upscales;
// when every rung is, the last (smallest) one is kept at the input's size.
func adpPlan(d transcoder.Template, srcW, srcH int, work string) []*adpRung {
	var out []*adpRung
	for _, r := range d.Rungs {
		w, h, up := transcoder.FitBox(srcW, srcH, r.Video.Width, r.Video.Height)
		if up && !d.Upscale {
			continue
		}
		out = append(out, &adpRung{Rung: r, width: w, height: h})
	}
	if len(out) == 0 {
		r := d.Rungs[len(d.Rungs)-1]
		w, h, _ := transcoder.FitBox(srcW, srcH, 0, 0)
		out = append(out, &adpRung{Rung: r, width: w, height: h})
	}
	for i, r := range out {
		r.file = filepath.Join(work, "v"+strconv.Itoa(i)+".mp4")
	}
	return out
}

// adpKeyframeExpr forces a keyframe on the first frame and then on the first
// frame of every GOP-long interval of the output timeline (which starts at
// 0), the same on every rung; 0.1 ms of slack keeps float rounding from
// moving a keyframe by a frame.
func adpKeyframeExpr(gop time.Duration) string {
	g := strconv.FormatFloat(gop.Seconds(), 'f', -1, 64)
	return fmt.Sprintf("expr:if(isnan(prev_forced_t),1,gte(floor((t+0.0001)/%s),floor((prev_forced_t+0.0001)/%s)+1))", g, g)
}

// adpFragFlags write a fragmented MP4 with a fragment per GOP.
var adpFragFlags = []string{"-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof"}

// adpArgs is the one ffmpeg run of an adaptive task: the input decoded
// once (and watermarked once), split to every rung, each scaled and encoded
// into its own video-only fragmented MP4, and the audio encoded once into
// audioFile (none when empty).
func adpArgs(input string, d transcoder.Template, rungs []*adpRung, audio transcoder.Audio, audioFile string) []string {
	args := []string{"-i", input}
	args = append(args, d.Watermark.InputArgs()...)
	var graph []string
	videoIn := "0:v:0"
	if d.Watermark != nil {
		graph = append(graph, d.Watermark.Filter(videoIn, "vwm", 1))
		videoIn = "vwm"
	}
	split := fmt.Sprintf("[%s]split=%d", videoIn, len(rungs))
	for i := range rungs {
		split += fmt.Sprintf("[s%d]", i)
	}
	graph = append(graph, split)
	for i, r := range rungs {
		chain := fmt.Sprintf("scale=%d:%d,setsar=1", r.width, r.height)
		if r.Video.FPS > 0 {
			chain += ",fps=" + strconv.FormatFloat(r.Video.FPS, 'f', -1, 64)
		}
		graph = append(graph, fmt.Sprintf("[s%d]%s[v%d]", i, chain, i))
	}
	args = append(args, "-filter_complex", strings.Join(graph, ";"))
	for i, r := range rungs {
		args = append(args, "-map", fmt.Sprintf("[v%d]", i))
		args = append(args, adpVideoArgs(r.Video)...)
		args = append(args, "-an", "-sn", "-dn")
		args = append(args, adpFragFlags...)
		args = append(args, r.file)
	}
	if audioFile != "" {
		args = append(args, "-map", "0:a:0", "-vn", "-sn", "-dn")
		if audio.Codec == transcoder.AudioCopy {
			args = append(args, "-c:a", "copy")
		} else {
			args = append(args, "-c:a", "aac", "-b:a", audio.Bitrate.String(),
				"-ar", strconv.Itoa(audio.SampleRate), "-ac", strconv.Itoa(audio.Channels))
		}
		args = append(args, adpFragFlags...)
		args = append(args, audioFile)
	}
	return args
}

// adpVideoArgs are a rung's encoder settings (defaults applied): x264 or
// x265 without scene-cut keyframes or B-frames, keyframes forced as IDR on
// the GOP grid, and the bitrate bounded by a VBV.
func adpVideoArgs(v transcoder.Video) []string {
	keyint := strconv.Itoa(max(250, int(v.GOP.Seconds()*120)+1))
	var args []string
	if v.Codec == transcoder.CodecH265 {
		args = []string{"-c:v", "libx265", "-preset", v.Preset, "-tag:v", "hvc1",
			"-x265-params", "log-level=error:scenecut=0:open-gop=0:bframes=0",
			"-bf", "0", "-g", keyint, "-forced-idr", "1"}
	} else {
		args = []string{"-c:v", "libx264", "-preset", v.Preset, "-sc_threshold", "0",
			"-bf", "0", "-g", keyint, "-forced-idr", "1"}
	}
	args = append(args, "-pix_fmt", "yuv420p", "-force_key_frames", adpKeyframeExpr(v.GOP),
		"-fps_mode:v", "passthrough")
	if v.Profile != "" {
		args = append(args, "-profile:v", v.Profile)
	}
	return append(args, "-b:v", v.Bitrate.String(), "-maxrate", v.MaxRate.String(), "-bufsize", v.BufSize.String())
}

// adpPresentation reads the encoded files into one VOD: a video variant per
// rung, in rung order, and the audio as the last track. close closes the
// files; it may be called more than once.
func adpPresentation(rungs []*adpRung, audioFile string) (v *packager.VOD, closeAll func(), err error) {
	files := make([]string, 0, len(rungs)+1)
	for _, r := range rungs {
		files = append(files, r.file)
	}
	if audioFile != "" {
		files = append(files, audioFile)
	}
	media := &adpConcat{}
	closeAll = func() {
		for _, f := range media.files {
			_ = f.Close()
		}
		media.files = nil
	}
	period := packager.VODPeriod{Media: media}
	for i, name := range files {
		f, err := os.Open(name)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("adaptive: %w", err)
		}
		media.add(f)
		st, err := f.Stat()
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("adaptive: %w", err)
		}
		ix, err := packager.ReadFMP4(f, st.Size())
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("adaptive: read %s: %w", filepath.Base(name), err)
		}
		video := i < len(rungs)
		t := -1
		for j, tr := range ix.Tracks {
			if tr.IsVideo() == video && len(ix.Samples[j]) > 0 {
				t = j
				break
			}
		}
		if t < 0 {
			closeAll()
			if !video {
				return nil, nil, fmt.Errorf("%w: the input's audio gave no samples", ErrBadInput)
			}
			return nil, nil, fmt.Errorf("%w: the input's video gave no frames", ErrBadInput)
		}
		base := media.bases[len(media.bases)-1]
		samples := slices.Clone(ix.Samples[t])
		for k := range samples {
			samples[k].Offset += base
		}
		track := *ix.Tracks[t]
		track.Index = len(period.Tracks)
		period.Tracks = append(period.Tracks, &track)
		period.Timescales = append(period.Timescales, ix.Timescales[t])
		period.Samples = append(period.Samples, samples)
	}
	return &packager.VOD{Periods: []packager.VODPeriod{period}, Variants: true}, closeAll, nil
}

// adpConcat reads several files as one: file i starts at bases[i].
type adpConcat struct {
	files []*os.File
	bases []int64
}

// adpFileGap keeps the files apart in the joint offset space.
const adpFileGap = 1 << 40

func (c *adpConcat) add(f *os.File) {
	c.bases = append(c.bases, int64(len(c.files))*adpFileGap)
	c.files = append(c.files, f)
}

// ReadAt reads from the file whose range holds off; a read never spans
// two files.
func (c *adpConcat) ReadAt(p []byte, off int64) (int, error) {
	i := int(off / adpFileGap)
	if off < 0 || i >= len(c.files) {
		return 0, io.EOF
	}
	return c.files[i].ReadAt(p, off-c.bases[i])
}

// adpOutputs describes what an adaptive task wrote, probing the playlist
// (or the MPD) for the duration.
func adpOutputs(ctx context.Context, env Env, p AdaptiveParams, rungs []*adpRung, hasAudio bool, names []string, progress func(float64)) ([]Output, error) {
	segments := 0
	for _, n := range names {
		if strings.HasPrefix(n, "t0_") && strings.HasSuffix(n, ".m4s") {
			segments++
		}
	}
	var summary []map[string]any
	for i, r := range rungs {
		summary = append(summary, map[string]any{
			"name": r.Name, "codec": r.Video.Codec, "width": r.width, "height": r.height,
			"bitrate": int64(r.Video.Bitrate), "playlist": "t" + strconv.Itoa(i) + ".m3u8",
		})
	}
	data := map[string]any{
		"rungs": summary, "segments": segments, "segment_duration": p.SegmentDuration,
		"files": len(names), "audio": hasAudio,
	}
	largest := rungs[0]
	for _, r := range rungs {
		if r.width*r.height > largest.width*largest.height {
			largest = r
		}
	}
	var outs []Output
	for _, f := range []struct{ name, kind, mime string }{
		{"index.m3u8", "playlist", "application/vnd.apple.mpegurl"},
		{"manifest.mpd", "manifest", "application/dash+xml"},
	} {
		if !slices.Contains(names, f.name) {
			continue
		}
		path := filepath.Join(env.OutDir, f.name)
		st, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("adaptive: %w", err)
		}
		o := Output{Kind: f.kind, Path: f.name, MIME: f.mime, Size: st.Size(), Width: largest.width, Height: largest.height}
		if len(outs) == 0 {
			m, err := Probe(ctx, env, path)
			if err != nil {
				// Not the input's fault: keep ErrBadInput out of it.
				return nil, fmt.Errorf("adaptive: probe %s: %v", f.name, err)
			}
			o.Duration = m.Duration.Seconds()
			o.Data = data
		} else {
			o.Duration = outs[0].Duration
		}
		outs = append(outs, o)
	}
	progress(1)
	return outs, nil
}

// AdaptivePresets returns the built-in adaptive templates:
//
//   - adaptive-default: 720p, 480p and 360p H.264 (x264 superfast, 2 s
//     GOP) with AAC at 128 kbit/s, in 2 s segments, as HLS and DASH; the
//     live default ladder without its passthrough rung.
func AdaptivePresets() map[string]json.RawMessage {
	rung := func(name string, w, h int, bitrate transcoder.Bitrate) transcoder.Rung {
		return transcoder.Rung{
			Name: name,
			Video: transcoder.Video{
				Codec: transcoder.CodecH264, Width: w, Height: h, Bitrate: bitrate,
				Preset: "superfast", GOP: transcoder.DefaultGOP,
			},
			Audio: transcoder.Audio{Codec: transcoder.CodecAAC, Bitrate: 128_000},
		}
	}
	def := AdaptiveParams{
		Template: transcoder.Template{
			Name: "adaptive-default",
			Rungs: []transcoder.Rung{
				rung("720p", 1280, 720, 2_800_000),
				rung("480p", 854, 480, 1_400_000),
				rung("360p", 640, 360, 800_000),
			},
		},
		SegmentDuration: adpDefaultSegment,
		Formats:         []string{adpFormatHLS, adpFormatDASH},
	}
	b, err := json.Marshal(def)
	if err != nil {
		panic(err)
	}
	return map[string]json.RawMessage{"adaptive-default": b}
}
