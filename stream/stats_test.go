package stream

import (
	"context"
	"encoding/json"
	"math"
	"os/exec"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// realH264Params encodes one 640x360 frame with ffmpeg's x264 and returns
// its SPS and PPS.
func realH264Params(t *testing.T) (sps, pps []byte) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=640x360", "-frames:v", "1",
		"-c:v", "libx264", "-f", "h264", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	var au h264.AnnexB
	if err := au.Unmarshal(out); err != nil {
		t.Fatalf("annex-b: %v", err)
	}
	for _, nalu := range au {
		switch h264.NALUType(nalu[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = nalu
		case h264.NALUTypePPS:
			pps = nalu
		}
	}
	if sps == nil || pps == nil {
		t.Fatalf("no SPS/PPS in ffmpeg's output (%d NAL units)", len(au))
	}
	return sps, pps
}

func TestInfoStats(t *testing.T) {
	checkGoroutines(t)
	sps, pps := realH264Params(t)
	h, _ := newTestHub(t, HubConfig{})
	v := &Track{Codec: &codecs.H264{SPS: sps, PPS: pps}, ClockRate: 90000}
	a := &Track{Codec: &codecs.MPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{
		Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: 2,
	}}, ClockRate: 48000}
	p := mustPublish(t, h, "live/stats", PublishOptions{Protocol: "rtmp", RemoteAddr: "10.1.2.3:4444"}, v, a)
	s := p.Stream()
	r1, r2 := mustReader(t, s), mustReader(t, s)

	// 3 s of media: 30 fps video of 1000-byte frames, AAC frames of 200
	// bytes (1024 samples at 48 kHz). Rates follow media time, not the
	// wall clock, so writing it all at once measures the same.
	const vSize, aSize = 1000, 200
	for i := range 90 {
		dts := time.Duration(i) * time.Second / 30
		p.WriteUnit(&AccessUnit{Track: v, DTS: dts, PTS: dts, Key: i%30 == 0, Payload: make([]byte, vSize)})
	}
	for i := 0; time.Duration(i)*1024*time.Second/48000 < 3*time.Second; i++ {
		dts := time.Duration(i) * 1024 * time.Second / 48000
		p.WriteUnit(&AccessUnit{Track: a, DTS: dts, PTS: dts, Key: true, Payload: make([]byte, aSize)})
	}
	p.AddBytesIn(1234)
	p.AddBytesIn(1000)
	s.AddBytesOut(4321)

	in := s.Info()
	if in.Name != "live/stats" || in.State != StateLive || in.Session != 1 ||
		in.Protocol != "rtmp" || in.RemoteAddr != "10.1.2.3:4444" {
		t.Errorf("info header = %+v", in)
	}
	if in.BytesIn != 2234 || in.BytesOut != 4321 {
		t.Errorf("bytes in/out = %d/%d, want 2234/4321", in.BytesIn, in.BytesOut)
	}
	if in.ReaderCount != 2 || len(in.Readers) != 2 || in.Readers[0].ID != r1.Info().ID || in.Readers[1].ID != r2.Info().ID {
		t.Errorf("readers = %d %+v", in.ReaderCount, in.Readers)
	}
	if len(in.Tracks) != 2 {
		t.Fatalf("tracks = %+v", in.Tracks)
	}
	vt, at := in.Tracks[0], in.Tracks[1]
	if vt.Kind != "video" || vt.Codec != "h264" || vt.Width != 640 || vt.Height != 360 {
		t.Errorf("video track = %+v, want h264 640x360", vt)
	}
	if vt.Frames != 90 {
		t.Errorf("video frames = %d, want 90", vt.Frames)
	}
	if math.Abs(vt.FPS-30) > 0.5 {
		t.Errorf("video fps = %v, want 30", vt.FPS)
	}
	wantV := float64(vSize * 8 * 30)
	if math.Abs(float64(vt.Bitrate)-wantV) > wantV*0.01 {
		t.Errorf("video bitrate = %d, want %v", vt.Bitrate, wantV)
	}
	if at.Kind != "audio" || at.Codec != "aac" || at.SampleRate != 48000 || at.Channels != 2 || at.FPS != 0 {
		t.Errorf("audio track = %+v, want aac 48000 Hz stereo", at)
	}
	wantA := float64(aSize*8) * 48000 / 1024
	if math.Abs(float64(at.Bitrate)-wantA) > wantA*0.01 {
		t.Errorf("audio bitrate = %d, want %v", at.Bitrate, wantA)
	}
	if in.Bitrate != vt.Bitrate+at.Bitrate {
		t.Errorf("stream bitrate %d != %d + %d", in.Bitrate, vt.Bitrate, at.Bitrate)
	}
	if _, err := json.Marshal(in); err != nil {
		t.Errorf("Info does not marshal: %v", err)
	}

	// A new session starts the rates and frame counts over; bytes and the
	// stream itself carry on.
	p.Close(nil)
	if got := s.Info(); got.State != StateReconnecting {
		t.Errorf("state after close = %s", got.State)
	}
	p2 := mustPublish(t, h, "live/stats", PublishOptions{}, v)
	p2.WriteUnit(&AccessUnit{Track: v, Key: true, Payload: make([]byte, vSize)})
	in = s.Info()
	if in.Session != 2 || len(in.Tracks) != 1 || in.Tracks[0].Frames != 1 || in.Tracks[0].Bitrate != 0 || in.BytesIn != 2234 {
		t.Errorf("after reconnect: %+v", in)
	}
}

func TestRatesSurviveTimestampJumps(t *testing.T) {
	checkGoroutines(t)
	h, _ := newTestHub(t, HubConfig{})
	v := videoTrack()
	p := mustPublish(t, h, "live/x", PublishOptions{}, v)
	write := func(from time.Duration, n int, size int) {
		for i := range n {
			dts := from + time.Duration(i)*time.Second/25
			p.WriteUnit(&AccessUnit{Track: v, DTS: dts, PTS: dts, Key: i == 0, Payload: make([]byte, size)})
		}
	}
	write(time.Hour, 60, 500)    // 25 fps
	write(0, 60, 1000)           // backwards jump, then 25 fps of bigger frames
	write(5*time.Hour, 60, 2000) // forward jump
	ti := p.Stream().Info().Tracks[0]
	if math.Abs(ti.FPS-25) > 0.5 {
		t.Errorf("fps = %v, want 25", ti.FPS)
	}
	if want := 2000 * 8 * 25.0; math.Abs(float64(ti.Bitrate)-want) > want*0.01 {
		t.Errorf("bitrate = %d, want %v", ti.Bitrate, want)
	}
}

func TestTrackDescriptions(t *testing.T) {
	cases := []struct {
		codec         codecs.Codec
		name          string
		video         bool
		rate, channel int
	}{
		{&codecs.H265{}, "h265", true, 0, 0},
		{&codecs.AV1{}, "av1", true, 0, 0},
		{&codecs.VP9{Width: 1280, Height: 720}, "vp9", true, 0, 0},
		{&codecs.Opus{ChannelCount: 2}, "opus", false, 48000, 2},
		{&codecs.MPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{SampleRate: 44100, ChannelConfig: 1}}, "aac", false, 44100, 1},
		{&codecs.MPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{SampleRate: 48000, ChannelConfig: 7}}, "aac", false, 48000, 8},
		{&codecs.MPEG1Audio{}, "mp3", false, 44100, 0},
	}
	for _, c := range cases {
		tr := &Track{Codec: c.codec, ClockRate: 44100}
		if tr.CodecName() != c.name || tr.IsVideo() != c.video {
			t.Errorf("%T: name %q video %v", c.codec, tr.CodecName(), tr.IsVideo())
		}
		if !c.video {
			if sr, ch := tr.AudioFormat(); sr != c.rate || ch != c.channel {
				t.Errorf("%s: audio format %d Hz %d ch, want %d %d", c.name, sr, ch, c.rate, c.channel)
			}
		}
	}
	// Unparseable parameters give zeros, not a panic.
	for _, c := range []codecs.Codec{&codecs.H264{SPS: []byte{0x67, 0xff}}, &codecs.H265{}, &codecs.AV1{}} {
		if w, h := (&Track{Codec: c}).Resolution(); w != 0 || h != 0 {
			t.Errorf("%T: resolution %dx%d from bad parameters", c, w, h)
		}
	}
	if w, h := (&Track{Codec: &codecs.VP9{Width: 1280, Height: 720}}).Resolution(); w != 1280 || h != 720 {
		t.Errorf("vp9 resolution %dx%d", w, h)
	}
}
