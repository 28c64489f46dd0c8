package transcoder

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/stream"
)

func TestFitBox(t *testing.T) {
	for _, tc := range []struct {
		sw, sh, bw, bh int
		w, h           int
		up             bool
	}{
		{1920, 1080, 1280, 720, 1280, 720, false},
		{1920, 1080, 0, 720, 1280, 720, false},
		{1920, 1080, 1280, 0, 1280, 720, false},
		{1920, 1080, 640, 640, 640, 360, false},  // width bound
		{1080, 1920, 1280, 720, 406, 720, false}, // portrait: height bound, even
		{640, 360, 0, 90, 160, 90, false},
		{640, 360, 1920, 1080, 1920, 1080, true},
		{640, 360, 0, 0, 640, 360, false},
		{641, 361, 0, 0, 642, 362, false},
		{1280, 720, 1280, 720, 1280, 720, false},
		{100, 100, 1, 1, 2, 2, false},
	} {
		w, h, up := FitBox(tc.sw, tc.sh, tc.bw, tc.bh)
		if w != tc.w || h != tc.h || up != tc.up {
			t.Errorf("FitBox(%d,%d,%d,%d) = %d,%d,%v; want %d,%d,%v", tc.sw, tc.sh, tc.bw, tc.bh, w, h, up, tc.w, tc.h, tc.up)
		}
	}
}

func testSession(t *testing.T, video codecs.Codec, withAudio bool) *stream.Session {
	t.Helper()
	tracks := []*stream.Track{{Codec: video, ClockRate: 90000}}
	if withAudio {
		tracks = append(tracks, &stream.Track{Codec: &codecs.MPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{
			Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 44100, ChannelCount: 2, ChannelConfig: 2}}, ClockRate: 44100})
	}
	return &stream.Session{ID: 1, Tracks: tracks}
}

// ppsH264 goes with spsH264.
var ppsH264 = []byte{0x68, 0xce, 0x0f, 0xc8}

// spsH264 is the SPS of a 640x360 libx264 stream (testsrc2).
var spsH264 = []byte{0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x58, 0xba, 0x80}

func TestMakePlan(t *testing.T) {
	s := testSession(t, &codecs.H264{SPS: spsH264, PPS: ppsH264}, true)
	if w, h := s.Tracks[0].Resolution(); w != 640 || h != 360 {
		t.Fatalf("test SPS is %dx%d", w, h)
	}
	tpl := testTemplate()
	p, err := makePlan("live/a", s, tpl, planOptions{thumbnails: true})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range p.rungs {
		names = append(names, r.stream)
	}
	if !slices.Equal(names, []string{"live/a", "live/a/180p", "live/a/90p"}) {
		t.Errorf("planned %v", names)
	}
	tr := p.transcoded()
	if len(tr) != 2 || tr[0].width != 320 || tr[0].height != 180 || tr[1].width != 160 || tr[1].height != 90 ||
		tr[0].pipe != 0 || tr[1].pipe != 1 {
		t.Errorf("transcoded %+v %+v", tr[0], tr[1])
	}
	if p.thumbEvery != defaultThumbnailInterval || p.audio == nil {
		t.Errorf("plan %+v", p)
	}
	lay := p.layout()
	if lay != (pipeLayout{rungs: 2, thumbnail: 2, progress: 3}) {
		t.Errorf("layout %+v", lay)
	}

	tpl.Upscale = true
	p, _ = makePlan("live/a", s, tpl, planOptions{})
	if tr := p.transcoded(); len(tr) != 3 || tr[2].width != 1920 {
		t.Errorf("upscale: %d rungs", len(tr))
	}

	// Without source audio, no rung carries audio.
	p, _ = makePlan("live/a", testSession(t, &codecs.H265{}, false), testTemplate(), planOptions{})
	for _, r := range p.transcoded() {
		if r.audio != AudioNone || r.width != 0 {
			t.Errorf("rung %s: audio %q, width %d", r.Name, r.audio, r.width)
		}
	}
	for _, c := range []codecs.Codec{&codecs.AV1{}, &codecs.VP9{}} {
		if _, err := makePlan("live/a", testSession(t, c, true), testTemplate(), planOptions{}); !errors.Is(err, ErrUnsupportedSource) {
			t.Errorf("%T source: %v", c, err)
		}
	}
	audioOnly := &stream.Session{Tracks: []*stream.Track{{Codec: &codecs.Opus{ChannelCount: 2}, ClockRate: 48000}}}
	if _, err := makePlan("live/a", audioOnly, testTemplate(), planOptions{}); !errors.Is(err, ErrUnsupportedSource) {
		t.Errorf("audio-only source: %v", err)
	}
}

func argAfter(args []string, flag string) []string {
	var out []string
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			out = append(out, args[i+1])
		}
	}
	return out
}

func TestBuildArgs(t *testing.T) {
	s := testSession(t, &codecs.H264{SPS: spsH264, PPS: ppsH264}, true)
	tpl := &Template{Name: "t", Watermark: &Watermark{Text: "x"}, Rungs: []Rung{
		{Name: "720p", Video: Video{Codec: CodecH265, Height: 720, Bitrate: 2_500_000, Profile: "main"}, Audio: Audio{Codec: CodecOpus, Bitrate: 96_000}},
		{Name: "360p", Video: Video{Height: 360, FPS: 15, GOP: 4 * time.Second, MaxRate: 900_000}, Audio: Audio{Codec: AudioCopy}},
		{Name: "160p", Video: Video{Height: 160}, Audio: Audio{Codec: AudioNone}},
	}}
	p, err := makePlan("live/a", s, tpl, planOptions{thumbnails: true, thumbEvery: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// 720p is larger than the 640x360 source: skipped.
	if n := len(p.transcoded()); n != 2 {
		t.Fatalf("%d rungs", n)
	}
	args := buildArgs(p, 1500*time.Millisecond)
	joined := strings.Join(args, " ")
	graph := argAfter(args, "-filter_complex")
	if len(graph) != 1 {
		t.Fatalf("filter_complex: %v", graph)
	}
	wantGraph := "[0:v:0]split=2[vsrc][thsrc];" +
		"[thsrc]select='isnan(prev_selected_t)+gte(t-prev_selected_t,2)',scale=320:-2[thumb];" +
		p.watermark.Filter("vsrc", "vwm", 1) + ";[vwm]split=2[s0][s1];" +
		"[s0]scale=640:360,setsar=1,fps=15[v0];[s1]scale=284:160,setsar=1[v1]"
	if graph[0] != wantGraph {
		t.Errorf("graph\n got %s\nwant %s", graph[0], wantGraph)
	}
	if got := argAfter(args, "-map"); !slices.Equal(got, []string{"[v0]", "0:a:0", "[v1]", "[thumb]"}) {
		t.Errorf("maps %v", got)
	}
	if got := argAfter(args, "-c:a"); !slices.Equal(got, []string{"copy"}) {
		t.Errorf("audio codecs %v", got)
	}
	if got := argAfter(args, "-progress"); !slices.Equal(got, []string{"pipe:6"}) {
		t.Errorf("progress %v", got)
	}
	for _, want := range []string{"-copyts", "-bf 0", "-sc_threshold 0", "-enc_time_base:v 1:90000",
		"-muxdelay 0 -muxpreload 0", "pipe:3", "pipe:4", "-f image2pipe pipe:5", "-maxrate 900k",
		"expr:if(isnan(prev_forced_t),1,gte(floor((t+1.5001)/4),floor((prev_forced_t+1.5001)/4)+1))",
		"expr:if(isnan(prev_forced_t),1,gte(floor((t+1.5001)/2),floor((prev_forced_t+1.5001)/2)+1))"} {
		if !strings.Contains(joined, want) {
			t.Errorf("args lack %q:\n%s", want, joined)
		}
	}

	// The H.265/Opus rung, with upscaling allowed.
	tpl.Upscale = true
	p, _ = makePlan("live/a", s, tpl, planOptions{})
	joined = strings.Join(buildArgs(p, 0), " ")
	for _, want := range []string{"-c:v libx265", "bframes=0", "-profile:v main", "-b:v 2500k -maxrate 2750k -bufsize 5000k",
		"-c:a libopus -ar 48000 -b:a 96k", "scale=1280:720", "[0:v:0]drawtext=", "[vwm];[vwm]split=3"} {
		if !strings.Contains(joined, want) {
			t.Errorf("args lack %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "thumb") {
		t.Error("thumbnail output without a sink")
	}

	// Unknown source size: ffmpeg fits the box.
	p, _ = makePlan("live/a", testSession(t, &codecs.H264{}, false), tpl, planOptions{})
	joined = strings.Join(buildArgs(p, 0), " ")
	if !strings.Contains(joined, "scale=-2:720") || strings.Contains(joined, "0:a:0") {
		t.Errorf("unknown size: %s", joined)
	}
}
