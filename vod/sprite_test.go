package vod

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// spriteTestCue is one parsed WebVTT cue of a sprite file.
type spriteTestCue struct {
	start, end float64
	file       string
	rect       image.Rectangle
}

// spriteTestParseVTT parses a sprite WebVTT file strictly.
func spriteTestParseVTT(t *testing.T, text string) []spriteTestCue {
	t.Helper()
	blocks := strings.Split(strings.TrimSpace(text), "\n\n")
	if blocks[0] != "WEBVTT" {
		t.Fatalf("the VTT starts with %q", blocks[0])
	}
	parseTime := func(s string) float64 {
		var h, m int
		var sec float64
		if n, err := fmt.Sscanf(s, "%d:%d:%f", &h, &m, &sec); n != 3 || err != nil || len(s) != len("00:00:00.000") {
			t.Fatalf("bad VTT time %q", s)
		}
		return float64(h*3600+m*60) + sec
	}
	var cues []spriteTestCue
	for _, b := range blocks[1:] {
		lines := strings.Split(b, "\n")
		if len(lines) != 2 {
			t.Fatalf("cue %q has %d lines", b, len(lines))
		}
		from, to, ok := strings.Cut(lines[0], " --> ")
		if !ok {
			t.Fatalf("bad timing line %q", lines[0])
		}
		file, frag, ok := strings.Cut(lines[1], "#xywh=")
		if !ok {
			t.Fatalf("bad cue payload %q", lines[1])
		}
		var xywh []int
		for f := range strings.SplitSeq(frag, ",") {
			v, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("bad xywh %q", frag)
			}
			xywh = append(xywh, v)
		}
		if len(xywh) != 4 {
			t.Fatalf("bad xywh %q", frag)
		}
		cues = append(cues, spriteTestCue{parseTime(from), parseTime(to), file,
			image.Rect(xywh[0], xywh[1], xywh[0]+xywh[2], xywh[1]+xywh[3])})
	}
	return cues
}

// spriteTestCheck checks a sprite run's outputs: sheet files and sizes,
// and a VTT whose cues cover [0, duration] without gaps and point inside
// the sheets.
func spriteTestCheck(t *testing.T, env Env, in Media, outs []Output, sheets, cols, rows, tw, th, cues int) []spriteTestCue {
	t.Helper()
	if len(outs) != sheets+1 {
		t.Fatalf("%d outputs, want %d sheets and a vtt: %+v", len(outs), sheets, outs)
	}
	sizes := map[string]image.Rectangle{}
	for i, o := range outs[:sheets] {
		if o.Kind != "sprite" || o.Path != fmt.Sprintf("sprite_%03d%s", i+1, filepath.Ext(o.Path)) || o.Size == 0 {
			t.Fatalf("sheet output %+v", o)
		}
		b := snapTestDecode(t, filepath.Join(env.OutDir, o.Path)).Bounds()
		if b.Dx() != cols*tw || b.Dy() != rows*th || o.Width != b.Dx() || o.Height != b.Dy() {
			t.Fatalf("%s is %v (output says %dx%d), want %dx%d", o.Path, b, o.Width, o.Height, cols*tw, rows*th)
		}
		sizes[o.Path] = b
	}
	vtt := outs[sheets]
	if vtt.Kind != "vtt" || vtt.Path != "sprite.vtt" || vtt.MIME != "text/vtt" {
		t.Fatalf("vtt output %+v", vtt)
	}
	data, err := os.ReadFile(filepath.Join(env.OutDir, vtt.Path))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != vtt.Size {
		t.Fatalf("vtt size %d, output says %d", len(data), vtt.Size)
	}
	parsed := spriteTestParseVTT(t, string(data))
	if len(parsed) != cues {
		t.Fatalf("%d cues, want %d", len(parsed), cues)
	}
	prevEnd := 0.0
	for i, c := range parsed {
		if c.start != prevEnd || c.end <= c.start {
			t.Fatalf("cue %d is %.3f..%.3f after a cue ending at %.3f", i, c.start, c.end, prevEnd)
		}
		prevEnd = c.end
		b, ok := sizes[c.file]
		if !ok {
			t.Fatalf("cue %d points to %q, not a sheet", i, c.file)
		}
		if !c.rect.In(b) || c.rect.Dx() != tw || c.rect.Dy() != th {
			t.Fatalf("cue %d rectangle %v is not a %dx%d cell inside %v", i, c.rect, tw, th, b)
		}
	}
	if d := in.Duration.Seconds(); math.Abs(prevEnd-d) > 0.001 {
		t.Fatalf("the cues end at %.3f, the input at %.3f", prevEnd, d)
	}
	return parsed
}

func TestSpriteDefaultSpreadsOneSheet(t *testing.T) {
	in := snapTestVideo(t, 12, true)
	env, pr := snapTestEnv(t)
	outs, err := Sprite().Run(context.Background(), env, in, SpritePresets()["sprite-default"])
	if err != nil {
		t.Fatal(err)
	}
	pr.check(t)
	cues := spriteTestCheck(t, env, in, outs, 1, 10, 10, 160, 120, 100)
	if cues[1].start != 0.12 || cues[11].rect.Min != image.Pt(160, 120) {
		t.Fatalf("cue 1 starts at %v, cue 11 is %v", cues[1].start, cues[11].rect)
	}
	// The last cell holds a picture, not the tile filter's black padding.
	sheet := snapTestDecode(t, filepath.Join(env.OutDir, outs[0].Path))
	var sum uint64
	r := cues[99].rect
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := sheet.At(x, y).RGBA()
			sum += uint64(cr+cg+cb) / 3 >> 8
		}
	}
	if mean := float64(sum) / float64(r.Dx()*r.Dy()); mean < 20 {
		t.Fatalf("the last cell is black (mean %.1f)", mean)
	}
}

func TestSpriteIntervalMakesSeveralSheets(t *testing.T) {
	in := snapTestVideo(t, 12, false)
	env, pr := snapTestEnv(t)
	outs, err := Sprite().Run(context.Background(), env, in,
		json.RawMessage(`{"format":"png","columns":3,"rows":2,"width":80,"interval":1}`))
	if err != nil {
		t.Fatal(err)
	}
	pr.check(t)
	cues := spriteTestCheck(t, env, in, outs, 2, 3, 2, 80, 60, 12)
	if outs[1].Data["thumbnails"] != 6 || cues[7].file != "sprite_002.png" || cues[7].rect.Min != image.Pt(80, 0) {
		t.Fatalf("second sheet %+v, cue 7 %+v", outs[1], cues[7])
	}

	// The cell of cue 3 (3 s) shows frame 75, scaled like the sheet.
	ref := filepath.Join(t.TempDir(), "ref.png")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-i", in.Path,
		"-vf", `select=eq(n\,75),scale=80:60`, "-frames:v", "1", ref).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	sheet := snapTestDecode(t, filepath.Join(env.OutDir, "sprite_001.png")).(interface {
		image.Image
		SubImage(image.Rectangle) image.Image
	})
	want := snapTestDecode(t, ref)
	cell := func(i int) image.Image {
		r := cues[i].rect
		return spriteTestShift{sheet.SubImage(r), r.Min}
	}
	if d := snapTestDiff(cell(3), want); d > 2 {
		t.Fatalf("the cell at 3 s differs from frame 75 by %.2f per channel", d)
	}
	if d := snapTestDiff(cell(2), want); d < 3 {
		t.Fatalf("the cell at 2 s looks like frame 75 (diff %.2f): the test cannot tell frames apart", d)
	}

	// A partial last sheet: 12 thumbnails on 5-cell sheets.
	env, _ = snapTestEnv(t)
	outs, err = Sprite().Run(context.Background(), env, in, json.RawMessage(`{"columns":5,"rows":1,"width":64,"interval":1}`))
	if err != nil {
		t.Fatal(err)
	}
	spriteTestCheck(t, env, in, outs, 3, 5, 1, 64, 48, 12)
	if outs[2].Data["thumbnails"] != 2 {
		t.Fatalf("the last sheet holds %v thumbnails", outs[2].Data["thumbnails"])
	}
}

// spriteTestShift moves an image's bounds to start at 0,0.
type spriteTestShift struct {
	image.Image
	at image.Point
}

func (s spriteTestShift) Bounds() image.Rectangle { return s.Image.Bounds().Sub(s.at) }
func (s spriteTestShift) At(x, y int) color.Color { return s.Image.At(x+s.at.X, y+s.at.Y) }

func TestSpriteBadParams(t *testing.T) {
	in := snapTestVideo(t, 2, false)
	cases := []struct{ params, field string }{
		{`{"columns":0}`, "columns"},
		{`{"rows":0}`, "rows"},
		{`{"rows":51}`, "rows"},
		{`{"width":0}`, "width"},
		{`{"height":8}`, "height"},
		{`{"interval":-1}`, "interval"},
		{`{"format":"gif"}`, "format"},
		{`{"tiles":4}`, "tiles"},
		{`{"interval":0.04,"columns":1,"rows":1,"max_sheets":10}`, "max_sheets"},
	}
	for _, c := range cases {
		env, _ := snapTestEnv(t)
		_, err := Sprite().Run(context.Background(), env, in, json.RawMessage(c.params))
		snapTestBadInput(t, err, c.field)
	}
	env, _ := snapTestEnv(t)
	_, err := Sprite().Run(context.Background(), env, snapTestAudio(t), nil)
	snapTestBadInput(t, err, "no video stream")
}

func TestSpriteCancel(t *testing.T) {
	snapTestCancel(t, Sprite(), `{"interval":1}`)
}
