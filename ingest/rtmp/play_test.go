package rtmp

import (
	"context"
	"encoding/json"
	"net"
	"net/url"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"

	"github.com/mps-dev/mps/stream"
)

// An RTMP player (ffprobe) decodes what the publisher sent.
func TestPlayWithFFprobe(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe not installed")
	}
	e := newEnv(t, nil)
	p := push(t, e.url("live/play"), 10*time.Second, avInput, avCodecs)
	st := e.waitLive("live/play", 10*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-read_intervals", "%+3", "-count_frames",
		"-show_entries", "stream=codec_name,width,height,sample_rate,nb_read_frames", "-of", "json",
		e.url("live/play")).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	var probe struct {
		Streams []struct {
			CodecName    string `json:"codec_name"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			SampleRate   string `json:"sample_rate"`
			NbReadFrames string `json:"nb_read_frames"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	for _, s := range probe.Streams {
		seen[s.CodecName] = true
		switch s.CodecName {
		case "h264":
			if s.Width != 640 || s.Height != 360 {
				t.Errorf("player sees %dx%d", s.Width, s.Height)
			}
			if s.NbReadFrames == "" || s.NbReadFrames == "0" || len(s.NbReadFrames) < 2 {
				t.Errorf("player decoded %q video frames in 3 s", s.NbReadFrames)
			}
		case "aac":
			if s.SampleRate != "44100" {
				t.Errorf("player sees %s Hz audio", s.SampleRate)
			}
		}
	}
	if !seen["h264"] || !seen["aac"] {
		t.Fatalf("player sees streams %+v", probe.Streams)
	}
	if in := st.Info(); in.BytesOut == 0 {
		t.Error("BytesOut not counted")
	}
	// The player left: its reader is gone.
	deadline := time.Now().Add(5 * time.Second)
	for len(st.Readers()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("readers still attached: %+v", st.Readers())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.wait(t, 15*time.Second); err != nil {
		t.Fatalf("publisher failed: %v", err)
	}
}

func TestPlayUnknownStreamRefused(t *testing.T) {
	e := newEnv(t, nil)
	for _, target := range []string{"live/none", "live/..", "live"} {
		if _, err := dialPlay(t, e.url(target), nil); err == nil {
			t.Errorf("play %s accepted", target)
		}
	}
}

func TestPlayDisabled(t *testing.T) {
	e := newEnv(t, nil, func(s *Server) { s.DisablePlay = true })
	p := push(t, e.url("live/noplay"), 10*time.Second, avInput, avCodecs)
	e.waitLive("live/noplay", 10*time.Second)
	if _, err := dialPlay(t, e.url("live/noplay"), nil); err == nil {
		t.Fatal("play accepted with DisablePlay")
	}
	p.cmd.Process.Kill()
}

// A player that stops reading is dropped; the publisher and the other
// readers never wait for it.
func TestSlowPlayerDoesNotBlock(t *testing.T) {
	e := newEnvWithHub(t, stream.HubConfig{GracePeriod: -1, GOPCacheLimit: 64}, nil,
		func(s *Server) { s.WriteTimeout = 2 * time.Second })
	// Lossless noise, some 3 MB/s, fills the socket buffers fast.
	input := []string{
		"-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30,noise=alls=100:allf=t",
		"-re", "-f", "lavfi", "-i", "sine=frequency=440",
	}
	codecs := []string{"-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-g", "30", "-c:a", "aac"}
	p := push(t, e.url("live/slow"), 20*time.Second, input, codecs)
	st := e.waitLive("live/slow", 10*time.Second)

	// The slow player: a tiny receive buffer, and nothing ever read after play starts.
	slow, err := dialPlay(t, e.url("live/slow"), func(c *net.TCPConn) { c.SetReadBuffer(4096) })
	if err != nil {
		t.Fatal(err)
	}
	_ = slow

	rc := readFor(t, st, 6*time.Second)
	rc.continuous(t, map[string]int{"h264": 90}) // 6 s: 180 nominal
	// The slow player is dropped: by the hub when its queue is full, or by
	// WriteTimeout when its socket stays full, whichever comes first.
	deadline := time.Now().Add(10 * time.Second)
	for slices.ContainsFunc(st.Readers(), func(r stream.ReaderInfo) bool { return r.Kind == "rtmp" }) {
		if time.Now().After(deadline) {
			t.Fatalf("slow RTMP player still attached after 16 s; stream %+v", st.Info())
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.waitLog(5*time.Second, "rtmp connection closed", "rtmp play live/slow")
	p.cmd.Process.Kill() // enough seen
}

// dialPlay connects a gortmplib player; tune, when set, adjusts its socket.
func dialPlay(t *testing.T, rawURL string, tune func(*net.TCPConn)) (*gortmplib.Client, error) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c := &gortmplib.Client{
		URL: u,
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, address)
			if err == nil && tune != nil {
				tune(nc.(*net.TCPConn))
			}
			return nc, err
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Initialize(ctx); err != nil {
		return nil, err
	}
	t.Cleanup(c.Close)
	return c, nil
}
