package vod

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image/gif"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// AnimatedParams is the template of an animated task: a GIF or animated
// WebP of a time range of the input. Fields left out of the JSON keep
// their defaults; a field given as 0 where 0 is no valid value (duration,
// fps, width) is bad input.
type AnimatedParams struct {
	// Format is gif (default) or webp.
	Format string `json:"format"`
	// Start is where the range begins, in seconds.
	Start float64 `json:"start"`
	// StartPercent, when above 0 and Start is 0, sets the start at that
	// percent of the input's duration (0..100). Start, when above 0, wins.
	StartPercent float64 `json:"start_percent"`
	// Duration is the range's length in seconds, default 3 (at most 60);
	// it is cut short at the end of the input.
	Duration float64 `json:"duration"`
	// FPS is the frame rate, default 10 (1..50).
	FPS float64 `json:"fps"`
	// Width is the width, default 320 (16..1920).
	Width int `json:"width"`
	// Height is the height; 0 (default) keeps the aspect ratio.
	Height int `json:"height"`
	// Loop plays the animation forever (default); false plays it once.
	Loop bool `json:"loop"`
	// Quality is 1..100 for webp (default 75); gif ignores it.
	Quality int `json:"quality"`
}

func defaultAnimatedParams() AnimatedParams {
	return AnimatedParams{Format: "gif", Duration: 3, FPS: 10, Width: 320, Loop: true, Quality: 75}
}

func (p *AnimatedParams) validate() error {
	if p.Format != "gif" && p.Format != "webp" {
		return fmt.Errorf("%w: format %q: must be gif or webp", ErrBadInput, p.Format)
	}
	bad := func(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }
	if p.Start < 0 || bad(p.Start) {
		return fmt.Errorf("%w: start %g: must be 0 or more seconds", ErrBadInput, p.Start)
	}
	if p.StartPercent < 0 || p.StartPercent >= 100 || bad(p.StartPercent) {
		return fmt.Errorf("%w: start_percent %g: must be 0..100", ErrBadInput, p.StartPercent)
	}
	if p.Duration < 0.1 || p.Duration > 60 || bad(p.Duration) {
		return fmt.Errorf("%w: duration %g: must be 0.1..60 seconds", ErrBadInput, p.Duration)
	}
	if p.FPS < 1 || p.FPS > 50 || bad(p.FPS) {
		return fmt.Errorf("%w: fps %g: must be 1..50", ErrBadInput, p.FPS)
	}
	if p.Width < 16 || p.Width > 1920 {
		return fmt.Errorf("%w: width %d: must be 16..1920", ErrBadInput, p.Width)
	}
	if p.Height != 0 && (p.Height < 16 || p.Height > 1080) {
		return fmt.Errorf("%w: height %d: must be 0 (keep the aspect ratio) or 16..1080", ErrBadInput, p.Height)
	}
	if p.Quality < 1 || p.Quality > 100 {
		return fmt.Errorf("%w: quality %d: must be 1..100", ErrBadInput, p.Quality)
	}
	return nil
}

// Animated returns the runner of animated tasks (params: AnimatedParams).
// It writes animated.gif or animated.webp, one Output of kind image with
// Duration and Data {"frames": n, "start": seconds}.
func Animated() Runner {
	return checkedRunner{RunnerFunc(runAnimated), func(raw json.RawMessage) error {
		_, err := decodeAnimatedParams(raw)
		return err
	}}
}

// decodeAnimatedParams decodes params strictly over the defaults and
// checks them.
func decodeAnimatedParams(raw json.RawMessage) (AnimatedParams, error) {
	p := defaultAnimatedParams()
	if err := DecodeParams(raw, &p); err != nil {
		return p, err
	}
	return p, p.validate()
}

func runAnimated(ctx context.Context, env Env, in Media, raw json.RawMessage) ([]Output, error) {
	p, err := decodeAnimatedParams(raw)
	if err != nil {
		return nil, err
	}
	if err := snapNeedVideo(in); err != nil {
		return nil, err
	}
	dur := in.Duration.Seconds()
	start := p.Start
	if p.StartPercent > 0 && p.Start == 0 {
		if dur <= 0 {
			return nil, fmt.Errorf("%w: start_percent: the input's duration is unknown", ErrBadInput)
		}
		start = dur * p.StartPercent / 100
	}
	length := p.Duration
	if dur > 0 {
		if start >= dur {
			return nil, fmt.Errorf("%w: start %gs: at or past the end of the input (%.3fs)", ErrBadInput, start, dur)
		}
		length = math.Min(length, dur-start)
	}

	scale := fmt.Sprintf("scale=%d:-2:flags=lanczos", p.Width)
	if p.Height > 0 {
		scale = fmt.Sprintf("scale=%d:%d:flags=lanczos", p.Width, p.Height)
	}
	rate := strconv.FormatFloat(p.FPS, 'f', -1, 64)
	name := "animated." + p.Format
	full := filepath.Join(env.OutDir, name)
	args := []string{"-ss", snapSeconds(start), "-t", snapSeconds(length), "-i", in.Path, "-an", "-sn", "-dn"}
	if p.Format == "gif" {
		// One graph, two steps: a palette from all the frames, then the
		// frames mapped onto it.
		graph := fmt.Sprintf("[0:v:0]fps=%s,%s,setsar=1,split[a][b];[a]palettegen=stats_mode=diff[pal];"+
			"[b][pal]paletteuse=dither=bayer:bayer_scale=5:diff_mode=rectangle[out]", rate, scale)
		loop := "0"
		if !p.Loop {
			loop = "-1"
		}
		args = append(args, "-filter_complex", graph, "-map", "[out]", "-c:v", "gif", "-loop", loop, "-f", "gif", full)
	} else {
		encoder := "libwebp_anim"
		if env.Caps != nil && !env.Caps.HasEncoder(encoder) {
			encoder = "libwebp"
			if !env.Caps.HasEncoder(encoder) {
				return nil, errors.New("this ffmpeg has no libwebp encoder for animated webp")
			}
		}
		loop := "0"
		if !p.Loop {
			loop = "1"
		}
		args = append(args, "-map", "0:v:0", "-vf", fmt.Sprintf("fps=%s,%s,setsar=1", rate, scale),
			"-c:v", encoder, "-quality", strconv.Itoa(p.Quality), "-lossless", "0", "-pix_fmt", "yuv420p",
			"-loop", loop, "-f", "webp", full)
	}
	if err := RunFFmpeg(ctx, env, time.Duration(length*float64(time.Second)), args...); err != nil {
		return nil, err
	}

	st, err := os.Stat(full)
	if err != nil {
		return nil, fmt.Errorf("animated image was not written: %w", err)
	}
	var w, h, frames int
	if p.Format == "gif" {
		w, h, frames, err = animGIFInfo(full)
	} else {
		w, h, frames, err = animWebPInfo(full)
	}
	if err != nil {
		return nil, err
	}
	if frames == 0 {
		return nil, fmt.Errorf("%w: the input's video stream has no frames at %gs", ErrBadInput, start)
	}
	return []Output{{
		Kind: "image", Path: name, MIME: snapMIME(p.Format), Size: st.Size(), Width: w, Height: h,
		Duration: math.Round(float64(frames)/p.FPS*1000) / 1000,
		Data:     map[string]any{"frames": frames, "start": math.Round(start*1000) / 1000},
	}}, nil
}

// animGIFInfo returns a GIF's size and frame count.
func animGIFInfo(path string) (w, h, frames int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	g, err := gif.DecodeAll(f)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	return g.Config.Width, g.Config.Height, len(g.Image), nil
}

// animWebPInfo returns a WebP's canvas size and frame count from its
// RIFF chunks (ffprobe reads no size from animated WebP): VP8X holds the
// canvas, each ANMF chunk is a frame, and a still image is one frame.
func animWebPInfo(path string) (w, h, frames int, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, 0, err
	}
	if len(data) < 12 || string(data[:4]) != "RIFF" || string(data[8:12]) != "WEBP" {
		return 0, 0, 0, fmt.Errorf("%s is not a WebP file", filepath.Base(path))
	}
	still := false
	for off := 12; off+8 <= len(data); {
		id := string(data[off : off+4])
		size := int(binary.LittleEndian.Uint32(data[off+4 : off+8]))
		body := data[off+8 : min(len(data), off+8+size)]
		switch id {
		case "VP8X":
			if len(body) >= 10 {
				w = 1 + (int(body[4]) | int(body[5])<<8 | int(body[6])<<16)
				h = 1 + (int(body[7]) | int(body[8])<<8 | int(body[9])<<16)
			}
		case "ANMF":
			frames++
		case "VP8 ", "VP8L":
			still = true
			if w == 0 && id == "VP8 " && len(body) >= 10 {
				w = int(binary.LittleEndian.Uint16(body[6:8]) & 0x3fff)
				h = int(binary.LittleEndian.Uint16(body[8:10]) & 0x3fff)
			}
			if w == 0 && id == "VP8L" && len(body) >= 5 {
				bits := binary.LittleEndian.Uint32(body[1:5])
				w = int(bits&0x3fff) + 1
				h = int(bits>>14&0x3fff) + 1
			}
		}
		off += 8 + size + size%2
	}
	if frames == 0 && still {
		frames = 1
	}
	return w, h, frames, nil
}

// AnimatedPresets returns the built-in animated image templates.
func AnimatedPresets() map[string]json.RawMessage {
	return map[string]json.RawMessage{
		"gif-preview":  json.RawMessage(`{"format":"gif","start_percent":10,"duration":3,"fps":10,"width":320,"loop":true}`),
		"webp-preview": json.RawMessage(`{"format":"webp","start_percent":10,"duration":3,"fps":10,"width":320,"loop":true,"quality":75}`),
	}
}
