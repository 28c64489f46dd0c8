package vod

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mps-dev/mps/packager"
	"github.com/mps-dev/mps/test/testutil"
)

// adpTestInput makes a 6 s 640x360 25 fps H.264 + AAC input (with video
// false, the AAC alone) and probes it.
func adpTestInput(t *testing.T, video bool) Media {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	path := filepath.Join(t.TempDir(), "in.mp4")
	sine := []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6"}
	args := append([]string{"-v", "error"}, sine...)
	if video {
		args = append([]string{"-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=6"}, sine...)
		args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-g", "50")
	}
	args = append(args, "-c:a", "aac")
	out, err := exec.Command("ffmpeg", append(args, "-y", path)...).CombinedOutput()
	if err != nil {
		t.Fatalf("make input: %v\n%s", err, out)
	}
	m, err := Probe(context.Background(), Env{}, path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// adpTestLadder is two small rungs, quick to encode.
const adpTestLadder = `{"rungs": [
	{"name": "180p", "video": {"codec": "h264", "width": 320, "height": 180, "bitrate": "300k", "preset": "ultrafast"}, "audio": {"bitrate": "64k"}},
	{"name": "90p", "video": {"codec": "h264", "width": 160, "height": 90, "bitrate": "100k", "preset": "ultrafast"}, "audio": {"bitrate": "64k"}}
]}`

type adpTestProgress struct {
	mu   sync.Mutex
	seen []float64
}

func (p *adpTestProgress) report(f float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, f)
}

var (
	adpStreamInf = regexp.MustCompile(`#EXT-X-STREAM-INF:([^\n]*)\n([^\n]+)\n`)
	adpExtinf    = regexp.MustCompile(`#EXTINF:([0-9.]+),\n([^\n]+)\n`)
	adpURI       = regexp.MustCompile(`(?m)^[^#\n][^\n]*$|URI="([^"]*)"`)
)

// adpTestSegments reads each segment of a media playlist with the init
// segment before it, and returns the segments' start times in seconds and
// whether each starts on a keyframe.
func adpTestSegments(t *testing.T, dir, playlist string) (starts []float64, keys []bool, total float64) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, playlist))
	if err != nil {
		t.Fatal(err)
	}
	pl := string(b)
	if !strings.Contains(pl, "#EXT-X-PLAYLIST-TYPE:VOD\n") || !strings.HasSuffix(pl, "#EXT-X-ENDLIST\n") {
		t.Fatalf("%s is no finished VOD playlist:\n%s", playlist, pl)
	}
	m := regexp.MustCompile(`#EXT-X-MAP:URI="([^"]+)"`).FindStringSubmatch(pl)
	if m == nil {
		t.Fatalf("%s has no init segment:\n%s", playlist, pl)
	}
	init, err := os.ReadFile(filepath.Join(dir, m[1]))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range adpExtinf.FindAllStringSubmatch(pl, -1) {
		d, _ := strconv.ParseFloat(e[1], 64)
		total += d
		seg, err := os.ReadFile(filepath.Join(dir, e[2]))
		if err != nil {
			t.Fatal(err)
		}
		file := append(append([]byte{}, init...), seg...)
		ix, err := packager.ReadFMP4(bytes.NewReader(file), int64(len(file)))
		if err != nil || len(ix.Samples) != 1 || len(ix.Samples[0]) == 0 {
			t.Fatalf("%s: %v", e[2], err)
		}
		first := ix.Samples[0][0]
		starts = append(starts, float64(first.DTS)/float64(ix.Timescales[0]))
		keys = append(keys, first.Key)
	}
	return starts, keys, total
}

// adpTestProbe decodes a manifest with ffprobe: the video streams' sizes
// and decoded frame counts, whether it has audio, and the duration.
func adpTestProbe(t *testing.T, path string) (sizes []string, frames []int, audio bool, duration float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_type,width,height,nb_read_frames:format=duration", "-of", "json", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	var probe struct {
		Streams []struct {
			Type          string `json:"codec_type"`
			Width, Height int
			Frames        string `json:"nb_read_frames"`
		}
		Format struct{ Duration string }
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		t.Fatal(err)
	}
	for _, s := range probe.Streams {
		switch s.Type {
		case "video":
			n, _ := strconv.Atoi(s.Frames)
			sizes = append(sizes, fmt.Sprintf("%dx%d", s.Width, s.Height))
			frames = append(frames, n)
		case "audio":
			audio = true
		}
	}
	duration, _ = strconv.ParseFloat(probe.Format.Duration, 64)
	return sizes, frames, audio, duration
}

// TestAdaptiveLadder encodes a 6 s input into a 2-rung ladder and checks
// the packaged folder: the multivariant playlist lists both rungs with
// their resolutions and the audio group, every media playlist is finished,
// the segments of both rungs start at the same times on keyframes, ffmpeg
// decodes every frame of both rungs through index.m3u8 and manifest.mpd,
// every URI is a relative file in the folder, and nothing else is left.
func TestAdaptiveLadder(t *testing.T) {
	in := adpTestInput(t, true)
	prog := &adpTestProgress{}
	env := Env{OutDir: t.TempDir(), Progress: prog.report}
	start := time.Now()
	outs, err := Adaptive().Run(context.Background(), env, in, json.RawMessage(adpTestLadder))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("adaptive run took %s", time.Since(start))
	if len(outs) != 2 || outs[0].Kind != "playlist" || outs[0].Path != "index.m3u8" || outs[1].Kind != "manifest" || outs[1].Path != "manifest.mpd" {
		t.Fatalf("outputs: %+v", outs)
	}
	for _, o := range outs {
		if o.Size <= 0 || o.Width != 320 || o.Height != 180 || math.Abs(o.Duration-6) > 0.2 || o.MIME == "" {
			t.Errorf("output %+v", o)
		}
	}
	if d := outs[0].Data; d["segments"] != 3 || len(d["rungs"].([]map[string]any)) != 2 {
		t.Errorf("summary %v", d)
	}
	prog.mu.Lock()
	if n := len(prog.seen); n == 0 || prog.seen[n-1] != 1 {
		t.Errorf("progress %v", prog.seen)
	}
	for i := 1; i < len(prog.seen); i++ {
		if prog.seen[i] < prog.seen[i-1] {
			t.Errorf("progress went back: %v", prog.seen)
			break
		}
	}
	prog.mu.Unlock()

	dir := env.OutDir
	mvb, _ := os.ReadFile(filepath.Join(dir, "index.m3u8"))
	mv := string(mvb)
	infs := adpStreamInf.FindAllStringSubmatch(mv, -1)
	if len(infs) != 2 || strings.Count(mv, `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio"`) != 1 {
		t.Fatalf("multivariant:\n%s", mv)
	}
	for i, want := range []string{"RESOLUTION=320x180", "RESOLUTION=160x90"} {
		for _, w := range []string{want, `AUDIO="audio"`, `CODECS="avc1.`, `mp4a.40.2"`, "BANDWIDTH="} {
			if !strings.Contains(infs[i][1], w) {
				t.Errorf("variant %d lacks %s: %s", i, w, infs[i][1])
			}
		}
	}

	// Segments line up across the rungs.
	s0, k0, d0 := adpTestSegments(t, dir, infs[0][2])
	s1, k1, d1 := adpTestSegments(t, dir, infs[1][2])
	if len(s0) != 3 || fmt.Sprint(s0) != fmt.Sprint(s1) || fmt.Sprint(s0) != fmt.Sprint([]float64{0, 2, 4}) {
		t.Errorf("segment starts: %v and %v, want 0, 2 and 4 s on both", s0, s1)
	}
	for i := range k0 {
		if !k0[i] || !k1[i] {
			t.Errorf("segment %d does not start on a keyframe: %v %v", i, k0, k1)
		}
	}
	if math.Abs(d0-6) > 0.01 || math.Abs(d1-6) > 0.01 {
		t.Errorf("EXTINF sums %.3f and %.3f, want 6", d0, d1)
	}
	audioPl := regexp.MustCompile(`TYPE=AUDIO[^\n]*URI="([^"]+)"`).FindStringSubmatch(mv)[1]
	if _, _, da := adpTestSegments(t, dir, audioPl); math.Abs(da-6) > 0.1 {
		t.Errorf("audio EXTINF sum %.3f", da)
	}

	// The folder is self-contained: every URI is a file next to it.
	files, _ := os.ReadDir(dir)
	present := map[string]bool{}
	for _, f := range files {
		if f.IsDir() || strings.HasPrefix(f.Name(), ".") {
			t.Errorf("left over: %s", f.Name())
		}
		present[f.Name()] = true
	}
	for name := range present {
		if !strings.HasSuffix(name, ".m3u8") {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(dir, name))
		for _, m := range adpURI.FindAllStringSubmatch(string(b), -1) {
			uri := m[0]
			if m[1] != "" {
				uri = m[1]
			}
			if strings.Contains(uri, "/") || !present[uri] {
				t.Errorf("%s names %q, not a file of the folder", name, uri)
			}
		}
	}
	var mpd struct {
		Sets []struct {
			ContentType string `xml:"contentType,attr"`
			Reps        []struct {
				Width    int `xml:"width,attr"`
				Height   int `xml:"height,attr"`
				Template struct {
					Init  string `xml:"initialization,attr"`
					Media string `xml:"media,attr"`
					S     []struct {
						D int64 `xml:"d,attr"`
					} `xml:"SegmentTimeline>S"`
				} `xml:"SegmentTemplate"`
			} `xml:"Representation"`
		} `xml:"Period>AdaptationSet"`
	}
	mpdb, _ := os.ReadFile(filepath.Join(dir, "manifest.mpd"))
	if err := xml.Unmarshal(mpdb, &mpd); err != nil || len(mpd.Sets) != 2 || mpd.Sets[0].ContentType != "video" || len(mpd.Sets[0].Reps) != 2 ||
		mpd.Sets[1].ContentType != "audio" || len(mpd.Sets[1].Reps) != 1 {
		t.Fatalf("MPD (%v):\n%s", err, mpdb)
	}
	for _, set := range mpd.Sets {
		for _, r := range set.Reps {
			if !present[r.Template.Init] {
				t.Errorf("MPD names %q, not in the folder", r.Template.Init)
			}
			for n := range r.Template.S {
				if name := strings.ReplaceAll(r.Template.Media, "$Number$", strconv.Itoa(n)); !present[name] {
					t.Errorf("MPD names %q, not in the folder", name)
				}
			}
		}
	}
	if r := mpd.Sets[0].Reps; r[0].Width != 320 || r[0].Height != 180 || r[1].Width != 160 || r[1].Height != 90 {
		t.Errorf("MPD representations %+v", r)
	}

	// Players decode every frame of every rung.
	for _, name := range []string{"index.m3u8", "manifest.mpd"} {
		sizes, frames, audio, d := adpTestProbe(t, filepath.Join(dir, name))
		if fmt.Sprint(sizes) != "[320x180 160x90]" || fmt.Sprint(frames) != "[150 150]" || !audio || math.Abs(d-6) > 0.2 {
			t.Errorf("%s decodes as %v with %v frames, audio %v, %.3f s; want 320x180 and 160x90, 150 frames each, audio, 6 s",
				name, sizes, frames, audio, d)
		}
	}
}

// TestAdaptiveHLSOnlyNoAudio: formats [hls] writes no MPD, and an input
// without audio gives variants without an audio group; 4 s segments hold
// two GOPs.
func TestAdaptiveHLSOnlyNoAudio(t *testing.T) {
	in := adpTestInput(t, true)
	in.Audio = nil // as if the input had none
	env := Env{OutDir: t.TempDir(), Progress: func(float64) {}}
	params := strings.Replace(adpTestLadder, `{"rungs"`, `{"formats": ["hls"], "segment_duration": 4, "rungs"`, 1)
	outs, err := Adaptive().Run(context.Background(), env, in, json.RawMessage(params))
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 1 || outs[0].Kind != "playlist" || outs[0].Data["segments"] != 2 || outs[0].Data["audio"] != false {
		t.Fatalf("outputs %+v", outs)
	}
	if _, err := os.Stat(filepath.Join(env.OutDir, "manifest.mpd")); !os.IsNotExist(err) {
		t.Errorf("manifest.mpd written: %v", err)
	}
	mv, _ := os.ReadFile(filepath.Join(env.OutDir, "index.m3u8"))
	if strings.Contains(string(mv), "AUDIO") || strings.Count(string(mv), "#EXT-X-STREAM-INF") != 2 {
		t.Errorf("multivariant:\n%s", mv)
	}
	s0, _, _ := adpTestSegments(t, env.OutDir, "t0.m3u8")
	s1, _, _ := adpTestSegments(t, env.OutDir, "t1.m3u8")
	if fmt.Sprint(s0) != "[0 4]" || fmt.Sprint(s1) != "[0 4]" {
		t.Errorf("segment starts %v and %v, want [0 4]", s0, s1)
	}
}

// adpTestBadInput fails unless err is ErrBadInput mentioning every one of subs.
func adpTestBadInput(t *testing.T, what string, err error, subs ...string) {
	t.Helper()
	if !errors.Is(err, ErrBadInput) {
		t.Errorf("%s: err = %v, want ErrBadInput", what, err)
		return
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%s: err = %q, want it to mention %q", what, err, s)
		}
	}
}

func TestAdaptiveBadParams(t *testing.T) {
	rung := func(extra string) string {
		return `{"name": "a", "video": {"codec": "h264", "width": 320, "height": 180, "bitrate": "300k"` + extra + `}}`
	}
	for _, tc := range []struct {
		params string
		field  string
	}{
		{`{"rungs": [` + rung("") + `], "color": 1}`, `unknown field "color"`},
		{`{"rungs": []}`, "rungs"},
		{`{}`, "rungs"},
		{`{"rungs": [` + rung(`, "codec": "vp9"`) + `]}`, "rungs[0].video.codec"},
		{`{"rungs": [{"name": "a", "video": {"codec": "h264", "width": 320}}]}`, "rungs[0].video.bitrate"},
		{`{"rungs": [` + rung(`, "width": 321`) + `]}`, "rungs[0].video.width"},
		{`{"rungs": [` + rung(`, "preset": "warp"`) + `]}`, "rungs[0].video.preset"},
		{`{"rungs": [{"name": "src", "passthrough": true}]}`, "rungs[0].passthrough"},
		{`{"rungs": [` + rung("") + `, ` + rung("") + `]}`, "rungs[1].name"},
		{`{"rungs": [{"name": "a", "video": {"codec": "h264", "width": 320, "bitrate": 1000}, "audio": {"codec": "opus"}}]}`, "rungs[0].audio.codec"},
		{`{"rungs": [` + rung("") + `, {"name": "b", "video": {"codec": "h264", "width": 160, "bitrate": 1000}, "audio": {"bitrate": "64k"}}]}`, "rungs[1].audio"},
		{`{"rungs": [` + rung("") + `, {"name": "b", "video": {"codec": "h264", "width": 160, "bitrate": 1000, "gop": 3000000000}}]}`, "rungs[1].video.gop"},
		{`{"rungs": [` + rung("") + `], "segment_duration": 0.1}`, "segment_duration"},
		{`{"rungs": [` + rung("") + `], "segment_duration": 1}`, "segment_duration"},
		{`{"rungs": [` + rung("") + `], "formats": ["smooth"]}`, "formats[0]"},
		{`{"rungs": [` + rung("") + `], "formats": ["hls", "hls"]}`, "formats[1]"},
	} {
		adpTestBadInput(t, tc.params, Adaptive().(ParamsChecker).CheckParams(json.RawMessage(tc.params)), tc.field)
	}
	// Run refuses them too, before starting ffmpeg.
	env := Env{OutDir: t.TempDir(), Progress: func(float64) {}}
	in := Media{Path: "/nonexistent.mp4", Duration: time.Second, Video: &VideoStream{Codec: "h264", Width: 640, Height: 360}}
	_, err := Adaptive().Run(context.Background(), env, in, json.RawMessage(`{"rungs": [`+rung(`, "codec": "av1"`)+`]}`))
	adpTestBadInput(t, "run", err, "rungs[0].video.codec")
}

func TestAdaptiveAudioOnlyInput(t *testing.T) {
	in := adpTestInput(t, false)
	if in.Video != nil || in.Audio == nil {
		t.Fatalf("input %+v", in)
	}
	env := Env{OutDir: t.TempDir(), Progress: func(float64) {}}
	_, err := Adaptive().Run(context.Background(), env, in, json.RawMessage(adpTestLadder))
	adpTestBadInput(t, "audio only", err, "the input has no video stream")
}

// TestAdaptiveCancel: a cancel kills ffmpeg at once (here stuck on a FIFO
// nobody writes) and the work folder goes with it.
func TestAdaptiveCancel(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg")
	fifo := filepath.Join(t.TempDir(), "stuck.mp4")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	in := Media{Path: fifo, Duration: 60 * time.Second, Video: &VideoStream{Codec: "h264", Width: 640, Height: 360, FPS: 25},
		Audio: &AudioStream{Codec: "aac", SampleRate: 48000, Channels: 2}}
	env := Env{OutDir: t.TempDir(), Progress: func(float64) {}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Adaptive().Run(ctx, env, in, json.RawMessage(adpTestLadder))
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for adpTestChildren(fifo) == 0 {
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("ffmpeg never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	at := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrBadInput) {
			t.Errorf("cancelled run: %v", err)
		}
		if d := time.Since(at); d > time.Second {
			t.Errorf("returned %s after the cancel", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("did not return within 2 s of the cancel")
	}
	if n := adpTestChildren(fifo); n > 0 {
		t.Errorf("%d ffmpeg children remain", n)
	}
	if left, _ := os.ReadDir(env.OutDir); len(left) > 0 {
		t.Errorf("left in the output folder: %v", left)
	}
}

func adpTestChildren(path string) int {
	out, _ := exec.Command("pgrep", "-f", "ffmpeg.*"+regexp.QuoteMeta(path)).Output()
	return len(strings.Fields(string(out)))
}

func TestAdaptivePresets(t *testing.T) {
	presets := AdaptivePresets()
	raw, ok := presets["adaptive-default"]
	if !ok || len(presets) != 1 {
		t.Fatalf("presets %v", presets)
	}
	p, err := adpDecode(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []string
	for _, r := range p.Rungs {
		sizes = append(sizes, fmt.Sprintf("%s %dx%d %s %s %s", r.Name, r.Video.Width, r.Video.Height, r.Video.Codec, r.Video.Preset, r.Video.GOP))
	}
	if fmt.Sprint(sizes) != "[720p 1280x720 h264 superfast 2s 480p 854x480 h264 superfast 2s 360p 640x360 h264 superfast 2s]" ||
		p.SegmentDuration != 2 || fmt.Sprint(p.Formats) != "[hls dash]" || p.Rungs[0].Audio.Bitrate != 128_000 {
		t.Errorf("adaptive-default: %v %+v", sizes, p)
	}
}

// TestAdaptivePlan sizes rungs as live ladders do: rungs larger than the
// input are skipped unless the template upscales, and when all are, the
// smallest is kept at the input's size.
func TestAdaptivePlan(t *testing.T) {
	p, err := adpDecode(AdaptivePresets()["adaptive-default"], nil)
	if err != nil {
		t.Fatal(err)
	}
	plan := func(d AdaptiveParams, w, h int) string {
		var out []string
		for i, r := range adpPlan(d.Template.WithDefaults(), w, h, "/work") {
			out = append(out, fmt.Sprintf("%s %dx%d %s", r.Name, r.width, r.height, filepath.Base(r.file)))
			if r.file != filepath.Join("/work", fmt.Sprintf("v%d.mp4", i)) {
				t.Errorf("rung %d file %s", i, r.file)
			}
		}
		return strings.Join(out, ", ")
	}
	for _, tc := range []struct {
		w, h    int
		upscale bool
		want    string
	}{
		{1920, 1080, false, "720p 1280x720 v0.mp4, 480p 854x480 v1.mp4, 360p 640x360 v2.mp4"},
		{640, 360, false, "360p 640x360 v0.mp4"},
		{640, 480, false, "480p 640x480 v0.mp4, 360p 480x360 v1.mp4"},
		{320, 180, false, "360p 320x180 v0.mp4"},
		{320, 180, true, "720p 1280x720 v0.mp4, 480p 854x480 v1.mp4, 360p 640x360 v2.mp4"},
	} {
		d := p
		d.Upscale = tc.upscale
		if got := plan(d, tc.w, tc.h); got != tc.want {
			t.Errorf("%dx%d upscale %v: %s, want %s", tc.w, tc.h, tc.upscale, got, tc.want)
		}
	}
}
