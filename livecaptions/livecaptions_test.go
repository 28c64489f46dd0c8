package livecaptions

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/captions"
	"github.com/mps-dev/mps/speech"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
	"github.com/mps-dev/mps/test/testts"
	"github.com/mps-dev/mps/test/testutil"
)

func TestMain(m *testing.M) {
	os.Exit(testutil.RunWithLeakCheck(m, "github.com/mps-dev/mps/livecaptions."))
}

// speechTS is 12 s of testsrc2 video with two spoken sentences (flite,
// voice slt), heard from about 2.25 s to 3.7 s and 7.27 s to 8.75 s.
func speechTS(t testing.TB) []byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
		"-f", "lavfi", "-i", "flite=text='The weather is nice today.':voice=slt",
		"-f", "lavfi", "-i", "flite=text='Please open the door for me.':voice=slt",
		"-filter_complex", "[1]adelay=2000,apad[a1];[2]adelay=7000,apad[a2];[a1][a2]amix=inputs=2:duration=longest:normalize=0,aresample=48000[a]",
		"-map", "0:v", "-map", "[a]", "-t", "12", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
		"-c:a", "aac", "-f", "mpegts", "-").Output()
	if err != nil {
		t.Fatalf("make speech: %v", err)
	}
	return out
}

// levelEngine "recognises" the loud span of each chunk as one segment
// saying "speech", so that cue times show where the chunks put speech.
type levelEngine struct {
	mu     sync.Mutex
	chunks int
	fail   error
}

func (e *levelEngine) Name() string { return "level" }

func (e *levelEngine) Transcribe(ctx context.Context, path string, progress func(float64)) (*speech.Transcript, error) {
	e.mu.Lock()
	e.chunks++
	fail := e.fail
	e.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 44 || string(b[:4]) != "RIFF" || binary.LittleEndian.Uint32(b[24:]) != SampleRate {
		return nil, errors.New("not a 16 kHz WAV")
	}
	pcm := b[44:]
	first, last := -1, -1
	for f := 0; (f+1)*2*frameSamples <= len(pcm); f++ {
		if frameLevel(pcm[f*2*frameSamples:(f+1)*2*frameSamples]) >= -40 {
			if first < 0 {
				first = f
			}
			last = f
		}
	}
	tr := &speech.Transcript{Engine: "level", Language: "en", Duration: samplesToDuration(int64(len(pcm) / 2))}
	if first >= 0 {
		tr.Segments = []speech.Segment{{Start: time.Duration(first) * 20 * time.Millisecond,
			End: time.Duration(last+1) * 20 * time.Millisecond, Text: "speech"}}
	}
	return tr, nil
}

func newTestManager(t *testing.T, engine speech.Engine) (*Manager, *stream.Hub, *testutil.LogBuffer) {
	t.Helper()
	lb := &testutil.LogBuffer{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hub := stream.NewHub(stream.HubConfig{GracePeriod: -1, Logger: log})
	m := New(Config{Hub: hub, Engines: map[string]speech.Engine{"pocketsphinx": engine}, MaxChunk: 2 * time.Second,
		TempDir: t.TempDir(), Logger: log})
	t.Cleanup(func() {
		m.Close()
		hub.Close()
		if t.Failed() {
			t.Logf("log:\n%s", testutil.Tail(lb.String(), 60))
		}
	})
	return m, hub, lb
}

func waitLive(t *testing.T, hub *stream.Hub, name string) *stream.Stream {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := hub.Get(name); err == nil && st.Session() != nil {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not live", name)
	return nil
}

// TestCuesFollowSpeech captions a live stream with two sentences and
// checks that the cues sit where the speech is, that spans become final
// as recognition passes them, and that silence is not sent to the engine.
func TestCuesFollowSpeech(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg")
	ts := speechTS(t)
	eng := &levelEngine{}
	m, hub, _ := newTestManager(t, eng)
	testts.Publish(t, hub, "live/talk", ts)
	st := waitLive(t, hub, "live/talk")
	if err := m.Start("live/talk", Options{}); err != nil {
		t.Fatal(err)
	}
	if lang, label, ok := m.Captions("live/talk"); !ok || lang != "en" || label != "English" {
		t.Fatalf("Captions = %q %q %v", lang, label, ok)
	}
	session := st.Session().ID

	// Wait until recognition has passed the end of the second sentence.
	deadline := time.Now().Add(20 * time.Second)
	var cues []captions.Cue
	for {
		var final bool
		cues, final = m.Cues("live/talk", session, 0, 9500*time.Millisecond)
		if final {
			break
		}
		if time.Now().After(deadline) {
			in, _ := m.Info("live/talk")
			t.Fatalf("span 0-9.5 s not final after 20 s: %+v", in)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(cues) < 2 {
		t.Fatalf("cues %+v: want the two sentences", cues)
	}
	want := []time.Duration{2250 * time.Millisecond, 7270 * time.Millisecond}
	for i, w := range want {
		found := false
		for _, q := range cues {
			if (q.Start - w).Abs() <= 500*time.Millisecond {
				found = true
			}
		}
		if !found {
			t.Errorf("no cue starts within 0.5 s of %s (sentence %d): %+v", w, i+1, cues)
		}
	}
	for _, q := range cues {
		if q.Start > 3800*time.Millisecond && q.End < 7200*time.Millisecond {
			t.Errorf("cue %+v in the silence between the sentences", q)
		}
	}
	// A span after what was received is not final yet.
	if _, final := m.Cues("live/talk", session, 30*time.Second, 32*time.Second); final {
		t.Error("a span in the future is final")
	}
	// A session before captions started is final and empty.
	if c, final := m.Cues("live/talk", session-1, 0, time.Second); !final || len(c) != 0 {
		t.Errorf("an earlier session: %v %v", c, final)
	}
	in, ok := m.Info("live/talk")
	if !ok || in.State != "running" || in.Cues < 2 || in.Engine != "pocketsphinx" {
		t.Errorf("info %+v", in)
	}
	eng.mu.Lock()
	n := eng.chunks
	eng.mu.Unlock()
	// Roughly 10 s of audio in chunks of at most 2 s, silent ones skipped.
	if n < 2 || n > 6 {
		t.Errorf("engine ran on %d chunks; want the speech only (2 to 6)", n)
	}
	if err := m.Stop("live/talk"); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := m.Captions("live/talk"); ok {
		t.Error("still captioned after Stop")
	}
	if err := m.Stop("live/talk"); !errors.Is(err, ErrNotCaptioned) {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	m, hub, _ := newTestManager(t, &levelEngine{})
	if err := m.Start("live/none", Options{}); !errors.Is(err, ErrNoStream) {
		t.Errorf("missing stream: %v", err)
	}
	pub, err := hub.Publish("live/x", []*stream.Track{testmedia.MakeMedia(t, 1).Audio}, stream.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(nil)
	err = m.Start("live/x", Options{Engine: "whisper"})
	if !errors.Is(err, ErrUnknownEngine) || !contains(err.Error(), "pocketsphinx") {
		t.Errorf("unknown engine: %v", err)
	}
}

// TestEngineFailureKeepsGoing checks that a failing engine is reported in
// the state and that the spans still become final, so players go on.
func TestEngineFailureKeepsGoing(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg")
	eng := &levelEngine{fail: &speech.HTTPError{URL: "http://x/v1/audio/transcriptions", Status: 503, Body: "busy"}}
	m, hub, _ := newTestManager(t, eng)
	testts.Publish(t, hub, "live/fail", speechTS(t))
	st := waitLive(t, hub, "live/fail")
	if err := m.Start("live/fail", Options{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, final := m.Cues("live/fail", st.Session().ID, 0, 4*time.Second); final {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("span not final while the engine fails")
		}
		time.Sleep(100 * time.Millisecond)
	}
	in, _ := m.Info("live/fail")
	if in.State != "failed" || !contains(in.Error, "503") {
		t.Errorf("info %+v: want failed with the HTTP status", in)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
