package vod

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SpriteParams is the template of a sprite task: sheets of thumbnails in
// a grid plus a WebVTT file mapping time ranges to thumbnails
// (sprite_001.jpg#xywh=x,y,w,h), as players use for seek previews.
// Fields left out of the JSON keep their defaults; a field given as 0
// where 0 is no valid value (columns, rows, width) is bad input.
type SpriteParams struct {
	// Format is the sheet image format: jpg (default), png or webp.
	Format string `json:"format"`
	// Columns and Rows are the grid of one sheet; default 10×10, each
	// 1..50.
	Columns int `json:"columns"`
	Rows    int `json:"rows"`
	// Width is the thumbnail width, default 160 (16..1920).
	Width int `json:"width"`
	// Height is the thumbnail height; 0 (default) keeps the aspect ratio.
	Height int `json:"height"`
	// Interval is the time in seconds between thumbnails. 0 (default)
	// spreads one full sheet (Columns×Rows thumbnails) evenly over the
	// input. With an interval, a long input gets several sheets.
	Interval float64 `json:"interval"`
	// Quality is 1..100 for jpg and webp; default 80.
	Quality int `json:"quality"`
	// MaxSheets caps the number of sheets; default 100. More thumbnails
	// than MaxSheets sheets hold is bad input (raise the interval).
	MaxSheets int `json:"max_sheets"`
}

func defaultSpriteParams() SpriteParams {
	return SpriteParams{Format: "jpg", Columns: 10, Rows: 10, Width: 160, Quality: 80, MaxSheets: 100}
}

func (p *SpriteParams) validate() error {
	if err := snapCheckFormat("format", p.Format); err != nil {
		return err
	}
	if p.Columns < 1 || p.Columns > 50 {
		return fmt.Errorf("%w: columns %d: must be 1..50", ErrBadInput, p.Columns)
	}
	if p.Rows < 1 || p.Rows > 50 {
		return fmt.Errorf("%w: rows %d: must be 1..50", ErrBadInput, p.Rows)
	}
	if p.Width < 16 || p.Width > 1920 {
		return fmt.Errorf("%w: width %d: must be 16..1920", ErrBadInput, p.Width)
	}
	if p.Height != 0 && (p.Height < 16 || p.Height > 1080) {
		return fmt.Errorf("%w: height %d: must be 0 (keep the aspect ratio) or 16..1080", ErrBadInput, p.Height)
	}
	if p.Interval < 0 || p.Interval != 0 && p.Interval < 0.04 || math.IsNaN(p.Interval) || math.IsInf(p.Interval, 0) {
		return fmt.Errorf("%w: interval %g: must be 0 (evenly) or at least 0.04 seconds", ErrBadInput, p.Interval)
	}
	if p.Quality < 1 || p.Quality > 100 {
		return fmt.Errorf("%w: quality %d: must be 1..100", ErrBadInput, p.Quality)
	}
	if p.MaxSheets < 1 || p.MaxSheets > 1000 {
		return fmt.Errorf("%w: max_sheets %d: must be 1..1000", ErrBadInput, p.MaxSheets)
	}
	return nil
}

// Sprite returns the runner of sprite tasks (params: SpriteParams). It
// writes sprite_001.jpg, sprite_002.jpg, ... (Outputs of kind sprite, with
// Data columns, rows, thumbnails, thumb_width, thumb_height) and
// sprite.vtt (kind vtt) whose cues cover the input without gaps.
func Sprite() Runner {
	return checkedRunner{RunnerFunc(runSprite), func(raw json.RawMessage) error {
		_, err := decodeSpriteParams(raw)
		return err
	}}
}

// decodeSpriteParams decodes params strictly over the defaults and
// checks them.
func decodeSpriteParams(raw json.RawMessage) (SpriteParams, error) {
	p := defaultSpriteParams()
	if err := DecodeParams(raw, &p); err != nil {
		return p, err
	}
	return p, p.validate()
}

func runSprite(ctx context.Context, env Env, in Media, raw json.RawMessage) ([]Output, error) {
	p, err := decodeSpriteParams(raw)
	if err != nil {
		return nil, err
	}
	if err := snapNeedVideo(in); err != nil {
		return nil, err
	}
	dur := in.Duration.Seconds()
	if dur <= 0 {
		return nil, fmt.Errorf("%w: the input's duration is unknown", ErrBadInput)
	}
	enc, err := snapEncodeArgs(env, p.Format, p.Quality)
	if err != nil {
		return nil, err
	}

	// Thumbnail size: the height follows the display aspect ratio.
	tw, th := p.Width, p.Height
	if th == 0 {
		th = max(2, int(math.Round(float64(tw)*float64(in.Video.Height)/float64(max(1, in.Video.Width)))))
	}
	perSheet := p.Columns * p.Rows
	interval := p.Interval
	count := perSheet
	if interval == 0 {
		interval = dur / float64(perSheet)
	} else {
		count = max(1, int(math.Ceil(dur/interval-1e-9)))
	}
	sheets := (count + perSheet - 1) / perSheet
	if sheets > p.MaxSheets {
		return nil, fmt.Errorf("%w: interval %gs: needs %d sheets for a %.0fs input, more than max_sheets %d",
			ErrBadInput, p.Interval, sheets, dur, p.MaxSheets)
	}

	vf := fmt.Sprintf("%s,scale=%d:%d,setsar=1,tile=%dx%d", snapSampleFilter(interval), tw, th, p.Columns, p.Rows)
	args := []string{"-i", in.Path, "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", vf, "-frames:v", strconv.Itoa(sheets)}
	args = append(args, enc...)
	args = append(args, "-f", "image2", "-start_number", "1", filepath.Join(env.OutDir, "sprite_%03d."+p.Format))
	if err := RunFFmpeg(ctx, env, time.Duration(dur*float64(time.Second)), args...); err != nil {
		return nil, err
	}

	var outs []Output
	sheetW, sheetH := tw*p.Columns, th*p.Rows
	for s := range sheets {
		name := fmt.Sprintf("sprite_%03d.%s", s+1, p.Format)
		st, err := os.Stat(filepath.Join(env.OutDir, name))
		if err != nil {
			if s == 0 {
				return nil, fmt.Errorf("%w: the input's video stream has no frames", ErrBadInput)
			}
			// The video stream ended before the container: fewer sheets.
			count = min(count, s*perSheet)
			break
		}
		if s == 0 {
			w, h, err := snapImageSize(ctx, env, filepath.Join(env.OutDir, name))
			if err != nil {
				return nil, err
			}
			if w != sheetW || h != sheetH {
				return nil, fmt.Errorf("sprite sheet %s is %dx%d, expected %dx%d", name, w, h, sheetW, sheetH)
			}
		}
		outs = append(outs, Output{
			Kind: "sprite", Path: name, MIME: snapMIME(p.Format), Size: st.Size(), Width: sheetW, Height: sheetH,
			Data: map[string]any{
				"columns": p.Columns, "rows": p.Rows, "thumb_width": tw, "thumb_height": th,
				"thumbnails": min(perSheet, count-s*perSheet),
			},
		})
	}

	vtt := spriteVTT(count, interval, dur, p.Columns, p.Rows, tw, th, p.Format)
	vttPath := filepath.Join(env.OutDir, "sprite.vtt")
	if err := os.WriteFile(vttPath, []byte(vtt), 0o644); err != nil {
		return nil, err
	}
	outs = append(outs, Output{
		Kind: "vtt", Path: "sprite.vtt", MIME: "text/vtt", Size: int64(len(vtt)), Duration: dur,
		Data: map[string]any{"cues": count, "interval": interval},
	})
	return outs, nil
}

// spriteVTT returns the WebVTT file of count thumbnails taken every
// interval seconds: cue i covers [i·interval, (i+1)·interval), the last
// one up to the end of the input.
func spriteVTT(count int, interval, dur float64, cols, rows, tw, th int, format string) string {
	var b strings.Builder
	b.WriteString("WEBVTT\n")
	perSheet := cols * rows
	for i := range count {
		start := float64(i) * interval
		end := float64(i+1) * interval
		if i == count-1 || end > dur {
			end = math.Max(dur, start+0.001)
		}
		cell := i % perSheet
		fmt.Fprintf(&b, "\n%s --> %s\nsprite_%03d.%s#xywh=%d,%d,%d,%d\n",
			spriteVTTTime(start), spriteVTTTime(end), i/perSheet+1, format,
			(cell%cols)*tw, (cell/cols)*th, tw, th)
	}
	return b.String()
}

// spriteVTTTime formats seconds as a WebVTT timestamp, hh:mm:ss.ttt.
func spriteVTTTime(s float64) string {
	ms := int64(math.Round(s * 1000))
	return fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3600000, ms/60000%60, ms/1000%60, ms%1000)
}

// SpritePresets returns the built-in sprite templates.
func SpritePresets() map[string]json.RawMessage {
	return map[string]json.RawMessage{
		"sprite-default": json.RawMessage(`{"format":"jpg","columns":10,"rows":10,"width":160,"interval":0,"quality":80}`),
		"sprite-5s":      json.RawMessage(`{"format":"jpg","columns":10,"rows":10,"width":160,"interval":5,"quality":80}`),
	}
}
