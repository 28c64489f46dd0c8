package speech

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DefaultModelDir is where Debian's pocketsphinx-en-us package puts the
// US English model.
const DefaultModelDir = "/usr/share/pocketsphinx/model/en-us"

// Pocketsphinx runs ffmpeg's asr filter (CMU pocketsphinx) with a
// pocketsphinx model (Debian's pocketsphinx-en-us by default). It works
// offline and needs no model download.
//
// The asr filter gives an utterance's text when pocketsphinx's voice
// activity detector sees it end, with no times; the engine runs ffmpeg's
// silencedetect in the same pass and takes an utterance's start and end
// from the pauses around it.
type Pocketsphinx struct {
	// FFmpeg is the ffmpeg binary; default "ffmpeg".
	FFmpeg string
	// FFprobe is the ffprobe binary; default the one beside FFmpeg, else
	// "ffprobe".
	FFprobe string
	// ModelDir holds the model: the acoustic model in en-us/, the
	// dictionary cmudict-en-us.dict and the language model en-us.lm.bin
	// (the layout of Debian's pocketsphinx-en-us and of pocketsphinx's own
	// model folder). Default DefaultModelDir.
	ModelDir string
	// Logger, when not nil, gets the engine's log lines.
	Logger *slog.Logger
}

// Name is "pocketsphinx".
func (p *Pocketsphinx) Name() string { return "pocketsphinx" }

// Tuning of the pass. The asr filter only ends an utterance after
// pocketsphinx hears about half a second of silence, so the input is
// padded with silence for the last utterance to end too.
const (
	asrFrameSamples = 800 // 50 ms at 16 kHz: the time resolution of the metadata
	asrPad          = 1500 * time.Millisecond
	silenceNoise    = "-35dB"
	silenceMin      = 200 * time.Millisecond
	// asrPostSpeech is how long after speech ends pocketsphinx reports
	// the utterance (its -vad_postspeech, 50 frames).
	asrPostSpeech = 500 * time.Millisecond
	// wordTime is a typical spoken word's length, to place an utterance
	// when the pauses do not.
	wordTime = 350 * time.Millisecond
	// minSpeech is the shortest sound taken as speech when placing an
	// utterance: shorter ones are clicks.
	minSpeech = 100 * time.Millisecond
)

// model returns the asr filter's model files, checking that they exist.
func (p *Pocketsphinx) model() (hmm, dict, lm string, err error) {
	dir := p.ModelDir
	if dir == "" {
		dir = DefaultModelDir
	}
	hmm = filepath.Join(dir, "en-us")
	dict = filepath.Join(dir, "cmudict-en-us.dict")
	lm = filepath.Join(dir, "en-us.lm.bin")
	for _, f := range []string{filepath.Join(hmm, "mdef"), dict, lm} {
		if _, err := os.Stat(f); err != nil {
			return "", "", "", fmt.Errorf("pocketsphinx model not found in %s (install Debian's pocketsphinx-en-us): %w", dir, err)
		}
	}
	return hmm, dict, lm, nil
}

// Transcribe recognises the speech of path's first audio stream.
func (p *Pocketsphinx) Transcribe(ctx context.Context, path string, progress func(float64)) (*Transcript, error) {
	t, err := p.transcribe(ctx, path, progress)
	if err != nil {
		return nil, fmt.Errorf("pocketsphinx: transcribe %s: %w", path, err)
	}
	return t, nil
}

func (p *Pocketsphinx) transcribe(ctx context.Context, path string, progress func(float64)) (*Transcript, error) {
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("engine", p.Name(), "path", path)
	report := monotonic(progress)
	began := time.Now()
	hmm, dict, lm, err := p.model()
	if err != nil {
		return nil, err
	}
	info, err := probeAudio(ctx, ffprobePath(p.FFprobe, p.FFmpeg), path)
	switch {
	case errors.Is(err, errProbeMissing):
		// ffmpeg itself tells a missing audio stream; only progress is lost.
		log.Warn("no ffprobe: no progress until the end", "err", err)
	case err != nil:
		return nil, err
	case !info.HasAudio:
		return nil, ErrNoAudio
	}

	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	type parsed struct {
		meta asrMetadata
		err  error
	}
	metadata := make(chan parsed, 1)
	go func() {
		meta, err := readASRMetadata(r)
		_, _ = io.Copy(io.Discard, r) // never block ffmpeg
		metadata <- parsed{meta, err}
	}()

	filter := fmt.Sprintf("aformat=sample_fmts=s16:sample_rates=16000:channel_layouts=mono,"+
		"apad=pad_dur=%.3f,asetnsamples=n=%d,silencedetect=n=%s:d=%.3f,"+
		"astats=metadata=1:reset=1:measure_perchannel=none:measure_overall=RMS_level,"+
		"asr=hmm=%s:dict=%s:lm=%s,ametadata=mode=print:file='pipe\\:3':direct=1",
		asrPad.Seconds(), asrFrameSamples, silenceNoise, silenceMin.Seconds(),
		escapeFilterValue(hmm), escapeFilterValue(dict), escapeFilterValue(lm))
	job := ffmpegJob{
		bin:      p.FFmpeg,
		args:     []string{"-i", path, "-map", "0:a:0", "-vn", "-sn", "-dn", "-af", filter, "-f", "null", "-"},
		progress: report,
		extra:    []*os.File{w},
	}
	if info.Duration > 0 {
		job.total = info.Duration + asrPad
	}
	log.Debug("ffmpeg asr", "filter", filter)
	err = job.run(ctx)
	w.Close()
	res := <-metadata
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		return nil, fmt.Errorf("read asr metadata: %w", res.err)
	}
	dur := info.Duration
	if dur == 0 {
		dur = res.meta.lastTime()
	}
	t := &Transcript{
		Engine:   p.Name(),
		Language: "en",
		Duration: dur,
		Segments: placeUtterances(res.meta, dur),
	}
	report(1)
	elapsed := time.Since(began)
	log.Info("transcribed", "segments", len(t.Segments), "duration", dur, "elapsed", elapsed.Round(time.Millisecond))
	return t, nil
}

// asrEventKind is what an asrEvent tells.
type asrEventKind int

const (
	silenceStart asrEventKind = iota + 1
	silenceEnd
	utterance
)

// asrEvent is one metadata entry of the asr pass.
type asrEvent struct {
	Kind asrEventKind
	// At is the time of the frame that carried it.
	At time.Duration
	// Value is a silence event's time.
	Value time.Duration
	// Text is an utterance's text.
	Text string
}

// frameLevel is a frame's RMS level.
type frameLevel struct {
	At time.Duration
	DB float64
}

// asrMetadata is what the asr pass tells.
type asrMetadata struct {
	// Events are the silences and utterances, in order.
	Events []asrEvent
	// Levels are the frames' RMS levels, in order.
	Levels []frameLevel
}

// readASRMetadata reads ametadata's print output: "frame:N pts:P
// pts_time:T" lines, each followed by the frame's "key=value" lines.
func readASRMetadata(r io.Reader) (asrMetadata, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	var events []asrEvent
	var levels []frameLevel
	var at time.Duration
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.HasPrefix(line, "frame:") {
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "pts_time:"); ok {
					if d, ok := seconds64(v); ok {
						at = d
					}
				}
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch key {
		case "lavfi.astats.Overall.RMS_level":
			db, err := strconv.ParseFloat(value, 64)
			if err != nil || db != db {
				continue
			}
			levels = append(levels, frameLevel{At: at, DB: min(0, max(-120, db))})
		case "lavfi.asr.text":
			events = append(events, asrEvent{Kind: utterance, At: at, Text: strings.Join(strings.Fields(value), " ")})
		case "lavfi.silence_start", "lavfi.silence_end":
			d, ok := seconds64(value)
			if !ok {
				continue
			}
			kind := silenceStart
			if key == "lavfi.silence_end" {
				kind = silenceEnd
			}
			events = append(events, asrEvent{Kind: kind, At: at, Value: d})
		}
	}
	return asrMetadata{Events: events, Levels: levels}, sc.Err()
}

// seconds64 parses a time in seconds; negative ones (ffmpeg gives some
// around a stream's start) count as 0.
func seconds64(s string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f != f || f > maxSeconds || f < -maxSeconds {
		return 0, false
	}
	return time.Duration(max(0, f) * float64(time.Second)), true
}

// lastTime is the last time the metadata tells of.
func (m asrMetadata) lastTime() time.Duration {
	var last time.Duration
	for _, e := range m.Events {
		last = max(last, e.At, e.Value)
	}
	if n := len(m.Levels); n > 0 {
		last = max(last, m.Levels[n-1].At)
	}
	return last
}

// span is a time interval; End < 0 means open-ended.
type span struct{ Start, End time.Duration }

// speechSpans are the times between the silences the events tell, at
// least minSpeech long, in order.
func speechSpans(events []asrEvent) []span {
	var spans []span
	from := time.Duration(0) // where the current sound began
	inSilence := false
	for _, e := range events {
		switch e.Kind {
		case silenceStart:
			if inSilence {
				continue
			}
			inSilence = true
			if e.Value-from >= minSpeech {
				spans = append(spans, span{from, e.Value})
			}
		case silenceEnd:
			if !inSilence {
				continue
			}
			inSilence = false
			from = max(from, e.Value)
		}
	}
	if !inSilence {
		spans = append(spans, span{from, -1})
	}
	return spans
}

// placeUtterances turns the utterances into segments, placing each in
// the sound between the previous utterance's report and its own: it
// starts where that sound starts (never before the previous report) and
// ends where the last of it ends. When the silences tell nothing (none
// found, as under music or noise), the frames' levels place it: speech is
// well above the quietest frames around it; failing that, the start is
// estimated from the word count. Utterances with no text give no segment
// but still bound the next one.
func placeUtterances(m asrMetadata, dur time.Duration) []Segment {
	spans := speechSpans(m.Events)
	var segs []Segment
	prev := time.Duration(0) // the previous utterance's report
	for _, e := range m.Events {
		if e.Kind != utterance {
			continue
		}
		at := e.At
		if at < prev {
			at = prev
		}
		var in []span
		for _, s := range spans {
			if (s.End < 0 || s.End > prev) && s.Start < at {
				in = append(in, s)
			}
		}
		words := len(strings.Fields(e.Text))
		estimate := at - asrPostSpeech - time.Duration(words)*wordTime
		var start, end time.Duration
		noPause := len(in) == 0 || // pocketsphinx heard speech where silencedetect found none
			len(in) == 1 && in[0].Start <= prev && (in[0].End < 0 || in[0].End >= at) // one sound all along
		switch {
		case noPause:
			if s, e, ok := loudPart(m.Levels, prev, at); ok {
				start, end = s, e
				break
			}
			start = max(prev, estimate)
			end = max(start, at-asrPostSpeech)
		default:
			start = max(prev, in[0].Start)
			last := in[len(in)-1]
			end = at
			if last.End >= 0 && last.End < at {
				end = last.End
			}
		}
		prev = at
		if dur > 0 {
			start, end = min(start, dur), min(end, dur)
		}
		if end <= start {
			end = start + time.Duration(max(1, words))*wordTime
			if dur > 0 {
				end = min(end, dur)
			}
		}
		if e.Text == "" {
			continue
		}
		segs = append(segs, Segment{Start: start, End: end, Text: e.Text})
	}
	return segs
}

// Energy placement: speech is at least loudMargin dB above the quietest
// frames (the loudFloor quantile) between two reports, for loudRun frames
// in a row.
const (
	loudMargin = 10.0
	loudFloor  = 0.2
	loudRun    = 3
	loudGap    = 6
)

// loudPart finds the speech in the frames in [from, to): from the first
// run of loud frames to the end of the last loud frame.
func loudPart(levels []frameLevel, from, to time.Duration) (start, end time.Duration, ok bool) {
	i := sort.Search(len(levels), func(i int) bool { return levels[i].At >= from })
	j := sort.Search(len(levels), func(i int) bool { return levels[i].At >= to })
	window := levels[i:j]
	if len(window) < 2*loudRun {
		return 0, 0, false
	}
	dbs := make([]float64, len(window))
	for k, l := range window {
		dbs[k] = l.DB
	}
	sort.Float64s(dbs)
	threshold := dbs[int(float64(len(dbs)-1)*loudFloor)] + loudMargin
	frame := (window[len(window)-1].At - window[0].At) / time.Duration(len(window)-1)
	first, last, run := -1, -1, 0
	for k, l := range window {
		if l.DB < threshold {
			run = 0
			continue
		}
		run++
		if run >= loudRun && first < 0 {
			first = k - loudRun + 1
		}
		if first >= 0 {
			last = k
		}
	}
	if first < 0 {
		return 0, 0, false
	}
	// Speech often begins with a short sound and a dip: take in loud
	// frames up to loudGap frames before the run.
	for k := first - 1; k >= 0 && k >= first-loudGap; k-- {
		if window[k].DB >= threshold {
			first = k
		}
	}
	return window[first].At, window[last].At + frame, true
}
