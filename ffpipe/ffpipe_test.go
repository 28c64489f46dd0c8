package ffpipe

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
	"github.com/mps-dev/mps/test/testutil"
)

func TestMain(m *testing.M) {
	os.Exit(testutil.RunWithLeakCheck(m, "github.com/mps-dev/mps/ffpipe."))
}

// TestDecodesHubAudio feeds 3 s of a hub's AAC to ffmpeg as MPEG-TS and
// reads back 16 kHz mono PCM of the same length.
func TestDecodesHubAudio(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg")
	m := testmedia.MakeMedia(t, 3)
	args := append([]string{"-hide_banner", "-loglevel", "error", "-nostdin"}, InputArgs...)
	args = append(args, "-vn", "-ar", "16000", "-ac", "1", "-f", "s16le", "pipe:1")
	c, err := Start("ffmpeg", args, []*stream.Track{m.Audio})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Supported(m.Audio) || c.Supported(m.Video) {
		t.Fatal("the child takes the audio track only")
	}
	got := make(chan int)
	go func() {
		n, _ := io.Copy(io.Discard, c.Stdout)
		got <- int(n)
	}()
	go io.Copy(io.Discard, c.Stderr)
	for i, au := range m.AUs {
		at := time.Duration(i) * 1024 * time.Second / 48000
		c.Write(&stream.AccessUnit{Track: m.Audio, DTS: at, PTS: at, Key: true, Payload: au})
	}
	c.CloseInput()
	if err := c.Wait(10 * time.Second); err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	n := <-got
	secs := float64(n) / 32000
	if secs < 2.8 || secs > 3.2 || c.Dropped != 0 {
		t.Fatalf("decoded %.2f s of audio (%d bytes), %d units dropped; want about 3 s", secs, n, c.Dropped)
	}
}

// TestStartFailsClearly: a missing ffmpeg is an error, not a hang.
func TestStartFailsClearly(t *testing.T) {
	m := testmedia.MakeMedia(t, 1)
	if _, err := Start("/nonexistent/ffmpeg", InputArgs, []*stream.Track{m.Audio}); err == nil {
		t.Fatal("Start with a missing binary succeeded")
	}
}
