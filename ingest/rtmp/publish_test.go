package rtmp

import (
	"slices"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/stream"
)

func TestPublishH264AAC(t *testing.T) {
	e := newEnv(t, nil)
	p := push(t, e.url("live/test"), 5*time.Second, avInput, avCodecs)
	st := e.waitLive("live/test", 10*time.Second)

	sess := st.Session()
	if got := trackCodecs(sess.Tracks); !slices.Equal(got, []string{"h264", "aac"}) {
		t.Fatalf("tracks = %v, want [h264 aac]", got)
	}
	if w, h := sess.Tracks[0].Resolution(); w != 640 || h != 360 {
		t.Fatalf("resolution = %dx%d, want 640x360", w, h)
	}
	if sess.Tracks[0].ClockRate != 90000 {
		t.Fatalf("video clock rate = %d", sess.Tracks[0].ClockRate)
	}
	if rate, ch := sess.Tracks[1].AudioFormat(); rate != 44100 || ch != 1 || sess.Tracks[1].ClockRate != 44100 {
		t.Fatalf("audio = %d Hz %d ch, clock %d; want 44100 Hz mono", rate, ch, sess.Tracks[1].ClockRate)
	}
	if sess.Protocol != "rtmp" || sess.RemoteAddr == "" {
		t.Fatalf("session protocol %q remote %q", sess.Protocol, sess.RemoteAddr)
	}

	// Check payloads on a reader that sees two seconds of the stream.
	rd, err := st.NewReader("test", "")
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	rc := readFor(t, st, 2*time.Second)
	rc.continuous(t, map[string]int{"h264": 30, "aac": 43}) // 2 s: 60 and 86 nominal
	if rc.keys["h264"] < 1 || !rc.firstKey["h264"] {
		t.Fatalf("keyframes = %d, first video unit key = %v", rc.keys["h264"], rc.firstKey["h264"])
	}
	if rc.keys["aac"] != rc.units["aac"] {
		t.Fatalf("audio units not all marked key: %d of %d", rc.keys["aac"], rc.units["aac"])
	}

	// The payload is AVCC with IDR slices on keyframes and no parameter sets.
	it, err := rd.Read(t.Context())
	if err != nil || it.Session == nil {
		t.Fatalf("first item = %+v, %v; want the session", it, err)
	}
	sawKey := false
	for n := 0; n < 60; n++ {
		it, err := rd.Read(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !it.AU.Track.IsVideo() {
			continue
		}
		var au h264.AVCC
		if err := au.Unmarshal(it.AU.Payload); err != nil {
			t.Fatalf("video payload is not AVCC: %v", err)
		}
		for _, nalu := range au {
			if typ := h264.NALUType(nalu[0] & 0x1f); typ == h264.NALUTypeSPS || typ == h264.NALUTypePPS {
				t.Fatalf("parameter set left in a sample")
			}
		}
		if it.AU.Key != h264.IsRandomAccess(au) {
			t.Fatalf("Key = %v for a unit whose IDR presence is %v", it.AU.Key, h264.IsRandomAccess(au))
		}
		sawKey = sawKey || it.AU.Key
	}
	if !sawKey {
		t.Fatal("no keyframe in 60 video units with -g 30")
	}

	if err := p.wait(t, 15*time.Second); err != nil {
		t.Fatalf("ffmpeg failed: %v\n%s", err, p.stderr.String())
	}
	// The publisher is gone; with no grace period the stream ends.
	select {
	case <-st.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end after the publisher left")
	}
	if in := st.Info(); in.BytesIn < 50_000 {
		t.Fatalf("BytesIn = %d", in.BytesIn)
	}
}

func TestPublishAudioOnly(t *testing.T) {
	e := newEnv(t, nil)
	p := push(t, e.url("live/radio"), 4*time.Second, audioInput, audioCodecs)
	st := e.waitLive("live/radio", 10*time.Second)
	sess := st.Session()
	if got := trackCodecs(sess.Tracks); !slices.Equal(got, []string{"aac"}) {
		t.Fatalf("tracks = %v, want [aac]", got)
	}
	cfg := sess.Tracks[0].Codec.(*codecs.MPEG4Audio).Config
	if cfg.SampleRate != 44100 || cfg.ChannelCount != 1 {
		t.Fatalf("AAC config = %+v", cfg)
	}
	rc := readFor(t, st, time.Second)
	rc.continuous(t, map[string]int{"aac": 20}) // 1 s: 43 nominal
	if err := p.wait(t, 15*time.Second); err != nil {
		t.Fatalf("ffmpeg failed: %v\n%s", err, p.stderr.String())
	}
}

func TestPublishVideoOnly(t *testing.T) {
	e := newEnv(t, nil)
	p := push(t, e.url("live/silent"), 4*time.Second, videoInput, videoCodecs)
	st := e.waitLive("live/silent", 10*time.Second)
	if got := trackCodecs(st.Session().Tracks); !slices.Equal(got, []string{"h264"}) {
		t.Fatalf("tracks = %v, want [h264]", got)
	}
	rc := readFor(t, st, time.Second)
	rc.continuous(t, map[string]int{"h264": 15}) // 1 s: 30 nominal
	if !rc.firstKey["h264"] {
		t.Fatal("reader did not start on a keyframe")
	}
	if err := p.wait(t, 15*time.Second); err != nil {
		t.Fatalf("ffmpeg failed: %v\n%s", err, p.stderr.String())
	}
}

// A kicked publisher is disconnected: ffmpeg fails, the stream ends.
func TestKickDisconnectsPublisher(t *testing.T) {
	e := newEnv(t, nil)
	p := push(t, e.url("live/kick"), 20*time.Second, avInput, avCodecs)
	st := e.waitLive("live/kick", 10*time.Second)
	if err := e.hub.Kick("live/kick"); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, 10*time.Second); err == nil {
		t.Fatal("ffmpeg exited cleanly after a kick")
	}
	select {
	case <-st.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end after the kick")
	}
	if len(e.logs.Lines("unpublish", "live/kick", stream.ErrKicked.Error())) == 0 {
		t.Fatalf("no unpublish line with the kick reason")
	}
}
