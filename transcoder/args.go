package transcoder

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/stream"
)

// inputBase is added to every timestamp written to the child, so that none
// is negative (audio may start a little before the first keyframe, and
// encoders prime their output). With -copyts the child keeps it, and the
// output side subtracts it again.
const inputBase = 10 * time.Second

// Defaults of a ladder's settings (Template.WithDefaults fills in the rest).
const (
	defaultThumbnailInterval = 5 * time.Second
	thumbnailWidth           = 320
	// keyframeEpsilon moves a frame that falls within 0.1 ms of a GOP
	// boundary onto it, so that float rounding never moves a keyframe by a
	// frame.
	keyframeEpsilon = 0.0001
)

// plan is what a ladder makes of one source session: which rungs are
// transcoded, at which size, and with which inputs.
type plan struct {
	source string
	// video and audio are the source tracks fed to the child; audio is nil
	// when the source has none that MPEG-TS can carry.
	video *stream.Track
	audio *stream.Track
	// srcWidth and srcHeight are 0 when the SPS could not be read.
	srcWidth, srcHeight int
	rungs               []*plannedRung // template order; skipped rungs left out
	watermark           *Watermark
	thumbnails          bool
	thumbEvery          time.Duration
	ffmpeg              string
}

// plannedRung is a rung as it will be made for one source session.
type plannedRung struct {
	Rung
	stream string // hub name: {source}/{rung}, or the source for passthrough
	// width and height of a transcoded rung; 0 when the source size is
	// unknown (ffmpeg then fits the box itself).
	width, height int
	audio         string // CodecAAC, CodecOpus, AudioCopy or AudioNone
	gop           time.Duration
	pipe          int      // index among the transcoded rungs (ExtraFiles)
	out           *rungOut // set when the ladder adopts the plan
}

// fmp4 reports whether the rung comes back from the child as fragmented
// MP4 (AV1 and VP9, which MPEG-TS cannot carry) rather than MPEG-TS.
func (r *plannedRung) fmp4() bool {
	return !r.Passthrough && (r.Video.Codec == CodecAV1 || r.Video.Codec == CodecVP9)
}

// transcoded returns the rungs the child encodes.
func (p *plan) transcoded() []*plannedRung {
	var out []*plannedRung
	for _, r := range p.rungs {
		if !r.Passthrough {
			out = append(out, r)
		}
	}
	return out
}

// needsChild reports whether anything is left for ffmpeg to do.
func (p *plan) needsChild() bool { return p.thumbnails || len(p.transcoded()) > 0 }

// sourceVideoTrack picks the first video track of a session and checks that
// it can be fed to ffmpeg over MPEG-TS.
func sourceVideoTrack(name string, s *stream.Session) (*stream.Track, error) {
	for _, t := range s.Tracks {
		if !t.IsVideo() {
			continue
		}
		switch t.Codec.(type) {
		case *codecs.H264, *codecs.H265:
			return t, nil
		default:
			return nil, fmt.Errorf("%s: %w: %s video cannot be carried to ffmpeg over MPEG-TS; "+
				"publish H.264 or H.265 to transcode this stream", name, ErrUnsupportedSource, t.CodecName())
		}
	}
	return nil, fmt.Errorf("%s: %w: the stream has no video track", name, ErrUnsupportedSource)
}

// sourceAudioTrack picks the first audio track MPEG-TS can carry, or nil.
func sourceAudioTrack(s *stream.Session) *stream.Track {
	for _, t := range s.Tracks {
		switch t.Codec.(type) {
		case *codecs.MPEG4Audio, *codecs.Opus:
			return t
		}
	}
	return nil
}

// checkTemplate refuses what the runtime cannot run: a template without
// rungs, rung names that make invalid or repeated stream names, and
// unknown codecs.
func checkTemplate(source string, tpl *Template) error {
	if tpl == nil || len(tpl.Rungs) == 0 {
		return fmt.Errorf("%w: no rungs", ErrInvalidTemplate)
	}
	seen := make(map[string]bool, len(tpl.Rungs))
	for _, r := range tpl.Rungs {
		if r.Name == "" || strings.Contains(r.Name, "/") {
			return fmt.Errorf("%w: rung name %q must be one name part", ErrInvalidTemplate, r.Name)
		}
		if err := stream.ValidateName(source + "/" + r.Name); err != nil {
			return fmt.Errorf("%w: rung %q: %w", ErrInvalidTemplate, r.Name, err)
		}
		if seen[r.Name] {
			return fmt.Errorf("%w: rung %q appears twice", ErrInvalidTemplate, r.Name)
		}
		seen[r.Name] = true
		if r.Passthrough {
			continue
		}
		switch r.Video.Codec {
		case "", CodecH264, CodecH265, CodecAV1, CodecVP9:
		default:
			return fmt.Errorf("%w: rung %q: unknown video codec %q", ErrInvalidTemplate, r.Name, r.Video.Codec)
		}
		switch r.Audio.Codec {
		case "", CodecAAC, CodecOpus, AudioCopy, AudioNone:
		default:
			return fmt.Errorf("%w: rung %q: unknown audio codec %q", ErrInvalidTemplate, r.Name, r.Audio.Codec)
		}
		if r.Video.Width < 0 || r.Video.Height < 0 || r.Video.FPS < 0 || r.Video.GOP < 0 {
			return fmt.Errorf("%w: rung %q: negative size, fps or gop", ErrInvalidTemplate, r.Name)
		}
	}
	return nil
}

// makePlan decides what the ladder makes of a source session.
func makePlan(source string, s *stream.Session, tpl *Template, o planOptions) (*plan, error) {
	if err := checkTemplate(source, tpl); err != nil {
		return nil, err
	}
	video, err := sourceVideoTrack(source, s)
	if err != nil {
		return nil, err
	}
	p := &plan{
		source:     source,
		video:      video,
		audio:      sourceAudioTrack(s),
		watermark:  tpl.Watermark,
		thumbnails: o.thumbnails,
		thumbEvery: o.thumbEvery,
		ffmpeg:     o.ffmpeg,
	}
	if p.thumbEvery <= 0 {
		p.thumbEvery = defaultThumbnailInterval
	}
	p.srcWidth, p.srcHeight = video.Resolution()
	n := 0
	for _, r := range tpl.Rungs {
		pr := &plannedRung{Rung: r}
		if r.Passthrough {
			pr.stream = source
			p.rungs = append(p.rungs, pr)
			continue
		}
		pr.stream = source + "/" + r.Name
		if p.srcWidth > 0 && p.srcHeight > 0 {
			w, h, up := FitBox(p.srcWidth, p.srcHeight, r.Video.Width, r.Video.Height)
			if up && !tpl.Upscale {
				continue
			}
			pr.width, pr.height = w, h
		}
		pr.gop = r.Video.GOP
		if pr.gop <= 0 {
			pr.gop = DefaultGOP
		}
		pr.audio = r.Audio.Codec
		if pr.audio == "" {
			pr.audio = CodecAAC
		}
		if p.audio == nil || pr.fmp4() {
			// AV1 and VP9 rungs carry video only (see fmp4out.go).
			pr.audio = AudioNone
		}
		pr.pipe = n
		n++
		p.rungs = append(p.rungs, pr)
	}
	return p, nil
}

type planOptions struct {
	thumbnails bool
	thumbEvery time.Duration
	ffmpeg     string
}

// FitBox scales a srcW x srcH picture to fit in a boxW x boxH box (either
// may be 0 to follow the other), keeping the aspect ratio, with even
// dimensions. up reports that the result is larger than the source. An
// unknown source size gives the box.
func FitBox(srcW, srcH, boxW, boxH int) (w, h int, up bool) {
	if srcW <= 0 || srcH <= 0 {
		return even(float64(boxW)), even(float64(boxH)), false
	}
	if boxW <= 0 && boxH <= 0 {
		return even(float64(srcW)), even(float64(srcH)), false
	}
	s := math.Inf(1)
	if boxW > 0 {
		s = float64(boxW) / float64(srcW)
	}
	if boxH > 0 {
		s = min(s, float64(boxH)/float64(srcH))
	}
	return even(float64(srcW) * s), even(float64(srcH) * s), s > 1.0001
}

// even rounds to the nearest even number, at least 2.
func even(v float64) int {
	return max(2, 2*int(math.Round(v/2)))
}

// pipeLayout tells which ExtraFiles index (fd 3+i) carries what.
type pipeLayout struct {
	rungs     int // rung i is ExtraFiles[i]
	thumbnail int // -1 when none
	progress  int
}

func (p *plan) layout() pipeLayout {
	l := pipeLayout{rungs: len(p.transcoded()), thumbnail: -1}
	next := l.rungs
	if p.thumbnails {
		l.thumbnail = next
		next++
	}
	l.progress = next
	return l
}

// buildArgs returns ffmpeg's command line for a plan. firstPTS is the
// session-relative PTS of the first frame the child gets (a keyframe): ffmpeg
// measures the t of -force_key_frames from the first frame an encoder sees,
// so adding it back puts keyframes on multiples of the GOP in the source's
// own timeline, the same on every rung and after every restart.
//
// Choices worth knowing:
//   - -copyts with -muxdelay 0 -muxpreload 0 into MPEG-TS keeps the input
//     timestamps exactly, and -enc_time_base 1:90000 with -fps_mode
//     passthrough stops the encoders from rounding them to a frame-rate grid.
//   - -bf 0: no B-frames, so DTS equals PTS and a rung adds no reordering
//     delay. This is the low-latency default; it costs some compression.
//   - Scene-cut keyframes are off and keyframes are forced as IDR, so that
//     segments line up across rungs.
//   - AV1 and VP9 rungs, which MPEG-TS cannot carry, are written as
//     fragmented MP4, one fragment per frame, video only (see fmp4out.go).
func buildArgs(p *plan, firstPTS time.Duration) []string {
	fd := func(i int) string { return "pipe:" + strconv.Itoa(3+i) }
	lay := p.layout()
	args := []string{
		"-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+warning",
		"-copyts", "-dts_delta_threshold", "86400",
		"-f", "mpegts", "-analyzeduration", "1000000", "-probesize", "1000000", "-i", "pipe:0",
	}
	imageInput := 1
	if p.watermark != nil {
		args = append(args, p.watermark.InputArgs()...)
	}
	args = append(args, "-progress", fd(lay.progress), "-stats_period", "1")

	rungs := p.transcoded()
	var graph []string
	videoIn := "0:v:0"
	if p.thumbnails {
		if len(rungs) > 0 {
			graph = append(graph, "["+videoIn+"]split=2[vsrc][thsrc]")
			videoIn = "vsrc"
		} else {
			graph = append(graph, "["+videoIn+"]null[thsrc]")
		}
		graph = append(graph, fmt.Sprintf("[thsrc]select='isnan(prev_selected_t)+gte(t-prev_selected_t,%s)',scale=%d:-2[thumb]",
			fmtFloat(p.thumbEvery.Seconds()), thumbnailWidth))
	}
	if len(rungs) > 0 {
		if p.watermark != nil {
			graph = append(graph, p.watermark.Filter(videoIn, "vwm", imageInput))
			videoIn = "vwm"
		}
		split := fmt.Sprintf("[%s]split=%d", videoIn, len(rungs))
		for i := range rungs {
			split += fmt.Sprintf("[s%d]", i)
		}
		graph = append(graph, split)
		for i, r := range rungs {
			var chain string
			if r.width > 0 && r.height > 0 {
				chain = fmt.Sprintf("scale=%d:%d", r.width, r.height)
			} else {
				chain = boxScale(r.Video.Width, r.Video.Height)
			}
			chain += ",setsar=1"
			if r.Video.FPS > 0 {
				chain += ",fps=" + fmtFloat(r.Video.FPS)
			}
			graph = append(graph, fmt.Sprintf("[s%d]%s[v%d]", i, chain, i))
		}
	}
	args = append(args, "-filter_complex", strings.Join(graph, ";"))

	for i, r := range rungs {
		args = append(args, "-map", fmt.Sprintf("[v%d]", i))
		args = append(args, videoArgs(r, firstPTS)...)
		if r.audio != AudioNone {
			args = append(args, "-map", "0:a:0")
			args = append(args, audioArgs(r)...)
		}
		if r.fmp4() {
			// One fragment per frame, so that a frame leaves the child as
			// soon as the next one is encoded.
			args = append(args, "-f", "mp4", "-movflags", "+frag_every_frame+empty_moov+default_base_moof",
				"-flush_packets", "1", "-max_muxing_queue_size", "4096", fd(r.pipe))
			continue
		}
		args = append(args, "-f", "mpegts", "-muxdelay", "0", "-muxpreload", "0", "-flush_packets", "1",
			"-max_muxing_queue_size", "4096", fd(r.pipe))
	}
	if p.thumbnails {
		args = append(args, "-map", "[thumb]", "-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p",
			"-fps_mode:v", "passthrough", "-f", "image2pipe", fd(lay.thumbnail))
	}
	return args
}

// boxScale fits a box when the source size is unknown.
func boxScale(w, h int) string {
	switch {
	case w > 0 && h > 0:
		return fmt.Sprintf("scale=%d:%d:force_original_aspect_ratio=decrease:force_divisible_by=2", w, h)
	case w > 0:
		return fmt.Sprintf("scale=%d:-2", w)
	case h > 0:
		return fmt.Sprintf("scale=-2:%d", h)
	}
	return "scale=trunc(iw/2)*2:trunc(ih/2)*2"
}

// keyframeExpr forces a keyframe on the first frame and then on the first
// frame of every GOP-long interval of the source timeline.
func keyframeExpr(gop, firstPTS time.Duration) string {
	off := fmtFloat(firstPTS.Seconds() + keyframeEpsilon)
	g := fmtFloat(gop.Seconds())
	return fmt.Sprintf("expr:if(isnan(prev_forced_t),1,gte(floor((t+%s)/%s),floor((prev_forced_t+%s)/%s)+1))", off, g, off, g)
}

func videoArgs(r *plannedRung, firstPTS time.Duration) []string {
	v := r.Video
	preset := v.Preset
	if preset == "" {
		preset = DefaultPresets[CodecH264]
		if _, ok := DefaultPresets[v.Codec]; ok {
			preset = DefaultPresets[v.Codec]
		}
	}
	// Natural keyframes must not come between the forced ones.
	keyint := strconv.Itoa(max(250, int(r.gop.Seconds()*120)+1))
	var args []string
	switch v.Codec {
	case CodecAV1:
		return append(av1Args(v, preset, keyint), "-pix_fmt", "yuv420p",
			"-force_key_frames", keyframeExpr(r.gop, firstPTS),
			"-enc_time_base:v", "1:90000", "-fps_mode:v", "passthrough")
	case CodecVP9:
		// Realtime, no lookahead and no alternate reference frames: no
		// added latency, and one shown frame per packet.
		args = []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", preset,
			"-lag-in-frames", "0", "-auto-alt-ref", "0", "-row-mt", "1", "-g", keyint}
	case CodecH265:
		args = []string{"-c:v", "libx265", "-preset", preset,
			"-x265-params", "log-level=error:scenecut=0:open-gop=0:bframes=0",
			"-bf", "0", "-g", keyint, "-forced-idr", "1"}
	default:
		args = []string{"-c:v", "libx264", "-preset", preset, "-sc_threshold", "0",
			"-bf", "0", "-g", keyint, "-forced-idr", "1"}
	}
	args = append(args, "-pix_fmt", "yuv420p",
		"-force_key_frames", keyframeExpr(r.gop, firstPTS),
		"-enc_time_base:v", "1:90000", "-fps_mode:v", "passthrough")
	if v.Profile != "" {
		args = append(args, "-profile:v", v.Profile)
	}
	if v.Bitrate > 0 {
		maxRate, bufSize := v.MaxRate, v.BufSize
		if maxRate <= 0 {
			maxRate = v.Bitrate * 11 / 10
		}
		if bufSize <= 0 {
			bufSize = v.Bitrate * 2
		}
		args = append(args, "-b:v", v.Bitrate.String(), "-maxrate", maxRate.String(), "-bufsize", bufSize.String())
	} else {
		if v.MaxRate > 0 {
			args = append(args, "-maxrate", v.MaxRate.String())
		}
		if v.BufSize > 0 {
			args = append(args, "-bufsize", v.BufSize.String())
		}
	}
	return args
}

// av1Args: SVT-AV1 honours forced keyframes only in CRF mode (with
// enable-force-key-frames), so a bitrate becomes a capped CRF: the
// rung's maxrate (1.1x the bitrate by default) is its maximum bitrate
// (mbr, in kbit/s), and bufsize is not used. No lookahead and a mini-GOP
// of 4 keep the encoder's delay to a few frames (about 1 s with SVT-AV1's
// defaults). Scene-cut keyframes are off by default in SVT-AV1. AV1 has
// no frame reordering in the container: DTS = PTS.
func av1Args(v Video, preset, keyint string) []string {
	params := "enable-force-key-frames=1:lookahead=0:hierarchical-levels=2"
	maxRate := v.MaxRate
	if maxRate <= 0 && v.Bitrate > 0 {
		maxRate = v.Bitrate * 11 / 10
	}
	if maxRate > 0 {
		params += ":mbr=" + strconv.FormatInt(max(1, int64(maxRate)/1000), 10)
	}
	return []string{"-c:v", "libsvtav1", "-preset", preset, "-svtav1-params", params, "-g", keyint}
}

func audioArgs(r *plannedRung) []string {
	a := r.Audio
	var args []string
	switch r.audio {
	case AudioCopy:
		return []string{"-c:a", "copy"}
	case CodecOpus:
		// Opus runs at 48 kHz only.
		args = []string{"-c:a", "libopus", "-ar", "48000"}
	default:
		args = []string{"-c:a", "aac"}
		if a.SampleRate > 0 {
			args = append(args, "-ar", strconv.Itoa(a.SampleRate))
		}
	}
	if a.Bitrate > 0 {
		args = append(args, "-b:a", a.Bitrate.String())
	}
	if a.Channels > 0 {
		args = append(args, "-ac", strconv.Itoa(a.Channels))
	}
	return args
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
