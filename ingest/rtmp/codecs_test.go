package rtmp

import (
	"slices"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	rtmpcodecs "github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
)

// Opus arrives over Enhanced RTMP (ffmpeg 5.1 cannot send it, so a
// gortmplib client sends packets that the server does not decode).
func TestPublishOpus(t *testing.T) {
	e := newEnv(t, nil)
	c, err := dialPublish(t, e.url("live/opus"))
	if err != nil {
		t.Fatal(err)
	}
	track := &gortmplib.Track{Codec: &rtmpcodecs.Opus{IDHeader: &opus.IDHeader{
		Version: 1, ChannelCount: 2, PreSkip: 312, InputSampleRate: 48000,
	}}}
	w := &gortmplib.Writer{Conn: c, Tracks: []*gortmplib.Track{track}}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	const packet = 20 * time.Millisecond
	for i := range 150 {
		if err := w.WriteOpus(track, time.Duration(i)*packet, []byte{0xfc, byte(i), 0x01}); err != nil {
			t.Fatal(err)
		}
	}
	st := e.waitLive("live/opus", 5*time.Second)
	tracks := st.Session().Tracks
	if got := trackCodecs(tracks); !slices.Equal(got, []string{"opus"}) {
		t.Fatalf("tracks = %v", got)
	}
	if rate, ch := tracks[0].AudioFormat(); rate != 48000 || ch != 2 || tracks[0].ClockRate != 48000 {
		t.Fatalf("opus track: %d Hz, %d channels, clock %d", rate, ch, tracks[0].ClockRate)
	}
	deadline := time.Now().Add(5 * time.Second)
	for st.Info().Tracks[0].Frames < 150 {
		if time.Now().After(deadline) {
			t.Fatalf("hub got %d of 150 packets", st.Info().Tracks[0].Frames)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A track in a codec MPS does not carry is dropped with a warning; the
// others are published.
func TestUnsupportedTrackIgnored(t *testing.T) {
	e := newEnv(t, nil)
	p := push(t, e.url("live/mp3"), 4*time.Second, avInput,
		[]string{"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "libmp3lame", "-ar", "44100"})
	st := e.waitLive("live/mp3", 10*time.Second)
	if got := trackCodecs(st.Session().Tracks); !slices.Equal(got, []string{"h264"}) {
		t.Fatalf("tracks = %v, want [h264]", got)
	}
	e.waitLog(time.Second, "level=WARN", "unsupported codec", "codec=mp3", "stream=live/mp3")
	if err := p.wait(t, 15*time.Second); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, p.stderr.String())
	}
}

// A stream with no track MPS can carry is refused.
func TestNoSupportedTrackRefused(t *testing.T) {
	e := newEnv(t, nil)
	p := push(t, e.url("live/alaw"), 4*time.Second, audioInput, []string{"-vn", "-c:a", "pcm_alaw", "-ar", "44100"})
	if err := p.wait(t, 15*time.Second); err == nil {
		t.Fatal("ffmpeg exited 0 after a refusal")
	}
	line := e.waitLog(5*time.Second, "publish refused", "stream=live/alaw")
	if want := `reason="no supported tracks"`; !contains(line, want) {
		t.Fatalf("refusal line lacks %s:\n%s", want, line)
	}
	if _, err := e.hub.Get("live/alaw"); err == nil {
		t.Fatal("stream without supported tracks reached the hub")
	}
}
