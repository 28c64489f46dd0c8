package speech

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// makeToneClip writes an mp4 with a video and a 3.5 s stereo tone.
func makeToneClip(t *testing.T) (string, time.Duration) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "tone.mp4")
	ffmpegOK(t, "-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=3.5", "-f", "lavfi", "-i", "sine=f=440:r=44100:d=3.5",
		"-ac", "2", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", out)
	return out, 3500 * time.Millisecond
}

const cannedVerboseJSON = `{
  "task": "transcribe", "language": "english", "duration": 3.5,
  "text": " Hello there. General Kenobi.",
  "segments": [
    {"id": 0, "seek": 0, "start": 0.0, "end": 1.5, "text": " Hello there.", "tokens": [1, 2], "temperature": 0.0},
    {"id": 1, "seek": 0, "start": 1.75, "end": 3.25, "text": " General Kenobi.", "tokens": [3], "temperature": 0.0}
  ]
}`

func TestOpenAIRequestAndAnswer(t *testing.T) {
	clip, clipDur := makeToneClip(t)
	type seen struct {
		method, path, auth, contentType string
		fields                          map[string]string
		filename, partType              string
		wav                             []byte
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type"), fields: map[string]string{}}
		mr, err := r.MultipartReader()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			b, _ := io.ReadAll(p)
			if p.FormName() == "file" {
				s.filename, s.partType, s.wav = p.FileName(), p.Header.Get("Content-Type"), b
			} else {
				s.fields[p.FormName()] = string(b)
			}
		}
		got <- s
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, cannedVerboseJSON)
	}))
	defer srv.Close()

	eng := &OpenAI{EngineName: "whisper-local", URL: srv.URL + "/v1/audio/transcriptions", APIKey: "sekret", Model: "large-v3", Language: "en", Logger: testLogger(t)}
	var progress []float64
	tr, err := eng.Transcribe(context.Background(), clip, func(f float64) { progress = append(progress, f) })
	if err != nil {
		t.Fatal(err)
	}
	s := <-got
	if s.method != http.MethodPost || s.path != "/v1/audio/transcriptions" {
		t.Errorf("request %s %s, want POST /v1/audio/transcriptions", s.method, s.path)
	}
	if s.auth != "Bearer sekret" {
		t.Errorf("Authorization %q", s.auth)
	}
	if !strings.HasPrefix(s.contentType, "multipart/form-data; boundary=") {
		t.Errorf("Content-Type %q", s.contentType)
	}
	want := map[string]string{"model": "large-v3", "response_format": "verbose_json", "timestamp_granularities[]": "segment", "language": "en"}
	for k, v := range want {
		if s.fields[k] != v {
			t.Errorf("field %s = %q, want %q", k, s.fields[k], v)
		}
	}
	if len(s.fields) != len(want) {
		t.Errorf("fields %v, want %v", s.fields, want)
	}
	if s.filename != "audio.wav" {
		t.Errorf("file name %q, want audio.wav", s.filename)
	}

	// The file is a 16 kHz mono 16-bit WAV as long as the input.
	wav := s.wav
	if len(wav) < 44 || string(wav[:4]) != "RIFF" || string(wav[8:12]) != "WAVE" {
		t.Fatalf("file part is not a WAV: % x", wav[:min(len(wav), 16)])
	}
	if riff := binary.LittleEndian.Uint32(wav[4:8]); int(riff) != len(wav)-8 {
		t.Errorf("RIFF size %d, file %d bytes", riff, len(wav))
	}
	h, err := parseWAVHeader(wav)
	if err != nil {
		t.Fatal(err)
	}
	if h.Channels != 1 || h.SampleRate != 16000 || h.BitsPerSample != 16 {
		t.Errorf("WAV %d ch %d Hz %d bit, want 1 ch 16000 Hz 16 bit", h.Channels, h.SampleRate, h.BitsPerSample)
	}
	if h.DataOffset+h.DataSize != int64(len(wav)) {
		t.Errorf("data chunk %d+%d, file %d bytes", h.DataOffset, h.DataSize, len(wav))
	}
	if d := h.duration(h.DataSize) - clipDur; d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Errorf("WAV holds %v of audio, input %v", h.duration(h.DataSize), clipDur)
	}

	// The answer.
	if tr.Engine != "whisper-local" || tr.Language != "en" || tr.Duration != 3500*time.Millisecond {
		t.Errorf("transcript %q %q %v", tr.Engine, tr.Language, tr.Duration)
	}
	wantSegs := []Segment{{Start: 0, End: 1500 * time.Millisecond, Text: "Hello there."}, {Start: 1750 * time.Millisecond, End: 3250 * time.Millisecond, Text: "General Kenobi."}}
	if len(tr.Segments) != len(wantSegs) {
		t.Fatalf("segments %+v, want %+v", tr.Segments, wantSegs)
	}
	for i, w := range wantSegs {
		g := tr.Segments[i]
		if g.Start != w.Start || g.End != w.End || g.Text != w.Text {
			t.Errorf("segment %d = %+v, want %+v", i, g, w)
		}
	}
	if len(progress) == 0 || progress[len(progress)-1] != 1 {
		t.Errorf("progress %v, want it to end in 1", progress)
	}
}

func TestOpenAIPlainTextAnswer(t *testing.T) {
	clip, clipDur := makeToneClip(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("Authorization sent without a key: %q", r.Header.Get("Authorization"))
		}
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			t.Error(err)
		}
		if _, ok := r.MultipartForm.Value["language"]; ok {
			t.Error("language sent though not set")
		}
		if m := r.FormValue("model"); m != "whisper-1" {
			t.Errorf("model %q, want the default whisper-1", m)
		}
		io.WriteString(w, `{"text":"  just   text "}`)
	}))
	defer srv.Close()
	tr, err := (&OpenAI{URL: srv.URL}).Transcribe(context.Background(), clip, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Engine != "openai" || len(tr.Segments) != 1 || tr.Segments[0].Text != "just text" || tr.Segments[0].Start != 0 {
		t.Fatalf("transcript %+v", tr)
	}
	if d := tr.Segments[0].End - clipDur; d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Errorf("segment ends at %v, want the audio's end %v", tr.Segments[0].End, clipDur)
	}
}

func TestOpenAIHTTPError(t *testing.T) {
	clip, _ := makeToneClip(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		http.Error(w, "model is loading, try later", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	url := srv.URL + "/v1/audio/transcriptions"
	_, err := (&OpenAI{URL: url}).Transcribe(context.Background(), clip, nil)
	var he *HTTPError
	if !errors.As(err, &he) {
		t.Fatalf("err = %v, want an *HTTPError", err)
	}
	if he.Status != 503 || he.URL != url || !strings.Contains(he.Body, "model is loading") {
		t.Errorf("HTTPError %+v", he)
	}
	if msg := err.Error(); !strings.Contains(msg, "HTTP 503") || !strings.Contains(msg, url) || !strings.Contains(msg, "model is loading") {
		t.Errorf("message %q lacks the status, URL or body", msg)
	}
	t.Log(err)
}

func TestOpenAIUnreachable(t *testing.T) {
	clip, _ := makeToneClip(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/v1/audio/transcriptions"
	ln.Close()
	done := make(chan error, 1)
	go func() {
		_, err := (&OpenAI{URL: url}).Transcribe(context.Background(), clip, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err = %v, want connection refused naming %s", err, url)
		}
		t.Log(err)
	case <-time.After(time.Minute):
		t.Fatal("Transcribe hangs on a closed port")
	}
}

func TestOpenAINoAnswerTimesOut(t *testing.T) {
	clip, _ := makeToneClip(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	done := make(chan error, 1)
	go func() {
		_, err := (&OpenAI{URL: srv.URL, Timeout: 300 * time.Millisecond}).Transcribe(context.Background(), clip, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no answer within 300ms") || !strings.Contains(err.Error(), srv.URL) {
			t.Fatalf("err = %v, want a timeout naming the URL", err)
		}
		t.Log(err)
	case <-time.After(time.Minute):
		t.Fatal("Transcribe hangs on a server that never answers")
	}
}

func TestOpenAIBadAnswerAndInput(t *testing.T) {
	clip, _ := makeToneClip(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html>proxy login</html>")
	}))
	defer srv.Close()
	_, err := (&OpenAI{URL: srv.URL}).Transcribe(context.Background(), clip, nil)
	if err == nil || !strings.Contains(err.Error(), "no segments") && !strings.Contains(err.Error(), "not a transcription") {
		t.Errorf("HTML answer: err = %v", err)
	}

	noAudio := filepath.Join(t.TempDir(), "video.mp4")
	ffmpegOK(t, "-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=1", "-c:v", "libx264", "-preset", "ultrafast", noAudio)
	_, err = (&OpenAI{URL: srv.URL}).Transcribe(context.Background(), noAudio, nil)
	if !errors.Is(err, ErrNoAudio) {
		t.Errorf("no audio: err = %v, want ErrNoAudio", err)
	}
	_, err = (&OpenAI{URL: "ftp://x"}).Transcribe(context.Background(), clip, nil)
	if err == nil || !strings.Contains(err.Error(), "not an http") {
		t.Errorf("ftp URL: err = %v", err)
	}
}
