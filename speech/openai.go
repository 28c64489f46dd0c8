package speech

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// OpenAI is an OpenAI-compatible transcription endpoint, as OpenAI's
// /v1/audio/transcriptions, whisper.cpp's server or faster-whisper
// servers offer. The engine extracts the audio with ffmpeg to 16 kHz mono
// WAV and POSTs it as multipart/form-data: file (audio.wav), model,
// response_format=verbose_json, timestamp_granularities[]=segment and
// language when set.
type OpenAI struct {
	// EngineName is the engine's configured name; default "openai".
	EngineName string
	// URL is the endpoint's full URL, e.g.
	// http://host:8000/v1/audio/transcriptions.
	URL string
	// APIKey, when set, is sent as "Authorization: Bearer APIKey".
	APIKey string
	// Model is the model field; default "whisper-1".
	Model string
	// Language is the spoken language's ISO 639-1 code, e.g. "en";
	// empty lets the endpoint detect it.
	Language string
	// Timeout bounds the whole request (upload and answer); default 10 min.
	Timeout time.Duration
	// FFmpeg is the ffmpeg binary; default "ffmpeg".
	FFmpeg string
	// FFprobe is the ffprobe binary; default the one beside FFmpeg, else
	// "ffprobe".
	FFprobe string
	// Client sends the request; default http.DefaultClient (the request
	// is bounded by Timeout either way).
	Client *http.Client
	// Logger, when not nil, gets the engine's log lines.
	Logger *slog.Logger
}

// DefaultTimeout bounds an OpenAI request when Timeout is not set.
const DefaultTimeout = 10 * time.Minute

// maxAnswer bounds the answer read from an endpoint.
const maxAnswer = 64 << 20

// Name is EngineName, or "openai".
func (o *OpenAI) Name() string {
	if o.EngineName == "" {
		return "openai"
	}
	return o.EngineName
}

// Transcribe extracts path's first audio stream and sends it to the
// endpoint. progress gets 0.2 when the audio is extracted, up to 0.6 as it
// is uploaded, and 1 with the answer.
func (o *OpenAI) Transcribe(ctx context.Context, path string, progress func(float64)) (*Transcript, error) {
	t, err := o.transcribe(ctx, path, progress)
	if err != nil {
		return nil, fmt.Errorf("%s: transcribe %s: %w", o.Name(), path, err)
	}
	return t, nil
}

func (o *OpenAI) transcribe(ctx context.Context, path string, progress func(float64)) (*Transcript, error) {
	if o.URL == "" {
		return nil, errors.New("no endpoint URL configured")
	}
	if u, err := url.Parse(o.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("endpoint URL %q is not an http(s) URL", o.URL)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("engine", o.Name(), "path", path)
	report := monotonic(progress)
	began := time.Now()

	info, err := probeAudio(ctx, ffprobePath(o.FFprobe, o.FFmpeg), path)
	switch {
	case errors.Is(err, errProbeMissing):
		log.Warn("no ffprobe: no extraction progress", "err", err)
	case err != nil:
		return nil, err
	case !info.HasAudio:
		return nil, ErrNoAudio
	}

	dir, err := os.MkdirTemp("", "mps-speech-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	wav := filepath.Join(dir, "audio.wav")
	job := ffmpegJob{
		bin:      o.FFmpeg,
		args:     []string{"-i", path, "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", "-f", "wav", wav},
		total:    info.Duration,
		progress: func(f float64) { report(0.2 * f) },
	}
	if err := job.run(ctx); err != nil {
		return nil, fmt.Errorf("extract audio: %w", err)
	}
	report(0.2)
	dur, err := wavDuration(wav)
	if err != nil {
		return nil, err
	}
	log.Debug("audio extracted", "duration", dur, "elapsed", time.Since(began).Round(time.Millisecond))

	body, err := o.post(ctx, wav, func(f float64) { report(0.2 + 0.4*f) })
	if err != nil {
		return nil, err
	}
	t, err := parseTranscription(body, dur)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", o.URL, err)
	}
	t.Engine = o.Name()
	if o.Language != "" {
		t.Language = o.Language
	}
	report(1)
	log.Info("transcribed", "segments", len(t.Segments), "duration", t.Duration, "elapsed", time.Since(began).Round(time.Millisecond))
	return t, nil
}

// post sends the WAV file and returns the 2xx answer's body.
func (o *OpenAI) post(ctx context.Context, wav string, progress func(float64)) ([]byte, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("no answer within %v", timeout))
	defer cancel()

	// The body is prefix, the file, suffix: its length is known, so no
	// chunked upload (which some servers refuse).
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	model := o.Model
	if model == "" {
		model = "whisper-1"
	}
	fields := [][2]string{{"model", model}, {"response_format", "verbose_json"}, {"timestamp_granularities[]", "segment"}}
	if o.Language != "" {
		fields = append(fields, [2]string{"language", o.Language})
	}
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return nil, err
		}
	}
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{`form-data; name="file"; filename="audio.wav"`}
	h["Content-Type"] = []string{"audio/wav"}
	if _, err := mw.CreatePart(h); err != nil {
		return nil, err
	}
	prefix := append([]byte(nil), head.Bytes()...)
	head.Reset()
	if err := mw.Close(); err != nil {
		return nil, err
	}
	suffix := head.Bytes()
	st, err := os.Stat(wav)
	if err != nil {
		return nil, err
	}
	size := int64(len(prefix)) + st.Size() + int64(len(suffix))
	newBody := func() (io.ReadCloser, error) {
		f, err := os.Open(wav)
		if err != nil {
			return nil, err
		}
		r := io.MultiReader(bytes.NewReader(prefix), f, bytes.NewReader(suffix))
		return &countingBody{r: r, c: f, size: size, progress: progress}, nil
	}
	body, err := newBody()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.URL, body)
	if err != nil {
		body.Close()
		return nil, fmt.Errorf("POST %s: %w", o.URL, err)
	}
	req.ContentLength = size
	req.GetBody = newBody
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "application/json")
	if o.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+o.APIKey)
	}
	client := o.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, o.requestError(ctx, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, o.requestError(ctx, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b := answer
		if len(b) > 1024 {
			b = b[:1024]
		}
		return nil, &HTTPError{URL: o.URL, Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	if len(answer) > maxAnswer {
		return nil, fmt.Errorf("POST %s: the answer is over %d MB", o.URL, maxAnswer>>20)
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct == "text/plain" && !json.Valid(answer) {
		// A plain text answer: the endpoint ignored response_format.
		answer, _ = json.Marshal(map[string]string{"text": string(answer)})
	}
	return answer, nil
}

// requestError names the URL and the plain reason a request failed.
func (o *OpenAI) requestError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("POST %s: %w", o.URL, context.Cause(ctx))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("POST %s: timed out: %w", o.URL, err)
	}
	return fmt.Errorf("POST %s: %w", o.URL, err)
}

// countingBody is a request body that reports how much of it was read.
type countingBody struct {
	r        io.Reader
	c        io.Closer
	size     int64
	read     atomic.Int64
	progress func(float64)
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 && b.size > 0 {
		b.progress(float64(b.read.Add(int64(n))) / float64(b.size))
	}
	return n, err
}

func (b *countingBody) Close() error { return b.c.Close() }

// wavDuration reads a PCM WAV file's header for the duration of its data.
func wavDuration(path string) (time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	hdr := make([]byte, 4096)
	n, err := io.ReadFull(f, hdr)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	w, err := parseWAVHeader(hdr[:n])
	if err != nil {
		return 0, fmt.Errorf("extracted audio: %w", err)
	}
	data := min(w.DataSize, st.Size()-w.DataOffset)
	return w.duration(data), nil
}

// wavHeader is what parseWAVHeader reads.
type wavHeader struct {
	Channels, SampleRate, BitsPerSample int
	DataOffset, DataSize                int64
}

func (w wavHeader) duration(dataSize int64) time.Duration {
	bytesPerSecond := int64(w.Channels) * int64(w.SampleRate) * int64(w.BitsPerSample/8)
	if bytesPerSecond <= 0 || dataSize <= 0 {
		return 0
	}
	return time.Duration(float64(dataSize) / float64(bytesPerSecond) * float64(time.Second))
}

// parseWAVHeader reads a RIFF WAVE header up to the data chunk.
func parseWAVHeader(b []byte) (wavHeader, error) {
	var w wavHeader
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return w, errors.New("not a RIFF WAVE file")
	}
	le32 := func(b []byte) int64 { return int64(b[0]) | int64(b[1])<<8 | int64(b[2])<<16 | int64(b[3])<<24 }
	le16 := func(b []byte) int { return int(b[0]) | int(b[1])<<8 }
	haveFmt := false
	for off := int64(12); off+8 <= int64(len(b)); {
		id, size := string(b[off:off+4]), le32(b[off+4:off+8])
		body := off + 8
		switch id {
		case "fmt ":
			if size < 16 || body+16 > int64(len(b)) {
				return w, errors.New("short fmt chunk")
			}
			w.Channels = le16(b[body+2:])
			w.SampleRate = int(le32(b[body+4:]))
			w.BitsPerSample = le16(b[body+14:])
			haveFmt = true
		case "data":
			if !haveFmt {
				return w, errors.New("data chunk before fmt chunk")
			}
			w.DataOffset, w.DataSize = body, size
			return w, nil
		}
		off = body + size + size&1
	}
	return w, errors.New("no data chunk")
}

// verboseJSON is an OpenAI-style transcription answer (verbose_json, or
// json with only text).
type verboseJSON struct {
	Text     *string  `json:"text"`
	Language string   `json:"language"`
	Duration *float64 `json:"duration"`
	Segments []struct {
		Start float64 `json:"start"`
		End   float64 `json:"end"`
		Text  string  `json:"text"`
		Words []struct {
			Start float64 `json:"start"`
			End   float64 `json:"end"`
			Word  string  `json:"word"`
		} `json:"words"`
	} `json:"segments"`
	Words []struct {
		Start float64 `json:"start"`
		End   float64 `json:"end"`
		Word  string  `json:"word"`
	} `json:"words"`
}

// parseTranscription reads an endpoint's answer. dur is the audio's
// duration, used when the answer gives none. An answer with text but no
// segments becomes one segment over the whole audio.
func parseTranscription(b []byte, dur time.Duration) (*Transcript, error) {
	var v verboseJSON
	if err := json.Unmarshal(b, &v); err != nil {
		start := b
		if len(start) > 200 {
			start = start[:200]
		}
		return nil, fmt.Errorf("the answer is not a transcription: %v: %q", err, start)
	}
	if v.Text == nil && v.Segments == nil {
		start := b
		if len(start) > 200 {
			start = start[:200]
		}
		return nil, fmt.Errorf("the answer has neither text nor segments: %q", start)
	}
	t := &Transcript{Language: languageCode(v.Language), Duration: dur}
	if v.Duration != nil {
		if d, ok := secondsValue(*v.Duration); ok && d > 0 {
			t.Duration = d
		}
	}
	t.Segments = []Segment{}
	for _, s := range v.Segments {
		text := strings.Join(strings.Fields(s.Text), " ")
		start, ok1 := secondsValue(s.Start)
		end, ok2 := secondsValue(s.End)
		if text == "" || !ok1 || !ok2 {
			continue
		}
		seg := Segment{Start: start, End: max(start, end), Text: text}
		for _, w := range s.Words {
			if word, ok := makeWord(w.Start, w.End, w.Word); ok {
				seg.Words = append(seg.Words, word)
			}
		}
		t.Segments = append(t.Segments, seg)
	}
	sort.SliceStable(t.Segments, func(i, j int) bool { return t.Segments[i].Start < t.Segments[j].Start })
	// Top-level words (timestamp_granularities[]=word) go to the segment
	// they start in, when the segments came without words.
	segmentWords := false
	for _, s := range t.Segments {
		segmentWords = segmentWords || len(s.Words) > 0
	}
	for _, w := range v.Words {
		word, ok := makeWord(w.Start, w.End, w.Word)
		if !ok || segmentWords {
			continue
		}
		for i := range t.Segments {
			s := &t.Segments[i]
			if word.Start >= s.Start && word.Start < s.End {
				s.Words = append(s.Words, word)
				break
			}
		}
	}
	if len(t.Segments) == 0 && v.Text != nil {
		if text := strings.Join(strings.Fields(*v.Text), " "); text != "" {
			t.Segments = append(t.Segments, Segment{Start: 0, End: t.Duration, Text: text})
		}
	}
	return t, nil
}

func makeWord(start, end float64, text string) (Word, bool) {
	s, ok1 := secondsValue(start)
	e, ok2 := secondsValue(end)
	text = strings.TrimSpace(text)
	if !ok1 || !ok2 || text == "" {
		return Word{}, false
	}
	return Word{Start: s, End: max(s, e), Text: text}, true
}

// secondsValue is a time in seconds from an answer; not ok when it is
// negative or absurd.
func secondsValue(f float64) (time.Duration, bool) {
	if !(f >= 0 && f < maxSeconds) {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

// whisperLanguages maps the language names Whisper answers with to ISO
// 639-1 codes.
var whisperLanguages = map[string]string{
	"english": "en", "chinese": "zh", "german": "de", "spanish": "es", "russian": "ru",
	"korean": "ko", "french": "fr", "japanese": "ja", "portuguese": "pt", "turkish": "tr",
	"polish": "pl", "catalan": "ca", "dutch": "nl", "arabic": "ar", "swedish": "sv",
	"italian": "it", "indonesian": "id", "hindi": "hi", "finnish": "fi", "vietnamese": "vi",
	"hebrew": "he", "ukrainian": "uk", "greek": "el", "malay": "ms", "czech": "cs",
	"romanian": "ro", "danish": "da", "hungarian": "hu", "tamil": "ta", "norwegian": "no",
	"thai": "th", "urdu": "ur", "croatian": "hr", "bulgarian": "bg", "lithuanian": "lt",
	"latin": "la", "welsh": "cy", "slovak": "sk", "persian": "fa", "latvian": "lv",
	"bengali": "bn", "serbian": "sr", "slovenian": "sl", "estonian": "et", "icelandic": "is",
}

// languageCode turns a Whisper language name into its code; codes and
// unknown names stay as they are (lowercased).
func languageCode(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if c, ok := whisperLanguages[s]; ok {
		return c
	}
	return s
}
