package rtsp

import (
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
)

// publishMedia publishes test media (H.264 + AAC) into the hub in real
// time, from a goroutine that ends with the test.
func publishMedia(t *testing.T, e *testEnv, name string, seconds int) *stream.Stream {
	t.Helper()
	m := testmedia.MakeMedia(t, seconds)
	tracks := []*stream.Track{m.Video, m.Audio}
	p, err := e.hub.Publish(name, tracks, stream.PublishOptions{Protocol: "test"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Publish(t, p, tracks, true, 0)
	}()
	t.Cleanup(func() {
		p.Close(nil)
		<-done
	})
	return p.Stream()
}

// ffmpeg plays a hub stream over TCP and over UDP at the same time; both
// decode video and audio without an error, both show as "rtsp" readers,
// and their bytes are counted.
func TestPlayTCPAndUDP(t *testing.T) {
	e := newEnv(t, nil)
	st := publishMedia(t, e, "live/play", 12)
	time.Sleep(1500 * time.Millisecond) // joins mid-GOP: the cached GOP starts it

	var wg sync.WaitGroup
	results := map[string]map[int]int{}
	var mu sync.Mutex
	for _, tr := range []string{"tcp", "udp"} {
		wg.Go(func() {
			n := readRTSP(t, e.url("live/play"), tr, 4*time.Second)
			mu.Lock()
			results[tr] = n
			mu.Unlock()
		})
	}
	// Both readers show in the stream info while they play.
	deadline := time.Now().Add(5 * time.Second)
	for {
		rs := st.Readers()
		kinds := 0
		for _, r := range rs {
			if r.Kind == Protocol && r.RemoteAddr != "" {
				kinds++
			}
		}
		if kinds == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("readers %+v, want two of kind rtsp", rs)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	for tr, n := range results {
		// 4 s: 120 video frames and 187 audio frames nominal.
		if n[0] < 80 || n[1] < 120 {
			t.Errorf("over %s: decoded %d video and %d audio frames", tr, n[0], n[1])
		}
	}
	if st.Info().BytesOut == 0 {
		t.Error("no bytes counted out")
	}
}

// H.265 and Opus published over RTSP play back over UDP.
func TestPlayH265Opus(t *testing.T) {
	e := newEnv(t, nil)
	pushRTSP(t, e.url("live/hevc"), pushOptions{hevc: true, opus: true, transport: "tcp", dur: 10 * time.Second})
	e.waitLive("live/hevc", 10*time.Second)
	n := readRTSP(t, e.url("live/hevc"), "udp", 3*time.Second)
	if n[0] < 50 || n[1] < 90 {
		t.Errorf("decoded %d video and %d audio frames", n[0], n[1])
	}
}

// A stream that does not exist is a 404, and the server keeps serving.
func TestPlayMissingStream(t *testing.T) {
	e := newEnv(t, nil)
	p := startFFmpeg(t, "-v", "error", "-rtsp_transport", "tcp", "-i", e.url("live/none"), "-f", "null", "-")
	if err := p.wait(t, 15*time.Second); err == nil {
		t.Fatal("ffmpeg played a missing stream")
	}
	if !containsAny(p.stderr.String(), "404", "Not Found") {
		t.Errorf("ffmpeg did not see 404:\n%s", p.stderr.String())
	}
}

// When play is disabled, DESCRIBE is refused.
func TestPlayDisabled(t *testing.T) {
	e := newEnv(t, nil, func(s *Server) { s.DisablePlay = true })
	publishMedia(t, e, "live/nop", 3)
	p := startFFmpeg(t, "-v", "error", "-rtsp_transport", "tcp", "-i", e.url("live/nop"), "-f", "null", "-")
	if err := p.wait(t, 15*time.Second); err == nil {
		t.Fatal("ffmpeg played with play disabled")
	}
}
