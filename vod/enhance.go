package vod

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mps-dev/mps/fflog"
	"github.com/mps-dev/mps/transcoder"
)

// EnhanceParams are the params of an "enhance" task: video and audio
// filters, and the encoding of the result. The output has the input's
// kind: MP4 (h264/aac by default) for a video, M4A (aac) for audio only.
type EnhanceParams struct {
	Video EnhanceVideo `json:"video"`
	Audio EnhanceAudio `json:"audio"`
	// VideoEncode sets the video encoder (codec h264, h265, vp9 or av1,
	// bitrate, crf, preset, profile, gop; the size and frame rate come from
	// Video.Scale and Video.FPS). By default a filtered video is encoded
	// as h264 (crf 23, preset medium), and a video without filters is
	// copied when MP4 can carry it.
	VideoEncode *VideoParams `json:"video_encode,omitempty"`
	// AudioEncode sets the audio encoder (aac by default; mp3 and opus in
	// MP4 outputs only). Audio without filters is copied when the output
	// can carry it.
	AudioEncode *AudioParams `json:"audio_encode,omitempty"`
}

// EnhanceVideo are the video filters, applied in this order: deinterlace,
// denoise, deband, scale, sharpen, color, fps. A filter is on when its
// object is present (even empty: {} takes the defaults).
type EnhanceVideo struct {
	Deinterlace *DeinterlaceParams  `json:"deinterlace,omitempty"`
	Denoise     *VideoDenoiseParams `json:"denoise,omitempty"`
	Deband      *DebandParams       `json:"deband,omitempty"`
	Scale       *ScaleParams        `json:"scale,omitempty"`
	Sharpen     *SharpenParams      `json:"sharpen,omitempty"`
	Color       *ColorParams        `json:"color,omitempty"`
	FPS         *FPSParams          `json:"fps,omitempty"`
}

// DeinterlaceParams set the bwdif deinterlacer.
type DeinterlaceParams struct {
	// Mode is frame (one frame per frame, default) or field (one frame per
	// field: double the frame rate).
	Mode string `json:"mode,omitempty"`
	// Parity is auto (default), tff or bff.
	Parity string `json:"parity,omitempty"`
	// InterlacedOnly deinterlaces only the frames flagged interlaced; by
	// default every frame is.
	InterlacedOnly bool `json:"interlaced_only,omitempty"`
}

// VideoDenoiseParams set the hqdn3d denoiser.
type VideoDenoiseParams struct {
	// Strength is the spatial luma strength, 0.5..30 (default 4); the
	// chroma and temporal strengths follow it as hqdn3d's defaults do.
	Strength float64 `json:"strength,omitempty"`
}

// DebandParams set the deband filter.
type DebandParams struct {
	// Threshold per plane, 0.00003..0.5 (default 0.02).
	Threshold float64 `json:"threshold,omitempty"`
	// Range in pixels, 1..64 (default 16).
	Range int `json:"range,omitempty"`
}

// ScaleParams resize the video with lanczos; upscaling is allowed. Set
// either Factor or Width and/or Height (a box; the aspect ratio is kept).
type ScaleParams struct {
	Width  int     `json:"width,omitempty"`
	Height int     `json:"height,omitempty"`
	Factor float64 `json:"factor,omitempty"`
}

// SharpenParams set the unsharp filter.
type SharpenParams struct {
	// Amount of luma sharpening, -2..5 (default 1; negative blurs). Chroma
	// gets half of it.
	Amount float64 `json:"amount,omitempty"`
	// Size of the matrix, an odd number 3..23 (default 5).
	Size int `json:"size,omitempty"`
}

// ColorParams set the eq filter; unset values are left alone.
type ColorParams struct {
	Brightness *float64 `json:"brightness,omitempty"` // -1..1, default 0
	Contrast   *float64 `json:"contrast,omitempty"`   // 0..3, default 1
	Saturation *float64 `json:"saturation,omitempty"` // 0..3, default 1
	Gamma      *float64 `json:"gamma,omitempty"`      // 0.1..10, default 1
}

// FPSParams convert the frame rate.
type FPSParams struct {
	// Rate in frames per second, 1..240 (23.976, 29.97 and 59.94 are the
	// NTSC rates).
	Rate float64 `json:"rate"`
	// Method is drop (drop or repeat frames, default) or blend (blend
	// neighbouring frames).
	Method string `json:"method,omitempty"`
}

// EnhanceAudio are the audio filters: denoise, then loudness.
type EnhanceAudio struct {
	Denoise  *AudioDenoiseParams `json:"denoise,omitempty"`
	Loudnorm *LoudnormParams     `json:"loudnorm,omitempty"`
}

// AudioDenoiseParams set the afftdn denoiser.
type AudioDenoiseParams struct {
	// Reduction in dB, 0.01..97 (default 12).
	Reduction float64 `json:"reduction,omitempty"`
	// Floor is the noise floor in dB, -80..-20 (default -50).
	Floor float64 `json:"floor,omitempty"`
}

// LoudnormParams normalise the loudness (EBU R128) in two passes: the
// first measures the input, the second applies a linear gain (or
// loudnorm's dynamic mode when the true peak would be exceeded).
type LoudnormParams struct {
	// Target is the integrated loudness in LUFS, -70..-5 (default -23).
	Target float64 `json:"target,omitempty"`
	// TruePeak is the maximum true peak in dBTP, -9..0 (default -1).
	TruePeak *float64 `json:"true_peak,omitempty"`
	// LRA is the loudness range target in LU, 1..50 (default 7).
	LRA float64 `json:"lra,omitempty"`
}

// EnhancePresets returns the built-in enhance templates, name -> params
// JSON.
func EnhancePresets() map[string]json.RawMessage {
	return map[string]json.RawMessage{
		"loudnorm-ebu":       json.RawMessage(`{"audio":{"loudnorm":{"target":-23,"true_peak":-1,"lra":7}}}`),
		"loudnorm-streaming": json.RawMessage(`{"audio":{"loudnorm":{"target":-14,"true_peak":-1,"lra":11}}}`),
		"audio-denoise":      json.RawMessage(`{"audio":{"denoise":{"reduction":12,"floor":-50}}}`),
		"denoise-light":      json.RawMessage(`{"video":{"denoise":{"strength":2}}}`),
		"denoise-strong":     json.RawMessage(`{"video":{"denoise":{"strength":8}}}`),
		"sharpen-light":      json.RawMessage(`{"video":{"sharpen":{"amount":0.5,"size":5}}}`),
		"deband":             json.RawMessage(`{"video":{"deband":{"threshold":0.02,"range":16}}}`),
		"deinterlace":        json.RawMessage(`{"video":{"deinterlace":{"mode":"frame"}}}`),
		"upscale-2x":         json.RawMessage(`{"video":{"scale":{"factor":2},"sharpen":{"amount":0.3}}}`),
	}
}

// Enhance returns the runner of "enhance" tasks.
func Enhance() Runner { return enhanceRunner{} }

type enhanceRunner struct{}

func (enhanceRunner) Run(ctx context.Context, env Env, in Media, params json.RawMessage) ([]Output, error) {
	return runEnhance(ctx, env, in, params)
}

// CheckParams decodes and checks params as Run does, without caps.
func (enhanceRunner) CheckParams(params json.RawMessage) error {
	_, err := DecodeEnhanceParams(params, nil)
	return err
}

// hasVideo and hasAudio say whether any filter of that kind is on.
func (p *EnhanceParams) hasVideo() bool {
	v := p.Video
	return v.Deinterlace != nil || v.Denoise != nil || v.Deband != nil || v.Scale != nil || v.Sharpen != nil || v.Color != nil || v.FPS != nil
}

func (p *EnhanceParams) hasAudio() bool { return p.Audio.Denoise != nil || p.Audio.Loudnorm != nil }

// DecodeEnhanceParams decodes params strictly, fills in the defaults and
// checks them (with caps, also the filters and encoders). Every error
// wraps ErrBadInput and names its field.
func DecodeEnhanceParams(params json.RawMessage, caps *transcoder.Capabilities) (EnhanceParams, error) {
	var p EnhanceParams
	if err := DecodeParams(params, &p); err != nil {
		return p, err
	}
	var pr tcProblems
	if !p.hasVideo() && !p.hasAudio() {
		pr.add("video, audio: set at least one filter")
	}
	filter := func(field, name string) {
		if caps != nil && !caps.HasFilter(name) {
			pr.add("%s: needs the %s filter, which this ffmpeg does not have", field, name)
		}
	}
	v := &p.Video
	if d := v.Deinterlace; d != nil {
		if d.Mode == "" {
			d.Mode = "frame"
		}
		if d.Parity == "" {
			d.Parity = "auto"
		}
		if !slices.Contains([]string{"frame", "field"}, d.Mode) {
			pr.add("video.deinterlace.mode %q: want frame or field", d.Mode)
		}
		if !slices.Contains([]string{"auto", "tff", "bff"}, d.Parity) {
			pr.add("video.deinterlace.parity %q: want auto, tff or bff", d.Parity)
		}
		filter("video.deinterlace", "bwdif")
	}
	if d := v.Denoise; d != nil {
		if d.Strength == 0 {
			d.Strength = 4
		}
		if !(d.Strength >= 0.5 && d.Strength <= 30) {
			pr.add("video.denoise.strength %v: must be from 0.5 to 30", d.Strength)
		}
		filter("video.denoise", "hqdn3d")
	}
	if d := v.Deband; d != nil {
		if d.Threshold == 0 {
			d.Threshold = 0.02
		}
		if d.Range == 0 {
			d.Range = 16
		}
		if !(d.Threshold >= 0.00003 && d.Threshold <= 0.5) {
			pr.add("video.deband.threshold %v: must be from 0.00003 to 0.5", d.Threshold)
		}
		if d.Range < 1 || d.Range > 64 {
			pr.add("video.deband.range %d: must be from 1 to 64", d.Range)
		}
		filter("video.deband", "deband")
	}
	if s := v.Scale; s != nil {
		switch {
		case s.Factor != 0 && (s.Width != 0 || s.Height != 0):
			pr.add("video.scale: set factor or width/height, not both")
		case s.Factor == 0 && s.Width == 0 && s.Height == 0:
			pr.add("video.scale: set factor, width or height")
		case s.Factor != 0 && !(s.Factor >= 0.1 && s.Factor <= 8):
			pr.add("video.scale.factor %v: must be from 0.1 to 8", s.Factor)
		}
		for _, d := range []struct {
			key string
			val int
		}{{"width", s.Width}, {"height", s.Height}} {
			if d.val != 0 && (d.val < tcMinDimension || d.val > tcMaxDimension || d.val%2 != 0) {
				pr.add("video.scale.%s %d: must be 0 (follow the other side) or an even number from %d to %d", d.key, d.val, tcMinDimension, tcMaxDimension)
			}
		}
		filter("video.scale", "scale")
	}
	if s := v.Sharpen; s != nil {
		if s.Amount == 0 {
			s.Amount = 1
		}
		if s.Size == 0 {
			s.Size = 5
		}
		if !(s.Amount >= -2 && s.Amount <= 5) {
			pr.add("video.sharpen.amount %v: must be from -2 to 5", s.Amount)
		}
		if s.Size < 3 || s.Size > 23 || s.Size%2 == 0 {
			pr.add("video.sharpen.size %d: must be an odd number from 3 to 23", s.Size)
		}
		filter("video.sharpen", "unsharp")
	}
	if c := v.Color; c != nil {
		for _, f := range []struct {
			key    string
			val    *float64
			lo, hi float64
		}{{"brightness", c.Brightness, -1, 1}, {"contrast", c.Contrast, 0, 3}, {"saturation", c.Saturation, 0, 3}, {"gamma", c.Gamma, 0.1, 10}} {
			if f.val != nil && !(*f.val >= f.lo && *f.val <= f.hi) {
				pr.add("video.color.%s %v: must be from %v to %v", f.key, *f.val, f.lo, f.hi)
			}
		}
		if c.Brightness == nil && c.Contrast == nil && c.Saturation == nil && c.Gamma == nil {
			pr.add("video.color: set brightness, contrast, saturation or gamma")
		}
		filter("video.color", "eq")
	}
	if f := v.FPS; f != nil {
		if f.Method == "" {
			f.Method = "drop"
		}
		if !(f.Rate >= 1 && f.Rate <= tcMaxOutputFPS) {
			pr.add("video.fps.rate %v: must be from 1 to %d", f.Rate, tcMaxOutputFPS)
		}
		switch f.Method {
		case "drop":
			filter("video.fps", "fps")
		case "blend":
			filter("video.fps", "framerate")
		default:
			pr.add("video.fps.method %q: want drop or blend", f.Method)
		}
	}
	if d := p.Audio.Denoise; d != nil {
		if d.Reduction == 0 {
			d.Reduction = 12
		}
		if d.Floor == 0 {
			d.Floor = -50
		}
		if !(d.Reduction >= 0.01 && d.Reduction <= 97) {
			pr.add("audio.denoise.reduction %v: must be from 0.01 to 97 dB", d.Reduction)
		}
		if !(d.Floor >= -80 && d.Floor <= -20) {
			pr.add("audio.denoise.floor %v: must be from -80 to -20 dB", d.Floor)
		}
		filter("audio.denoise", "afftdn")
	}
	if l := p.Audio.Loudnorm; l != nil {
		if l.Target == 0 {
			l.Target = -23
		}
		if l.TruePeak == nil {
			tp := -1.0
			l.TruePeak = &tp
		}
		if l.LRA == 0 {
			l.LRA = 7
		}
		if !(l.Target >= -70 && l.Target <= -5) {
			pr.add("audio.loudnorm.target %v: must be from -70 to -5 LUFS", l.Target)
		}
		if !(*l.TruePeak >= -9 && *l.TruePeak <= 0) {
			pr.add("audio.loudnorm.true_peak %v: must be from -9 to 0 dBTP", *l.TruePeak)
		}
		if !(l.LRA >= 1 && l.LRA <= 50) {
			pr.add("audio.loudnorm.lra %v: must be from 1 to 50 LU", l.LRA)
		}
		filter("audio.loudnorm", "loudnorm")
	}
	mp4 := tcContainers["mp4"]
	if e := p.VideoEncode; e != nil {
		if e.Width != 0 || e.Height != 0 || e.FPS != 0 || e.AllowUpscale {
			pr.add("video_encode: width, height, fps and allow_upscale are not encoder settings here; use video.scale and video.fps")
		}
		if e.Codec == "" {
			e.Codec = transcoder.CodecH264
		}
		if e.Codec == CodecNone {
			pr.add("video_encode.codec none: enhance keeps the video")
		}
		if e.Codec == CodecCopy && p.hasVideo() {
			pr.add("video_encode.codec copy: the video filters need an encoder")
		}
		e.applyDefaults(mp4)
		e.check("video_encode", mp4, caps, &pr)
	}
	if e := p.AudioEncode; e != nil {
		if e.Codec == "" {
			e.Codec = transcoder.CodecAAC
		}
		if e.Codec == CodecNone {
			pr.add("audio_encode.codec none: enhance keeps the audio")
		}
		if e.Codec == CodecCopy && p.hasAudio() {
			pr.add("audio_encode.codec copy: the audio filters need an encoder")
		}
		e.applyDefaults(mp4)
		e.check("audio_encode", mp4, caps, &pr)
	}
	return p, pr.err()
}

// enhanceVideoChain returns the video filter chain and the frame rate it
// outputs.
func enhanceVideoChain(p *EnhanceParams, in Media) (chain []string, fps float64, err error) {
	v := p.Video
	fps = in.Video.FPS
	if d := v.Deinterlace; d != nil {
		mode, deint := "send_frame", "all"
		if d.Mode == "field" {
			mode = "send_field"
			fps *= 2
		}
		if d.InterlacedOnly {
			deint = "interlaced"
		}
		chain = append(chain, "bwdif=mode="+mode+":parity="+d.Parity+":deint="+deint)
	}
	if d := v.Denoise; d != nil {
		s := d.Strength
		chain = append(chain, fmt.Sprintf("hqdn3d=luma_spatial=%s:chroma_spatial=%s:luma_tmp=%s:chroma_tmp=%s",
			tcFormatSeconds(s), tcFormatSeconds(s*0.75), tcFormatSeconds(s*1.5), tcFormatSeconds(s*1.125)))
	}
	if d := v.Deband; d != nil {
		t := tcFormatSeconds(d.Threshold)
		chain = append(chain, fmt.Sprintf("deband=1thr=%s:2thr=%s:3thr=%s:4thr=%s:range=%d", t, t, t, t, d.Range))
	}
	w, h := in.Video.Width, in.Video.Height
	if s := v.Scale; s != nil {
		if w <= 0 || h <= 0 {
			return nil, 0, fmt.Errorf("%w: video.scale: the input's video size is unknown", ErrBadInput)
		}
		if s.Factor > 0 {
			w, h = tcFitSize(w, h, int(math.Round(float64(w)*s.Factor)), 0, true)
		} else {
			w, h = tcFitSize(w, h, s.Width, s.Height, true)
		}
		if w > tcMaxDimension || h > tcMaxDimension {
			return nil, 0, fmt.Errorf("%w: video.scale: the output would be %dx%d, larger than %d", ErrBadInput, w, h, tcMaxDimension)
		}
	} else if w%2 != 0 || h%2 != 0 {
		w, h = tcFitSize(w, h, 0, 0, false)
	}
	if w != in.Video.Width || h != in.Video.Height {
		chain = append(chain, fmt.Sprintf("scale=%d:%d:flags=lanczos", w, h), "setsar=1")
	}
	if s := v.Sharpen; s != nil {
		chain = append(chain, fmt.Sprintf("unsharp=luma_msize_x=%d:luma_msize_y=%d:luma_amount=%s:chroma_msize_x=%d:chroma_msize_y=%d:chroma_amount=%s",
			s.Size, s.Size, tcFormatSeconds(s.Amount), s.Size, s.Size, tcFormatSeconds(s.Amount/2)))
	}
	if c := v.Color; c != nil {
		var opts []string
		for _, f := range []struct {
			key string
			val *float64
		}{{"brightness", c.Brightness}, {"contrast", c.Contrast}, {"saturation", c.Saturation}, {"gamma", c.Gamma}} {
			if f.val != nil {
				opts = append(opts, f.key+"="+tcFormatSeconds(*f.val))
			}
		}
		chain = append(chain, "eq="+strings.Join(opts, ":"))
	}
	if f := v.FPS; f != nil {
		if f.Method == "blend" {
			chain = append(chain, "framerate=fps="+tcFpsArg(f.Rate))
		} else {
			chain = append(chain, "fps="+tcFpsArg(f.Rate))
		}
		fps = f.Rate
	}
	return chain, fps, nil
}

// enhanceAudioChain returns the audio filter chain; lm are the loudnorm
// pass-one measurements (nil: the measuring pass itself).
func enhanceAudioChain(p *EnhanceParams, lm *enhLoudnormStats, sampleRate int) []string {
	var chain []string
	if d := p.Audio.Denoise; d != nil {
		chain = append(chain, "afftdn=nr="+tcFormatSeconds(d.Reduction)+":nf="+tcFormatSeconds(d.Floor))
	}
	l := p.Audio.Loudnorm
	if l == nil {
		return chain
	}
	base := fmt.Sprintf("loudnorm=I=%s:TP=%s:LRA=%s", tcFormatSeconds(l.Target), tcFormatSeconds(*l.TruePeak), tcFormatSeconds(l.LRA))
	if lm == nil {
		return append(chain, base+":print_format=json")
	}
	if lm.silent {
		return chain
	}
	// loudnorm works (and outputs) at 192 kHz; resample back.
	return append(chain, base+fmt.Sprintf(":measured_I=%.2f:measured_TP=%.2f:measured_LRA=%.2f:measured_thresh=%.2f:offset=%.2f:linear=true:print_format=none",
		lm.I, lm.TP, lm.LRA, lm.Thresh, lm.Offset), "aresample="+strconv.Itoa(sampleRate))
}

// loudnormStats are loudnorm's first-pass measurements.
type enhLoudnormStats struct {
	I, TP, LRA, Thresh, Offset float64
	// silent: the input is below the gate; nothing to normalise.
	silent bool
}

// parseLoudnormJSON reads the JSON block loudnorm prints (print_format=json)
// from ffmpeg's log.
func enhParseLoudnormJSON(log string) (*enhLoudnormStats, error) {
	start := strings.LastIndex(log, "\"input_i\"")
	if start < 0 {
		return nil, fmt.Errorf("loudnorm printed no measurements")
	}
	open := strings.LastIndex(log[:start], "{")
	end := strings.Index(log[start:], "}")
	if open < 0 || end < 0 {
		return nil, fmt.Errorf("loudnorm printed no measurements")
	}
	var raw struct {
		I      string `json:"input_i"`
		TP     string `json:"input_tp"`
		LRA    string `json:"input_lra"`
		Thresh string `json:"input_thresh"`
		Offset string `json:"target_offset"`
	}
	if err := json.Unmarshal([]byte(log[open:start+end+1]), &raw); err != nil {
		return nil, fmt.Errorf("loudnorm measurements: %w", err)
	}
	num := func(s string, lo, hi float64) (float64, bool) {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(f) {
			return 0, false
		}
		return min(hi, max(lo, f)), !math.IsInf(f, 0)
	}
	st := &enhLoudnormStats{}
	var ok [5]bool
	st.I, ok[0] = num(raw.I, -99, 0)
	st.TP, ok[1] = num(raw.TP, -99, 99)
	st.LRA, ok[2] = num(raw.LRA, 0, 99)
	st.Thresh, ok[3] = num(raw.Thresh, -99, 0)
	st.Offset, ok[4] = num(raw.Offset, -99, 99)
	if !ok[0] || st.I <= -70 {
		st.silent = true
		return st, nil
	}
	if !ok[1] || !ok[3] || !ok[4] {
		return nil, fmt.Errorf("loudnorm measurements unreadable: %+v", raw)
	}
	return st, nil
}

// logTail keeps the last max bytes written to it.
type enhLogTail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (l *enhLogTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if over := len(l.buf) - l.max; over > 0 {
		l.buf = append(l.buf[:0], l.buf[over:]...)
	}
	return len(p), nil
}

func (l *enhLogTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

// runFFmpegLog is RunFFmpeg at log level info, returning the end of
// ffmpeg's log (for filters that print their results there, such as
// loudnorm). A cancelled ctx kills the child at once.
func enhRunFFmpegLog(ctx context.Context, env Env, total time.Duration, args ...string) (string, error) {
	full := append([]string{"-nostdin", "-hide_banner", "-nostats", "-loglevel", "info", "-progress", "pipe:1", "-y"}, args...)
	cmd := exec.CommandContext(ctx, env.ffmpeg(), full...)
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	cmd.WaitDelay = time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	log := &enhLogTail{max: 256 << 10}
	cmd.Stderr = log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start ffmpeg: %w", err)
	}
	progress := env.progress()
	_ = transcoder.ReadProgress(stdout, func(p transcoder.Progress) {
		if total > 0 {
			progress(min(1, max(0, p.OutTime().Seconds()/total.Seconds())))
		}
	})
	_, _ = io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	if ctx.Err() != nil {
		return "", fmt.Errorf("ffmpeg stopped: %w", context.Cause(ctx))
	}
	if err != nil {
		tail := &fflog.Tail{}
		_, _ = tail.Write([]byte(log.String() + "\n"))
		msg := tail.LastError()
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("ffmpeg: %s", msg)
	}
	progress(1)
	return log.String(), nil
}

// enhanceCanCopy says whether c carries the input's codec (ffprobe's
// name) as it is.
func enhanceCanCopy(c tcContainer, codec string, audio bool) bool {
	list := c.video
	if audio {
		list = c.audio
	}
	return slices.Contains(list, tcProbeCodecs[codec])
}

func runEnhance(ctx context.Context, env Env, in Media, params json.RawMessage) ([]Output, error) {
	p, err := DecodeEnhanceParams(params, env.Caps)
	if err != nil {
		return nil, err
	}
	if p.hasVideo() && in.Video == nil {
		return nil, fmt.Errorf("%w: the input has no video stream (video filters are set)", ErrBadInput)
	}
	if p.hasAudio() && in.Audio == nil {
		return nil, fmt.Errorf("%w: the input has no audio stream (audio filters are set)", ErrBadInput)
	}
	c := tcContainers["mp4"]
	if in.Video == nil {
		c = tcContainers["m4a"]
	}

	// Video: encoded when filtered, else copied when the container takes it.
	video := VideoParams{Codec: CodecNone}
	if in.Video != nil {
		switch {
		case p.VideoEncode != nil:
			video = *p.VideoEncode
		case !p.hasVideo() && enhanceCanCopy(c, in.Video.Codec, false):
			video = VideoParams{Codec: CodecCopy}
		default:
			video = VideoParams{Codec: transcoder.CodecH264}
			video.applyDefaults(c)
		}
		if video.Codec == CodecCopy {
			if err := tcCheckVideoCopy("video_encode", c, in); err != nil {
				return nil, err
			}
		}
	}
	audio := AudioParams{Codec: CodecNone}
	if in.Audio != nil {
		switch {
		case p.AudioEncode != nil:
			audio = *p.AudioEncode
			if c.audioOnly() && audio.Codec != CodecCopy && !slices.Contains(c.audio, audio.Codec) {
				return nil, fmt.Errorf("%w: audio_encode.codec %s: an audio-only enhance output is m4a, which takes %s", ErrBadInput, audio.Codec, tcOrList(c.audio))
			}
		case !p.hasAudio() && enhanceCanCopy(c, in.Audio.Codec, true):
			audio = AudioParams{Codec: CodecCopy}
		default:
			audio = AudioParams{Codec: transcoder.CodecAAC}
			audio.applyDefaults(c)
		}
		if audio, err = tcResolveAudio("audio_encode", audio, c, in, false); err != nil {
			return nil, err
		}
	}

	job := tcEncodeJob{input: in.Path, c: c, video: video, audio: audio, out: filepath.Join(env.OutDir, "enhanced."+c.ext)}
	if video.Codec != CodecNone && video.Codec != CodecCopy {
		chain, fps, err := enhanceVideoChain(&p, in)
		if err != nil {
			return nil, err
		}
		job.srcFPS = fps
		if len(chain) == 0 {
			chain = []string{"null"}
		}
		job.vfilter = "[0:v:0]" + strings.Join(chain, ",") + "[vout]"
	}

	prog := tcNewMonotonic(env.Progress)
	encodeFrom := 0.0
	var stats *enhLoudnormStats
	if p.Audio.Loudnorm != nil {
		// Pass one measures; it decodes only the audio, so it is quick
		// next to a video encode.
		encodeFrom = 0.5
		if video.Codec != CodecNone && video.Codec != CodecCopy {
			encodeFrom = 0.2
		}
		measureEnv := env
		measureEnv.Progress = prog.step(0, encodeFrom)
		log, err := enhRunFFmpegLog(ctx, measureEnv, in.Duration, "-i", in.Path, "-map", "0:a:0", "-vn", "-sn", "-dn",
			"-af", strings.Join(enhanceAudioChain(&p, nil, 0), ","), "-f", "null", "-")
		if err != nil {
			return nil, fmt.Errorf("enhance: loudness measurement: %w", err)
		}
		if stats, err = enhParseLoudnormJSON(log); err != nil {
			return nil, fmt.Errorf("enhance: %w", err)
		}
		if stats.silent && env.Logger != nil {
			env.Logger.Warn("enhance: the input is silent; loudness left as it is", "input", in.Path)
		}
	}
	if audio.Codec != CodecNone && audio.Codec != CodecCopy {
		rate := in.Audio.SampleRate
		if rate <= 0 {
			rate = 48000
		}
		job.afilter = strings.Join(enhanceAudioChain(&p, stats, rate), ",")
	}
	runEnv := env
	runEnv.Progress = prog.step(encodeFrom, 1)
	if err := RunFFmpeg(ctx, runEnv, in.Duration, job.args()...); err != nil {
		return nil, fmt.Errorf("enhance: %w", err)
	}
	o, err := tcDescribeOutput(ctx, env, c, filepath.Base(job.out))
	if err != nil {
		return nil, err
	}
	prog.report(1)
	return []Output{o}, nil
}
