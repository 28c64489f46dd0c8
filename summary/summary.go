// Package summary sums up transcripts: an extractive summary, keywords and
// chapters with no model, or an LLM summary from an OpenAI-compatible
// chat-completions endpoint.
package summary

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"
)

// Methods of a Result.
const (
	MethodExtractive = "extractive"
	MethodLLM        = "llm"
)

// Chapter is a chapter mark. Its JSON is {"start": seconds, "title": ...}.
type Chapter struct {
	Start time.Duration
	Title string
}

// Sentence is a transcript sentence with its times. Its JSON is
// {"start": seconds, "end": seconds, "text": ...}.
type Sentence struct {
	Start, End time.Duration
	Text       string
}

// Result is a summary of a transcript.
type Result struct {
	Method    string     `json:"method"`
	Summary   string     `json:"summary"`
	Sentences []Sentence `json:"sentences,omitempty"`
	Keywords  []string   `json:"keywords"`
	Chapters  []Chapter  `json:"chapters"`
	Model     string     `json:"model,omitempty"`
}

// Chat is an OpenAI-compatible chat-completions endpoint.
type Chat struct {
	// URL is the full URL, such as http://host:8080/v1/chat/completions.
	URL string
	// APIKey, when set, is sent as "Authorization: Bearer APIKey".
	APIKey string
	// Model is the model asked for.
	Model string
	// Timeout bounds a whole request; default 2 minutes.
	Timeout time.Duration
	// Client is the HTTP client; default one with Timeout.
	Client *http.Client
}

// seconds converts a duration to JSON seconds, rounded to the
// millisecond.
func seconds(d time.Duration) float64 {
	return math.Round(d.Seconds()*1000) / 1000
}

// fromSeconds converts JSON seconds to a duration.
func fromSeconds(field string, s float64) (time.Duration, error) {
	if math.IsNaN(s) || math.IsInf(s, 0) || s < 0 || s > 1e9 {
		return 0, fmt.Errorf("%s %g: must be 0 to 1e9 seconds", field, s)
	}
	return time.Duration(math.Round(s * 1e9)), nil
}

type chapterJSON struct {
	Start float64 `json:"start"`
	Title string  `json:"title"`
}

// MarshalJSON writes {"start": seconds, "title": ...}.
func (c Chapter) MarshalJSON() ([]byte, error) {
	return json.Marshal(chapterJSON{Start: seconds(c.Start), Title: c.Title})
}

// UnmarshalJSON reads {"start": seconds, "title": ...}.
func (c *Chapter) UnmarshalJSON(b []byte) error {
	var j chapterJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	start, err := fromSeconds("chapter start", j.Start)
	if err != nil {
		return err
	}
	*c = Chapter{Start: start, Title: j.Title}
	return nil
}

type sentenceJSON struct {
	Start float64 `json:"start"`
	End   float64 `json:"end"`
	Text  string  `json:"text"`
}

// MarshalJSON writes {"start": seconds, "end": seconds, "text": ...}.
func (s Sentence) MarshalJSON() ([]byte, error) {
	return json.Marshal(sentenceJSON{Start: seconds(s.Start), End: seconds(s.End), Text: s.Text})
}

// UnmarshalJSON reads {"start": seconds, "end": seconds, "text": ...}.
func (s *Sentence) UnmarshalJSON(b []byte) error {
	var j sentenceJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	start, err := fromSeconds("sentence start", j.Start)
	if err != nil {
		return err
	}
	end, err := fromSeconds("sentence end", j.End)
	if err != nil {
		return err
	}
	*s = Sentence{Start: start, End: end, Text: j.Text}
	return nil
}
