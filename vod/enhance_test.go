package vod

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// enhTestLoudness measures the integrated loudness of path with ebur128.
func enhTestLoudness(t *testing.T, path string) float64 {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i", path, "-map", "0:a:0",
		"-af", "ebur128", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ebur128: %v: %s", err, out)
	}
	m := regexp.MustCompile(`(?s)Integrated loudness:\s*I:\s*(-?[0-9.]+) LUFS`).FindAllSubmatch(out, -1)
	if len(m) == 0 {
		t.Fatalf("no integrated loudness in %s", out)
	}
	f, _ := strconv.ParseFloat(string(m[len(m)-1][1]), 64)
	return f
}

func enhTestPreset(t *testing.T, name string) string {
	t.Helper()
	p, ok := EnhancePresets()[name]
	if !ok {
		t.Fatalf("no preset %s", name)
	}
	return string(p)
}

func TestEnhanceLoudnorm(t *testing.T) {
	loud := tcTestMedia(t, "loud.m4a", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100:duration=5,volume=-6dB", "-c:a", "aac")
	quiet := tcTestMedia(t, "quiet.mp4",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=4",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4,volume=-35dB",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
	for _, in := range []Media{loud, quiet} {
		before := enhTestLoudness(t, in.Path)
		o, env := tcTestRun(t, Enhance(), in, enhTestPreset(t, "loudnorm-ebu"))
		path := filepath.Join(env.OutDir, o.Path)
		after := enhTestLoudness(t, path)
		t.Logf("%s: %.1f LUFS -> %.1f LUFS", filepath.Base(in.Path), before, after)
		if math.Abs(after+23) > 1 {
			t.Errorf("%s: output loudness %.1f LUFS, want -23 ± 1 (input %.1f)", in.Path, after, before)
		}
		if d := math.Abs(o.Duration - in.Duration.Seconds()); d > 0.1 {
			t.Errorf("duration %.3f, input %.3f", o.Duration, in.Duration.Seconds())
		}
		m, err := Probe(context.Background(), env, path)
		if err != nil || m.Audio == nil || m.Audio.Codec != "aac" || m.Audio.SampleRate != in.Audio.SampleRate {
			t.Errorf("audio %+v %v", m.Audio, err)
		}
		if in.Video == nil {
			if o.Kind != "audio" || o.MIME != "audio/mp4" || filepath.Ext(o.Path) != ".m4a" || m.Video != nil {
				t.Errorf("audio-only output %+v", o)
			}
		} else if o.Kind != "video" || o.MIME != "video/mp4" || m.Video == nil || m.Video.Codec != "h264" || o.Width != 320 {
			t.Errorf("video output %+v (the video is copied)", o)
		}
	}
}

func TestEnhanceVideoFilters(t *testing.T) {
	in := tcTestAV(t, 320, 240, "2")
	for _, tc := range []struct {
		params string
		w, h   int
		fps    float64
	}{
		{`{"video":{"deinterlace":{"mode":"field"}},"video_encode":{"preset":"ultrafast"}}`, 320, 240, 50},
		{`{"video":{"fps":{"rate":30}},"video_encode":{"preset":"ultrafast"}}`, 320, 240, 30},
		{`{"video":{"fps":{"rate":12,"method":"blend"}},"video_encode":{"preset":"ultrafast"}}`, 320, 240, 12},
		{enhTestPreset(t, "upscale-2x"), 640, 480, 25},
		{enhTestPreset(t, "deinterlace"), 320, 240, 25},
		{enhTestPreset(t, "denoise-light"), 320, 240, 25},
		{enhTestPreset(t, "sharpen-light"), 320, 240, 25},
		{enhTestPreset(t, "deband"), 320, 240, 25},
		{enhTestPreset(t, "audio-denoise"), 320, 240, 25},
		{`{"video":{"color":{"brightness":0.1,"saturation":0},"scale":{"height":120}},"video_encode":{"codec":"vp9","preset":"8"},"audio_encode":{"codec":"opus"}}`, 160, 120, 25},
	} {
		o, env := tcTestRun(t, Enhance(), in, tc.params)
		m, err := Probe(context.Background(), env, filepath.Join(env.OutDir, o.Path))
		if err != nil || m.Video == nil || m.Audio == nil {
			t.Fatalf("%s: probe %+v %v", tc.params, m, err)
		}
		if o.Width != tc.w || o.Height != tc.h || math.Abs(m.Video.FPS-tc.fps) > 0.01 || o.MIME != "video/mp4" {
			t.Errorf("%s: %dx%d at %.3f fps (%+v), want %dx%d at %v", tc.params, o.Width, o.Height, m.Video.FPS, o, tc.w, tc.h, tc.fps)
		}
		if want := tc.fps * in.Duration.Seconds(); m.Video.Frames != 0 && math.Abs(float64(m.Video.Frames)-want) > 1 {
			t.Errorf("%s: %d frames, want %.0f", tc.params, m.Video.Frames, want)
		}
		if d := math.Abs(o.Duration - in.Duration.Seconds()); d > 0.1 {
			t.Errorf("%s: duration %.3f, input %.3f", tc.params, o.Duration, in.Duration.Seconds())
		}
	}
}

func TestEnhanceBadParams(t *testing.T) {
	in := tcTestAV(t, 320, 240, "1")
	audio := tcTestMedia(t, "in.m4a", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac")
	silent := tcTestMedia(t, "silent.mp4", "-f", "lavfi", "-i", "testsrc2=size=160x120:duration=1", "-c:v", "libx264", "-preset", "ultrafast")
	env, _ := tcTestEnv(t)
	for _, tc := range []struct {
		in     Media
		params string
		want   string
	}{
		{in, `{}`, "set at least one filter"},
		{in, `{"video":{"sharpen":{"amount":1,"radius":3}}}`, `unknown field "radius"`},
		{in, `{"video":{"sharpen":{"size":4}}}`, "video.sharpen.size 4"},
		{in, `{"video":{"denoise":{"strength":99}}}`, "video.denoise.strength"},
		{in, `{"video":{"scale":{"factor":2,"width":640}}}`, "video.scale"},
		{in, `{"video":{"scale":{"factor":100}}}`, "video.scale.factor"},
		{in, `{"video":{"fps":{"rate":0}}}`, "video.fps.rate"},
		{in, `{"video":{"deinterlace":{"mode":"weave"}}}`, "video.deinterlace.mode"},
		{in, `{"video":{"color":{"gamma":0}}}`, "video.color.gamma"},
		{in, `{"audio":{"loudnorm":{"target":-80}}}`, "audio.loudnorm.target"},
		{in, `{"audio":{"loudnorm":{"true_peak":3}}}`, "audio.loudnorm.true_peak"},
		{in, `{"video":{"denoise":{}},"video_encode":{"width":640}}`, "video_encode"},
		{in, `{"video":{"denoise":{}},"video_encode":{"codec":"copy"}}`, "video_encode.codec copy"},
		{in, `{"video":{"denoise":{}},"video_encode":{"codec":"h264","crf":70}}`, "video_encode.crf 70"},
		{audio, enhTestPreset(t, "upscale-2x"), "the input has no video stream"},
		{audio, `{"audio":{"denoise":{}},"audio_encode":{"codec":"mp3"}}`, "audio_encode.codec mp3"},
		{silent, enhTestPreset(t, "loudnorm-ebu"), "the input has no audio stream"},
	} {
		_, err := Enhance().Run(context.Background(), env, tc.in, json.RawMessage(tc.params))
		if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want ErrBadInput naming %q", tc.params, err, tc.want)
		}
	}
	if err := Enhance().(ParamsChecker).CheckParams(json.RawMessage(`{"video":{"sharpen":{"size":4}}}`)); !errors.Is(err, ErrBadInput) {
		t.Errorf("CheckParams: %v", err)
	}
	for name, p := range EnhancePresets() {
		if _, err := DecodeEnhanceParams(p, nil); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
}

func TestEnhanceParseLoudnorm(t *testing.T) {
	log := `[Parsed_loudnorm_0 @ 0x55d0c8a3e2c0] 
{
	"input_i" : "-27.61",
	"input_tp" : "-24.01",
	"input_lra" : "0.00",
	"input_thresh" : "-37.61",
	"output_i" : "-23.02",
	"output_tp" : "-19.42",
	"output_lra" : "0.00",
	"output_thresh" : "-33.02",
	"normalization_type" : "linear",
	"target_offset" : "0.02"
}
`
	st, err := enhParseLoudnormJSON("Stream mapping: {x}\n" + log)
	if err != nil || st.I != -27.61 || st.TP != -24.01 || st.Thresh != -37.61 || st.Offset != 0.02 || st.silent {
		t.Errorf("parse: %+v %v", st, err)
	}
	st, err = enhParseLoudnormJSON(strings.ReplaceAll(log, `"-27.61"`, `"-inf"`))
	if err != nil || !st.silent {
		t.Errorf("silence: %+v %v", st, err)
	}
	if _, err := enhParseLoudnormJSON("nothing here"); err == nil {
		t.Error("no JSON: no error")
	}
}

func TestEnhanceCancel(t *testing.T) {
	// Cancelled in the loudness measuring pass (ffmpeg run by enhance
	// itself) and in the encoding pass.
	long := tcTestMedia(t, "long.wav", "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=300")
	tcTestCancel(t, Enhance(), long, enhTestPreset(t, "loudnorm-ebu"))
	in := tcTestAV(t, 640, 360, "20")
	tcTestCancel(t, Enhance(), in, `{"video":{"denoise":{}},"video_encode":{"codec":"h265","preset":"veryslow"}}`)
}
