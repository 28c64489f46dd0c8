// Package speech recognises speech in media files: the Engine interface,
// and engines for pocketsphinx (offline, through ffmpeg's asr filter) and
// for OpenAI-compatible transcription endpoints.
package speech

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Word is one recognised word.
type Word struct {
	Start, End time.Duration
	Text       string
}

// Segment is one recognised utterance or phrase.
type Segment struct {
	Start, End time.Duration
	Text       string
	Words      []Word
}

// Transcript is an engine's result for one input.
type Transcript struct {
	Engine   string        `json:"engine"`
	Language string        `json:"language"`
	Duration time.Duration `json:"duration"`
	Segments []Segment     `json:"segments"`
}

// Engine recognises the speech of a media file's first audio stream.
type Engine interface {
	// Name is the engine's configured name, such as "pocketsphinx".
	Name() string
	// Transcribe recognises path's audio. It fails with ErrNoAudio when the
	// file has no audio stream, and with an *HTTPError when a remote
	// endpoint answers a non-2xx status; it never outlives ctx or the
	// engine's timeout. progress, when not nil, gets 0..1.
	Transcribe(ctx context.Context, path string, progress func(float64)) (*Transcript, error)
}

// ErrNoAudio is the error of an input without an audio stream.
var ErrNoAudio = errors.New("the input has no audio stream")

// HTTPError is a non-2xx answer from a remote endpoint.
type HTTPError struct {
	URL    string
	Status int
	Body   string
}

func (e *HTTPError) Error() string {
	body := e.Body
	if len(body) > 200 {
		body = body[:200]
	}
	return fmt.Sprintf("POST %s: HTTP %d: %s", e.URL, e.Status, body)
}

// seconds is a duration written in JSON as a number of seconds, rounded to
// the millisecond.
type seconds float64

func toSeconds(d time.Duration) seconds {
	return seconds(d.Round(time.Millisecond).Seconds())
}

// maxSeconds bounds the seconds a JSON document may give (about 285 years,
// within the range of time.Duration).
const maxSeconds = 9e9

func (s seconds) duration(field string) (time.Duration, error) {
	f := float64(s)
	if math.IsNaN(f) || math.IsInf(f, 0) || f < -maxSeconds || f > maxSeconds {
		return 0, fmt.Errorf("%s: %v seconds is out of range", field, f)
	}
	return time.Duration(math.Round(f * float64(time.Second))), nil
}

type wordJSON struct {
	Start seconds `json:"start"`
	End   seconds `json:"end"`
	Text  string  `json:"text"`
}

// MarshalJSON writes {"start": seconds, "end": seconds, "text": ...}.
func (w Word) MarshalJSON() ([]byte, error) {
	return json.Marshal(wordJSON{Start: toSeconds(w.Start), End: toSeconds(w.End), Text: w.Text})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (w *Word) UnmarshalJSON(b []byte) error {
	var j wordJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	start, err := j.Start.duration("word start")
	if err != nil {
		return err
	}
	end, err := j.End.duration("word end")
	if err != nil {
		return err
	}
	*w = Word{Start: start, End: end, Text: j.Text}
	return nil
}

type segmentJSON struct {
	Start seconds `json:"start"`
	End   seconds `json:"end"`
	Text  string  `json:"text"`
	Words []Word  `json:"words,omitempty"`
}

// MarshalJSON writes {"start": seconds, "end": seconds, "text": ...,
// "words": [...]} (words only when there are some).
func (s Segment) MarshalJSON() ([]byte, error) {
	return json.Marshal(segmentJSON{Start: toSeconds(s.Start), End: toSeconds(s.End), Text: s.Text, Words: s.Words})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Segment) UnmarshalJSON(b []byte) error {
	var j segmentJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	start, err := j.Start.duration("segment start")
	if err != nil {
		return err
	}
	end, err := j.End.duration("segment end")
	if err != nil {
		return err
	}
	*s = Segment{Start: start, End: end, Text: j.Text, Words: j.Words}
	return nil
}

type transcriptJSON struct {
	Engine   string    `json:"engine"`
	Language string    `json:"language"`
	Duration seconds   `json:"duration"`
	Segments []Segment `json:"segments"`
}

// MarshalJSON writes the transcript with its duration in seconds. Segments
// is never null.
func (t Transcript) MarshalJSON() ([]byte, error) {
	segs := t.Segments
	if segs == nil {
		segs = []Segment{}
	}
	return json.Marshal(transcriptJSON{Engine: t.Engine, Language: t.Language, Duration: toSeconds(t.Duration), Segments: segs})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (t *Transcript) UnmarshalJSON(b []byte) error {
	var j transcriptJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	d, err := j.Duration.duration("transcript duration")
	if err != nil {
		return err
	}
	*t = Transcript{Engine: j.Engine, Language: j.Language, Duration: d, Segments: j.Segments}
	return nil
}

// Text is the transcript's text: its segments' texts joined by spaces.
func (t *Transcript) Text() string {
	parts := make([]string, 0, len(t.Segments))
	for _, s := range t.Segments {
		if s := strings.TrimSpace(s.Text); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ")
}
