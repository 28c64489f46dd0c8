package vod

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mps-dev/mps/transcoder"
)

// Codecs a transcode or enhance output can carry, besides transcoder's
// h264, h265, vp9, av1, aac, opus, copy and none.
const (
	CodecMP3  = "mp3"
	CodecCopy = "copy"
	CodecNone = "none"
)

// TranscodeParams are the params of a "transcode" task: one output file.
type TranscodeParams struct {
	// Container is mp4 (default), mov, mkv, webm, or an audio-only one:
	// m4a (AAC in MP4), aac (ADTS), mp3 or opus (Opus in Ogg).
	Container string `json:"container,omitempty"`
	// Video is the video encoding. Its codec defaults to the container's
	// (h264, vp9 for webm, none for audio-only containers).
	Video VideoParams `json:"video"`
	// Audio is the audio encoding. Its codec defaults to the container's
	// (aac, opus for webm and opus, mp3 for mp3).
	Audio AudioParams `json:"audio"`
	// Watermark, when set, is drawn on the video after scaling.
	Watermark *transcoder.Watermark `json:"watermark,omitempty"`
	// Start and Duration trim the input, in seconds: the output starts at
	// Start and lasts at most Duration (0: to the end).
	Start    float64 `json:"start,omitempty"`
	Duration float64 `json:"duration,omitempty"`
}

// VideoParams are the video encoder settings of an output. Transcode and
// enhance share them.
type VideoParams struct {
	// Codec is h264, h265, vp9, av1, copy (the input's stream, untouched)
	// or none (no video).
	Codec string `json:"codec,omitempty"`
	// Width and Height bound the picture (both even, 16..8192); the input's
	// aspect ratio is kept, so one side may come out smaller. 0 follows the
	// other side; both 0 keep the input's size.
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
	// AllowUpscale lets Width and Height make the picture larger than the
	// input's. By default the input's size is the limit.
	AllowUpscale bool `json:"allow_upscale,omitempty"`
	// Bitrate is the average target (like 2500k or 2.5M). MaxRate and
	// BufSize bound it with a VBV (BufSize defaults to twice MaxRate); they
	// also cap a CRF encode. With neither Bitrate nor CRF, the codec's
	// default CRF is used (h264 23, h265 28, vp9 32, av1 35).
	Bitrate transcoder.Bitrate `json:"bitrate,omitempty"`
	MaxRate transcoder.Bitrate `json:"maxrate,omitempty"`
	BufSize transcoder.Bitrate `json:"bufsize,omitempty"`
	// CRF is the constant quality (0..51 for h264 and h265, 0..63 for vp9
	// and av1; lower is better). It excludes Bitrate.
	CRF *int `json:"crf,omitempty"`
	// Preset is the x264/x265 preset name (default medium), the libvpx-vp9
	// speed 0..8 (default 4) or the SVT-AV1 preset 0..13 (default 8).
	Preset string `json:"preset,omitempty"`
	// Profile is baseline, main or high for h264, main or main10 for h265.
	Profile string `json:"profile,omitempty"`
	// FPS converts the frame rate (dropping or repeating frames); 0 keeps
	// the input's. 23.976, 29.97 and 59.94 are taken as the NTSC rates.
	FPS float64 `json:"fps,omitempty"`
	// GOP is the largest keyframe interval in seconds (default 2).
	GOP float64 `json:"gop,omitempty"`
}

// AudioParams are the audio encoder settings of an output. Transcode and
// enhance share them.
type AudioParams struct {
	// Codec is aac, opus, mp3, copy (the input's stream, untouched) or none
	// (no audio).
	Codec string `json:"codec,omitempty"`
	// Bitrate defaults to 128k (aac, mp3) or 96k (opus).
	Bitrate transcoder.Bitrate `json:"bitrate,omitempty"`
	// SampleRate in Hz; 0 keeps the input's (or the nearest the encoder
	// takes).
	SampleRate int `json:"sample_rate,omitempty"`
	// Channels; 0 keeps the input's, at most 2 (more are downmixed).
	Channels int `json:"channels,omitempty"`
}

// tcContainer is an output file format.
type tcContainer struct {
	name, ext, muxer  string
	mime, audioMIME   string // audioMIME: when the file has no video
	video, audio      []string
	defVideo, defAudi string
	faststart         bool
	// anyCopy: the muxer takes any codec for copy (matroska).
	anyCopy bool
}

var tcContainers = map[string]tcContainer{
	"mp4": {name: "mp4", ext: "mp4", muxer: "mp4", mime: "video/mp4", audioMIME: "audio/mp4",
		video: []string{transcoder.CodecH264, transcoder.CodecH265, transcoder.CodecVP9, transcoder.CodecAV1},
		audio: []string{transcoder.CodecAAC, CodecMP3, transcoder.CodecOpus}, defVideo: transcoder.CodecH264, defAudi: transcoder.CodecAAC, faststart: true},
	"mov": {name: "mov", ext: "mov", muxer: "mov", mime: "video/quicktime", audioMIME: "video/quicktime",
		video: []string{transcoder.CodecH264, transcoder.CodecH265},
		audio: []string{transcoder.CodecAAC, CodecMP3}, defVideo: transcoder.CodecH264, defAudi: transcoder.CodecAAC, faststart: true},
	"mkv": {name: "mkv", ext: "mkv", muxer: "matroska", mime: "video/x-matroska", audioMIME: "audio/x-matroska",
		video: []string{transcoder.CodecH264, transcoder.CodecH265, transcoder.CodecVP9, transcoder.CodecAV1},
		audio: []string{transcoder.CodecAAC, CodecMP3, transcoder.CodecOpus}, defVideo: transcoder.CodecH264, defAudi: transcoder.CodecAAC, anyCopy: true},
	"webm": {name: "webm", ext: "webm", muxer: "webm", mime: "video/webm", audioMIME: "audio/webm",
		video: []string{transcoder.CodecVP9, transcoder.CodecAV1},
		audio: []string{transcoder.CodecOpus}, defVideo: transcoder.CodecVP9, defAudi: transcoder.CodecOpus},
	"m4a": {name: "m4a", ext: "m4a", muxer: "ipod", mime: "audio/mp4", audioMIME: "audio/mp4",
		audio: []string{transcoder.CodecAAC}, defVideo: CodecNone, defAudi: transcoder.CodecAAC, faststart: true},
	"aac": {name: "aac", ext: "aac", muxer: "adts", mime: "audio/aac", audioMIME: "audio/aac",
		audio: []string{transcoder.CodecAAC}, defVideo: CodecNone, defAudi: transcoder.CodecAAC},
	"mp3": {name: "mp3", ext: "mp3", muxer: "mp3", mime: "audio/mpeg", audioMIME: "audio/mpeg",
		audio: []string{CodecMP3}, defVideo: CodecNone, defAudi: CodecMP3},
	"opus": {name: "opus", ext: "opus", muxer: "opus", mime: "audio/ogg", audioMIME: "audio/ogg",
		audio: []string{transcoder.CodecOpus}, defVideo: CodecNone, defAudi: transcoder.CodecOpus},
}

var tcContainerNames = []string{"mp4", "mov", "mkv", "webm", "m4a", "aac", "mp3", "opus"}

func (c tcContainer) audioOnly() bool { return len(c.video) == 0 }

// tcEncoders maps an output codec to its ffmpeg encoder.
var tcEncoders = map[string]string{
	transcoder.CodecH264: "libx264",
	transcoder.CodecH265: "libx265",
	transcoder.CodecVP9:  "libvpx-vp9",
	transcoder.CodecAV1:  "libsvtav1",
	transcoder.CodecAAC:  "aac",
	transcoder.CodecOpus: "libopus",
	CodecMP3:             "libmp3lame",
}

// tcProbeCodecs maps ffprobe's codec names to ours, for copy.
var tcProbeCodecs = map[string]string{
	"h264": transcoder.CodecH264, "hevc": transcoder.CodecH265, "vp9": transcoder.CodecVP9, "av1": transcoder.CodecAV1,
	"aac": transcoder.CodecAAC, "mp3": CodecMP3, "opus": transcoder.CodecOpus,
}

var (
	tcVideoCodecNames = []string{transcoder.CodecH264, transcoder.CodecH265, transcoder.CodecVP9, transcoder.CodecAV1, CodecCopy, CodecNone}
	tcAudioCodecNames = []string{transcoder.CodecAAC, transcoder.CodecOpus, CodecMP3, CodecCopy, CodecNone}
	tcX26xPresets     = []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"}
	tcVideoProfiles   = map[string][]string{
		transcoder.CodecH264: {"baseline", "main", "high"},
		transcoder.CodecH265: {"main", "main10"},
	}
	tcDefaultCRF     = map[string]int{transcoder.CodecH264: 23, transcoder.CodecH265: 28, transcoder.CodecVP9: 32, transcoder.CodecAV1: 35}
	tcMaxCRF         = map[string]int{transcoder.CodecH264: 51, transcoder.CodecH265: 51, transcoder.CodecVP9: 63, transcoder.CodecAV1: 63}
	tcDefaultPresets = map[string]string{transcoder.CodecH264: "medium", transcoder.CodecH265: "medium", transcoder.CodecVP9: "4", transcoder.CodecAV1: "8"}
	tcAudioBitrates  = map[string][2]transcoder.Bitrate{
		transcoder.CodecAAC: {16_000, 512_000}, transcoder.CodecOpus: {6_000, 510_000}, CodecMP3: {32_000, 320_000},
	}
	tcDefaultAudioBitrates = map[string]transcoder.Bitrate{transcoder.CodecAAC: 128_000, transcoder.CodecOpus: 96_000, CodecMP3: 128_000}
	tcAudioSampleRates     = map[string][]int{
		transcoder.CodecAAC:  {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000},
		transcoder.CodecOpus: {8000, 12000, 16000, 24000, 48000},
		CodecMP3:             {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000},
	}
)

// Limits of output settings.
const (
	tcMinDimension     = 16
	tcMaxDimension     = 8192
	tcMaxOutputFPS     = 240
	tcMaxGOPSeconds    = 60
	tcMaxAudioChannels = 8
	tcDefaultGOP       = 2.0
)

// tcProblems collects validation failures; err wraps them in ErrBadInput.
type tcProblems []string

func (p *tcProblems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p tcProblems) err() error {
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrBadInput, strings.Join(p, "; "))
}

func tcOrList(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// TranscodePresets returns the built-in transcode templates, name ->
// params JSON.
func TranscodePresets() map[string]json.RawMessage {
	return map[string]json.RawMessage{
		"mp4-1080p":      json.RawMessage(`{"container":"mp4","video":{"codec":"h264","width":1920,"height":1080,"bitrate":"5M","maxrate":"5.5M","bufsize":"10M","preset":"medium","profile":"high"},"audio":{"codec":"aac","bitrate":"128k"}}`),
		"mp4-720p":       json.RawMessage(`{"container":"mp4","video":{"codec":"h264","width":1280,"height":720,"bitrate":"2500k","maxrate":"2750k","bufsize":"5M","preset":"medium","profile":"high"},"audio":{"codec":"aac","bitrate":"128k"}}`),
		"mp4-480p":       json.RawMessage(`{"container":"mp4","video":{"codec":"h264","width":854,"height":480,"bitrate":"1200k","maxrate":"1320k","bufsize":"2400k","preset":"medium","profile":"main"},"audio":{"codec":"aac","bitrate":"96k"}}`),
		"webm-vp9-480p":  json.RawMessage(`{"container":"webm","video":{"codec":"vp9","width":854,"height":480,"crf":33,"maxrate":"1500k","preset":"4"},"audio":{"codec":"opus","bitrate":"96k"}}`),
		"webm-vp9-720p":  json.RawMessage(`{"container":"webm","video":{"codec":"vp9","width":1280,"height":720,"crf":32,"maxrate":"3M","preset":"4"},"audio":{"codec":"opus","bitrate":"128k"}}`),
		"audio-aac-128k": json.RawMessage(`{"container":"m4a","video":{"codec":"none"},"audio":{"codec":"aac","bitrate":"128k"}}`),
		"audio-mp3-128k": json.RawMessage(`{"container":"mp3","video":{"codec":"none"},"audio":{"codec":"mp3","bitrate":"128k"}}`),
		"audio-opus-96k": json.RawMessage(`{"container":"opus","video":{"codec":"none"},"audio":{"codec":"opus","bitrate":"96k"}}`),
	}
}

// Transcode returns the runner of "transcode" tasks: the input encoded to
// one file with the settings of TranscodeParams.
// The runner also checks params without running (ParamsChecker).
func Transcode() Runner { return transcodeRunner{} }

type transcodeRunner struct{}

func (transcodeRunner) Run(ctx context.Context, env Env, in Media, params json.RawMessage) ([]Output, error) {
	return runTranscode(ctx, env, in, params)
}

// CheckParams decodes and checks params as Run does, without caps.
func (transcodeRunner) CheckParams(params json.RawMessage) error {
	_, err := DecodeTranscodeParams(params, nil)
	return err
}

// DecodeTranscodeParams decodes params strictly, fills in the defaults and
// checks them (with caps, also that this ffmpeg has the encoders and
// filters needed; nil caps skips that). Every error wraps ErrBadInput and
// names its field.
func DecodeTranscodeParams(params json.RawMessage, caps *transcoder.Capabilities) (TranscodeParams, error) {
	var p TranscodeParams
	if err := DecodeParams(params, &p); err != nil {
		return p, err
	}
	var pr tcProblems
	if p.Container == "" {
		p.Container = "mp4"
	}
	c, ok := tcContainers[p.Container]
	if !ok {
		pr.add("container %q: want %s", p.Container, tcOrList(tcContainerNames))
		return p, pr.err()
	}
	p.Video.applyDefaults(c)
	p.Audio.applyDefaults(c)
	p.Video.check("video", c, caps, &pr)
	p.Audio.check("audio", c, caps, &pr)
	if p.Video.Codec == CodecNone && p.Audio.Codec == CodecNone {
		pr.add("video.codec, audio.codec: both none; the output needs video or audio")
	}
	if p.Watermark != nil {
		if p.Video.Codec == CodecNone || p.Video.Codec == CodecCopy {
			pr.add("watermark: needs an encoded video (video.codec is %s)", p.Video.Codec)
		}
		tcCheckWatermark("watermark", p.Watermark, caps, &pr)
	}
	if math.IsNaN(p.Start) || p.Start < 0 || p.Start > 1e7 {
		pr.add("start %v: must be 0 or more seconds", p.Start)
	}
	if math.IsNaN(p.Duration) || p.Duration < 0 || p.Duration > 1e7 {
		pr.add("duration %v: must be 0 (to the end) or more seconds", p.Duration)
	}
	return p, pr.err()
}

// applyDefaults fills in the codec (from the container) and its encoder
// settings.
func (v *VideoParams) applyDefaults(c tcContainer) {
	if v.Codec == "" {
		v.Codec = c.defVideo
	}
	if v.Codec == CodecNone || v.Codec == CodecCopy {
		return
	}
	if v.Preset == "" {
		v.Preset = tcDefaultPresets[v.Codec]
	}
	if v.GOP == 0 {
		v.GOP = tcDefaultGOP
	}
	if v.MaxRate > 0 && v.BufSize == 0 {
		v.BufSize = v.MaxRate * 2
	}
	if v.CRF == nil && v.Bitrate == 0 {
		if crf, ok := tcDefaultCRF[v.Codec]; ok {
			v.CRF = &crf
		}
	}
}

func (a *AudioParams) applyDefaults(c tcContainer) {
	if a.Codec == "" {
		a.Codec = c.defAudi
	}
	if a.Bitrate == 0 {
		a.Bitrate = tcDefaultAudioBitrates[a.Codec]
	}
}

// check validates v (with defaults) for container c.
func (v *VideoParams) check(field string, c tcContainer, caps *transcoder.Capabilities, pr *tcProblems) {
	switch {
	case !slices.Contains(tcVideoCodecNames, v.Codec):
		pr.add("%s.codec %q: want %s", field, v.Codec, tcOrList(tcVideoCodecNames))
		return
	case v.Codec == CodecNone:
		if v.Width != 0 || v.Height != 0 || v.Bitrate != 0 || v.MaxRate != 0 || v.CRF != nil || v.FPS != 0 || v.Preset != "" || v.Profile != "" {
			pr.add("%s: settings have no effect with codec none; remove them", field)
		}
		return
	case c.audioOnly():
		pr.add("%s.codec %s: container %s is audio-only; use codec none", field, v.Codec, c.name)
		return
	case v.Codec == CodecCopy:
		if v.Width != 0 || v.Height != 0 || v.Bitrate != 0 || v.MaxRate != 0 || v.BufSize != 0 || v.CRF != nil ||
			v.FPS != 0 || v.Preset != "" || v.Profile != "" || v.GOP != 0 || v.AllowUpscale {
			pr.add("%s: encoder settings have no effect with codec copy; remove them", field)
		}
		return
	case !slices.Contains(c.video, v.Codec):
		pr.add("%s.codec %s: container %s cannot carry it (want %s)", field, v.Codec, c.name, tcOrList(c.video))
	}
	if caps != nil && !caps.HasEncoder(tcEncoders[v.Codec]) {
		pr.add("%s.codec %s: needs the %s encoder, which this ffmpeg does not have", field, v.Codec, tcEncoders[v.Codec])
	}
	for _, d := range []struct {
		key string
		val int
	}{{"width", v.Width}, {"height", v.Height}} {
		if d.val != 0 && (d.val < tcMinDimension || d.val > tcMaxDimension || d.val%2 != 0) {
			pr.add("%s.%s %d: must be 0 (follow the other side) or an even number from %d to %d", field, d.key, d.val, tcMinDimension, tcMaxDimension)
		}
	}
	if v.Bitrate < 0 || v.MaxRate < 0 || v.BufSize < 0 {
		pr.add("%s: bitrate, maxrate and bufsize must not be negative", field)
	}
	if v.CRF != nil {
		if v.Bitrate > 0 {
			pr.add("%s.crf: set crf or bitrate, not both", field)
		}
		if m := tcMaxCRF[v.Codec]; *v.CRF < 0 || *v.CRF > m {
			pr.add("%s.crf %d: must be from 0 to %d for %s", field, *v.CRF, m, v.Codec)
		}
	}
	if v.Bitrate > 0 && v.Bitrate < 10_000 {
		pr.add("%s.bitrate %d: must be at least 10k", field, v.Bitrate)
	}
	if v.MaxRate > 0 && v.MaxRate < v.Bitrate {
		pr.add("%s.maxrate %d: must be at least video.bitrate %d", field, v.MaxRate, v.Bitrate)
	}
	if v.BufSize > 0 && v.MaxRate == 0 {
		pr.add("%s.bufsize: needs maxrate", field)
	}
	if math.IsNaN(v.FPS) || v.FPS < 0 || v.FPS > tcMaxOutputFPS || (v.FPS > 0 && v.FPS < 1) {
		pr.add("%s.fps %v: must be 0 (keep the input's) or from 1 to %d", field, v.FPS, tcMaxOutputFPS)
	}
	if math.IsNaN(v.GOP) || v.GOP < 0.1 || v.GOP > tcMaxGOPSeconds {
		pr.add("%s.gop %v: must be from 0.1 to %d seconds", field, v.GOP, tcMaxGOPSeconds)
	}
	switch v.Codec {
	case transcoder.CodecH264, transcoder.CodecH265:
		if !slices.Contains(tcX26xPresets, v.Preset) {
			pr.add("%s.preset %q: want %s", field, v.Preset, tcOrList(tcX26xPresets))
		}
	case transcoder.CodecVP9:
		if n, err := strconv.Atoi(v.Preset); err != nil || n < 0 || n > 8 {
			pr.add("%s.preset %q: a vp9 preset is the libvpx speed, 0 (slowest) to 8 (fastest)", field, v.Preset)
		}
	case transcoder.CodecAV1:
		if n, err := strconv.Atoi(v.Preset); err != nil || n < 0 || n > 13 {
			pr.add("%s.preset %q: an av1 preset is the SVT-AV1 preset, 0 (slowest) to 13 (fastest)", field, v.Preset)
		}
	}
	if v.Profile != "" {
		if want, ok := tcVideoProfiles[v.Codec]; !ok {
			pr.add("%s.profile %q: only h264 and h265 take a profile", field, v.Profile)
		} else if !slices.Contains(want, v.Profile) {
			pr.add("%s.profile %q: want %s", field, v.Profile, tcOrList(want))
		}
	}
}

func (a *AudioParams) check(field string, c tcContainer, caps *transcoder.Capabilities, pr *tcProblems) {
	switch {
	case !slices.Contains(tcAudioCodecNames, a.Codec):
		pr.add("%s.codec %q: want %s", field, a.Codec, tcOrList(tcAudioCodecNames))
		return
	case a.Codec == CodecNone || a.Codec == CodecCopy:
		if a.Bitrate != 0 || a.SampleRate != 0 || a.Channels != 0 {
			pr.add("%s: bitrate, sample_rate and channels have no effect with codec %s; remove them", field, a.Codec)
		}
		return
	case !slices.Contains(c.audio, a.Codec):
		pr.add("%s.codec %s: container %s cannot carry it (want %s)", field, a.Codec, c.name, tcOrList(c.audio))
	}
	if caps != nil && !caps.HasEncoder(tcEncoders[a.Codec]) {
		pr.add("%s.codec %s: needs the %s encoder, which this ffmpeg does not have", field, a.Codec, tcEncoders[a.Codec])
	}
	if r := tcAudioBitrates[a.Codec]; a.Bitrate < r[0] || a.Bitrate > r[1] {
		pr.add("%s.bitrate %d: must be from %s to %s for %s", field, a.Bitrate, r[0], r[1], a.Codec)
	}
	if rates := tcAudioSampleRates[a.Codec]; a.SampleRate != 0 && !slices.Contains(rates, a.SampleRate) {
		ss := make([]string, len(rates))
		for i, r := range rates {
			ss[i] = strconv.Itoa(r)
		}
		pr.add("%s.sample_rate %d: %s takes 0 (the input's) or %s", field, a.SampleRate, a.Codec, tcOrList(ss))
	}
	maxCh := tcMaxAudioChannels
	if a.Codec == CodecMP3 {
		maxCh = 2
	}
	if a.Channels < 0 || a.Channels > maxCh {
		pr.add("%s.channels %d: must be 0 (the input's) or from 1 to %d for %s", field, a.Channels, maxCh, a.Codec)
	}
}

func tcCheckWatermark(field string, w *transcoder.Watermark, caps *transcoder.Capabilities, pr *tcProblems) {
	for _, p := range w.Problems(field, caps) {
		pr.add("%s", p)
	}
}

// tcEncodeJob is one ffmpeg run that writes one output file: the part that
// transcode and enhance share.
type tcEncodeJob struct {
	input string
	// preInput goes before -i (e.g. -ss); extraInputs after the main input
	// (the watermark image, input 1).
	preInput, extraInputs []string
	// vfilter is a filtergraph fragment from [0:v:0] to [vout]; empty maps
	// the input's video as it is (still through the encoder).
	vfilter string
	// afilter is an -af chain; empty means none.
	afilter string
	c       tcContainer
	video   VideoParams // codec none: no video
	audio   AudioParams // codec none: no audio
	// srcFPS is the frame rate the encoder gets, for the GOP.
	srcFPS   float64
	duration float64 // -t, 0: none
	out      string
}

// args returns the ffmpeg arguments (after RunFFmpeg's own).
func (j tcEncodeJob) args() []string {
	args := append([]string{}, j.preInput...)
	args = append(args, "-i", j.input)
	args = append(args, j.extraInputs...)
	if j.video.Codec != CodecNone {
		if j.vfilter != "" {
			args = append(args, "-filter_complex", j.vfilter, "-map", "[vout]")
		} else {
			args = append(args, "-map", "0:v:0")
		}
		args = append(args, tcVideoEncoderArgs(j.video, j.srcFPS)...)
	}
	if j.audio.Codec != CodecNone {
		args = append(args, "-map", "0:a:0")
		if j.afilter != "" {
			args = append(args, "-af", j.afilter)
		}
		args = append(args, tcAudioEncoderArgs(j.audio)...)
	}
	if j.duration > 0 {
		args = append(args, "-t", tcFormatSeconds(j.duration))
	}
	args = append(args, "-map_metadata", "0", "-map_chapters", "-1", "-sn", "-dn")
	if j.c.faststart {
		args = append(args, "-movflags", "+faststart")
	}
	return append(args, "-f", j.c.muxer, j.out)
}

// tcVideoEncoderArgs returns the encoder arguments of v (with defaults);
// fps is the frame rate the encoder gets (0: unknown).
func tcVideoEncoderArgs(v VideoParams, fps float64) []string {
	if v.Codec == CodecCopy {
		return []string{"-c:v", "copy"}
	}
	args := []string{"-c:v", tcEncoders[v.Codec]}
	pixFmt := "yuv420p"
	if v.Profile == "main10" {
		pixFmt = "yuv420p10le"
	}
	args = append(args, "-pix_fmt", pixFmt)
	if fps <= 0 {
		fps = 25
	}
	gop := max(1, int(math.Round(v.GOP*fps)))
	args = append(args, "-g", strconv.Itoa(gop))
	switch v.Codec {
	case transcoder.CodecH264, transcoder.CodecH265:
		args = append(args, "-preset", v.Preset)
		if v.Profile != "" {
			args = append(args, "-profile:v", v.Profile)
		}
		if v.CRF != nil {
			args = append(args, "-crf", strconv.Itoa(*v.CRF))
		} else {
			args = append(args, "-b:v", tcBitrateArg(v.Bitrate))
		}
		if v.Codec == transcoder.CodecH265 {
			args = append(args, "-tag:v", "hvc1", "-x265-params", "log-level=error")
		}
	case transcoder.CodecVP9:
		args = append(args, "-deadline", "good", "-cpu-used", v.Preset, "-row-mt", "1")
		if v.CRF != nil {
			// Constant quality, or constrained quality under maxrate.
			args = append(args, "-crf", strconv.Itoa(*v.CRF), "-b:v", tcBitrateArg(v.MaxRate))
		} else {
			args = append(args, "-b:v", tcBitrateArg(v.Bitrate))
		}
	case transcoder.CodecAV1:
		args = append(args, "-preset", v.Preset)
		if v.CRF != nil {
			args = append(args, "-crf", strconv.Itoa(*v.CRF))
		} else {
			args = append(args, "-b:v", tcBitrateArg(v.Bitrate))
		}
	}
	if v.MaxRate > 0 && (v.Codec != transcoder.CodecVP9 || v.CRF == nil) {
		args = append(args, "-maxrate", tcBitrateArg(v.MaxRate), "-bufsize", tcBitrateArg(v.BufSize))
	}
	return args
}

func tcAudioEncoderArgs(a AudioParams) []string {
	if a.Codec == CodecCopy {
		return []string{"-c:a", "copy"}
	}
	args := []string{"-c:a", tcEncoders[a.Codec], "-b:a", tcBitrateArg(a.Bitrate)}
	if a.SampleRate > 0 {
		args = append(args, "-ar", strconv.Itoa(a.SampleRate))
	}
	if a.Channels > 0 {
		args = append(args, "-ac", strconv.Itoa(a.Channels))
	}
	return args
}

func tcBitrateArg(b transcoder.Bitrate) string { return strconv.FormatInt(int64(b), 10) }

func tcFormatSeconds(s float64) string { return strconv.FormatFloat(s, 'f', -1, 64) }

// tcFpsArg writes a frame rate for ffmpeg, taking 23.976, 29.97 and 59.94
// (and their multiples of 1000/1001) as NTSC rates.
func tcFpsArg(fps float64) string {
	if fps != math.Trunc(fps) {
		if n := math.Round(fps * 1.001); math.Abs(fps*1.001-n) < 0.002 {
			return strconv.Itoa(int(n)*1000) + "/1001"
		}
	}
	return tcFormatSeconds(fps)
}

// tcResolveAudio settles the audio of an output against the input: none
// when the input has none (required: the input must have audio), copy only
// of a codec the container can carry, and channels capped at 2 by default.
func tcResolveAudio(field string, a AudioParams, c tcContainer, in Media, required bool) (AudioParams, error) {
	if a.Codec == CodecNone {
		return a, nil
	}
	if in.Audio == nil {
		if required {
			return a, fmt.Errorf("%w: the input has no audio stream", ErrBadInput)
		}
		a.Codec = CodecNone
		return a, nil
	}
	if a.Codec == CodecCopy {
		if !c.anyCopy && !slices.Contains(c.audio, tcProbeCodecs[in.Audio.Codec]) {
			return a, fmt.Errorf("%w: %s.codec copy: the input's audio is %s, which container %s cannot carry (it takes %s)",
				ErrBadInput, field, in.Audio.Codec, c.name, tcOrList(c.audio))
		}
		return a, nil
	}
	if a.Channels == 0 && in.Audio.Channels > 2 {
		a.Channels = 2
	}
	return a, nil
}

// tcCheckVideoCopy checks that the input's video can be copied into c.
func tcCheckVideoCopy(field string, c tcContainer, in Media) error {
	if !c.anyCopy && !slices.Contains(c.video, tcProbeCodecs[in.Video.Codec]) {
		return fmt.Errorf("%w: %s.codec copy: the input's video is %s, which container %s cannot carry (it takes %s)",
			ErrBadInput, field, in.Video.Codec, c.name, tcOrList(c.video))
	}
	return nil
}

// tcFitSize returns the output size for a w×h box (0: follow the other
// side) over a srcW×srcH input, keeping the aspect ratio, rounded to even
// sizes. Without upscale, the input's size is the limit.
func tcFitSize(srcW, srcH, w, h int, upscale bool) (int, int) {
	if srcW <= 0 || srcH <= 0 {
		return w, h
	}
	scale := 1.0
	switch {
	case w > 0 && h > 0:
		scale = math.Min(float64(w)/float64(srcW), float64(h)/float64(srcH))
	case w > 0:
		scale = float64(w) / float64(srcW)
	case h > 0:
		scale = float64(h) / float64(srcH)
	}
	if !upscale && scale > 1 {
		scale = 1
	}
	even := func(x float64) int { return max(2, 2*int(math.Round(x/2))) }
	ow, oh := even(float64(srcW)*scale), even(float64(srcH)*scale)
	if !upscale && ow > srcW { // an odd size rounded up
		ow -= 2
	}
	if !upscale && oh > srcH {
		oh -= 2
	}
	if w > 0 && ow > w {
		ow = w
	}
	if h > 0 && oh > h {
		oh = h
	}
	return ow, oh
}

// tcOutputDuration is how long an output of the input from start, lasting at
// most dur (0: to the end), will be.
func tcOutputDuration(in Media, start, dur float64) time.Duration {
	d := in.Duration - time.Duration(start*float64(time.Second))
	if dur > 0 && (in.Duration == 0 || time.Duration(dur*float64(time.Second)) < d) {
		d = time.Duration(dur * float64(time.Second))
	}
	return max(0, d)
}

// tcMonotonic wraps a progress callback so that it never goes back, and maps
// a step's 0..1 onto from..to of the task.
type tcMonotonic struct {
	mu   sync.Mutex
	last float64
	fn   func(float64)
}

func tcNewMonotonic(fn func(float64)) *tcMonotonic {
	if fn == nil {
		fn = func(float64) {}
	}
	return &tcMonotonic{fn: fn, last: -1}
}

func (m *tcMonotonic) report(f float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f = min(1, max(0, f))
	if f <= m.last {
		return
	}
	m.last = f
	m.fn(f)
}

// step returns a callback that maps 0..1 onto from..to.
func (m *tcMonotonic) step(from, to float64) func(float64) {
	return func(f float64) { m.report(from + (to-from)*min(1, max(0, f))) }
}

// tcDescribeOutput probes a finished output file.
func tcDescribeOutput(ctx context.Context, env Env, c tcContainer, name string) (Output, error) {
	path := filepath.Join(env.OutDir, name)
	m, err := Probe(ctx, env, path)
	if err != nil {
		return Output{}, fmt.Errorf("probe output %s: %v", name, err) //nolint:errorlint // an unreadable output is no bad input
	}
	o := Output{Kind: "audio", Path: name, MIME: c.audioMIME, Size: m.Size, Duration: m.Duration.Seconds()}
	if st, err := os.Stat(path); err == nil {
		o.Size = st.Size()
	}
	if m.Video != nil {
		o.Kind, o.MIME, o.Width, o.Height = "video", c.mime, m.Video.Width, m.Video.Height
	}
	return o, nil
}

func runTranscode(ctx context.Context, env Env, in Media, params json.RawMessage) ([]Output, error) {
	p, err := DecodeTranscodeParams(params, env.Caps)
	if err != nil {
		return nil, err
	}
	c := tcContainers[p.Container]
	if p.Video.Codec != CodecNone && in.Video == nil {
		return nil, fmt.Errorf("%w: the input has no video stream (video.codec is %s; for an audio-only output use container m4a, mp3, aac or opus, or video.codec none)",
			ErrBadInput, p.Video.Codec)
	}
	if in.Duration > 0 && p.Start > 0 && p.Start >= in.Duration.Seconds() {
		return nil, fmt.Errorf("%w: start %v: at or after the input's end (%.3f s)", ErrBadInput, p.Start, in.Duration.Seconds())
	}
	audio, err := tcResolveAudio("audio", p.Audio, c, in, p.Video.Codec == CodecNone)
	if err != nil {
		return nil, err
	}
	job := tcEncodeJob{input: in.Path, c: c, video: p.Video, audio: audio, duration: p.Duration,
		out: filepath.Join(env.OutDir, "output."+c.ext)}
	if p.Start > 0 {
		job.preInput = []string{"-ss", tcFormatSeconds(p.Start)}
	}
	if p.Video.Codec == CodecCopy {
		if err := tcCheckVideoCopy("video", c, in); err != nil {
			return nil, err
		}
	} else if p.Video.Codec != CodecNone {
		job.srcFPS = in.Video.FPS
		var chain []string
		if p.Video.Width > 0 || p.Video.Height > 0 || in.Video.Width%2 != 0 || in.Video.Height%2 != 0 {
			w, h := tcFitSize(in.Video.Width, in.Video.Height, p.Video.Width, p.Video.Height, p.Video.AllowUpscale)
			if w != in.Video.Width || h != in.Video.Height {
				chain = append(chain, fmt.Sprintf("scale=%d:%d:flags=bicubic", w, h), "setsar=1")
			}
		}
		if p.Video.FPS > 0 {
			chain = append(chain, "fps="+tcFpsArg(p.Video.FPS))
			job.srcFPS = p.Video.FPS
		}
		switch {
		case p.Watermark != nil:
			if len(chain) == 0 {
				chain = []string{"null"}
			}
			job.extraInputs = p.Watermark.InputArgs()
			job.vfilter = "[0:v:0]" + strings.Join(chain, ",") + "[vscaled];" + p.Watermark.Filter("vscaled", "vout", 1)
		case len(chain) > 0:
			job.vfilter = "[0:v:0]" + strings.Join(chain, ",") + "[vout]"
		}
	}
	prog := tcNewMonotonic(env.Progress)
	runEnv := env
	runEnv.Progress = prog.report
	total := tcOutputDuration(in, p.Start, p.Duration)
	if err := RunFFmpeg(ctx, runEnv, total, job.args()...); err != nil {
		return nil, fmt.Errorf("transcode: %w", err)
	}
	o, err := tcDescribeOutput(ctx, env, c, filepath.Base(job.out))
	if err != nil {
		return nil, err
	}
	prog.report(1)
	return []Output{o}, nil
}
