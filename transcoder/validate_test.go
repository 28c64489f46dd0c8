package transcoder

import (
	"encoding/json"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// validTemplate is a complete ladder: passthrough plus two H.264 rungs.
func validTemplate() Template {
	return Template{
		Name: "default",
		Rungs: []Rung{
			{Name: "source", Passthrough: true},
			{Name: "720p", Video: Video{Codec: CodecH264, Width: 1280, Height: 720, Bitrate: 2_500_000}, Audio: Audio{Codec: CodecAAC}},
			{Name: "360p", Video: Video{Codec: CodecH264, Height: 360, Bitrate: 800_000}},
		},
	}
}

// writePNG writes a small real PNG and returns its path.
func writePNG(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "logo.png")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, image.NewNRGBA(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func fullCaps() *Capabilities {
	enc := map[string]bool{}
	for _, e := range NotableEncoders {
		enc[e] = true
	}
	flt := map[string]bool{}
	for _, f := range NotableFilters {
		flt[f] = true
	}
	return &Capabilities{FFmpegVersion: "5.1", Encoders: enc, Filters: flt}
}

func TestValidTemplates(t *testing.T) {
	logo := writePNG(t)
	tpls := map[string]Template{"basic": validTemplate()}

	full := Template{Name: "all-codecs_1.0", Upscale: true, Rungs: []Rung{
		{Name: "hevc", Video: Video{Codec: CodecH265, Width: 1920, Height: 1080, Bitrate: 4_000_000, MaxRate: 4_000_000, BufSize: 8_000_000, FPS: 30, Profile: "main10", Preset: "placebo", GOP: 4 * time.Second}, Audio: Audio{Codec: CodecOpus, Bitrate: 64_000, SampleRate: 24000, Channels: 1}},
		{Name: "av1", Video: Video{Codec: CodecAV1, Width: 640, Bitrate: 500_000, Preset: "0", GOP: 4 * time.Second}, Audio: Audio{Codec: AudioCopy}},
		{Name: "vp9", Video: Video{Codec: CodecVP9, Height: 2, Bitrate: 1, FPS: 240, Preset: "8", GOP: 4 * time.Second}, Audio: Audio{Codec: AudioNone}},
		{Name: "h264", Video: Video{Codec: CodecH264, Width: 8192, Height: 8192, Bitrate: 1, Profile: "baseline", Preset: "ultrafast"}, Audio: Audio{Bitrate: 512_000, SampleRate: 8000, Channels: 8}},
	}}
	full.Rungs[3].Video.GOP = 4 * time.Second
	tpls["full"] = full

	img := validTemplate()
	img.Watermark = &Watermark{Image: logo, Position: "bottom-left", Opacity: 0.5, Scale: 1, MarginX: 0.5, MarginY: 0.1}
	tpls["image watermark"] = img
	txt := validTemplate()
	txt.Watermark = &Watermark{Text: "MPS — live ✓"}
	tpls["text watermark"] = txt

	for name, tpl := range tpls {
		t.Run(name, func(t *testing.T) {
			if err := tpl.Validate(nil); err != nil {
				t.Errorf("Validate(nil): %v", err)
			}
			if err := tpl.Validate(fullCaps()); err != nil {
				t.Errorf("Validate(caps): %v", err)
			}
		})
	}
}

// TestValidateRefuses covers every refusal, and checks each message names
// the field.
func TestValidateRefuses(t *testing.T) {
	logo := writePNG(t)
	notPNG := filepath.Join(t.TempDir(), "logo.jpg")
	if err := os.WriteFile(notPNG, []byte("\xff\xd8\xff\xe0 JFIF"), 0o644); err != nil {
		t.Fatal(err)
	}
	rung := func(tp *Template, i int) *Rung { return &tp.Rungs[i] }

	cases := []struct {
		name   string
		edit   func(*Template)
		caps   *Capabilities
		want   string
		prefix string // default: `ladder "default": `
	}{
		{name: "empty name", edit: func(tp *Template) { tp.Name = "" }, want: "name: must be set", prefix: `ladder "": `},
		{name: "bad name", edit: func(tp *Template) { tp.Name = "my ladder" }, want: `name "my ladder": use letters, digits, '_', '-' and '.' only`, prefix: `ladder "my ladder": `},
		{name: "slash name", edit: func(tp *Template) { tp.Name = "a/b" }, want: `name "a/b": use letters`, prefix: `ladder "a/b": `},
		{name: "dot name", edit: func(tp *Template) { tp.Name = ".." }, want: `name "..": not a usable name`, prefix: `ladder "..": `},
		{name: "long name", edit: func(tp *Template) { tp.Name = strings.Repeat("x", 65) }, want: "name: longer than 64 characters", prefix: `ladder "xxx`},
		{name: "no rungs", edit: func(tp *Template) { tp.Rungs = nil }, want: "rungs: list at least one rung"},
		{name: "only passthrough", edit: func(tp *Template) { tp.Rungs = tp.Rungs[:1] }, want: "rungs: every rung is passthrough; a ladder needs at least one transcoded rung"},
		{name: "two passthrough", edit: func(tp *Template) { tp.Rungs = append(tp.Rungs, Rung{Name: "copy", Passthrough: true}) }, want: "rungs[3].passthrough: rungs[0] already passes the source through"},
		{name: "empty rung name", edit: func(tp *Template) { rung(tp, 1).Name = "" }, want: "rungs[1].name: must be set"},
		{name: "duplicate rung name", edit: func(tp *Template) { rung(tp, 2).Name = "720p" }, want: `rungs[2].name "720p": already used by rungs[1]`},
		{name: "rung name with slash", edit: func(tp *Template) { rung(tp, 1).Name = "hd/720" }, want: `rungs[1].name "hd/720": use letters, digits, '_', '-' and '.' only`},
		{name: "rung name with space", edit: func(tp *Template) { rung(tp, 1).Name = "7 20" }, want: `rungs[1].name "7 20": use letters`},
		{name: "rung name dotdot", edit: func(tp *Template) { rung(tp, 1).Name = ".." }, want: `rungs[1].name "..": not a usable name`},
		{name: "rung name long", edit: func(tp *Template) { rung(tp, 1).Name = strings.Repeat("r", 65) }, want: "rungs[1].name: longer than 64 characters"},
		{name: "rung name ladder", edit: func(tp *Template) { rung(tp, 1).Name = "Ladder" }, want: `rungs[1].name "Ladder": reserved for the stream's API resource`},
		{name: "rung name m3u8", edit: func(tp *Template) { rung(tp, 1).Name = "index.m3u8" }, want: `rungs[1].name "index.m3u8": ends like a playback file (.m3u8)`},
		{name: "rung name mpd", edit: func(tp *Template) { rung(tp, 0).Name = "manifest.MPD" }, want: `rungs[0].name "manifest.MPD": ends like a playback file (.mpd)`},
		{name: "rung name m4s", edit: func(tp *Template) { rung(tp, 1).Name = "seg1.m4s" }, want: "(.m4s)"},
		{name: "rung name mp4", edit: func(tp *Template) { rung(tp, 1).Name = "init.mp4" }, want: "(.mp4)"},
		{name: "rung name jpg", edit: func(tp *Template) { rung(tp, 1).Name = "thumb.jpg" }, want: "(.jpg)"},
		{name: "no video codec", edit: func(tp *Template) { rung(tp, 1).Video.Codec = "" }, want: "rungs[1].video.codec: must be set (h264, h265, av1 or vp9)"},
		{name: "unknown video codec", edit: func(tp *Template) { rung(tp, 1).Video.Codec = "h263" }, want: `rungs[1].video.codec: unknown codec "h263" (want h264, h265, av1 or vp9)`},
		{name: "encoder name as codec", edit: func(tp *Template) { rung(tp, 2).Video.Codec = "libx264" }, want: `rungs[2].video.codec: unknown codec "libx264"`},
		{name: "unknown audio codec", edit: func(tp *Template) { rung(tp, 1).Audio.Codec = "mp3" }, want: `rungs[1].audio.codec: unknown codec "mp3" (want aac, opus, copy or none)`},
		{name: "odd width", edit: func(tp *Template) { rung(tp, 1).Video.Width = 1279 }, want: "rungs[1].video.width 1279: must be even"},
		{name: "odd height", edit: func(tp *Template) { rung(tp, 2).Video.Height = 361 }, want: "rungs[2].video.height 361: must be even"},
		{name: "negative width", edit: func(tp *Template) { rung(tp, 1).Video.Width = -2 }, want: "rungs[1].video.width -2: must be 0 (follow the other side) or more"},
		{name: "negative height", edit: func(tp *Template) { rung(tp, 1).Video.Height = -720 }, want: "rungs[1].video.height -720: must be 0"},
		{name: "huge width", edit: func(tp *Template) { rung(tp, 1).Video.Width = 8194 }, want: "rungs[1].video.width 8194: must be at most 8192"},
		{name: "no size", edit: func(tp *Template) { rung(tp, 2).Video.Height = 0 }, want: "rungs[2].video: set width, height or both"},
		{name: "zero bitrate", edit: func(tp *Template) { rung(tp, 1).Video.Bitrate = 0 }, want: "rungs[1].video.bitrate 0: must be more than 0 (write it like 2500k or 2.5M)"},
		{name: "negative bitrate", edit: func(tp *Template) { rung(tp, 1).Video.Bitrate = -5 }, want: "rungs[1].video.bitrate -5: must be more than 0"},
		{name: "maxrate below bitrate", edit: func(tp *Template) { rung(tp, 1).Video.MaxRate = 2_000_000 }, want: "rungs[1].video.maxrate 2000k: must be at least rungs[1].video.bitrate 2500k"},
		{name: "negative maxrate", edit: func(tp *Template) { rung(tp, 1).Video.MaxRate = -1 }, want: "rungs[1].video.maxrate -1: must be at least"},
		{name: "negative bufsize", edit: func(tp *Template) { rung(tp, 1).Video.BufSize = -1 }, want: "rungs[1].video.bufsize -1: must be 0 (twice the bitrate) or more"},
		{name: "negative fps", edit: func(tp *Template) { rung(tp, 1).Video.FPS = -1 }, want: "rungs[1].video.fps -1: must be from 0 (keep the source's) to 240"},
		{name: "fast fps", edit: func(tp *Template) { rung(tp, 1).Video.FPS = 240.5 }, want: "rungs[1].video.fps 240.5: must be from 0"},
		{name: "NaN fps", edit: func(tp *Template) { rung(tp, 1).Video.FPS = math.NaN() }, want: "rungs[1].video.fps NaN"},
		{name: "x264 preset", edit: func(tp *Template) { rung(tp, 1).Video.Preset = "fastest" }, want: `rungs[1].video.preset "fastest": unknown x264 preset (want ultrafast, superfast, veryfast, faster, fast, medium, slow, slower, veryslow or placebo)`},
		{name: "x265 preset", edit: func(tp *Template) { rung(tp, 1).Video.Codec = CodecH265; rung(tp, 1).Video.Preset = "Medium" }, want: `rungs[1].video.preset "Medium": unknown x265 preset`},
		{name: "av1 preset", edit: func(tp *Template) { rung(tp, 1).Video.Codec = CodecAV1; rung(tp, 1).Video.Preset = "fast" }, want: `rungs[1].video.preset "fast": an SVT-AV1 preset is a number from 0 (slowest) to 13 (fastest)`},
		{name: "av1 preset range", edit: func(tp *Template) { rung(tp, 1).Video.Codec = CodecAV1; rung(tp, 1).Video.Preset = "14" }, want: `rungs[1].video.preset "14": an SVT-AV1 preset`},
		{name: "vp9 preset", edit: func(tp *Template) { rung(tp, 1).Video.Codec = CodecVP9; rung(tp, 1).Video.Preset = "realtime" }, want: `rungs[1].video.preset "realtime": a vp9 preset is the libvpx speed, a number from 0 (slowest) to 8 (fastest)`},
		{name: "h264 profile", edit: func(tp *Template) { rung(tp, 1).Video.Profile = "high10" }, want: `rungs[1].video.profile "high10": unknown h264 profile (want baseline, main or high)`},
		{name: "vp9 profile", edit: func(tp *Template) { rung(tp, 1).Video.Codec = CodecVP9; rung(tp, 1).Video.Profile = "0" }, want: `rungs[1].video.profile "0": only h264 and h265 take a profile`},
		{name: "different GOPs", edit: func(tp *Template) { rung(tp, 2).Video.GOP = 4 * time.Second }, want: "rungs[2].video.gop 4s: differs from rungs[1].video.gop 2s (the default); the transcoded rungs of a ladder share one GOP"},
		{name: "negative GOP", edit: func(tp *Template) { rung(tp, 1).Video.GOP = -time.Second }, want: "rungs[1].video.gop -1s: must be 0 (default 2s) or more"},
		{name: "tiny GOP", edit: func(tp *Template) { rung(tp, 1).Video.GOP = 2 }, want: "rungs[1].video.gop 2ns: must be at least 100ms"},
		{name: "huge GOP", edit: func(tp *Template) { rung(tp, 1).Video.GOP = time.Hour }, want: "rungs[1].video.gop 1h0m0s: must be at most 1m0s"},
		{name: "aac bitrate high", edit: func(tp *Template) { rung(tp, 1).Audio.Bitrate = 1_000_000 }, want: "rungs[1].audio.bitrate 1000000: must be from 8k to 512k for aac"},
		{name: "opus bitrate low", edit: func(tp *Template) { rung(tp, 1).Audio = Audio{Codec: CodecOpus, Bitrate: 5000} }, want: "rungs[1].audio.bitrate 5000: must be from 6k to 510k for opus"},
		{name: "negative audio bitrate", edit: func(tp *Template) { rung(tp, 1).Audio.Bitrate = -1 }, want: "rungs[1].audio.bitrate -1: must be from 8k"},
		{name: "aac sample rate", edit: func(tp *Template) { rung(tp, 1).Audio.SampleRate = 12345 }, want: "rungs[1].audio.sample_rate 12345: aac takes 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200 or 96000"},
		{name: "opus sample rate", edit: func(tp *Template) { rung(tp, 1).Audio = Audio{Codec: CodecOpus, SampleRate: 44100} }, want: "rungs[1].audio.sample_rate 44100: opus takes 8000, 12000, 16000, 24000 or 48000"},
		{name: "channels high", edit: func(tp *Template) { rung(tp, 1).Audio.Channels = 9 }, want: "rungs[1].audio.channels 9: must be from 1 to 8"},
		{name: "channels negative", edit: func(tp *Template) { rung(tp, 1).Audio.Channels = -1 }, want: "rungs[1].audio.channels -1: must be from 1 to 8"},
		{name: "copy with settings", edit: func(tp *Template) { rung(tp, 1).Audio = Audio{Codec: AudioCopy, Bitrate: 64_000} }, want: "rungs[1].audio: bitrate, sample_rate and channels have no effect with codec copy"},
		{name: "watermark both", edit: func(tp *Template) { tp.Watermark = &Watermark{Image: logo, Text: "x"} }, want: "watermark: set either image or text, not both"},
		{name: "watermark neither", edit: func(tp *Template) { tp.Watermark = &Watermark{Position: "center"} }, want: "watermark: set image (a PNG file) or text"},
		{name: "watermark position", edit: func(tp *Template) { tp.Watermark = &Watermark{Text: "x", Position: "middle"} }, want: `watermark.position "middle": want top-left, top-right, bottom-left, bottom-right or center`},
		{name: "watermark opacity high", edit: func(tp *Template) { tp.Watermark = &Watermark{Text: "x", Opacity: 1.5} }, want: "watermark.opacity 1.5: must be from 0 to 1"},
		{name: "watermark opacity negative", edit: func(tp *Template) { tp.Watermark = &Watermark{Text: "x", Opacity: -0.1} }, want: "watermark.opacity -0.1: must be from 0 to 1"},
		{name: "watermark scale high", edit: func(tp *Template) { tp.Watermark = &Watermark{Text: "x", Scale: 1.01} }, want: "watermark.scale 1.01: must be more than 0 and at most 1"},
		{name: "watermark scale negative", edit: func(tp *Template) { tp.Watermark = &Watermark{Image: logo, Scale: -1} }, want: "watermark.scale -1: must be more than 0 and at most 1"},
		{name: "watermark margin", edit: func(tp *Template) { tp.Watermark = &Watermark{Text: "x", MarginY: 0.6} }, want: "watermark.margin_y 0.6: must be from 0 to 0.5"},
		{name: "watermark missing image", edit: func(tp *Template) { tp.Watermark = &Watermark{Image: "/nonexistent/logo.png"} }, want: `watermark.image "/nonexistent/logo.png": no such file`},
		{name: "watermark not png", edit: func(tp *Template) { tp.Watermark = &Watermark{Image: notPNG} }, want: "watermark.image \"" + notPNG + "\": not a PNG file"},
		{name: "watermark directory", edit: func(tp *Template) { tp.Watermark = &Watermark{Image: filepath.Dir(logo)} }, want: "is a directory, not a PNG file"},
		{name: "watermark text control", edit: func(tp *Template) { tp.Watermark = &Watermark{Text: "a\nb"} }, want: `watermark.text "a\nb": must be one line, without control characters`},
		{name: "watermark text long", edit: func(tp *Template) { tp.Watermark = &Watermark{Text: strings.Repeat("x", 257)} }, want: "watermark.text: longer than 256 bytes"},

		// Capability checks.
		{name: "no libx265", edit: func(tp *Template) { rung(tp, 1).Video.Codec = CodecH265 }, caps: capsWithout("libx265"), want: "rungs[1].video.codec: h265 needs the libx265 encoder, which this ffmpeg does not have"},
		{name: "no libx264", caps: capsWithout("libx264"), want: "rungs[1].video.codec: h264 needs the libx264 encoder, which this ffmpeg does not have"},
		{name: "no svtav1", edit: func(tp *Template) { rung(tp, 2).Video.Codec = CodecAV1 }, caps: capsWithout("libsvtav1"), want: "rungs[2].video.codec: av1 needs the libsvtav1 encoder"},
		{name: "no vp9", edit: func(tp *Template) { rung(tp, 2).Video.Codec = CodecVP9 }, caps: capsWithout("libvpx-vp9"), want: "rungs[2].video.codec: vp9 needs the libvpx-vp9 encoder"},
		{name: "no aac", caps: capsWithout("aac"), want: "rungs[1].audio.codec: aac needs the aac encoder, which this ffmpeg does not have"},
		{name: "no opus", edit: func(tp *Template) { rung(tp, 1).Audio.Codec = CodecOpus }, caps: capsWithout("libopus"), want: "rungs[1].audio.codec: opus needs the libopus encoder"},
		{name: "no drawtext", edit: func(tp *Template) { tp.Watermark = &Watermark{Text: "x"} }, caps: capsWithout("drawtext"), want: "watermark.text: needs the drawtext filter, which this ffmpeg does not have"},
		{name: "no overlay", edit: func(tp *Template) { tp.Watermark = &Watermark{Image: logo} }, caps: capsWithout("overlay"), want: "watermark.image: needs the overlay filter, which this ffmpeg does not have"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tpl := validTemplate()
			if c.edit != nil {
				c.edit(&tpl)
			}
			err := tpl.Validate(c.caps)
			if err == nil {
				t.Fatalf("Validate accepted it; want %q", c.want)
			}
			prefix := c.prefix
			if prefix == "" {
				prefix = `ladder "default": `
			}
			found := false
			for line := range strings.SplitSeq(err.Error(), "\n") {
				if !strings.HasPrefix(line, prefix) {
					t.Errorf("line %q does not start with %q", line, prefix)
				}
				found = found || strings.Contains(line, c.want)
			}
			if !found {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func capsWithout(name string) *Capabilities {
	c := fullCaps()
	delete(c.Encoders, name)
	delete(c.Filters, name)
	return c
}

func TestValidateReportsEveryProblem(t *testing.T) {
	tpl := validTemplate()
	tpl.Rungs[1].Video.Codec = "h263"
	tpl.Rungs[2].Video.Width = 3
	tpl.Watermark = &Watermark{}
	err := tpl.Validate(nil)
	if err == nil {
		t.Fatal("accepted")
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Errorf("%d problems reported, want 3:\n%v", n, err)
	}
}

func TestPassthroughIgnoresItsSettings(t *testing.T) {
	tpl := validTemplate()
	tpl.Rungs[0].Video = Video{Codec: "whatever", Width: -1}
	tpl.Rungs[0].Audio = Audio{Codec: "mp3"}
	if err := tpl.Validate(capsWithout("libx265")); err != nil {
		t.Errorf("passthrough settings checked: %v", err)
	}
	if d := tpl.WithDefaults(); !reflect.DeepEqual(d.Rungs[0], tpl.Rungs[0]) {
		t.Errorf("passthrough rung changed by WithDefaults: %+v", d.Rungs[0])
	}
}

func TestWithDefaults(t *testing.T) {
	tpl := validTemplate()
	tpl.Rungs = append(tpl.Rungs,
		Rung{Name: "hevc", Video: Video{Codec: CodecH265, Width: 640, Bitrate: 1000}, Audio: Audio{Codec: CodecOpus}},
		Rung{Name: "mute", Video: Video{Codec: CodecH264, Width: 320, Bitrate: 100_000, MaxRate: 200_000, BufSize: 50_000, Preset: "fast", GOP: 2 * time.Second}, Audio: Audio{Codec: AudioNone}},
	)
	tpl.Watermark = &Watermark{Text: "hi"}
	before := cloneForTest(t, tpl)
	d := tpl.WithDefaults()
	if !reflect.DeepEqual(tpl, before) {
		t.Fatalf("WithDefaults modified its receiver:\n%+v\n%+v", tpl, before)
	}

	want := []Rung{
		{Name: "source", Passthrough: true},
		{Name: "720p",
			Video: Video{Codec: CodecH264, Width: 1280, Height: 720, Bitrate: 2_500_000, MaxRate: 2_750_000, BufSize: 5_000_000, Preset: "superfast", GOP: 2 * time.Second},
			Audio: Audio{Codec: CodecAAC, Bitrate: 128_000, SampleRate: 48000, Channels: 2}},
		{Name: "360p",
			Video: Video{Codec: CodecH264, Height: 360, Bitrate: 800_000, MaxRate: 880_000, BufSize: 1_600_000, Preset: "superfast", GOP: 2 * time.Second},
			Audio: Audio{Codec: CodecAAC, Bitrate: 128_000, SampleRate: 48000, Channels: 2}},
		{Name: "hevc",
			Video: Video{Codec: CodecH265, Width: 640, Bitrate: 1000, MaxRate: 1100, BufSize: 2000, Preset: "ultrafast", GOP: 2 * time.Second},
			Audio: Audio{Codec: CodecOpus, Bitrate: 96_000, SampleRate: 48000, Channels: 2}},
		{Name: "mute",
			Video: Video{Codec: CodecH264, Width: 320, Bitrate: 100_000, MaxRate: 200_000, BufSize: 50_000, Preset: "fast", GOP: 2 * time.Second},
			Audio: Audio{Codec: AudioNone}},
	}
	if !reflect.DeepEqual(d.Rungs, want) {
		t.Errorf("rungs:\n got %+v\nwant %+v", d.Rungs, want)
	}
	if w := *d.Watermark; w != (Watermark{Text: "hi", Position: "top-right", MarginX: 0.02, MarginY: 0.02, Opacity: 1, Scale: 0.04}) {
		t.Errorf("text watermark = %+v", w)
	}
	img := Template{Watermark: &Watermark{Image: "x.png", Position: "center", Opacity: 0.3}}
	if w := *img.WithDefaults().Watermark; w != (Watermark{Image: "x.png", Position: "center", MarginX: 0.02, MarginY: 0.02, Opacity: 0.3, Scale: 0.15}) {
		t.Errorf("image watermark = %+v", w)
	}

	again := d.WithDefaults()
	if !reflect.DeepEqual(again, d) {
		t.Errorf("WithDefaults is not idempotent:\n%+v\n%+v", again, d)
	}
	if err := d.Validate(nil); err != nil {
		t.Errorf("defaulted template does not validate: %v", err)
	}
	if got := d.TranscodedRungs(); !reflect.DeepEqual(got, []int{1, 2, 3, 4}) {
		t.Errorf("TranscodedRungs = %v", got)
	}
}

func cloneForTest(t *testing.T, tpl Template) Template {
	t.Helper()
	b, err := json.Marshal(tpl)
	if err != nil {
		t.Fatal(err)
	}
	var out Template
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBitrateJSON(t *testing.T) {
	for in, want := range map[string]Bitrate{
		`128000`: 128_000, `"128k"`: 128_000, `"2.5M"`: 2_500_000, `"2500000"`: 2_500_000, `0`: 0,
		`2.5e6`: 2_500_000, ` 64000 `: 64_000, `"128K"`: 128_000,
	} {
		var b Bitrate
		if err := json.Unmarshal([]byte(in), &b); err != nil || b != want {
			t.Errorf("%s: got %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{`-1`, `1.5`, `"fast"`, `"-3k"`, `true`, `[1]`, `{}`, `1e12`, `"1e12"`} {
		var b Bitrate
		if err := json.Unmarshal([]byte(in), &b); err == nil {
			t.Errorf("%s accepted as %d", in, b)
		}
	}
	b := Bitrate(7)
	if err := json.Unmarshal([]byte(`null`), &b); err != nil || b != 7 {
		t.Errorf("null: %d %v", b, err)
	}

	out, err := json.Marshal(Video{Codec: "h264", Bitrate: 2_500_000})
	if err != nil || !strings.Contains(string(out), `"bitrate":2500000`) {
		t.Errorf("marshal = %s %v", out, err)
	}
	var v Video
	if err := json.Unmarshal([]byte(`{"codec":"h264","bitrate":"2500k","maxrate":3000000}`), &v); err != nil || v.Bitrate != 2_500_000 || v.MaxRate != 3_000_000 {
		t.Errorf("unmarshal video = %+v %v", v, err)
	}
}

func FuzzBitrateJSON(f *testing.F) {
	for _, s := range []string{`128000`, `"128k"`, `"2.5M"`, `-1`, `1e400`, `"k"`, `""`, `null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var b Bitrate
		if err := json.Unmarshal([]byte(in), &b); err != nil {
			return
		}
		if b < 0 || b > 1e11 {
			t.Fatalf("%s gave %d", in, b)
		}
		out, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		var back Bitrate
		if err := json.Unmarshal(out, &back); err != nil || back != b {
			t.Fatalf("%s: %d -> %s -> %d (%v)", in, b, out, back, err)
		}
	})
}
