package vod

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"image/gif"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// animTestGIF decodes a GIF output.
func animTestGIF(t *testing.T, path string) *gif.GIF {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := gif.DecodeAll(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return g
}

func TestAnimatedGIF(t *testing.T) {
	in := snapTestVideo(t, 6, true)
	cases := []struct {
		params        string
		frames, w, h  int
		loop          int
		start, length float64
	}{
		{`{"start":1,"duration":2,"fps":10,"width":160}`, 20, 160, 120, 0, 1, 2},
		{`{"start":5,"duration":3,"fps":8,"width":64,"height":64,"loop":false}`, 8, 64, 64, -1, 5, 1},
		{string(AnimatedPresets()["gif-preview"]), 30, 320, 240, 0, 0.6, 3},
	}
	for _, c := range cases {
		t.Run(c.params, func(t *testing.T) {
			env, pr := snapTestEnv(t)
			outs, err := Animated().Run(context.Background(), env, in, json.RawMessage(c.params))
			if err != nil {
				t.Fatal(err)
			}
			pr.check(t)
			if len(outs) != 1 {
				t.Fatalf("outputs %+v", outs)
			}
			o := outs[0]
			if o.Kind != "image" || o.Path != "animated.gif" || o.MIME != "image/gif" || o.Size == 0 {
				t.Fatalf("output %+v", o)
			}
			g := animTestGIF(t, filepath.Join(env.OutDir, o.Path))
			if n := len(g.Image); n < c.frames-1 || n > c.frames+1 {
				t.Fatalf("%d frames, want %d±1", n, c.frames)
			}
			if g.Config.Width != c.w || g.Config.Height != c.h || o.Width != c.w || o.Height != c.h {
				t.Fatalf("GIF is %dx%d (output says %dx%d), want %dx%d", g.Config.Width, g.Config.Height, o.Width, o.Height, c.w, c.h)
			}
			if g.LoopCount != c.loop {
				t.Fatalf("loop count %d, want %d", g.LoopCount, c.loop)
			}
			if o.Data["frames"] != len(g.Image) {
				t.Fatalf("output says %v frames, the GIF has %d", o.Data["frames"], len(g.Image))
			}
			if o.Duration < c.length-0.15 || o.Duration > c.length+0.15 {
				t.Fatalf("duration %v, want %v", o.Duration, c.length)
			}
			if o.Data["start"] != c.start {
				t.Fatalf("start %v, want %v", o.Data["start"], c.start)
			}
			// Frame delays add up to the duration (GIF delays are in 1/100 s).
			total := 0
			for _, d := range g.Delay {
				total += d
			}
			if s := float64(total) / 100; s < c.length-0.15 || s > c.length+0.15 {
				t.Fatalf("the frame delays add up to %.2f s, want %.2f", s, c.length)
			}
			// The palette step produced a real palette, not a few flat colours.
			if n := len(g.Image[0].Palette); n < 64 {
				t.Fatalf("the first frame has a %d-colour palette", n)
			}
		})
	}
}

// animTestWebP reads an animated WebP's canvas size and frame count from
// its RIFF chunks.
func animTestWebP(t *testing.T, path string) (w, h, frames int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data[:4]) != "RIFF" || string(data[8:12]) != "WEBP" || int(binary.LittleEndian.Uint32(data[4:8]))+8 != len(data) {
		t.Fatalf("%s is no complete WebP file", path)
	}
	for off := 12; off+8 <= len(data); {
		size := int(binary.LittleEndian.Uint32(data[off+4:]))
		switch string(data[off : off+4]) {
		case "VP8X":
			c := data[off+8:]
			w = 1 + int(c[4]) + int(c[5])<<8 + int(c[6])<<16
			h = 1 + int(c[7]) + int(c[8])<<8 + int(c[9])<<16
		case "ANMF":
			frames++
		}
		off += 8 + size + size&1
	}
	return w, h, frames
}

func TestAnimatedWebP(t *testing.T) {
	in := snapTestVideo(t, 6, false)
	for _, params := range []string{
		string(AnimatedPresets()["webp-preview"]),
		`{"format":"webp","start":2,"duration":1,"fps":12,"width":200,"quality":50}`,
	} {
		env, pr := snapTestEnv(t)
		outs, err := Animated().Run(context.Background(), env, in, json.RawMessage(params))
		if err != nil {
			t.Fatal(err)
		}
		pr.check(t)
		var p AnimatedParams
		if err := json.Unmarshal([]byte(params), &p); err != nil {
			t.Fatal(err)
		}
		o := outs[0]
		wantFrames := int(p.FPS * p.Duration)
		wantH := p.Width * 3 / 4
		if len(outs) != 1 || o.Path != "animated.webp" || o.MIME != "image/webp" || o.Width != p.Width || o.Height != wantH {
			t.Fatalf("outputs %+v", outs)
		}
		path := filepath.Join(env.OutDir, o.Path)
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", path).Output()
		if err != nil || strings.TrimSpace(string(out)) != "webp" {
			t.Fatalf("ffprobe says %q, %v", out, err)
		}
		w, h, frames := animTestWebP(t, path)
		if w != p.Width || h != wantH {
			t.Fatalf("canvas %dx%d, want %dx%d", w, h, p.Width, wantH)
		}
		if frames < wantFrames-1 || frames > wantFrames+1 || o.Data["frames"] != frames {
			t.Fatalf("%d frames (output says %v), want %d±1", frames, o.Data["frames"], wantFrames)
		}
	}
}

func TestAnimatedBadParams(t *testing.T) {
	in := snapTestVideo(t, 2, false)
	cases := []struct{ params, field string }{
		{`{"speed":2}`, "speed"},
		{`{"duration":0}`, "duration"},
		{`{"duration":61}`, "duration"},
		{`{"fps":0}`, "fps"},
		{`{"width":0}`, "width"},
		{`{"height":4}`, "height"},
		{`{"start":2}`, "start"},
		{`{"start":-1}`, "start"},
		{`{"start_percent":100}`, "start_percent"},
		{`{"format":"apng"}`, "format"},
		{`{"format":"webp","quality":0}`, "quality"},
		{`{"loop":"yes"}`, "loop"},
	}
	for _, c := range cases {
		env, _ := snapTestEnv(t)
		_, err := Animated().Run(context.Background(), env, in, json.RawMessage(c.params))
		snapTestBadInput(t, err, c.field)
	}
	env, _ := snapTestEnv(t)
	_, err := Animated().Run(context.Background(), env, snapTestAudio(t), AnimatedPresets()["gif-preview"])
	snapTestBadInput(t, err, "no video stream")
}

func TestAnimatedCancel(t *testing.T) {
	snapTestCancel(t, Animated(), `{"start":1}`)
	snapTestCancel(t, Animated(), `{"format":"webp"}`)
}
